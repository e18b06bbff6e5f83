"""The tick decides in SQL what the pure engine states in Python: these hold the two to the same
answers. (The end-to-end behaviour — caps, pacing, rotation, threading — is in
test_sending_flow.py and the fault tests.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmysender.conftest import Tenant
from warmysender.sequences import scheduler
from warmysender.sequences.models import Campaign, CampaignStatus
from warmysender.sequences.windows import Window, is_open

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # a half-hour DST shift
    "Pacific/Chatham",  # +12:45 / +13:45
]
# A span crossing both DST changes of the northern and the southern hemisphere.
BASE = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.django_db
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    zone=st.sampled_from(ZONES),
    days=st.sets(st.integers(0, 6)),
    start=st.integers(0, 23),
    length=st.integers(1, 24),
    minutes=st.integers(0, 60 * 24 * 300),
)
def test_the_campaigns_the_tick_opens_are_those_inside_their_window(
    tenant: Tenant, zone: str, days: set[int], start: int, length: int, minutes: int
) -> None:
    end = min(24, start + length)
    now = BASE + timedelta(minutes=minutes)
    campaign = Campaign.objects.create(
        workspace=tenant.workspace,
        name="Window",
        status=CampaignStatus.RUNNING,
        timezone=zone,
        schedule_days=sorted(days),
        window_start_hour=start,
        window_end_hour=end,
        created_at=now,
        updated_at=now,
        started_at=now,
    )
    try:
        plan = scheduler.plan_campaigns(now)
        opened = {c.id for c in plan.open}
        expected = is_open(Window.of(zone, sorted(days), start, end), now)
        assert (str(campaign.id) in opened) is expected, (now, zone, sorted(days), start, end)
    finally:
        campaign.delete()


ALL_WEEK = [0, 1, 2, 3, 4, 5, 6]


@st.composite
def fleets(draw: st.DrawFn) -> dict[str, Any]:
    """A few mailboxes with small caps, one or two campaigns with windows of their own and
    pools drawn from them (an entry with or without its own daily limit), a handful of prospects
    each (some sharing a recipient domain)."""
    limits = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    campaigns = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "zone": st.sampled_from(ZONES[:4]),
                    "days": st.sets(st.integers(0, 6), min_size=1).map(sorted),
                    "start": st.integers(0, 20),
                    "length": st.integers(1, 24),
                    "limit": st.integers(1, 5),
                    "pool": st.sets(st.integers(0, len(limits) - 1), min_size=1).map(sorted),
                    "pool_limit": st.none() | st.integers(1, 2),
                    "prospects": st.integers(1, 8),
                }
            ),
            min_size=1,
            max_size=2,
        )
    )
    return {"limits": limits, "campaigns": campaigns}


@pytest.mark.django_db
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fleet=fleets(), seed=st.integers(0, 2**16))
def test_the_tick_never_exceeds_a_cap_sends_only_inside_windows_and_never_early(
    tenant: Tenant, fleet: dict[str, Any], seed: int
) -> None:
    from warmysender.mailboxes.models import Mailbox
    from warmysender.prospects.models import Prospect
    from warmysender.sequences import caps, services
    from warmysender.sequences.models import (
        Action,
        CampaignMailbox,
        Enrollment,
        EnrollmentStatus,
    )
    from warmysender.sequences.services import StepInput
    from warmysender.sequences.tests.flow import ACTOR, drive, sandbox_mailbox

    t0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    run = f"r{seed}-{len(Mailbox.objects.all())}"
    mailboxes = []
    for i, limit in enumerate(fleet["limits"]):
        mailbox = sandbox_mailbox(tenant, f"m{i}-{run}@sender{i}.com", t0)
        Mailbox.objects.filter(pk=mailbox.pk).update(daily_limit=limit)
        mailboxes.append(mailbox)
    windows = {}
    for c, spec in enumerate(fleet["campaigns"]):
        end = min(24, spec["start"] + spec["length"])
        campaign = services.create_campaign(
            workspace=tenant.workspace,
            name=f"Fleet {c}",
            steps=[StepInput(step_index=1, subject="Hi", body_html="<p>Hi</p>")],
            mailbox_ids=[mailboxes[i].id for i in spec["pool"]],
            settings={
                "timezone": spec["zone"],
                "schedule_days": spec["days"],
                "window_start_hour": spec["start"],
                "window_end_hour": end,
                "daily_send_limit": spec["limit"],
            },
            actor=ACTOR,
            now=t0,
        )
        CampaignMailbox.objects.filter(campaign=campaign).update(
            max_sends_per_day=spec["pool_limit"]
        )
        windows[campaign.id] = (Window.of(spec["zone"], spec["days"], spec["start"], end), spec)
        people = [
            Prospect.objects.create(
                workspace=tenant.workspace,
                email=f"p{p}-{c}-{run}@d{p % 2}.example",
                created_at=t0,
                updated_at=t0,
            )
            for p in range(spec["prospects"])
        ]
        services.enroll(campaign=campaign, prospect_ids=[p.id for p in people], actor=ACTOR, now=t0)
        services.start_campaign(campaign=campaign, actor=ACTOR, now=t0)
    ours = Enrollment.objects.filter(campaign_id__in=list(windows))

    # Ticks over three days, a little over the pacer's longest spacing apart.
    for k in range(3 * 24 * 2):
        now = t0 + timedelta(minutes=31 * k)
        due_before = {
            e.pk: e.next_action_at
            for e in ours.filter(status=EnrollmentStatus.PENDING).exclude(next_action_at=None)
        }
        report = drive(now, seed=seed + k)
        taken = Action.objects.filter(enrollment__in=ours, reserved_at=now)
        assert taken.count() == report.reserved
        by_mailbox: dict[Any, int] = {}
        for action in taken:
            window, _ = windows[action.campaign_id]
            assert is_open(window, now), "reserved outside the campaign's window"
            assert due_before[action.enrollment_id] <= now, "reserved before it was due"
            by_mailbox[action.mailbox_id] = by_mailbox.get(action.mailbox_id, 0) + 1
        assert all(n == 1 for n in by_mailbox.values()), "two new sends on one mailbox in a tick"

    # The three caps, per local day: the mailbox's and its pool entry's (the mailbox's zone),
    # and the campaign's (its zone).
    sent = list(Action.objects.filter(enrollment__in=ours).select_related("mailbox"))
    per_mailbox: dict[tuple[Any, Any], int] = {}
    per_entry: dict[tuple[Any, Any, Any], int] = {}
    per_campaign: dict[tuple[Any, Any], int] = {}
    for action in sent:
        assert action.reserved_at is not None and action.mailbox is not None
        mailbox_day = caps.local_day(action.reserved_at, ZoneInfo(action.mailbox.timezone))
        key = (action.mailbox_id, mailbox_day)
        per_mailbox[key] = per_mailbox.get(key, 0) + 1
        entry = (action.campaign_id, action.mailbox_id, mailbox_day)
        per_entry[entry] = per_entry.get(entry, 0) + 1
        window, spec = windows[action.campaign_id]
        campaign_day = caps.local_day(action.reserved_at, window.zone)
        per_campaign[(action.campaign_id, campaign_day)] = (
            per_campaign.get((action.campaign_id, campaign_day), 0) + 1
        )
    limits = {m.pk: m for m in Mailbox.objects.filter(pk__in=[m.pk for m in mailboxes])}
    for (mailbox_id, _), n in per_mailbox.items():
        assert n <= min(limits[mailbox_id].daily_limit, caps.HARD_DAILY_CAP)
    for (campaign_id, _), n in per_campaign.items():
        assert n <= windows[campaign_id][1]["limit"]
    for (campaign_id, _, _), n in per_entry.items():
        pool_limit = windows[campaign_id][1]["pool_limit"]
        assert pool_limit is None or n <= pool_limit, "over the pool entry's own daily limit"
    # Nothing was lost: whatever could go went, or waits with a reason.
    for enrollment in ours.exclude(status=EnrollmentStatus.COMPLETED):
        assert enrollment.status == EnrollmentStatus.PENDING
        assert enrollment.wait_reason
