"""The `imap_sync` command's input checks, and the periodic job that queues one sync per
mailbox through the real procrastinate queue."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from warmysender.conftest import Tenant
from warmysender.inbox.tests.helpers import T0
from warmysender.sequences.tests.flow import sandbox_mailbox, smtp_mailbox
from warmysender.testing.smtp import SmtpServer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mailbox", "not-a-uuid"], "--mailbox: 'not-a-uuid' is not a mailbox id"),
        (["--mailbox", "6d0b6f51-9a53-4bd1-9a09-2a4c8b0d1e11"], "--mailbox: no mailbox"),
        (["--now", "yesterday"], "--now: 'yesterday' is not an ISO 8601 instant"),
        (["--now", "2026-12-01T09:00:00"], "--now needs a UTC offset"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("imap_sync", *args, stdout=StringIO())


def test_a_mailbox_without_imap_is_skipped_with_the_reason(tenant: Tenant) -> None:
    box = sandbox_mailbox(tenant, "sandbox@acme.com", T0)
    out = StringIO()
    call_command("imap_sync", "--mailbox", str(box.pk), stdout=out)
    assert out.getvalue().strip() == f"mailbox={box.pk} skipped: no IMAP server configured"


@pytest.mark.django_db(transaction=True)
def test_the_periodic_job_queues_one_sync_per_mailbox_with_imap(
    transactional_db: None, smtp_server: SmtpServer
) -> None:
    from warmysender.conftest import make_tenant
    from warmysender.inbox import tasks
    from warmysender.testing.jobs import run_queued_jobs

    tenant = make_tenant("jobs")
    with_imap = smtp_mailbox(tenant, smtp_server, "a@acme.com", T0)  # IMAP on a closed port
    sandbox_mailbox(tenant, "sandbox@acme.com", T0)
    tasks.sync_all.defer(timestamp=0)
    ran = run_queued_jobs()
    assert ran == [(tasks.SYNC_ALL_ID, "succeeded"), (tasks.SYNC_TASK, "succeeded")]
    from warmysender.inbox.models import MailboxFolderState

    # The mailbox's IMAP server refused the connection: recorded, not raised.
    state = MailboxFolderState.objects.get(mailbox=with_imap)
    assert state.last_error.startswith("could not log in")
