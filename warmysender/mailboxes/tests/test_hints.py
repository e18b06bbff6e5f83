"""hint_for: every error the provider guide names maps to its advice (a table, no network)."""

from __future__ import annotations

import smtplib
import socket
import ssl

import pytest
from imapclient.exceptions import LoginError

from warmysender.mailboxes.connection_test import hint_for

# (error, context, a phrase the hint must contain)
CASES: list[tuple[object, dict[str, object], str]] = [
    # Gmail's 534-5.7.14: regular password instead of an App Password.
    (
        "534 5.7.14 <https://accounts.google.com/signin/continue?sarp=1> Please log in via "
        "your web browser and then try again. 5.7.14 Learn more at",
        {"provider": "gmail"},
        "myaccount.google.com/apppasswords",
    ),
    (
        smtplib.SMTPAuthenticationError(534, b"5.7.14 Please log in via your web browser"),
        {"provider": "outlook"},
        "sign in to Outlook on the web",
    ),
    ("535 5.7.8 Username and Password not accepted", {"provider": "gmail"}, "App Password"),
    ("535 5.7.8 Authentication credentials invalid", {"provider": "yahoo"}, "login.yahoo.com"),
    ("535 5.7.3 Authentication unsuccessful", {"provider": "outlook"}, "Authenticated SMTP"),
    (
        "534 5.7.9 Application-specific password required",
        {"provider": "gmail"},
        "App Password",
    ),
    (
        "535 5.7.8 Error: authentication failed",
        {"provider": "hostinger"},
        "regular email password",
    ),
    ("535 5.7.8 Authentication failed", {"provider": "zoho_eu"}, "smtp.zoho.eu"),
    ("535 5.7.8 Authentication failed", {"provider": "custom"}, "full email address"),
    # Microsoft 365 with SMTP AUTH disabled: not a password problem.
    (
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        "Tenant.",
        {"provider": "outlook"},
        "Authenticated SMTP",
    ),
    ("SMTP authentication disabled", {}, "not a password problem"),
    (
        LoginError("b'[AUTHENTICATIONFAILED] Authentication failed.'"),
        {"protocol": "imap", "provider": "gmail"},
        "The IMAP server refused the log-in",
    ),
    ("b'LOGIN failed.'", {"protocol": "imap", "provider": "outlook"}, "IMAP server refused"),
    (ConnectionRefusedError(111, "Connection refused"), {"port": 587}, "port 587"),
    ("[Errno 111] Connection refused", {"port": 2525}, "host or port is wrong"),
    (socket.gaierror(-2, "Name or service not known"), {}, "Server not found"),
    ("[Errno -3] Temporary failure in name resolution", {}, "Server not found"),
    (
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"),
        {"port": 587, "security": "ssl"},
        "port 587 uses STARTTLS, not SSL",
    ),
    (
        "[SSL: WRONG_VERSION_NUMBER] wrong version number",
        {"protocol": "imap", "port": 143, "security": "ssl"},
        "port 143 uses STARTTLS, not SSL",
    ),
    (
        "[SSL: WRONG_VERSION_NUMBER] wrong version number",
        {"port": 465, "security": "starttls"},
        "Port 587 = STARTTLS, port 465 = SSL/TLS",
    ),
    (
        "Connection unexpectedly closed: timed out",
        {"port": 465, "security": "starttls"},
        "Port 465 expects SSL/TLS",
    ),
    (
        "timed out",
        {"protocol": "imap", "port": 993, "security": "none"},
        "Port 993 expects SSL/TLS",
    ),
    ("timed out", {"port": 25, "security": "none"}, "firewall"),
    (
        smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."),
        {"port": 587},
        "does not support STARTTLS on port 587",
    ),
    ("TLS not supported by server", {"protocol": "imap", "port": 143}, "port 993 with SSL/TLS"),
    ("SMTP AUTH extension not supported by server.", {}, "once the connection is encrypted"),
    (
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate",
        {},
        "not trusted",
    ),
    ("DEPTH_ZERO_SELF_SIGNED_CERT", {}, "Let's Encrypt"),
    (
        "certificate verify failed: unable to get local issuer certificate",
        {},
        "SMTP_CA_FILE",
    ),
    ("UNABLE_TO_VERIFY_LEAF_SIGNATURE", {}, "not trusted"),
    ("certificate verify failed: certificate has expired", {}, "expired"),
    (
        "certificate verify failed: Hostname mismatch, certificate is not valid for "
        "'mail.example.com'",
        {},
        "ERR_TLS_CERT_ALTNAME_INVALID",
    ),
    ("ERR_TLS_CERT_ALTNAME_INVALID", {}, "another host name"),
    ("Connection unexpectedly closed", {}, "closed the connection"),
    ("550 5.1.1 Mailbox not found", {}, "full email address"),
    ("[Errno 101] Network is unreachable", {}, "cannot reach"),
    ("something nobody has seen before", {}, "Check the host, port, security mode"),
]


@pytest.mark.parametrize(("error", "context", "phrase"), CASES)
def test_each_known_error_gets_its_advice(
    error: BaseException | str, context: dict[str, object], phrase: str
) -> None:
    hint = hint_for(error, **context)  # type: ignore[arg-type]
    assert phrase.lower() in hint.lower()


def test_5_7_139_is_not_mistaken_for_a_wrong_password() -> None:
    hint = hint_for("535 5.7.139 Authentication unsuccessful", provider="outlook")
    assert "not a password problem" in hint
    assert "account.live.com" not in hint


def test_a_port_number_that_looks_like_a_code_is_not_an_auth_failure() -> None:
    hint = hint_for("[Errno 111] Connection refused to 127.0.0.1:5353", port=5353)
    assert "App Password" not in hint
    assert "port 5353" in hint


def test_the_hint_names_the_protocol_ports() -> None:
    smtp = hint_for("Connection unexpectedly closed", protocol="smtp")
    imap = hint_for("Connection unexpectedly closed", protocol="imap")
    assert "465" in smtp and "587" in smtp
    assert "993" in imap and "143" in imap
