"""Sending one message at a time through a mailbox: the interface the sending engine calls.

    with open_transport(mailbox) as transport:
        for message in batch:
            result = transport.send(message, now=now)

`send` never raises for anything the server or the network does; it answers a `SendResult`
whose outcome tells the engine what it may do next. At most once is the product's first
invariant, so the outcomes separate what certainly did not leave from what may have:

- ``sent``: the server answered 2xx after the final dot.
- ``rejected``: the server refused for good (5xx at MAIL, RCPT, DATA, or after the dot).
- ``deferred``: the message was certainly not handed over — connecting or TLS failed, a 4xx at
  MAIL/RCPT/DATA or after the dot, the connection dropped before the final dot was written.
  Safe to try again later.
- ``auth_failed``: the server refused the log-in (535, 534 …); nothing was sent.
- ``unknown``: the final dot was written but no reply was read (the connection dropped or timed
  out). The server may have accepted the message; retrying could send it twice, so the engine
  never retries it automatically.

The SMTP transport drives MAIL, RCPT, DATA and the payload itself (rather than
`smtplib.sendmail`) precisely so it knows, when an exception arrives, whether the dot was out.
"""

from __future__ import annotations

import copy
import email.message
import io
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.generator import BytesGenerator
from email.utils import getaddresses
from types import TracebackType
from typing import Any, Literal, Protocol

from django.conf import settings

from warmysender.mailboxes.models import Mailbox, MailboxKind, SandboxMessage, Security

log = logging.getLogger(__name__)

# "withdrawn": the caller's go-ahead said no after the server accepted the envelope; nothing was
# handed over and the server was told to forget it (RSET).
Outcome = Literal["sent", "rejected", "deferred", "auth_failed", "unknown", "withdrawn"]
GoAhead = Callable[[], bool]
# Work of the caller's, done while the server reads a message that is fully written and before
# its reply is read: the server's time is the caller's too. It must not raise.
Meanwhile = Callable[[], None]


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    code: int | None = None
    message: str = ""


class Transport(Protocol):
    def send(
        self,
        message: email.message.EmailMessage,
        *,
        now: datetime,
        go_ahead: GoAhead | None = None,
        meanwhile: Meanwhile | None = None,
    ) -> SendResult:
        """Hand `message` over. `go_ahead`, when given, is asked once the envelope (MAIL, RCPT)
        is accepted and before DATA: the caller can prepare the hand-over (commit `sending`)
        while the server answers the envelope, and withdraw the message if it must not go.
        `meanwhile`, when given, runs once the whole message is written, before the server's
        answer is read (not at all when the message never got that far)."""
        ...

    def connect(self) -> SendResult | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Transport: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def open_transport(mailbox: Mailbox, *, timeout: float = 30.0) -> Transport:
    """A transport for `mailbox`; it connects on the first `send` and reuses the connection."""
    if mailbox.kind == MailboxKind.SANDBOX:
        return SandboxTransport(mailbox)
    from warmysender.lib.crypto import UnreadableSecret
    from warmysender.mailboxes.services import mailbox_passwords

    try:
        password = mailbox_passwords(mailbox).get("smtp_password", "")
    except UnreadableSecret as exc:
        # Not the server's refusal, but the same remedy: the user enters the password again.
        return SmtpTransport(
            mailbox, password="", timeout=timeout, failure=SendResult("auth_failed", None, str(exc))
        )
    return SmtpTransport(mailbox, password=password, timeout=timeout)


# --- helpers shared with the connection test -------------------------------------------------


def client_tls_context() -> ssl.SSLContext:
    """Certificate and host name verified against the system CAs plus SMTP_CA_FILE, if set."""
    context = ssl.create_default_context()
    if settings.SMTP_CA_FILE:
        context.load_verify_locations(cafile=settings.SMTP_CA_FILE)
    return context


def recipients_of(message: email.message.EmailMessage) -> list[str]:
    """The envelope recipients: the addresses of the To header(s)."""
    return [addr for _, addr in getaddresses([str(v) for v in message.get_all("To", [])]) if addr]


def reply_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())


