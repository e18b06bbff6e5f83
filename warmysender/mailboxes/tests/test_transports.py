"""The send outcomes against a real aiosmtpd server: what the engine may retry, and what not."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from warmysender.conftest import NOW, Tenant
from warmysender.lib import crypto
from warmysender.mailboxes.models import Mailbox, SandboxMessage
from warmysender.mailboxes.tests.conftest import (
    PASSWORD,
    SENDER,
    make_mailbox,
    message,
    smtp_mailbox,
)
from warmysender.mailboxes.transports import SendResult, open_transport, recipients_of
from warmysender.testing.smtp import SmtpServer, free_port

pytestmark = pytest.mark.django_db


def send_one(mailbox: Mailbox, msg: EmailMessage | None = None, **kw: float) -> SendResult:
    with open_transport(mailbox, **kw) as transport:
        return transport.send(msg or message(), now=NOW)


# --- sent -----------------------------------------------------------------------------------


def test_it_sends_over_plain_smtp_and_the_server_gets_the_exact_message(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    mailbox = smtp_mailbox(tenant, smtp_server)
    msg = message(to="Lead Person <lead@example.org>", Bcc="hidden@example.org")

    result = send_one(mailbox, msg)

    assert result.outcome == "sent"
    assert result.code == 250
    [received] = smtp_server.messages
    assert received.mail_from == SENDER  # the envelope sender is the mailbox
    assert received.rcpt_tos == ["lead@example.org"]  # the To address, not Bcc
    assert received.message_id == msg["Message-ID"]
    assert "Bcc" not in received.headers
    # Dot-stuffing round-trips: the line that was a lone "." arrives as one.
    assert "\r\n.\r\nA line that starts" in received.raw
    assert received.disposition == "accepted"


def test_it_logs_in_over_starttls(tenant: Tenant, auth_server: SmtpServer, trusting: None) -> None:
    result = send_one(smtp_mailbox(tenant, auth_server))

    assert result.outcome == "sent"
    [received] = auth_server.messages
    assert received.tls is True
    assert received.auth_user == SENDER


def test_it_logs_in_over_implicit_tls(
    tenant: Tenant, smtp_server_factory: Callable[..., SmtpServer], trusting: None
) -> None:
    server = smtp_server_factory(tls="ssl", users={SENDER: PASSWORD})

    result = send_one(smtp_mailbox(tenant, server))

    assert result.outcome == "sent"
    assert server.messages[0].tls is True
    assert server.messages[0].auth_user == SENDER


def test_one_connection_carries_several_messages(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server)
    with open_transport(mailbox) as transport:
        results = [transport.send(message(to=f"p{i}@example.org"), now=NOW) for i in range(3)]

    assert [r.outcome for r in results] == ["sent"] * 3
    assert [m.rcpt_tos for m in auth_server.messages] == [[f"p{i}@example.org"] for i in range(3)]
    # One log-in for the three messages.
    assert auth_server.logins == [(SENDER, True)]


def test_a_withdrawn_message_is_asked_about_after_the_envelope_and_never_handed_over(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    asked: list[str] = []

    def no() -> bool:
        asked.append("asked")
        return False

    with open_transport(smtp_mailbox(tenant, smtp_server)) as transport:
        withdrawn = transport.send(message(to="stopped@example.org"), now=NOW, go_ahead=no)
        # The connection is clean for the next message (the envelope was reset).
        after = transport.send(message(to="next@example.org"), now=NOW, go_ahead=lambda: True)

    assert (withdrawn.outcome, after.outcome) == ("withdrawn", "sent")
    assert asked == ["asked"]
    assert [m.rcpt_tos for m in smtp_server.messages] == [["next@example.org"]]


def test_the_go_ahead_is_not_asked_when_the_envelope_is_refused(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    smtp_server.behave("gone@example.org", "550 5.1.1 <gone@example.org>: User unknown")
    asked: list[str] = []
    with open_transport(smtp_mailbox(tenant, smtp_server)) as transport:
        result = transport.send(
            message(to="gone@example.org"), now=NOW, go_ahead=lambda: not asked.append("x")
        )

    assert result.outcome == "rejected"
    assert asked == []
    assert smtp_server.messages == []


def test_meanwhile_runs_once_the_whole_message_is_written_and_before_its_reply(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    seen: list[int] = []
    smtp_server.behave("bounce@example.org", "data:554 5.7.1 refused after the dot")
    with open_transport(smtp_mailbox(tenant, smtp_server)) as transport:
        sent = transport.send(
            message(to="a@example.org"), now=NOW, meanwhile=lambda: seen.append(1)
        )
        refused = transport.send(
            message(to="bounce@example.org"), now=NOW, meanwhile=lambda: seen.append(2)
        )
        withdrawn = transport.send(
            message(to="b@example.org"),
            now=NOW,
            go_ahead=lambda: False,
            meanwhile=lambda: seen.append(3),
        )

    assert (sent.outcome, refused.outcome, withdrawn.outcome) == ("sent", "rejected", "withdrawn")
    # The refusal after the dot was read after meanwhile ran; a withdrawn message never got
    # that far.
    assert seen == [1, 2]


def test_the_sandbox_asks_for_the_go_ahead_too(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, kind="sandbox")
    with open_transport(mailbox) as transport:
        result = transport.send(message(), now=NOW, go_ahead=lambda: False)

    assert result.outcome == "withdrawn"
    assert not SandboxMessage.objects.filter(mailbox=mailbox).exists()


def test_a_refused_recipient_does_not_spoil_the_next_message_on_the_connection(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    smtp_server.behave("gone@example.org", "550 5.1.1 <gone@example.org>: User unknown")
    with open_transport(smtp_mailbox(tenant, smtp_server)) as transport:
        first = transport.send(message(to="gone@example.org"), now=NOW)
        second = transport.send(message(to="here@example.org"), now=NOW)

    assert (first.outcome, second.outcome) == ("rejected", "sent")
    assert [m.rcpt_tos for m in smtp_server.messages] == [["here@example.org"]]


def test_it_reconnects_when_the_server_closed_an_idle_connection(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    with open_transport(smtp_mailbox(tenant, smtp_server)) as transport:
        assert transport.send(message(to="a@example.org"), now=NOW).outcome == "sent"
        # The server goes away between two messages (idle timeout, restart) and comes back.
        port = smtp_server.port
        smtp_server.stop()
        smtp_server.port = port
        smtp_server.start()
        result = transport.send(message(to="b@example.org"), now=NOW)

    assert result.outcome == "sent"
    assert [m.rcpt_tos for m in smtp_server.messages] == [["a@example.org"], ["b@example.org"]]


# --- rejected and deferred: nothing was handed over -------------------------------------------


def test_a_permanent_refusal_at_rcpt_is_rejected(tenant: Tenant, smtp_server: SmtpServer) -> None:
    smtp_server.behave("gone@example.org", "550 5.1.1 <gone@example.org>: User unknown")

    result = send_one(smtp_mailbox(tenant, smtp_server), message(to="gone@example.org"))

    assert result == SendResult(
        "rejected", 550, "RCPT gone@example.org: 550 5.1.1 <gone@example.org>: User unknown"
    )
    assert smtp_server.messages == []


def test_a_temporary_refusal_at_rcpt_is_deferred(tenant: Tenant, smtp_server: SmtpServer) -> None:
    smtp_server.behave("grey@example.org", "451 4.7.1 Greylisted, try again later")

    result = send_one(smtp_mailbox(tenant, smtp_server), message(to="grey@example.org"))

    assert result.outcome == "deferred"
    assert result.code == 451
    assert "Greylisted" in result.message
    assert smtp_server.messages == []


def test_a_refusal_of_the_sender_at_mail_is_rejected(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    smtp_server.behave(SENDER, "553 5.7.1 Sender address rejected: not owned by user")

    result = send_one(smtp_mailbox(tenant, smtp_server))

    assert (result.outcome, result.code) == ("rejected", 553)
    assert result.message.startswith("MAIL:")


def test_a_permanent_refusal_after_the_dot_is_rejected(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    smtp_server.behave("lead@example.org", "data:554 5.7.1 Message rejected as spam")

    result = send_one(smtp_mailbox(tenant, smtp_server))

    assert (result.outcome, result.code) == ("rejected", 554)
    assert smtp_server.messages == []


def test_a_temporary_refusal_after_the_dot_is_deferred(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    smtp_server.behave("lead@example.org", "data:452 4.3.1 Insufficient system storage")

    result = send_one(smtp_mailbox(tenant, smtp_server))

    assert (result.outcome, result.code) == ("deferred", 452)


def test_421_after_the_dot_is_deferred_and_the_next_send_reconnects(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    smtp_server.behave("busy@example.org", "421_after_data")
    with open_transport(smtp_mailbox(tenant, smtp_server)) as transport:
        first = transport.send(message(to="busy@example.org"), now=NOW)
        second = transport.send(message(to="lead@example.org"), now=NOW)

    assert (first.outcome, first.code) == ("deferred", 421)
    assert second.outcome == "sent"


def test_a_refused_port_is_deferred(tenant: Tenant) -> None:
    mailbox = make_mailbox(
        tenant, provider="custom", smtpHost="127.0.0.1", smtpPort=free_port(), smtpSecurity="none"
    )

    result = send_one(mailbox)

    assert result.outcome == "deferred"
    assert "refused" in result.message.lower()


def test_a_server_that_never_answers_is_deferred(tenant: Tenant) -> None:
    # A listener that accepts and stays silent: no banner, so nothing was ever sent.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        mailbox = make_mailbox(
            tenant,
            provider="custom",
            smtpHost="127.0.0.1",
            smtpPort=listener.getsockname()[1],
            smtpSecurity="none",
        )
        result = send_one(mailbox, timeout=0.5)

    assert result.outcome == "deferred"
    assert "timed out" in result.message


def test_an_untrusted_certificate_is_deferred(tenant: Tenant, auth_server: SmtpServer) -> None:
    # No SMTP_CA_FILE: the test CA is unknown to the client.
    result = send_one(smtp_mailbox(tenant, auth_server))

    assert result.outcome == "deferred"
    assert "certificate verify failed" in result.message
    assert auth_server.messages == []


def test_ssl_against_a_starttls_port_is_deferred(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    result = send_one(smtp_mailbox(tenant, auth_server, smtpSecurity="ssl"))

    assert result.outcome == "deferred"
    assert "WRONG_VERSION_NUMBER" in result.message


def test_a_connection_failure_is_remembered_for_the_rest_of_the_batch(tenant: Tenant) -> None:
    mailbox = make_mailbox(
        tenant, provider="custom", smtpHost="127.0.0.1", smtpPort=free_port(), smtpSecurity="none"
    )
    with open_transport(mailbox) as transport:
        first = transport.send(message(to="a@example.org"), now=NOW)
        second = transport.send(message(to="b@example.org"), now=NOW)

    assert first.outcome == second.outcome == "deferred"
    assert second == first


# --- auth_failed ------------------------------------------------------------------------------


def test_a_wrong_password_is_auth_failed_and_nothing_is_sent(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server, smtpPassword="not-the-password")
    with open_transport(mailbox) as transport:
        first = transport.send(message(to="a@example.org"), now=NOW)
        second = transport.send(message(to="b@example.org"), now=NOW)

    assert (first.outcome, first.code) == ("auth_failed", 535)
    assert "5.7.8" in first.message
    # No second attempt at logging in within the batch.
    assert second == first
    assert auth_server.logins == [(SENDER, False)]
    assert auth_server.messages == []


def test_a_provider_specific_refusal_keeps_its_code(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    auth_server.fail_auth(SENDER, "534 5.7.9 Application-specific password required")

    result = send_one(smtp_mailbox(tenant, auth_server))

    assert (result.outcome, result.code) == ("auth_failed", 534)
    assert "5.7.9" in result.message


def test_a_password_no_key_can_read_is_auth_failed(
    tenant: Tenant, auth_server: SmtpServer, trusting: None, settings: object
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server)
    settings.CREDENTIALS_KEYS = [crypto.Fernet.generate_key().decode()]  # type: ignore[attr-defined]

    result = send_one(mailbox)

    assert result.outcome == "auth_failed"
    assert "cannot be decrypted" in result.message
    assert auth_server.logins == []


# --- unknown: the message may have been accepted ----------------------------------------------


def test_a_connection_dropped_after_the_dot_is_unknown(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    smtp_server.behave("lead@example.org", "drop_after_data")

    result = send_one(smtp_mailbox(tenant, smtp_server))

    assert result.outcome == "unknown"
    assert result.code is None
    assert "may have been accepted" in result.message
    # The server did get the whole message: exactly why this must never be retried blindly.
    assert [m.disposition for m in smtp_server.messages] == ["dropped"]


def test_no_reply_after_the_dot_within_the_timeout_is_unknown(
    tenant: Tenant, smtp_server_factory: Callable[..., SmtpServer]
) -> None:
    server = smtp_server_factory(hang_seconds=5)
    server.behave("lead@example.org", "hang_after_data")

    result = send_one(smtp_mailbox(tenant, server), timeout=0.5)

    assert result.outcome == "unknown"
    assert [m.disposition for m in server.messages] == ["hung"]


def test_a_connection_lost_before_the_dot_is_deferred(tenant: Tenant) -> None:
    """A server that closes the connection while the message is being written never saw the
    final dot: the message is certainly not accepted."""
    with ClosingDuringData() as port:
        mailbox = make_mailbox(
            tenant, provider="custom", smtpHost="127.0.0.1", smtpPort=port, smtpSecurity="none"
        )
        big = EmailMessage()
        big["From"], big["To"], big["Subject"] = SENDER, "lead@example.org", "Large"
        # Far more than the socket buffers hold, so the write is still going when the peer resets.
        big.set_content(("y" * 70 + "\n") * 300_000, cte="7bit")
        result = send_one(mailbox, big, timeout=5)

    assert result.outcome == "deferred"
    assert "before the end of the message" in result.message


class ClosingDuringData:
    """A minimal hand-written SMTP peer that answers up to DATA, reads a little of the message
    and closes the socket (RST), so the client's write of the rest fails."""

    def __enter__(self) -> int:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        port: int = self.listener.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.thread.join(timeout=5)

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            file = conn.makefile("rb")
            conn.sendall(b"220 test ESMTP\r\n")
            for line in iter(file.readline, b""):
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 test\r\n")
                elif verb in (b"MAIL", b"RCPT"):
                    conn.sendall(b"250 OK\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    file.read(1024)
                    # SO_LINGER 0: close with a reset, so the client's next writes fail at once.
                    conn.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    return


# --- the sandbox ------------------------------------------------------------------------------


def test_the_sandbox_captures_the_message_instead_of_sending_it(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, email="try@example.com", provider="sandbox")
    msg = message(to="Lead <lead@example.org>, second@example.org")

    result = send_one(mailbox, msg)

    assert result.outcome == "sent"
    [captured] = SandboxMessage.objects.filter(mailbox=mailbox)
    assert captured.workspace_id == tenant.workspace.pk
    assert captured.to_email == "lead@example.org, second@example.org"
    assert captured.subject == "Quick question"
    assert captured.message_id == msg["Message-ID"]
    assert captured.headers["To"] == "Lead <lead@example.org>, second@example.org"
    assert captured.text.startswith("Hello there,")
    assert "<b>there</b>" in captured.html
    assert "Subject: Quick question" in captured.raw
    assert captured.created_at == NOW


def test_a_message_without_a_recipient_is_a_programming_error(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    msg = message()
    del msg["To"]
    with open_transport(smtp_mailbox(tenant, smtp_server)) as transport:
        with pytest.raises(ValueError, match="no To address"):
            transport.send(msg, now=NOW)


def test_recipients_come_from_every_to_header() -> None:
    msg = message(to="A <a@example.org>, b@example.org")
    assert recipients_of(msg) == ["a@example.org", "b@example.org"]
