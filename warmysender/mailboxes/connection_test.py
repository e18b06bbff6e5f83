"""The "Test connection" check: log in to SMTP and IMAP, and explain any failure in plain words.

`test_connection` never sends mail and never writes to the database; `services.run_connection_test`
records its verdict. `hint_for` is the pure part: an error (exception or text) → advice, with the
provider's own wording for refused log-ins.
"""

from __future__ import annotations

import imaplib
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from warmysender.mailboxes.models import Mailbox, MailboxKind, Security
from warmysender.mailboxes.presets import get_preset
from warmysender.mailboxes.transports import (
    SmtpConnectError,
    client_tls_context,
    connect_smtp,
    describe_error,
    reply_text,
)

Protocol = Literal["smtp", "imap"]
DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class CheckResult:
    protocol: Protocol
    ok: bool
    error: str = ""
    hint: str = ""


@dataclass(frozen=True)
class ConnectionReport:
    smtp: CheckResult
    imap: CheckResult | None  # None: the mailbox has no IMAP server configured
    checked_at: datetime

    @property
    def ok(self) -> bool:
        return self.smtp.ok and (self.imap is None or self.imap.ok)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in (self.smtp, self.imap) if c is not None and not c.ok]

    def summary(self) -> str:
        """What the mailbox keeps as `last_error`: per failed protocol, the error and the hint."""
        return "\n".join(f"{c.protocol.upper()}: {c.error}\n{c.hint}" for c in self.failures)