def address_literal(sock: socket.socket) -> str:
    """How the client names itself in EHLO: its own address as an RFC 5321 literal. Honest,
    valid, and needs no DNS (socket.getfqdn may wait on a reverse lookup)."""
    host = sock.getsockname()[0]
    return f"[IPv6:{host}]" if ":" in host else f"[{host}]"


class SmtpConnectError(Exception):
    """Connecting, TLS or logging in failed; `outcome` is deferred or auth_failed."""

    def __init__(self, outcome: Outcome, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.outcome: Outcome = outcome
        self.message = message
        self.code = code


def connect_smtp(
    host: str,
    port: int,
    security: str,
    *,
    username: str,
    password: str,
    timeout: float,
) -> smtplib.SMTP:
    """An SMTP session that is connected, encrypted as configured and logged in (when a
    password is given). Raises SmtpConnectError; never leaves a socket open behind it."""
    context = client_tls_context()
    smtp: smtplib.SMTP | None = None
    try:
        # The host is given to the constructor so TLS checks the certificate against it.
        # local_hostname is replaced right after connecting (see address_literal); passing one
        # keeps smtplib from calling socket.getfqdn().
        if security == Security.SSL:
            smtp = smtplib.SMTP_SSL(
                host, port, local_hostname="localhost", timeout=timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(host, port, local_hostname="localhost", timeout=timeout)
        if smtp.sock is not None:
            smtp.local_hostname = address_literal(smtp.sock)
        smtp.ehlo()
        if security == Security.STARTTLS:
            smtp.starttls(context=context)
            smtp.ehlo()
        if password:
            login(smtp, username, password)
        return smtp
    except smtplib.SMTPAuthenticationError as exc:
        _quietly_close(smtp)
        raise SmtpConnectError("auth_failed", _smtp_error(exc), exc.smtp_code) from exc
    except smtplib.SMTPNotSupportedError as exc:
        _quietly_close(smtp)
        # "SMTP AUTH extension not supported": the credentials cannot be used here at all.
        outcome: Outcome = "auth_failed" if "AUTH" in str(exc) else "deferred"
        raise SmtpConnectError(outcome, str(exc)) from exc
    except smtplib.SMTPResponseException as exc:
        _quietly_close(smtp)
        raise SmtpConnectError("deferred", _smtp_error(exc), exc.smtp_code) from exc
    except (smtplib.SMTPException, OSError) as exc:
        # Refused, unreachable, DNS, timeouts, TLS and certificate failures, early disconnects.
        _quietly_close(smtp)
        raise SmtpConnectError("deferred", describe_error(exc)) from exc


def login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH with one mechanism, PLAIN when offered, else LOGIN. (`smtplib.SMTP.login` tries
    every mechanism in turn: one wrong password would count as two or three failures toward the
    provider's lock-out.)"""
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = smtp.esmtp_features["auth"].upper().split()
    for mechanism in ("PLAIN", "LOGIN"):
        if mechanism in offered:
            smtp.user, smtp.password = username, password
            smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
            return
    raise smtplib.SMTPException(
        f"No supported authentication method: the server offers {' '.join(offered)}."
    )


def describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, socket.timeout | TimeoutError) and "timed out" not in text:
        text = f"timed out ({text})"
    return text


def _smtp_error(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {reply_text(exc.smtp_error)}"


def _quietly_close(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.close()
    except OSError:
        pass


# --- SMTP --------------------------------------------------------------------------------------


def _classify_reply(code: int) -> Outcome:
    if 200 <= code < 300:
        return "sent"
    if 500 <= code < 600:
        return "rejected"
    return "deferred"


_LEADING_DOT = re.compile(rb"(?m)^\.")


class SmtpTransport:
    """One SMTP connection, opened on the first `send` and reused for the next ones.

    A failure to connect or log in is remembered: later sends through this transport answer the
    same outcome at once instead of hammering the server. A connection the server closed after
    a finished transaction (idle timeout, 421) is reopened on the next send.
    """

    def __init__(
        self,
        mailbox: Mailbox,
        *,
        password: str,
        timeout: float = 30.0,
        failure: SendResult | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.password = password
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None
        # Set once connecting or logging in failed (or could not be tried): every send answers it.
        self._failure = failure

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            _quietly_close(smtp)

    def _connect(self) -> smtplib.SMTP:
        mailbox = self.mailbox
        if not mailbox.smtp_host or not mailbox.smtp_port:
            raise SmtpConnectError("deferred", "The mailbox has no SMTP host and port.")
        return connect_smtp(
            mailbox.smtp_host,
            mailbox.smtp_port,
            mailbox.smtp_security,
            username=mailbox.smtp_username or mailbox.email,
            password=self.password,
            timeout=self.timeout,
        )

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            _quietly_close(smtp)

    def connect(self) -> SendResult | None:
        """Open the connection now (greeting, TLS, login) so a caller can record that it is
        about to hand a message over only once the server is ready for it. None when connected;
        otherwise the outcome every send would get (deferred or auth_failed)."""
        if self._failure is not None:
            return self._failure
        if self._smtp is not None:
            return None
        try:
            self._smtp = self._connect()
        except SmtpConnectError as exc:
            self._failure = SendResult(exc.outcome, exc.code, exc.message)
            return self._failure
        return None

    def send(
        self,
        message: email.message.EmailMessage,
        *,
        now: datetime,
        go_ahead: GoAhead | None = None,
        meanwhile: Meanwhile | None = None,
    ) -> SendResult:
        recipients = recipients_of(message)
        if not recipients:
            raise ValueError("the message has no To address")
        if self._failure is not None:
            return self._failure
        reused = self._smtp is not None
        try:
            return self._transaction(message, recipients, go_ahead, meanwhile)
        except _Disconnected as lost:
            if not reused:
                return lost.result
        # The server closed an idle connection between two messages (or announced so with 421)
        # before this one's MAIL was accepted: nothing of it was handed over, so one fresh
        # connection may try again.
        try:
            return self._transaction(message, recipients, go_ahead, meanwhile)
        except _Disconnected as lost_again:
            return lost_again.result

    def _transaction(
        self,
        message: email.message.EmailMessage,
        recipients: list[str],
        go_ahead: GoAhead | None,
        meanwhile: Meanwhile | None = None,
    ) -> SendResult:
        if self._smtp is None:
            try:
                self._smtp = self._connect()
            except SmtpConnectError as exc:
                self._failure = SendResult(exc.outcome, exc.code, exc.message)
                return self._failure
        smtp = self._smtp
        payload, options = self._serialize(message, smtp, recipients)

        # MAIL FROM
        try:
            code, reply = smtp.mail(self.mailbox.email, options)
        except smtplib.SMTPNotSupportedError as exc:  # SMTPUTF8 needed but not offered
            return SendResult("rejected", None, str(exc))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            raise _Disconnected(
                SendResult("deferred", None, f"connection lost before MAIL: {describe_error(exc)}")
            ) from exc
        if code == 421:
            self._drop()
            raise _Disconnected(SendResult("deferred", code, f"MAIL: {code} {reply_text(reply)}"))
        if code != 250:
            return self._refused(code, reply, stage="MAIL")

        # RCPT TO, every recipient; any refusal aborts the whole message (nothing sent).
        for recipient in recipients:
            try:
                code, reply = smtp.rcpt(recipient)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._drop()
                return SendResult("deferred", None, f"connection lost at RCPT: {exc}")
            if code not in (250, 251):
                return self._refused(code, reply, stage=f"RCPT {recipient}")

        if go_ahead is not None and not go_ahead():
            self._reset()
            return SendResult("withdrawn", None, "withdrawn before DATA")

        # DATA
        try:
            code, reply = smtp.docmd("data")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return SendResult("deferred", None, f"connection lost at DATA: {exc}")
        if code != 354:
            return self._refused(code, reply, stage="DATA")

        # The payload and the final dot. Until sendall returns, the dot is not fully out.
        try:
            smtp.send(payload)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return SendResult(
                "deferred", None, f"connection lost before the end of the message: {exc}"
            )
        if meanwhile is not None:
            meanwhile()

        # From here on the server may have the message: no answer means "unknown".
        try:
            code, reply = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            return SendResult(
                "unknown",
                None,
                "the connection was lost after the message was handed over and before the "
                f"server answered ({describe_error(exc)}); it may have been accepted",
            )
        text = reply_text(reply)
        if code == 421:
            self._drop()
        if 200 <= code < 300:
            return SendResult("sent", code, text)
        if 400 <= code < 600:
            return SendResult(_classify_reply(code), code, text)
        self._drop()
        return SendResult("unknown", code, f"unexpected reply after the message: {code} {text}")

    def _reset(self) -> None:
        """Forget the envelope so far (RSET); a connection that cannot even do that is dropped."""
        assert self._smtp is not None
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _refused(self, code: int, reply: bytes, *, stage: str) -> SendResult:
        """A refusal before the payload: nothing was handed over."""
        if code == 421:
            self._drop()
        else:
            self._reset()
        outcome: Outcome = "rejected" if 500 <= code < 600 else "deferred"
        return SendResult(outcome, code, f"{stage}: {code} {reply_text(reply)}")

    def _serialize(
        self, message: email.message.EmailMessage, smtp: smtplib.SMTP, recipients: list[str]
    ) -> tuple[bytes, list[str]]:
        """The payload with dot-stuffing and the final dot, and the MAIL options it needs."""
        international = any(not a.isascii() for a in [self.mailbox.email, *recipients])
        copied = copy.copy(message)
        del copied["Bcc"]
        del copied["Resent-Bcc"]
        buffer = io.BytesIO()
        policy = copied.policy.clone(utf8=True) if international else copied.policy  # type: ignore[call-arg]
        BytesGenerator(buffer, policy=policy).flatten(copied, linesep="\r\n")
        data = buffer.getvalue()
        options: list[str] = []
        if international:
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        elif not data.isascii() and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if smtp.has_extn("size"):
            options.append(f"SIZE={len(data)}")
        payload = _LEADING_DOT.sub(b"..", data)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        return payload + b".\r\n", options


class _Disconnected(Exception):
    """The connection was lost (or closed with 421) at MAIL: before anything was accepted."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.message)
        self.result = result


# --- sandbox -------------------------------------------------------------------------------------


def message_headers(message: email.message.Message) -> dict[str, str]:
    """Header name → value; a repeated header's values are joined with a newline."""
    headers: dict[str, str] = {}
    for name, value in message.items():
        headers[name] = f"{headers[name]}\n{value}" if name in headers else str(value)
    return headers


def _part_text(message: email.message.EmailMessage, subtype: str) -> str:
    part: Any = message.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (KeyError, LookupError, ValueError):
        content = part.get_payload(decode=True) or b""
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return str(content)


def _storable(text: str) -> str:
    return text.replace("\x00", "")


class SandboxTransport:
    """Captures each message as a SandboxMessage row instead of sending it."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    def __enter__(self) -> SandboxTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        return None

    def connect(self) -> SendResult | None:
        return None

    def send(
        self,
        message: email.message.EmailMessage,
        *,
        now: datetime,
        go_ahead: GoAhead | None = None,
        meanwhile: Meanwhile | None = None,
    ) -> SendResult:
        recipients = recipients_of(message)
        if not recipients:
            raise ValueError("the message has no To address")
        if go_ahead is not None and not go_ahead():
            return SendResult("withdrawn", None, "withdrawn before DATA")
        captured = SandboxMessage.objects.create(
            workspace_id=self.mailbox.workspace_id,
            mailbox=self.mailbox,
            message_id=_storable(str(message.get("Message-ID", "")))[:255],
            to_email=_storable(", ".join(recipients))[:254],
            subject=_storable(str(message.get("Subject", ""))),
            headers={k: _storable(v) for k, v in message_headers(message).items()},
            text=_storable(_part_text(message, "plain")),
            html=_storable(_part_text(message, "html")),
            raw=_storable(message.as_string()),
            created_at=now,
        )
        if meanwhile is not None:
            meanwhile()
        return SendResult("sent", 250, f"captured by the sandbox as {captured.pk}")
