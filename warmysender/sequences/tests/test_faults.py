"""Fault tests with real processes (shared/research/perf-reliability.md §6): senders and
schedulers are `warmysender manage` child processes killed with SIGKILL at the worst moments;
the SMTP server runs in the test process and is the oracle. After each scenario the checker joins
what the server received against the database: no duplicate, nothing lost, caps held.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db.models import Q

from warmysender.conftest import Tenant, make_tenant
from warmysender.mailboxes.models import Mailbox
from warmysender.prospects import services as prospect_services
from warmysender.prospects.models import Prospect
from warmysender.sequences import scheduler, services, watchdog
from warmysender.sequences.models import (
    Action,
    ActionState,
    Campaign,
    Enrollment,
    EnrollmentStatus,
    MailboxThrottle,
    SendCounter,
)
from warmysender.sequences.services import StepInput
from warmysender.sequences.tests.flow import ACTOR, drive, make_campaign, smtp_mailbox
from warmysender.testing.processes import manage, process_env, url_of_test_database, wait_for
from warmysender.testing.smtp import SmtpServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ONE_STEP = [
    StepInput(step_index=1, subject="Hello {{firstName | default: 'there'}}", body_html="<p>Hi</p>")
]


@pytest.fixture
def tenant(transactional_db: None) -> Tenant:
    return make_tenant("fault")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return process_env(tmp_path)


class SilentServer:
    """Accepts TCP connections and never says a word: a sender connecting to it hangs before
    the SMTP greeting, i.e. before anything could be handed over."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def add_prospects(tenant: Tenant, n: int) -> list[Prospect]:
    return [
        prospect_services.create_prospect(
            workspace=tenant.workspace, data={"email": f"lead{i}@example.com"}, actor=ACTOR, now=T0
        ).prospect
        for i in range(n)
    ]


def launch(
    tenant: Tenant, mailboxes: list[Mailbox], people: list[Prospect], **settings: Any
) -> Campaign:
    campaign = make_campaign(tenant, mailboxes, ONE_STEP, T0, **settings)
    services.enroll(campaign=campaign, prospect_ids=[p.id for p in people], actor=ACTOR, now=T0)
    return services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)


def kill(process: Any) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def run_to_end(env: dict[str, str], *args: str) -> str:
    process = manage(env, *args)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def receipts(server: SmtpServer) -> Counter[str]:
    """Messages the server saw (accepted, dropped or hung), per X-WarmySender-Action."""
    return Counter(m.headers.get("X-WarmySender-Action", "") for m in server.messages)


def check_invariants(
    server: SmtpServer, campaign: Campaign, *, mailbox_cap: int | None = None
) -> None:
    """I1: at most one receipt per action, and only for actions the database knows were
    attempted. I2: every enrollment is sent, waiting with a reason, or settled with one. I3: the
    day's counters equal the attempts that reached a server, within the cap."""
    seen = receipts(server)
    assert all(n == 1 for n in seen.values()), f"duplicate sends: {seen}"
    attempted = {
        str(a.pk): a.state for a in Action.objects.filter(campaign=campaign) if str(a.pk) in seen
    }
    assert set(seen) == set(attempted)
    assert all(
        state in (ActionState.SENT, ActionState.UNKNOWN, ActionState.SENDING)
        for state in attempted.values()
    )
    for e in Enrollment.objects.filter(campaign=campaign):
        if e.status == EnrollmentStatus.PENDING:
            assert e.wait_reason or e.next_action_at is not None
        elif e.status in (EnrollmentStatus.FAILED, EnrollmentStatus.NEEDS_REVIEW):
            assert e.failure_reason or e.wait_reason
    for throttle in MailboxThrottle.objects.all():
        # Capacity stays taken by what reached a server (sent, unknown, refused with a code)
        # and by live reservations; everything handed back gave its slot back.
        holding = Action.objects.filter(mailbox_id=throttle.mailbox_id).filter(
            Q(
                state__in=[
                    ActionState.SENT,
                    ActionState.UNKNOWN,
                    ActionState.RESERVED,
                    ActionState.SENDING,
                ]
            )
            | Q(state=ActionState.FAILED, smtp_code__isnull=False)
        )
        key = ["mailbox", str(throttle.mailbox_id), str(throttle.count_day)]
        assert throttle.day_count == sum(1 for a in holding if key in a.counters)
        if mailbox_cap is not None:
            assert throttle.day_count <= mailbox_cap


def in_state(action: Action, state: str) -> Callable[[], bool]:
    return lambda: Action.objects.filter(pk=action.pk, state=state).exists()


