"""Building the world the IMAP tests need: a mailbox whose SMTP side is the aiosmtpd test server
and whose IMAP side is a fresh Dovecot user, a campaign that really sent its first email, and
mail dropped into the Dovecot folders with IMAP APPEND."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from imapclient import IMAPClient

from warmysender.conftest import Tenant
from warmysender.email import imap_sync
from warmysender.mailboxes.models import Mailbox
from warmysender.mailboxes.transports import client_tls_context
from warmysender.prospects import services as prospect_services
from warmysender.prospects.models import Prospect
from warmysender.sequences import services
from warmysender.sequences.models import Action, ActionState, Campaign, Enrollment
from warmysender.sequences.services import StepInput
from warmysender.sequences.tests.flow import ACTOR, drive, make_campaign, smtp_mailbox
from warmysender.testing.imap import DovecotServer
from warmysender.testing.smtp import SmtpServer

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday
IMAP_PASSWORD = "imap-password"
TWO_STEPS = [
    StepInput(
        step_index=1, subject="Hello {{firstName | default: 'there'}}", body_html="<p>Hi</p>"
    ),
    StepInput(step_index=2, subject="", body_html="<p>Following up.</p>", delay_days=2),
]


@dataclass
class World:
    tenant: Tenant
    mailbox: Mailbox
    login: str
    imap: DovecotServer
    smtp: SmtpServer

    def client(self) -> IMAPClient:
        client = IMAPClient(
            self.imap.host, port=self.imap.ssl_port, ssl=True, ssl_context=client_tls_context()
        )
        client.login(self.login, IMAP_PASSWORD)
        return client

    def append(self, raw: bytes, *, folder: str = "INBOX", at: datetime | None = None) -> None:
        with self.client() as client:
            client.append(folder, raw, msg_time=at or T0 + timedelta(hours=1))

    def sync(self, at: datetime) -> imap_sync.SyncReport:
        return imap_sync.sync_mailbox(str(self.mailbox.pk), clock=lambda: at)


def make_world(tenant: Tenant, smtp: SmtpServer, imap: DovecotServer, **mailbox: object) -> World:
    login = f"sales-{uuid.uuid4().hex[:10]}@acme.com"
    imap.add_user(login, IMAP_PASSWORD)
    box = smtp_mailbox(
        tenant,
        smtp,
        login,
        T0,
        imapHost=imap.host,
        imapPort=imap.port,
        imapSecurity="starttls",
        imapPassword=IMAP_PASSWORD,
        **mailbox,
    )
    return World(tenant, box, login, imap, smtp)


def add_prospect(tenant: Tenant, email: str) -> Prospect:
    return prospect_services.create_prospect(
        workspace=tenant.workspace, data={"email": email, "firstName": "Ada"}, actor=ACTOR, now=T0
    ).prospect


def campaign_that_sent(world: World, emails: list[str], **settings: object) -> Campaign:
    """A two-step campaign whose first email went through the real sender to every prospect."""
    prospects = [add_prospect(world.tenant, e) for e in emails]
    campaign = make_campaign(world.tenant, [world.mailbox], TWO_STEPS, T0, **settings)
    services.enroll(campaign=campaign, prospect_ids=[p.id for p in prospects], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    for minute in range(0, 10 * len(emails), 10):
        drive(T0 + timedelta(minutes=minute))
    sent = Action.objects.filter(campaign=campaign, state=ActionState.SENT).count()
    assert sent == len(emails), f"only {sent} of {len(emails)} first emails went out"
    return campaign


def sent_action(campaign: Campaign, email: str) -> Action:
    return Action.objects.get(campaign=campaign, to_email=email, step__step_index=1)


def enrollment_of(campaign: Campaign, email: str) -> Enrollment:
    return Enrollment.objects.get(campaign=campaign, prospect__email=email)


def reply_to(
    action: Action,
    *,
    body: str = "Sounds interesting, can we talk on Thursday?",
    sender: str | None = None,
    threaded: bool = True,
    at: datetime | None = None,
) -> bytes:
    """What a mail client sends when the prospect presses Reply (the original quoted below)."""
    message = EmailMessage()
    message["From"] = sender or action.to_email
    message["To"] = action.from_email
    message["Subject"] = f"Re: {action.subject}"
    message["Date"] = format_datetime(at or T0 + timedelta(hours=1))
    message["Message-ID"] = make_msgid(domain="example.com")
    if threaded:
        message["In-Reply-To"] = action.message_id
        message["References"] = action.message_id
    message.set_content(f"{body}\n\nOn Tue, 1 Dec 2026, {action.from_email} wrote:\n> Hi\n")
    return message.as_bytes()


def received_raw(world: World, action: Action) -> bytes:
    """The bytes the SMTP server received for `action` (to build a bounce of it)."""
    for m in world.smtp.messages:
        parsed = message_from_bytes(m.raw if isinstance(m.raw, bytes) else m.raw.encode())
        if parsed["X-WarmySender-Action"] == str(action.pk):
            return m.raw if isinstance(m.raw, bytes) else m.raw.encode()
    raise AssertionError("the SMTP server never received that action")
