"""Fixtures for the mailbox tests: mailboxes pointed at the suite's own aiosmtpd servers."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant
from warmysender.mailboxes import services
from warmysender.mailboxes.models import Mailbox
from warmysender.testing.smtp import SmtpServer

SYSTEM = Actor.system("test")
SENDER = "sender@example.com"
PASSWORD = "app-password-1234"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The tenants sign their people up with passwords; argon2's slowness buys nothing here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_mailbox(tenant: Tenant, **data: Any) -> Mailbox:
    data.setdefault("email", SENDER)
    return services.create_mailbox(tenant.workspace, data, actor=SYSTEM, now=NOW)


def smtp_mailbox(tenant: Tenant, server: SmtpServer, **data: Any) -> Mailbox:
    """A custom mailbox for `server`: its port and TLS mode, no IMAP, and (when the server has a
    user table) the password of SENDER."""
    security = {"none": "none", "starttls": "starttls", "ssl": "ssl"}[server.tls]
    fields: dict[str, Any] = {
        "provider": "custom",
        "smtpHost": server.host,
        "smtpPort": server.port,
        "smtpSecurity": security,
    }
    if SENDER in server.users:
        fields["smtpPassword"] = server.users[SENDER]
    fields.update(data)
    return make_mailbox(tenant, **fields)


@pytest.fixture
def trusting(settings: Any, smtp_tls_files: Any) -> None:
    """Clients trust the CA of the test servers' certificate."""
    settings.SMTP_CA_FILE = str(smtp_tls_files.ca_file)


@pytest.fixture
def auth_server(smtp_server_factory: Callable[..., SmtpServer]) -> SmtpServer:
    """STARTTLS with AUTH required for SENDER."""
    return smtp_server_factory(tls="starttls", users={SENDER: PASSWORD})


def message(
    to: str = "lead@example.org", subject: str = "Quick question", **headers: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Sam Sender <{SENDER}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash((to, subject)))}@example.com>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Hello there,\n.\nA line that starts with a dot, above.\n")
    msg.add_alternative("<p>Hello <b>there</b></p><script>alert(1)</script>", subtype="html")
    return msg