def test_f1_a_sender_killed_before_connecting_is_sent_exactly_once_after_the_watchdog(
    tenant: Tenant, smtp_server: SmtpServer, silent_server: SilentServer, env: dict[str, str]
) -> None:
    mailbox = smtp_mailbox(tenant, smtp_server, "sales@acme.com", T0)
    Mailbox.objects.filter(pk=mailbox.pk).update(smtp_port=silent_server.port)
    campaign = launch(tenant, [mailbox], add_prospects(tenant, 1))
    assert scheduler.run_tick(T0, queue=False).reserved == 1
    action = Action.objects.get()

    sender = manage(env, "send_mailbox", str(mailbox.pk), "--now", T0.isoformat())
    wait_for(lambda: len(silent_server.accepted) == 1, what="the sender to connect", process=sender)
    kill(sender)
    assert Action.objects.get().state == ActionState.RESERVED  # nothing could have been handed over
    assert not smtp_server.messages

    Mailbox.objects.filter(pk=mailbox.pk).update(smtp_port=smtp_server.port)
    later = T0 + timedelta(minutes=11)
    assert watchdog.recover_stuck_actions(later).released == 1
    assert run_to_end(env, "tick", "--now", later.isoformat(), "--no-queue").startswith(
        "claimed=1 reserved=1"
    )
    run_to_end(env, "send_mailbox", str(mailbox.pk), "--now", later.isoformat())
    for minutes in range(12, 120, 7):
        drive(T0 + timedelta(minutes=minutes))
        watchdog.recover_stuck_actions(T0 + timedelta(minutes=minutes))
    assert receipts(smtp_server) == Counter({str(action.pk): 1})
    assert Action.objects.get().state == ActionState.SENT
    assert Enrollment.objects.get().status == EnrollmentStatus.COMPLETED
    check_invariants(smtp_server, campaign)


def test_f2_a_sender_killed_after_the_server_took_the_message_ends_unknown_and_never_resends(
    tenant: Tenant, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    mailbox = smtp_mailbox(tenant, smtp_server, "sales@acme.com", T0)
    people = add_prospects(tenant, 1)
    smtp_server.behave(people[0].email, "hang_after_data")
    campaign = launch(tenant, [mailbox], people)
    scheduler.run_tick(T0, queue=False)
    action = Action.objects.get()

    sender = manage(env, "send_mailbox", str(mailbox.pk), "--now", T0.isoformat())
    wait_for(
        lambda: len(smtp_server.messages) == 1,
        what="the server to receive the message",
        process=sender,
    )
    kill(sender)
    assert Action.objects.get().state == ActionState.SENDING

    smtp_server.behave(people[0].email, None)
    later = T0 + timedelta(minutes=11)
    assert watchdog.recover_stuck_actions(later).unknown == 1
    enrollment = Enrollment.objects.get()
    assert enrollment.status == EnrollmentStatus.NEEDS_REVIEW
    assert "mark it as sent or send it again" in enrollment.wait_reason
    for minutes in range(12, 60 * 24, 37):
        drive(T0 + timedelta(minutes=minutes))
        watchdog.recover_stuck_actions(T0 + timedelta(minutes=minutes))
    assert receipts(smtp_server) == Counter({str(action.pk): 1})  # never re-sent by itself
    assert Action.objects.get().state == ActionState.UNKNOWN
    check_invariants(smtp_server, campaign)

    # A person decides to send it again: that, and only that, sends a second copy.
    decided = T0 + timedelta(days=1, hours=1)
    services.resolve_unknown(action=action, decision="send_again", actor=ACTOR, now=decided)
    drive(decided)
    assert len(smtp_server.messages) == 2


def test_f3_a_scheduler_killed_mid_tick_leaves_no_partial_reservation(
    tenant: Tenant, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    mailboxes = [smtp_mailbox(tenant, smtp_server, f"s{i}@acme.com", T0) for i in range(3)]
    campaign = launch(tenant, mailboxes, add_prospects(tenant, 6))
    # Hold a lock the tick needs after it has inserted its reservations: the campaign's count
    # of the day. The tick then waits inside its transaction, where it is killed.
    SendCounter.objects.create(
        workspace=tenant.workspace, scope="campaign", key=str(campaign.pk), day=T0.date(), count=0
    )
    with psycopg.connect(url_of_test_database()) as blocker:
        blocker.execute(
            "SELECT 1 FROM sequences_sendcounter WHERE scope = 'campaign' AND key = %s FOR UPDATE",
            [str(campaign.pk)],
        )
        ticker = manage(env, "tick", "--now", T0.isoformat(), "--no-queue")

        def tick_is_waiting() -> bool:
            # Asked on a connection of its own: inside the blocker's transaction the activity
            # view is a snapshot that never changes.
            with psycopg.connect(url_of_test_database(), autocommit=True) as probe:
                row = probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                ).fetchone()
            return bool(row and row[0])

        wait_for(tick_is_waiting, what="the tick to block inside its transaction", process=ticker)
        kill(ticker)
        blocker.rollback()
    # The killed tick's backend notices its client is gone and rolls everything back.
    wait_for(tick_backend_gone, what="the killed tick's session to end")
    assert not Action.objects.exists()
    assert set(SendCounter.objects.values_list("count", flat=True)) == {0}
    assert not MailboxThrottle.objects.exists()
    assert (
        Enrollment.objects.filter(status=EnrollmentStatus.PENDING, next_action_at=T0).count() == 6
    )

    for minutes in range(0, 60, 6):
        drive(T0 + timedelta(minutes=minutes))
    assert sorted(Counter(m.rcpt_tos[0] for m in smtp_server.messages).values()) == [1] * 6
    check_invariants(smtp_server, campaign)


def tick_backend_gone() -> bool:
    with psycopg.connect(url_of_test_database()) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state <> 'idle' AND pid <> pg_backend_pid() AND application_name = 'warmysender' "
            "AND query ILIKE '%%sequences_%%'"
        ).fetchone()
        return bool(row is not None and row[0] == 0)


