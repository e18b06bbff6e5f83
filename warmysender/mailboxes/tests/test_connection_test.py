"""The connection test against real servers on 127.0.0.1: aiosmtpd for SMTP, Dovecot for IMAP,
and the failure paths a wrong configuration produces (refused port, wrong TLS mode)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from warmysender.conftest import NOW, Tenant
from warmysender.mailboxes import connection_test
from warmysender.mailboxes.models import Mailbox
from warmysender.mailboxes.tests.conftest import PASSWORD, SENDER, make_mailbox, smtp_mailbox
from warmysender.testing.imap import DovecotServer
from warmysender.testing.smtp import SmtpServer, free_port

pytestmark = pytest.mark.django_db


def check(mailbox: Mailbox, **kwargs: Any) -> connection_test.ConnectionReport:
    return connection_test.test_connection(mailbox, now=NOW, timeout=2, **kwargs)


def test_a_good_starttls_login_passes(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    report = check(smtp_mailbox(tenant, auth_server))

    assert report.ok
    assert report.smtp == connection_test.CheckResult("smtp", True)
    assert report.imap is None  # no IMAP server configured
    assert report.checked_at == NOW
    assert auth_server.logins == [(SENDER, True)]
    assert auth_server.messages == []  # a test never sends mail


def test_a_good_implicit_tls_login_passes(
    tenant: Tenant, smtp_server_factory: Callable[..., SmtpServer], trusting: None
) -> None:
    server = smtp_server_factory(tls="ssl", users={SENDER: PASSWORD})
    assert check(smtp_mailbox(tenant, server)).ok


def test_an_unsaved_mailbox_can_be_tested_with_the_typed_password(
    auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = Mailbox(
        email=SENDER,
        kind="smtp",
        provider="custom",
        smtp_host=auth_server.host,
        smtp_port=auth_server.port,
        smtp_security="starttls",
        smtp_username=SENDER,
    )
    assert check(mailbox, smtp_password=PASSWORD, imap_password="").ok
    assert not check(mailbox, smtp_password="wrong", imap_password="").ok


def test_a_wrong_password_explains_app_passwords(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server, smtpPassword="wrong", provider="custom")
    Mailbox.objects.filter(pk=mailbox.pk).update(provider="gmail")
    mailbox.refresh_from_db()

    report = check(mailbox)

    assert not report.ok
    assert report.smtp.error.startswith("535 5.7.8")
    assert "myaccount.google.com/apppasswords" in report.smtp.hint
    assert report.summary().startswith("SMTP: 535 5.7.8")


@pytest.mark.parametrize(
    ("reply", "phrase"),
    [
        (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
            "Authenticated SMTP",
        ),
        ("534 5.7.9 Application-specific password required", "App Password"),
        (
            # Multi-line, as Google sends it.
            "534-5.7.14 Please log in via your web browser and\r\n"
            "534-5.7.14 then try again.\r\n534 5.7.14 Learn more at https://support.google.com",
            "sign in",
        ),
    ],
)
def test_provider_refusals_get_their_own_advice(
    tenant: Tenant, auth_server: SmtpServer, trusting: None, reply: str, phrase: str
) -> None:
    auth_server.fail_auth(SENDER, reply)
    report = check(smtp_mailbox(tenant, auth_server))
    assert not report.ok
    assert phrase in report.smtp.hint


def test_a_refused_port_says_the_host_or_port_is_wrong(tenant: Tenant) -> None:
    port = free_port()
    mailbox = make_mailbox(
        tenant, provider="custom", smtpHost="127.0.0.1", smtpPort=port, smtpSecurity="none"
    )

    report = check(mailbox)

    assert "refused" in report.smtp.error.lower()
    assert f"port {port}" in report.smtp.hint


def test_ssl_on_a_starttls_port_says_which_mode_the_port_uses(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server, smtpSecurity="ssl")

    report = check(mailbox)

    assert "WRONG_VERSION_NUMBER" in report.smtp.error
    assert "STARTTLS" in report.smtp.hint


def test_starttls_on_an_ssl_port_is_explained(
    tenant: Tenant, smtp_server_factory: Callable[..., SmtpServer], trusting: None
) -> None:
    server = smtp_server_factory(tls="ssl", users={SENDER: PASSWORD})
    mailbox = smtp_mailbox(tenant, server, smtpSecurity="starttls")

    report = check(mailbox)

    assert not report.ok
    assert "timed out" in report.smtp.error
    # The server waited for a TLS handshake; the client for a banner. (On port 465 the hint
    # names the mode: see test_hints.)
    assert "did not answer in time" in report.smtp.hint


def test_a_server_without_starttls_is_explained(tenant: Tenant, smtp_server: SmtpServer) -> None:
    mailbox = smtp_mailbox(tenant, smtp_server, smtpSecurity="starttls")

    report = check(mailbox)

    assert "STARTTLS extension not supported" in report.smtp.error
    assert "does not support STARTTLS" in report.smtp.hint


def test_an_untrusted_certificate_is_explained(tenant: Tenant, auth_server: SmtpServer) -> None:
    report = check(smtp_mailbox(tenant, auth_server))

    assert "certificate verify failed" in report.smtp.error
    assert "not trusted" in report.smtp.hint


def test_a_host_that_does_not_resolve_is_server_not_found(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS is the one peer the suite does not run; the resolver's own error is used as is.
    real = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "smpt.gmail.com":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    mailbox = make_mailbox(tenant, provider="custom", smtpHost="smpt.gmail.com", smtpPort=587)

    report = check(mailbox)

    assert "Name or service not known" in report.smtp.error
    assert "Server not found" in report.smtp.hint


# --- IMAP ---------------------------------------------------------------------------------------


def imap_mailbox(tenant: Tenant, smtp: SmtpServer, **imap: Any) -> Mailbox:
    return smtp_mailbox(tenant, smtp, smtpPassword=PASSWORD, imapPassword="imap-pass", **imap)


def test_imap_is_checked_too_and_a_refused_port_fails_the_report(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    port = free_port()
    mailbox = imap_mailbox(
        tenant, auth_server, imapHost="127.0.0.1", imapPort=port, imapSecurity="ssl"
    )

    report = check(mailbox)

    assert report.smtp.ok
    assert report.imap is not None and not report.imap.ok
    assert not report.ok
    assert "refused" in report.imap.error.lower()
    assert "993" in report.imap.hint
    assert report.summary().startswith("IMAP: ")


def test_imap_ssl_against_a_plain_port_is_a_wrong_tls_mode(
    tenant: Tenant, auth_server: SmtpServer, smtp_server: SmtpServer, trusting: None
) -> None:
    # Something plain-text that talks first, where an IMAPS server was expected.
    mailbox = imap_mailbox(
        tenant, auth_server, imapHost="127.0.0.1", imapPort=smtp_server.port, imapSecurity="ssl"
    )

    report = check(mailbox)

    assert report.imap is not None
    assert "WRONG_VERSION_NUMBER" in report.imap.error
    assert "STARTTLS" in report.imap.hint


def test_imap_plain_against_an_ssl_port_times_out_with_advice(
    tenant: Tenant,
    auth_server: SmtpServer,
    smtp_server_factory: Callable[..., SmtpServer],
    trusting: None,
) -> None:
    tls_only = smtp_server_factory(tls="ssl")
    mailbox = imap_mailbox(
        tenant, auth_server, imapHost="127.0.0.1", imapPort=tls_only.port, imapSecurity="none"
    )

    report = check(mailbox)

    assert report.imap is not None and not report.imap.ok
    assert "timed out" in report.imap.error


# --- IMAP against Dovecot ----------------------------------------------------------------------


@pytest.fixture
def dovecot_user(imap_server: DovecotServer, request: pytest.FixtureRequest) -> str:
    """A login of this test only (the server lives for the whole session)."""
    login = f"{request.node.name[:40].replace('[', '-').replace(']', '')}@example.com".lower()
    imap_server.add_user(login, "imap-pass")
    return login


def dovecot_mailbox(
    tenant: Tenant, smtp: SmtpServer, imap: DovecotServer, login: str, **fields: Any
) -> Mailbox:
    data = {
        "smtpPassword": PASSWORD,
        "imapHost": imap.host,
        "imapPort": imap.ssl_port,
        "imapSecurity": "ssl",
        "imapUsername": login,
        "imapPassword": "imap-pass",
    }
    return smtp_mailbox(tenant, smtp, **{**data, **fields})


def test_imap_over_implicit_tls_logs_in(
    tenant: Tenant,
    auth_server: SmtpServer,
    imap_server: DovecotServer,
    dovecot_user: str,
    trusting: None,
) -> None:
    report = check(dovecot_mailbox(tenant, auth_server, imap_server, dovecot_user))

    assert report.imap == connection_test.CheckResult("imap", True)
    assert report.ok


def test_imap_over_starttls_logs_in(
    tenant: Tenant,
    auth_server: SmtpServer,
    imap_server: DovecotServer,
    dovecot_user: str,
    trusting: None,
) -> None:
    mailbox = dovecot_mailbox(
        tenant,
        auth_server,
        imap_server,
        dovecot_user,
        imapPort=imap_server.port,
        imapSecurity="starttls",
    )
    assert check(mailbox).ok


def test_a_refused_imap_login_gets_the_providers_advice(
    tenant: Tenant,
    auth_server: SmtpServer,
    imap_server: DovecotServer,
    dovecot_user: str,
    trusting: None,
) -> None:
    mailbox = dovecot_mailbox(tenant, auth_server, imap_server, dovecot_user, imapPassword="wrong")
    Mailbox.objects.filter(pk=mailbox.pk).update(provider="yahoo")
    mailbox.refresh_from_db()

    report = check(mailbox)

    assert report.smtp.ok
    assert report.imap is not None and not report.imap.ok
    assert "AUTHENTICATIONFAILED" in report.imap.error
    assert report.imap.hint.startswith("The IMAP server refused the log-in.")
    assert "login.yahoo.com" in report.imap.hint


def test_an_untrusted_imap_certificate_is_explained(
    tenant: Tenant,
    auth_server: SmtpServer,
    imap_server: DovecotServer,
    dovecot_user: str,
    trusting: None,
    settings: Any,
) -> None:
    mailbox = dovecot_mailbox(tenant, auth_server, imap_server, dovecot_user)
    settings.SMTP_CA_FILE = ""  # SMTP fails the same way; IMAP is what this test reads

    report = check(mailbox)

    assert report.imap is not None
    assert "certificate verify failed" in report.imap.error
    assert "not trusted" in report.imap.hint


def test_sandbox_mailboxes_always_pass(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, email="try@example.com", provider="sandbox")
    assert check(mailbox).ok
