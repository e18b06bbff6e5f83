"""Safety pauses (sequences/cooldown.py): the bounce-rate and complaint cooldown with its 24-hour
re-check, and the pause while the subscription is inactive. Time is passed in; bounces and
complaints arrive through the same service the IMAP sync uses."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from warmysender.accounts.models import Plan, Subscription, SubscriptionStatus
from warmysender.conftest import Tenant
from warmysender.email.tests.corpus import bounce
from warmysender.inbox import services as inbox_services
from warmysender.inbox.tests.helpers import T0, TWO_STEPS, add_prospect
from warmysender.mailboxes.models import Mailbox
from warmysender.sequences import cooldown, services
from warmysender.sequences.cooldown import Decision, Stats, decide
from warmysender.sequences.models import (
    Action,
    ActionState,
    Campaign,
    CampaignStatus,
    Enrollment,
    PauseReason,
)
from warmysender.sequences.tests.flow import ACTOR, make_campaign, sandbox_mailbox

pytestmark = pytest.mark.django_db
LATER = T0 + timedelta(hours=30)


# --- the pure rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stats", "action"),
    [
        (Stats(sends=50, hard_bounces=3, complaints=0), "enter"),  # 6 % after 50
        (Stats(sends=100, hard_bounces=5, complaints=0), "stay"),  # exactly 5 % is not above
        (Stats(sends=100, hard_bounces=6, complaints=0), "enter"),
        (Stats(sends=49, hard_bounces=20, complaints=0), "stay"),  # too few sends to judge
        (Stats(sends=10, hard_bounces=0, complaints=3), "enter"),  # complaints need no minimum
        (Stats(sends=10, hard_bounces=0, complaints=2), "stay"),
    ],
)
def test_a_running_campaign_enters_cooldown_on_the_thresholds(stats: Stats, action: str) -> None:
    assert decide(CampaignStatus.RUNNING, stats, cooldown_until=None, now=T0).action == action


def test_the_cooldown_is_rechecked_only_after_24_hours() -> None:
    until = T0 + timedelta(hours=24)
    calm = Stats(sends=100, hard_bounces=10, complaints=0, new_problems=0)
    worse = Stats(sends=100, hard_bounces=11, complaints=0, new_problems=1)
    assert decide("cooldown", calm, cooldown_until=until, now=until - timedelta(seconds=1)) == (
        Decision("stay")
    )
    assert decide("cooldown", calm, cooldown_until=until, now=until).action == "resume"
    assert decide("cooldown", worse, cooldown_until=until, now=until).action == "extend"
    for status in ("paused", "draft", "completed"):
        assert decide(status, worse, cooldown_until=until, now=until).action == "stay"


# --- applied to campaigns ----------------------------------------------------------------------


def sent_campaign(tenant: Tenant, count: int) -> tuple[Campaign, Mailbox, list[Action]]:
    mailbox = sandbox_mailbox(tenant, f"s-{uuid.uuid4().hex[:6]}@acme.com", T0)
    prospects = [add_prospect(tenant, f"p{i}@example.com") for i in range(count)]
    campaign = make_campaign(tenant, [mailbox], TWO_STEPS, T0)
    services.enroll(campaign=campaign, prospect_ids=[p.id for p in prospects], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    step = campaign.steps.get(step_index=1)
    actions = [
        Action(
            workspace=tenant.workspace,
            enrollment=e,
            step=step,
            campaign=campaign,
            mailbox=mailbox,
            state=ActionState.SENT,
            from_email=mailbox.email,
            to_email=e.prospect.email,
            message_id=f"<{uuid.uuid4().hex}@acme.com>",
            created_at=T0,
            finished_at=T0,
        )
        for e in Enrollment.objects.filter(campaign=campaign).select_related("prospect")
    ]
    return campaign, mailbox, Action.objects.bulk_create(actions)


def deliver(mailbox: Mailbox, name: str, action: Action, at: datetime, uid: int) -> None:
    state = inbox_services.folder_state(mailbox, "INBOX", is_spam=False)
    raw = bounce(
        name,
        sender=mailbox.email,
        recipient=action.to_email,
        message_id=action.message_id,
        action_id=str(action.pk),
    )
    # Each notice is its own message (the corpus files share one Message-ID).
    raw = f"Message-ID: <notice-{uuid.uuid4().hex}@mx.example>\r\n".encode() + raw
    result = inbox_services.ingest_message(
        state=state, uidvalidity=1, uid=uid, raw=raw, received_at=at, now=at
    )
    assert result.outcome == "stored"


def status(campaign: Campaign) -> str:
    campaign.refresh_from_db()
    return campaign.status


def test_a_bounce_rate_above_5_percent_cools_down_then_resumes_after_24_hours(
    tenant: Tenant,
) -> None:
    campaign, mailbox, actions = sent_campaign(tenant, 50)
    for uid, action in enumerate(actions[:2], start=1):
        deliver(mailbox, "postfix_user_unknown", action, T0 + timedelta(hours=1), uid)
    assert cooldown.check_campaign(campaign, now=T0 + timedelta(hours=2)).action == "stay"  # 4 %
    deliver(mailbox, "exchange_recipient_not_found", actions[2], T0 + timedelta(hours=2), 3)
    deliver(mailbox, "gmail_mailbox_full", actions[3], T0 + timedelta(hours=2), 4)  # soft: no count

    entered_at = T0 + timedelta(hours=3)
    report = cooldown.run_safety_checks(entered_at)
    assert report.cooled == 1
    assert status(campaign) == CampaignStatus.COOLDOWN
    assert campaign.cooldown_until == entered_at + timedelta(hours=24)
    assert (
        "bounce rate 6.0% (3 of 50 sends)" in campaign.events.filter(type="status").last().message
    )

    assert cooldown.run_safety_checks(entered_at + timedelta(hours=23)).resumed == 0
    assert status(campaign) == CampaignStatus.COOLDOWN
    assert cooldown.run_safety_checks(entered_at + timedelta(hours=24)).resumed == 1
    assert status(campaign) == CampaignStatus.RUNNING
    assert campaign.cooldown_until is None
    # Judged afresh from the resume on: the old bounces do not send it straight back.
    assert cooldown.run_safety_checks(entered_at + timedelta(hours=25)).cooled == 0
    assert status(campaign) == CampaignStatus.RUNNING


def test_new_bounces_during_the_cooldown_extend_it(tenant: Tenant) -> None:
    campaign, mailbox, actions = sent_campaign(tenant, 50)
    for uid, action in enumerate(actions[:3], start=1):
        deliver(mailbox, "postfix_user_unknown", action, T0, uid)
    cooldown.run_safety_checks(T0 + timedelta(hours=1))
    assert status(campaign) == CampaignStatus.COOLDOWN
    deliver(mailbox, "postfix_user_unknown", actions[10], T0 + timedelta(hours=5), 11)

    cooldown.run_safety_checks(T0 + timedelta(hours=25))
    assert status(campaign) == CampaignStatus.COOLDOWN
    assert campaign.cooldown_until == T0 + timedelta(hours=49)
    # Nothing new in the next 24 hours: it resumes.
    cooldown.run_safety_checks(T0 + timedelta(hours=49))
    assert status(campaign) == CampaignStatus.RUNNING


def test_three_spam_complaints_cool_a_campaign_down(tenant: Tenant) -> None:
    campaign, mailbox, actions = sent_campaign(tenant, 10)
    for uid, action in enumerate(actions[:3], start=1):
        deliver(mailbox, "yahoo_complaint_arf", action, T0, uid)
    assert cooldown.run_safety_checks(T0 + timedelta(hours=1)).cooled == 1
    assert status(campaign) == CampaignStatus.COOLDOWN
    assert "3 spam complaints" in campaign.events.filter(type="cooldown").get().message


def test_a_manual_pause_during_cooldown_is_never_lifted_by_the_recheck(tenant: Tenant) -> None:
    campaign, mailbox, actions = sent_campaign(tenant, 50)
    for uid, action in enumerate(actions[:3], start=1):
        deliver(mailbox, "postfix_user_unknown", action, T0, uid)
    cooldown.run_safety_checks(T0 + timedelta(hours=1))
    services.pause_campaign(campaign=campaign, reason=PauseReason.MANUAL, actor=ACTOR, now=T0)
    cooldown.run_safety_checks(T0 + timedelta(days=3))
    assert status(campaign) == CampaignStatus.PAUSED
    assert campaign.paused_reason == PauseReason.MANUAL


def test_an_inactive_subscription_pauses_and_reactivation_resumes_only_those(
    tenant: Tenant, outsider: Tenant, settings: object
) -> None:
    settings.BILLING_ENABLED = True  # type: ignore[attr-defined]
    subscription = Subscription.objects.create(
        user=tenant.owner,
        plan=Plan.objects.get(code="pro"),
        status=SubscriptionStatus.TRIALING,
        trial_ends_at=T0 + timedelta(days=7),
    )
    campaign, _, _ = sent_campaign(tenant, 1)
    manual, _, _ = sent_campaign(tenant, 1)
    services.pause_campaign(campaign=manual, reason=PauseReason.MANUAL, actor=ACTOR, now=T0)
    theirs, _, _ = sent_campaign(outsider, 1)  # the other workspace has no subscription: free

    assert cooldown.run_safety_checks(T0 + timedelta(days=6)).paused == 0
    # The trial runs out: time passes, nothing else changes.
    report = cooldown.run_safety_checks(T0 + timedelta(days=8))
    assert report.paused == 1
    assert status(campaign) == CampaignStatus.PAUSED
    assert campaign.paused_reason == PauseReason.SUBSCRIPTION_INACTIVE
    assert status(theirs) == CampaignStatus.RUNNING
    assert cooldown.run_safety_checks(T0 + timedelta(days=9)).paused == 0  # already paused

    subscription.status = SubscriptionStatus.ACTIVE
    subscription.save()
    assert cooldown.run_safety_checks(T0 + timedelta(days=10)).unpaused == 1
    assert status(campaign) == CampaignStatus.RUNNING
    assert status(manual) == CampaignStatus.PAUSED  # a person's pause stays
    assert manual.paused_reason == PauseReason.MANUAL