def test_f6_server_faults_follow_the_outcome_rules(tenant: Tenant, smtp_server: SmtpServer) -> None:
    mailbox = smtp_mailbox(tenant, smtp_server, "sales@acme.com", T0)
    people = {p.email: p for p in add_prospects(tenant, 5)}
    behaviours = {
        "lead0@example.com": "drop_after_data",  # after the dot, before a reply: unknown
        "lead1@example.com": "421_after_data",  # refused after the dot: deferred, retried
        "lead2@example.com": "451 4.7.1 Greylisted",  # refused at RCPT: deferred, retried
        "lead3@example.com": "550 5.1.1 No such user",  # permanent: failed
    }
    for address, behaviour in behaviours.items():
        smtp_server.behave(address, behaviour)
    campaign = launch(tenant, [mailbox], list(people.values()))
    for minutes in range(0, 90, 6):
        drive(T0 + timedelta(minutes=minutes))
    for address in ("lead1@example.com", "lead2@example.com"):
        smtp_server.behave(address, None)
    for minutes in range(90, 60 * 6, 6):
        drive(T0 + timedelta(minutes=minutes))
        watchdog.recover_stuck_actions(T0 + timedelta(minutes=minutes))

    state = {a.to_email: a.state for a in Action.objects.all()}
    assert state == {
        "lead0@example.com": ActionState.UNKNOWN,
        "lead1@example.com": ActionState.SENT,
        "lead2@example.com": ActionState.SENT,
        "lead3@example.com": ActionState.FAILED,
        "lead4@example.com": ActionState.SENT,
    }
    per_rcpt = Counter(m.rcpt_tos[0] for m in smtp_server.messages if m.disposition == "accepted")
    assert per_rcpt == Counter(
        {"lead1@example.com": 1, "lead2@example.com": 1, "lead4@example.com": 1}
    )
    assert (
        Enrollment.objects.get(prospect=people["lead0@example.com"]).status
        == EnrollmentStatus.NEEDS_REVIEW
    )
    assert (
        Enrollment.objects.get(prospect=people["lead3@example.com"]).status
        == EnrollmentStatus.FAILED
    )
    check_invariants(smtp_server, campaign)


def test_f8_the_same_send_job_delivered_twice_sends_once(
    tenant: Tenant, smtp_server: SmtpServer, env: dict[str, str]
) -> None:
    mailboxes = [smtp_mailbox(tenant, smtp_server, f"s{i}@acme.com", T0) for i in range(3)]
    campaign = launch(tenant, mailboxes, add_prospects(tenant, 3))
    # Two schedulers at once: one ticks, the other skips its turn.
    ticks = [manage(env, "tick", "--now", T0.isoformat(), "--no-queue") for _ in range(2)]
    outs = [t.communicate(timeout=120)[0] for t in ticks]
    assert sorted(o.split()[1] for o in outs) == ["reserved=0", "reserved=3"]
    # Every send job delivered twice, all at once.
    senders = [
        manage(env, "send_mailbox", str(m.pk), "--now", T0.isoformat())
        for m in mailboxes
        for _ in range(2)
    ]
    for s in senders:
        s.communicate(timeout=120)
    # And the procrastinate job itself twice, without a queueing lock.
    from warmysender.sequences.tasks import send_mailbox
    from warmysender.testing.jobs import run_queued_jobs

    for m in mailboxes:
        send_mailbox.defer(mailbox_id=str(m.pk))
        send_mailbox.defer(mailbox_id=str(m.pk))
    run_queued_jobs(["sends"])
    assert sorted(Counter(m.rcpt_tos[0] for m in smtp_server.messages).values()) == [1, 1, 1]
    assert set(Action.objects.values_list("state", flat=True)) == {ActionState.SENT}
    check_invariants(smtp_server, campaign)