def test_connection(
    mailbox: Mailbox,
    *,
    now: datetime,
    smtp_password: str | None = None,
    imap_password: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ConnectionReport:
    """Log in to the mailbox's SMTP server and, when one is configured, its IMAP server.

    `mailbox` may be unsaved (the Add mailbox page tests before saving); passwords default to
    the stored, decrypted ones.
    """
    if mailbox.kind == MailboxKind.SANDBOX:
        return ConnectionReport(CheckResult("smtp", True), None, now)
    if smtp_password is None or imap_password is None:
        from warmysender.mailboxes.services import mailbox_passwords

        stored = mailbox_passwords(mailbox)
        smtp_password = stored.get("smtp_password", "") if smtp_password is None else smtp_password
        imap_password = stored.get("imap_password", "") if imap_password is None else imap_password
    smtp = _check_smtp(mailbox, smtp_password, timeout)
    imap = _check_imap(mailbox, imap_password, timeout) if mailbox.imap_host else None
    return ConnectionReport(smtp, imap, now)


# pytest would otherwise collect the function above from this *_test.py module.
test_connection.__test__ = False  # type: ignore[attr-defined]


def _check_smtp(mailbox: Mailbox, password: str, timeout: float) -> CheckResult:
    context = _Context(mailbox.provider, "smtp", mailbox.smtp_port, mailbox.smtp_security)
    if not mailbox.smtp_host or not mailbox.smtp_port:
        return CheckResult("smtp", False, "No SMTP host and port.", "Enter the SMTP server.")
    try:
        smtp = connect_smtp(
            mailbox.smtp_host,
            mailbox.smtp_port,
            mailbox.smtp_security,
            username=mailbox.smtp_username or mailbox.email,
            password=password,
            timeout=timeout,
        )
    except SmtpConnectError as exc:
        error = exc.message
        return CheckResult("smtp", False, error, _hint(error, context))
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
    return CheckResult("smtp", True)


def _check_imap(mailbox: Mailbox, password: str, timeout: float) -> CheckResult:
    context = _Context(mailbox.provider, "imap", mailbox.imap_port, mailbox.imap_security)
    if not mailbox.imap_port:
        return CheckResult("imap", False, "No IMAP port.", "Enter the IMAP port (993 or 143).")
    if not password:
        return CheckResult(
            "imap", False, "No IMAP password.", "Enter the password of the IMAP account."
        )
    tls = client_tls_context()
    client: IMAPClient | None = None
    try:
        # imapclient defaults to ssl=True: always say which one is meant.
        client = IMAPClient(
            mailbox.imap_host,
            port=mailbox.imap_port,
            ssl=mailbox.imap_security == Security.SSL,
            ssl_context=tls,
            timeout=timeout,
        )
        if mailbox.imap_security == Security.STARTTLS:
            client.starttls(ssl_context=tls)
        client.login(mailbox.imap_username or mailbox.smtp_username or mailbox.email, password)
    except LoginError as exc:
        error = f"login refused: {_imap_text(exc)}"
        return _close_imap(client, CheckResult("imap", False, error, _hint(exc, context)))
    except (IMAPClientError, imaplib.IMAP4.error, OSError) as exc:
        error = _imap_text(exc)
        return _close_imap(client, CheckResult("imap", False, error, _hint(exc, context)))
    try:
        client.logout()
    except (IMAPClientError, imaplib.IMAP4.error, OSError):
        client.shutdown()
    return CheckResult("imap", True)


def _imap_text(exc: BaseException) -> str:
    text = describe_error(exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return text


def _close_imap(client: IMAPClient | None, result: CheckResult) -> CheckResult:
    if client is not None:
        try:
            client.shutdown()
        except (IMAPClientError, imaplib.IMAP4.error, OSError):
            pass
    return result


# --- hints -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    provider: str
    protocol: Protocol
    port: int | None
    security: str | None

    @property
    def ssl_port(self) -> int:
        return 465 if self.protocol == "smtp" else 993

    @property
    def starttls_port(self) -> int:
        return 587 if self.protocol == "smtp" else 143


def _error_text(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    parts = [type(error).__name__, str(error)]
    if isinstance(error, smtplib.SMTPResponseException):
        parts.append(f"{error.smtp_code} {reply_text(error.smtp_error)}")
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        parts.append(error.verify_message)
    if error.__cause__ is not None:
        parts.append(_error_text(error.__cause__))
    return " ".join(parts)


def _any(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(n in text for n in needles)


def _codes(*codes: str) -> Callable[[str], bool]:
    """SMTP reply or enhanced status codes, as whole numbers (535 but not 5353 or 1535)."""
    pattern = re.compile("|".join(rf"(?<![\d.]){re.escape(code)}(?![\d])" for code in codes))
    return lambda text: pattern.search(text) is not None


def _either(*tests: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda text: any(test(text) for test in tests)


def _m365_admin(ctx: _Context) -> str:
    return (
        "Your provider's administrator has disabled SMTP authentication for this account — this "
        "is not a password problem, and a new App Password will not fix it. For Microsoft 365, "
        "an admin must open admin.microsoft.com → Users → Active users → the account → Mail → "
        "Manage email apps, tick 'Authenticated SMTP' and save (it takes 15–30 minutes); with "
        "Security Defaults on, SMTP AUTH must be exempted in Microsoft Entra ID. For Google "
        "Workspace, an admin enables IMAP access and App Passwords in admin.google.com."
    )


def _browser_sign_in(ctx: _Context) -> str:
    if ctx.provider == "outlook":
        return (
            "Microsoft wants you to sign in to Outlook on the web first and complete any "
            "security prompts; then use an App Password here. " + get_preset("outlook").auth_help
        )
    if ctx.provider == "gmail":
        return (
            "Google refused the log-in (534-5.7.14): you are probably using your regular Google "
            "password. Generate an App Password at https://myaccount.google.com/apppasswords "
            "(2-Step Verification must be on) and use those 16 characters instead."
        )
    return "The provider asks you to sign in through its website first. " + _auth(ctx)


def _auth(ctx: _Context) -> str:
    advice = get_preset(ctx.provider).auth_help
    return f"The IMAP server refused the log-in. {advice}" if ctx.protocol == "imap" else advice


def _auth_not_offered(ctx: _Context) -> str:
    return (
        "The server does not offer a log-in on this connection. Most servers only allow it "
        f"once the connection is encrypted: choose STARTTLS on port {ctx.starttls_port} or "
        f"SSL/TLS on port {ctx.ssl_port}."
    )


def _starttls_missing(ctx: _Context) -> str:
    return (
        f"The server does not support STARTTLS on port {ctx.port}. Switch to port "
        f"{ctx.ssl_port} with SSL/TLS, or confirm your provider supports STARTTLS on port "
        f"{ctx.starttls_port}."
    )


def _wrong_tls_mode(ctx: _Context) -> str:
    if ctx.security == Security.SSL and ctx.port != ctx.ssl_port:
        return (
            f"Port {ctx.port} does not use SSL/TLS from the first byte"
            + (
                f" — port {ctx.starttls_port} uses STARTTLS, not SSL"
                if ctx.port == ctx.starttls_port
                else ""
            )
            + f". Choose STARTTLS for this port, or use port {ctx.ssl_port} with SSL/TLS."
        )
    return (
        "SSL/TLS is being used on a STARTTLS port or the other way round. Port "
        f"{ctx.starttls_port} = STARTTLS, port {ctx.ssl_port} = SSL/TLS; they are not "
        "interchangeable."
    )


def _expired(ctx: _Context) -> str:
    return (
        "The server's certificate has expired. Ask your hosting provider to renew the SSL "
        "certificate of the mail server, or use the provider's official host name."
    )


def _hostname_mismatch(ctx: _Context) -> str:
    return (
        "The server's certificate is for another host name (ERR_TLS_CERT_ALTNAME_INVALID). Use "
        "the host name the certificate was issued for — often the provider's shared host such "
        "as smtp.hostinger.com rather than mail.yourdomain.com."
    )


def _untrusted(ctx: _Context) -> str:
    return (
        "The server's certificate is not trusted (self-signed, or issued by an unknown "
        f"authority). First check that port and security match ({ctx.ssl_port} = SSL/TLS, "
        f"{ctx.starttls_port} = STARTTLS); then use your provider's official host name. A "
        "self-hosted server needs a certificate from a public authority such as Let's Encrypt, "
        "or the administrator of this WarmySender can trust its CA with SMTP_CA_FILE."
    )


def _refused(ctx: _Context) -> str:
    return (
        f"Nothing accepts connections on port {ctx.port} of this host: the host or port is "
        f"wrong. Check them against your provider's settings — port {ctx.starttls_port} is "
        f"STARTTLS and {ctx.ssl_port} is SSL/TLS — and look for a typo in the host name."
    )


def _not_found(ctx: _Context) -> str:
    return (
        "Server not found: the host name does not exist in DNS. Check for a typo (smpt.gmail.com "
        "instead of smtp.gmail.com), and use your provider's server name rather than your own "
        "domain. If it is right, try again in a few minutes (a temporary DNS problem)."
    )


def _timeout(ctx: _Context) -> str:
    if ctx.port == ctx.ssl_port and ctx.security != Security.SSL:
        return (
            f"Port {ctx.port} expects SSL/TLS from the first byte, so the server waited for "
            f"encryption that never came. Choose SSL/TLS, or use port {ctx.starttls_port} with "
            "STARTTLS."
        )
    return (
        "The server did not answer in time: a firewall may block the port (many networks block "
        "port 25), or the host or port is wrong."
    )


def _closed(ctx: _Context) -> str:
    return (
        "The server closed the connection. Often the security mode does not match the port "
        f"({ctx.ssl_port} = SSL/TLS, {ctx.starttls_port} = STARTTLS), or the provider blocked "
        "the connection — sign in to your webmail and look for a security alert."
    )


def _mailbox_not_found(ctx: _Context) -> str:
    return (
        "The server does not know this account. The username must be your full email address "
        "(john@yourdomain.com, not just john); check it for typos, and that the account is active."
    )


def _unreachable(ctx: _Context) -> str:
    return "The network cannot reach this server. Check the host name and your connection."


def _fallback(ctx: _Context) -> str:
    return (
        "Check the host, port, security mode and credentials against your provider's settings "
        "(port 587 = STARTTLS, port 465 = SSL/TLS)."
    )


# First match wins; the order matters (5.7.139 is also a 535, a timeout can read "closed").
_RULES: list[tuple[Callable[[str], bool], Callable[[_Context], str]]] = [
    (
        _either(
            _codes("5.7.139"),
            _any("smtp authentication disabled", "smtpclientauthentication is disabled"),
        ),
        _m365_admin,
    ),
    (_codes("5.7.14"), _browser_sign_in),
    (
        _codes("5.7.9", "535", "5.7.8", "5.7.3"),
        _auth,
    ),
    (
        _any(
            "application-specific password",
            "authentication failed",
            "authenticationfailed",
            "authentication unsuccessful",
            "invalid credentials",
            "login failed",
            "logindisabled",
            "loginerror",
            "smtpauthenticationerror",
            "username and password not accepted",
        ),
        _auth,
    ),
    (_any("auth extension not supported"), _auth_not_offered),
    (
        _any("starttls extension not supported", "tls not supported", "starttls not supported"),
        _starttls_missing,
    ),
    (
        _any(
            "wrong_version_number", "wrong version number", "record layer failure", "http_request"
        ),
        _wrong_tls_mode,
    ),
    (_any("certificate has expired", "certificate_expired"), _expired),
    (
        _any("hostname mismatch", "ip address mismatch", "doesn't match", "altname"),
        _hostname_mismatch,
    ),
    (
        _any(
            "self-signed",
            "self signed",
            "depth_zero_self_signed_cert",
            "unable to get local issuer",
            "unable_to_verify_leaf_signature",
            "unable to verify the first certificate",
            "certificate verify failed",
        ),
        _untrusted,
    ),
    (_any("connection refused", "errno 111", "connectionrefusederror"), _refused),
    (
        _any(
            "name or service not known",
            "nodename nor servname",
            "temporary failure in name resolution",
            "no address associated",
            "getaddrinfo failed",
            "gaierror",
            "server not found",
        ),
        _not_found,
    ),
    (_any("timed out", "timeout"), _timeout),
    (
        _any(
            "connection unexpectedly closed",
            "connection reset",
            "smtpserverdisconnected",
            "eof occurred",
            "socket error: eof",
        ),
        _closed,
    ),
    (
        _either(
            _codes("5.1.1"),
            _any("mailbox not found", "user unknown", "no such user", "mailbox unavailable"),
        ),
        _mailbox_not_found,
    ),
    (_any("network is unreachable", "no route to host"), _unreachable),
]


def hint_for(
    error: BaseException | str,
    *,
    provider: str = "custom",
    protocol: Protocol = "smtp",
    port: int | None = None,
    security: str | None = None,
) -> str:
    """Plain-language advice for a connection or log-in error."""
    return _hint(error, _Context(provider, protocol, port, security))


def _hint(error: BaseException | str, ctx: _Context) -> str:
    if isinstance(error, socket.gaierror):
        return _not_found(ctx)
    if isinstance(error, ConnectionRefusedError):
        return _refused(ctx)
    text = _error_text(error).lower()
    for matches, advice in _RULES:
        if matches(text):
            return advice(ctx)
    return _fallback(ctx)
