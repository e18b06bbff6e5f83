"""F10 (shared/research/perf-reliability.md §6): a real `imap_sync` process is SIGKILLed in the
middle of a mailbox, then run again. Dovecot holds the replies and is the oracle: every one is
stored and applied exactly once — no duplicate row, no second event, no enrollment stopped
twice, none missed."""

from __future__ import annotations

import signal
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from warmysender.audit.models import AuditEntry, DomainEvent
from warmysender.conftest import Tenant, make_tenant
from warmysender.inbox.models import InboundMessage, MailboxFolderState
from warmysender.inbox.tests.helpers import T0, TWO_STEPS, World, add_prospect, make_world, reply_to
from warmysender.sequences import services
from warmysender.sequences.models import Action, ActionState, Enrollment, EnrollmentStatus
from warmysender.sequences.tests.flow import ACTOR, make_campaign
from warmysender.testing.imap import DovecotServer
from warmysender.testing.processes import manage, process_env, wait_for
from warmysender.testing.smtp import SmtpServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REPLIES = 150


@pytest.fixture
def tenant(transactional_db: None) -> Tenant:
    return make_tenant("imapfault")


def sent_to_everyone(world: World, count: int) -> list[Action]:
    """A campaign whose first step went to `count` prospects (rows written as the sender
    writes them: sent actions with their Message-IDs, enrollments waiting for step 2)."""
    prospects = [
        add_prospect(world.tenant, f"p{i}-{uuid.uuid4().hex[:6]}@example.com") for i in range(count)
    ]
    campaign = make_campaign(world.tenant, [world.mailbox], TWO_STEPS, T0)
    services.enroll(campaign=campaign, prospect_ids=[p.id for p in prospects], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    step = campaign.steps.get(step_index=1)
    actions = []
    for enrollment in Enrollment.objects.filter(campaign=campaign).select_related("prospect"):
        message_id = f"<{uuid.uuid4().hex}@acme.com>"
        actions.append(
            Action(
                workspace=world.tenant.workspace,
                enrollment=enrollment,
                step=step,
                campaign=campaign,
                mailbox=world.mailbox,
                state=ActionState.SENT,
                from_email=world.mailbox.email,
                to_email=enrollment.prospect.email,
                message_id=message_id,
                subject="Hello Ada",
                created_at=T0,
                reserved_at=T0,
                sending_at=T0,
                finished_at=T0,
            )
        )
        enrollment.next_step_index = 2
        enrollment.next_action_at = T0 + timedelta(days=2)
        enrollment.last_message_id = message_id
        enrollment.last_sent_at = T0
        enrollment.mailbox = world.mailbox
        enrollment.save()
    return Action.objects.bulk_create(actions)


def test_a_sync_killed_mid_mailbox_resumes_without_duplicates_or_gaps(
    tenant: Tenant,
    smtp_server: SmtpServer,
    imap_server: DovecotServer,
    settings: object,
    tmp_path: Path,
) -> None:
    settings.SMTP_CA_FILE = str(imap_server.ca_file)  # type: ignore[attr-defined]
    world = make_world(tenant, smtp_server, imap_server)
    actions = sent_to_everyone(world, REPLIES)
    with world.client() as client:
        for action in actions:
            client.append("INBOX", reply_to(action), msg_time=T0 + timedelta(hours=1))
    env = process_env(tmp_path, SMTP_CA_FILE=str(imap_server.ca_file))
    args = (
        "imap_sync",
        "--mailbox",
        str(world.mailbox.pk),
        "--now",
        (T0 + timedelta(hours=2)).isoformat(),
    )

    first = manage(env, *args)
    wait_for(
        lambda: InboundMessage.objects.count() >= 10,
        what="the first replies stored",
        process=first,
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_at_kill = InboundMessage.objects.count()
    assert done_at_kill < REPLIES, "the sync finished before it could be killed mid-mailbox"

    second = manage(env, *args)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err

    # Every reply exactly once: rows, events, stops.
    assert InboundMessage.objects.count() == REPLIES
    assert InboundMessage.objects.values("dedup_key").distinct().count() == REPLIES
    assert DomainEvent.objects.filter(type="reply.received").count() == REPLIES
    assert set(Enrollment.objects.values_list("status", flat=True)) == {EnrollmentStatus.REPLIED}
    stops = AuditEntry.objects.filter(
        action="enrollment.status_changed", to_state=EnrollmentStatus.REPLIED
    )
    assert stops.count() == REPLIES
    assert stops.values("object_id").distinct().count() == REPLIES
    # The rerun started after the last message the killed one finished, not from the start.
    assert f"stored={REPLIES - done_at_kill} duplicates=0" in out
    state = MailboxFolderState.objects.get(mailbox=world.mailbox, folder="INBOX")
    assert state.last_uid == max(InboundMessage.objects.values_list("uid", flat=True))
