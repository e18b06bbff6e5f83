"""End to end through the services, the tick and the sender, against a real SMTP server on
loopback: what arrives is exactly what the caps and window allow, rendered and threaded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message

import pytest

from warmysender.audit.models import AuditEntry, DomainEvent
from warmysender.conftest import Tenant
from warmysender.mailboxes.models import SandboxMessage
from warmysender.prospects import services as prospect_services
from warmysender.sequences import services
from warmysender.sequences.models import (
    Action,
    ActionState,
    Campaign,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
)
from warmysender.sequences.services import CampaignError, StepInput
from warmysender.sequences.tests.flow import (
    ACTOR,
    drive,
    make_campaign,
    sandbox_mailbox,
    smtp_mailbox,
)
from warmysender.testing.smtp import SmtpServer

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # Tuesday

TWO_STEPS = [
    StepInput(
        step_index=1,
        subject="{Hi|Hello} {{firstName | default: 'there'}}",
        body_html="<p>{{firstName | default: 'there'}}, a question about {{company}}.</p><p>{{signature}}</p>",
    ),
    StepInput(step_index=2, subject="", body_html="<p>Following up.</p>", delay_days=2),
]


def prospect(tenant: Tenant, email: str, **fields: object):  # type: ignore[no-untyped-def]
    return prospect_services.create_prospect(
        workspace=tenant.workspace, data={"email": email, **fields}, actor=ACTOR, now=T0
    ).prospect


def parsed(raw: bytes | str) -> Message:
    return message_from_bytes(raw.encode() if isinstance(raw, str) else raw)


def test_a_two_step_campaign_sends_rendered_threaded_mail(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    mailbox = smtp_mailbox(
        tenant, smtp_server, "sales@acme.com", T0, fromName="Sam Seller", signature="Sam\nAcme"
    )
    ada = prospect(tenant, "ada@example.com", firstName="Ada", company="Engines Ltd")
    bob = prospect(tenant, "bob@example.org", company="Bob & Co <b>")
    campaign = make_campaign(tenant, [mailbox], TWO_STEPS, T0)
    services.enroll(campaign=campaign, prospect_ids=[ada.id, bob.id], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)

    first = drive(T0)
    assert first.reserved == 1  # one send per mailbox per tick: the pacer spaces the rest
    assert len(smtp_server.messages) == 1
    drive(T0 + timedelta(minutes=1))  # too early: spacing is at least a minute, jittered
    drive(T0 + timedelta(minutes=6))
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        "ada@example.com",
        "bob@example.org",
    ]

    by_rcpt = {m.rcpt_tos[0]: parsed(m.raw) for m in smtp_server.messages}
    to_ada, to_bob = by_rcpt["ada@example.com"], by_rcpt["bob@example.org"]
    assert to_ada["Subject"] in ("Hi Ada", "Hello Ada")
    assert to_bob["Subject"] in ("Hi there", "Hello there")  # the fallback of an empty first name
    assert to_ada["From"] == "Sam Seller <sales@acme.com>"
    assert to_ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert to_ada["List-Unsubscribe"].startswith("<http")
    html = (
        next(p for p in to_bob.walk() if p.get_content_type() == "text/html")
        .get_payload(decode=True)
        .decode()
    )
    assert "Bob &amp; Co &lt;b&gt;" in html  # merge values cannot inject markup
    assert "Sam<br" in html and "Unsubscribe" in html
    text = (
        next(p for p in to_ada.walk() if p.get_content_type() == "text/plain")
        .get_payload(decode=True)
        .decode()
    )
    assert "Ada, a question about Engines Ltd." in text

    # Two days later the follow-ups go out in the same thread, from the same mailbox.
    later = T0 + timedelta(days=2, minutes=10)
    drive(later)
    drive(later + timedelta(minutes=6))
    assert len(smtp_server.messages) == 4
    follow_ups = [parsed(m.raw) for m in smtp_server.messages[2:]]
    for msg in follow_ups:
        original = by_rcpt[msg["To"]]
        assert msg["In-Reply-To"] == original["Message-ID"]
        assert msg["References"] == original["Message-ID"]
        assert msg["Subject"] == f"Re: {original['Subject']}"

    assert set(Enrollment.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "completed"
    }
    assert Action.objects.filter(campaign=campaign, state=ActionState.SENT).count() == 4
    assert DomainEvent.objects.filter(type="email.sent").count() == 4
    # Nothing more to send, however many ticks run.
    for hours in range(1, 30, 5):
        drive(later + timedelta(hours=hours))
    assert len(smtp_server.messages) == 4


def test_caps_hold_and_waiting_work_says_why(tenant: Tenant, smtp_server: SmtpServer) -> None:
    mailbox = smtp_mailbox(tenant, smtp_server, "sales@acme.com", T0, dailyLimit=3)
    people = [prospect(tenant, f"p{i}@example.com") for i in range(6)]
    campaign = make_campaign(tenant, [mailbox], TWO_STEPS[:1], T0)
    services.enroll(campaign=campaign, prospect_ids=[p.id for p in people], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    for minute in range(0, 120, 6):
        drive(T0 + timedelta(minutes=minute))
    assert len(smtp_server.messages) == 3
    waiting = Enrollment.objects.filter(campaign=campaign, status=EnrollmentStatus.PENDING)
    assert waiting.count() == 3
    midnight = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    for e in waiting:
        assert e.wait_reason == "daily cap reached on sales@acme.com"
        assert e.next_action_at >= midnight
    # The cap was hit once that day, and said so once (limit.hit), however many ticks saw it.
    [hit] = DomainEvent.objects.filter(workspace=tenant.workspace, type="limit.hit")
    assert hit.data["limitType"] == "daily_mailbox"
    assert hit.data["mailboxId"] == str(mailbox.id)
    assert hit.data["campaignId"] == str(campaign.id)
    assert (hit.data["currentValue"], hit.data["limitValue"]) == (3, 3)
    # The next day the rest goes, still at most three; a new day, a new limit.hit.
    for minute in range(0, 60, 6):
        drive(midnight + timedelta(hours=9, minutes=minute))
    assert len(smtp_server.messages) == 6
    assert DomainEvent.objects.filter(workspace=tenant.workspace, type="limit.hit").count() == 2


def test_a_recipient_domain_limit_is_reported_once_a_day(
    tenant: Tenant, smtp_server: SmtpServer, settings: object
) -> None:
    settings.RECIPIENT_DOMAIN_DAILY_LIMIT = 2  # type: ignore[attr-defined]
    mailbox = smtp_mailbox(tenant, smtp_server, "sales@acme.com", T0, dailyLimit=50)
    people = [prospect(tenant, f"p{i}@bigcorp.com") for i in range(4)]
    campaign = make_campaign(tenant, [mailbox], TWO_STEPS[:1], T0)
    services.enroll(campaign=campaign, prospect_ids=[p.id for p in people], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    for minute in range(0, 120, 6):
        drive(T0 + timedelta(minutes=minute))

    assert len(smtp_server.messages) == 2
    [hit] = DomainEvent.objects.filter(workspace=tenant.workspace, type="limit.hit")
    assert hit.data["limitType"] == "daily_domain"
    assert hit.data["domain"] == "bigcorp.com"
    assert (hit.data["currentValue"], hit.data["limitValue"]) == (2, 2)


def test_the_window_defers_work_with_the_next_opening(tenant: Tenant) -> None:
    mailbox = sandbox_mailbox(tenant, "try@acme.com", T0)
    p = prospect(tenant, "ada@example.com", firstName="Ada")
    campaign = make_campaign(
        tenant,
        [mailbox],
        TWO_STEPS[:1],
        T0,
        timezone="America/New_York",
        schedule_days=[0, 1, 2, 3, 4],
        window_start_hour=9,
        window_end_hour=17,
    )
    services.enroll(campaign=campaign, prospect_ids=[p.id], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    drive(T0)  # 04:00 in New York
    enrollment = Enrollment.objects.get(campaign=campaign)
    assert enrollment.next_action_at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert "next 09:00 America/New_York" in enrollment.wait_reason
    assert not SandboxMessage.objects.exists()
    drive(datetime(2026, 12, 1, 14, 1, tzinfo=UTC))
    captured = SandboxMessage.objects.get()
    assert captured.to_email == "ada@example.com"
    assert captured.subject in ("Hi Ada", "Hello Ada")


def test_pause_keeps_the_step_and_resume_does_not_burst(tenant: Tenant) -> None:
    boxes = [sandbox_mailbox(tenant, f"s{i}@acme.com", T0) for i in range(2)]
    people = [prospect(tenant, f"p{i}@example.com") for i in range(6)]
    campaign = make_campaign(tenant, boxes, TWO_STEPS[:1], T0)
    services.enroll(campaign=campaign, prospect_ids=[p.id for p in people], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    drive(T0)
    assert SandboxMessage.objects.count() == 2
    services.pause_campaign(
        campaign=campaign, reason="manual", actor=ACTOR, now=T0 + timedelta(minutes=1)
    )
    for hours in range(1, 48, 4):
        drive(T0 + timedelta(hours=hours))
    assert SandboxMessage.objects.count() == 2  # nothing while paused
    resumed_at = T0 + timedelta(days=2)
    services.start_campaign(
        campaign=Campaign.objects.get(pk=campaign.pk), actor=ACTOR, now=resumed_at
    )
    drive(resumed_at)
    assert SandboxMessage.objects.count() == 4  # one per mailbox: the backlog drains at pace
    assert AuditEntry.objects.filter(
        action="campaign.status_changed", to_state="paused", reason="manual"
    ).exists()


def test_a_database_check_refuses_a_paused_campaign_without_reason(tenant: Tenant) -> None:
    from django.db import IntegrityError, transaction

    campaign = make_campaign(tenant, [sandbox_mailbox(tenant, "s@acme.com", T0)], TWO_STEPS, T0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(
            status=CampaignStatus.PAUSED, paused_reason=""
        )


def test_rejections_fail_and_temporary_refusals_back_off(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    mailbox = smtp_mailbox(tenant, smtp_server, "sales@acme.com", T0)
    gone = prospect(tenant, "gone@example.com")
    busy = prospect(tenant, "busy@example.com")
    smtp_server.behave("gone@example.com", "550 5.1.1 No such user")
    smtp_server.behave("busy@example.com", "451 4.7.1 Try again later")
    campaign = make_campaign(tenant, [mailbox], TWO_STEPS[:1], T0)
    services.enroll(campaign=campaign, prospect_ids=[gone.id, busy.id], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    for minute in range(0, 30, 6):
        drive(T0 + timedelta(minutes=minute))
    failed = Enrollment.objects.get(prospect=gone)
    assert failed.status == EnrollmentStatus.FAILED
    assert "550" in failed.failure_reason
    waiting = Enrollment.objects.get(prospect=busy)
    assert waiting.status == EnrollmentStatus.PENDING
    assert "temporary refusal" in waiting.wait_reason
    action = Action.objects.get(enrollment=waiting)
    assert action.state == ActionState.PLANNED  # handed back: no capacity held
    smtp_server.behave("busy@example.com", None)
    for minute in range(30, 200, 6):
        drive(T0 + timedelta(minutes=minute))
    action.refresh_from_db()
    assert action.state == ActionState.SENT
    assert [m.rcpt_tos[0] for m in smtp_server.messages] == ["busy@example.com"]


def test_a_missing_variable_parks_the_prospect_until_the_template_is_fixed(tenant: Tenant) -> None:
    mailbox = sandbox_mailbox(tenant, "s@acme.com", T0)
    has = prospect(tenant, "has@example.com", customFields={"hook": "your launch"})
    lacks = prospect(tenant, "lacks@example.com")
    steps = [StepInput(step_index=1, subject="About {{custom.hook}}", body_html="<p>Hi</p>")]
    campaign = make_campaign(tenant, [mailbox], steps, T0)
    services.enroll(campaign=campaign, prospect_ids=[has.id, lacks.id], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)  # one prospect has the field
    for minute in range(0, 20, 6):
        drive(T0 + timedelta(minutes=minute))
    parked = Enrollment.objects.get(prospect=lacks)
    assert parked.status == EnrollmentStatus.PENDING_TEMPLATE_FIX
    assert "hook" in parked.wait_reason
    assert SandboxMessage.objects.count() == 1
    fixed_at = T0 + timedelta(hours=1)
    services.pause_campaign(campaign=campaign, reason="manual", actor=ACTOR, now=fixed_at)
    fixed = [
        StepInput(
            step_index=1,
            subject="About {{custom.hook | default: 'your plans'}}",
            body_html="<p>Hi</p>",
        )
    ]
    services.update_campaign(campaign=campaign, settings={}, steps=fixed, actor=ACTOR, now=fixed_at)
    services.resume_template_fix(campaign=campaign, actor=ACTOR, now=fixed_at)
    services.start_campaign(
        campaign=Campaign.objects.get(pk=campaign.pk), actor=ACTOR, now=fixed_at
    )
    drive(fixed_at + timedelta(minutes=1))
    assert SandboxMessage.objects.filter(
        to_email="lacks@example.com", subject="About your plans"
    ).exists()


def test_launch_is_refused_while_no_enrolled_prospect_has_a_custom_field(tenant: Tenant) -> None:
    mailbox = sandbox_mailbox(tenant, "s@acme.com", T0)
    p = prospect(tenant, "a@example.com", customFields={"segment": "smb"})
    steps = [StepInput(step_index=1, subject="Hi", body_html="<p>{{custom.persona}}</p>")]
    campaign = make_campaign(tenant, [mailbox], steps, T0)
    services.enroll(campaign=campaign, prospect_ids=[p.id], actor=ACTOR, now=T0)
    with pytest.raises(CampaignError) as refused:
        services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    assert "persona" in refused.value.message and "segment" in refused.value.message


def test_deleting_a_mailbox_hands_its_prospects_to_the_pool(tenant: Tenant) -> None:
    from warmysender.mailboxes import services as mailbox_services

    first, second = (
        sandbox_mailbox(tenant, "a@acme.com", T0),
        sandbox_mailbox(tenant, "b@acme.com", T0),
    )
    p = prospect(tenant, "x@example.com")
    campaign = make_campaign(tenant, [first, second], TWO_STEPS, T0)
    services.enroll(campaign=campaign, prospect_ids=[p.id], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    drive(T0)
    enrollment = Enrollment.objects.get()
    used = enrollment.mailbox
    assert used is not None and enrollment.next_step_index == 2
    deleted_at = T0 + timedelta(hours=1)
    mailbox_services.delete_mailbox(used, actor=ACTOR, now=deleted_at)
    enrollment.refresh_from_db()
    assert enrollment.mailbox is None
    assert enrollment.next_step_index == 2 and enrollment.last_message_id  # step and thread kept
    assert enrollment.next_action_at >= deleted_at + timedelta(hours=1)
    drive(T0 + timedelta(days=2, hours=1))
    other = second if used.pk == first.pk else first
    follow_up = SandboxMessage.objects.get(mailbox=other)
    assert follow_up.headers.get("In-Reply-To") == enrollment.last_message_id


def test_one_send_run_over_several_reservations_renders_ahead_and_parks_what_cannot_render(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    """A run with several reservations renders each next message while the server takes the
    current one; one that cannot be rendered is parked, and the rest still go, each once."""
    import random

    from warmysender.sequences import scheduler, sending

    mailbox = smtp_mailbox(tenant, smtp_server, "sales@acme.com", T0, dailyLimit=50)
    people = [
        prospect(tenant, f"p{i}@example.com", customFields={"hook": f"hook {i}"})
        if i != 2
        else prospect(tenant, "p2@example.com")
        for i in range(5)
    ]
    steps = [StepInput(step_index=1, subject="About {{custom.hook}}", body_html="<p>Hi</p>")]
    campaign = make_campaign(tenant, [mailbox], steps, T0)
    services.enroll(campaign=campaign, prospect_ids=[p.id for p in people], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    # Ticks without sending: the pacer lets the mailbox take one more reservation each time.
    rng = random.Random(3)
    for minute in range(0, 60, 6):
        scheduler.run_tick(T0 + timedelta(minutes=minute), rng=rng, queue=False)
    assert Action.objects.filter(state=ActionState.RESERVED).count() == 5

    sent = sending.send_for_mailbox(str(mailbox.pk), clock=lambda: T0 + timedelta(hours=1))

    assert sent == 4
    subjects = sorted(parsed(m.raw)["Subject"] for m in smtp_server.messages)
    assert subjects == [f"About hook {i}" for i in (0, 1, 3, 4)]
    parked = Enrollment.objects.get(prospect=people[2])
    assert parked.status == EnrollmentStatus.PENDING_TEMPLATE_FIX
    assert Action.objects.filter(state=ActionState.SENT).count() == 4
    assert not Action.objects.filter(state__in=[ActionState.RESERVED, ActionState.SENDING]).exists()
