"""A real SMTP server for tests, built on aiosmtpd: in-process (see `smtp_fixtures`) or as a
process of its own, for fault tests that kill things:

    python -m warmysender.testing.smtp --port 2525 --log /tmp/smtp.jsonl \\
        --auth sender@example.com:app-pass --tls starttls --cert-dir /tmp/certs \\
        --behave bounce@example.com='550 5.1.1 User unknown' --behaviours /tmp/behaviours.json

It speaks AUTH PLAIN and LOGIN against a user table, STARTTLS or implicit TLS with a certificate
generated for 127.0.0.1/localhost (trust `ca_file`), and misbehaves per address on request:

    "550 5.1.1 …" / "451 4.7.1 …"  any reply: given at RCPT for a recipient, at MAIL for a sender
    "data:554 5.7.1 …"              accept the recipient, give this reply after the final dot
    "drop_after_data"              read the whole message, then close without replying
    "hang_after_data"              read the whole message, then say nothing (client times out)
    "421_after_data"               read the whole message, reply 421 and close

Every message whose final dot was received and that was accepted (250) or dropped/hung (the
client cannot know whether it was delivered) is recorded in `messages` and appended as one JSON
line to the log file, so a test can join what the server saw against the database.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import logging
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# aiosmtpd logs every command at INFO; the tests' output is about our code.
logging.getLogger("mail.log").setLevel(logging.WARNING)

DROP_AFTER_DATA = "drop_after_data"
HANG_AFTER_DATA = "hang_after_data"
REPLY_421_AFTER_DATA = "421_after_data"
DATA_PREFIX = "data:"
AFTER_DATA = (DROP_AFTER_DATA, HANG_AFTER_DATA, REPLY_421_AFTER_DATA)

TlsMode = Literal["none", "starttls", "ssl"]
Disposition = Literal["accepted", "dropped", "hung"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (aiosmtpd cannot be started on port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# --- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # the CA that signed the server certificate: what clients trust
    cert_file: Path  # the server certificate
    key_file: Path


def make_certificates(directory: Path, *, hostnames: Iterable[str] = ("localhost",)) -> TlsFiles:
    """A throw-away CA and a server certificate it signed for `hostnames` and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WarmySender test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    names = list(hostnames)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names]
                + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


# --- what the server saw ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    message_id: str
    subject: str
    # Header name → value; a repeated header's values are joined with "\n".
    headers: dict[str, str]
    raw: str
    auth_user: str | None
    tls: bool
    disposition: Disposition
    received_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> ReceivedMessage:
        return cls(**json.loads(line))


def read_log(path: Path) -> list[ReceivedMessage]:
    """Every message a (possibly separate) server appended to its log file."""
    if not path.exists():
        return []
    return [ReceivedMessage.from_json(line) for line in path.read_text().splitlines() if line]


def _headers(raw: bytes) -> dict[str, str]:
    parsed = BytesParser(policy=default_policy).parsebytes(raw, headersonly=True)
    headers: dict[str, str] = {}
    for name, value in parsed.items():
        headers[name] = f"{headers[name]}\n{value}" if name in headers else str(value)
    return headers


# --- the server ------------------------------------------------------------------------------


@dataclass
class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 with a mutable user table and per-address behaviours.

    `users` maps login → password (AUTH PLAIN/LOGIN). With `require_auth` (the default when
    users are given), MAIL before AUTH is refused with 530. `tls_files` is required for the
    `starttls` and `ssl` modes; without it a certificate is generated into a temporary dir.
    """

    host: str = "127.0.0.1"
    port: int = 0
    tls: TlsMode = "none"
    users: dict[str, str] = field(default_factory=dict)
    require_auth: bool | None = None
    log_file: Path | None = None
    tls_files: TlsFiles | None = None
    behaviours_file: Path | None = None
    hang_seconds: float = 3600.0
    hostname: str = "mx.warmysender.test"
    messages: list[ReceivedMessage] = field(default_factory=list, init=False)
    behaviours: dict[str, str] = field(default_factory=dict, init=False)
    auth_replies: dict[str, str] = field(default_factory=dict, init=False)
    # Every AUTH attempt as (login, succeeded).
    logins: list[tuple[str, bool]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.require_auth is None:
            self.require_auth = bool(self.users)
        self._auto_port = self.port == 0
        if self._auto_port:
            self.port = free_port(self.host)
        if self.tls != "none" and self.tls_files is None:
            self.tls_files = make_certificates(Path(tempfile.mkdtemp(prefix="smtp-certs-")))
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self._file_behaviours: dict[str, str] = {}
        self._file_mtime: float | None = None

    # -- configuration, callable from any thread while running --

    @property
    def ca_file(self) -> Path | None:
        return self.tls_files.ca_file if self.tls_files else None

    def behave(self, address: str, behaviour: str | None) -> None:
        """Make the server misbehave for `address` (None restores normal service)."""
        if behaviour is not None and not _valid_behaviour(behaviour):
            raise ValueError(f"unknown behaviour {behaviour!r}")
        with self._lock:
            if behaviour is None:
                self.behaviours.pop(address.lower(), None)
            else:
                self.behaviours[address.lower()] = behaviour

    def fail_auth(self, login: str, reply: str | None) -> None:
        """Refuse `login` with exactly `reply` (e.g. "534 5.7.9 Application-specific password
        required"), whatever the password."""
        with self._lock:
            if reply is None:
                self.auth_replies.pop(login, None)
            else:
                self.auth_replies[login] = reply

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.logins.clear()

    # -- lifecycle --

    def start(self) -> SmtpServer:
        for attempt in range(5):
            try:
                self._start_controller()
                return self
            except OSError:
                # Another process took the free port between our look and aiosmtpd's bind.
                if not self._auto_port or attempt == 4:
                    raise
                self.port = free_port(self.host)
        return self

    def _start_controller(self) -> None:
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "server_hostname": self.hostname,
            "authenticator": self._authenticate,
            # AUTH is offered only over TLS when TLS is available, as real submission servers do.
            "auth_require_tls": self.tls == "starttls",
            "ready_timeout": 10.0,
        }
        if self.tls != "none":
            assert self.tls_files is not None
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls_files.cert_file, self.tls_files.key_file)
            kwargs["ssl_context" if self.tls == "ssl" else "tls_context"] = context
        controller = Controller(_Handler(self), **kwargs)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- used by the handler, on the server's thread --

    def behaviour_for(self, address: str) -> str | None:
        self._reload_behaviours_file()
        with self._lock:
            key = address.lower()
            return self.behaviours.get(key) or self._file_behaviours.get(key)

    def _reload_behaviours_file(self) -> None:
        if self.behaviours_file is None:
            return
        try:
            mtime = self.behaviours_file.stat().st_mtime
        except FileNotFoundError:
            self._file_behaviours, self._file_mtime = {}, None
            return
        if mtime == self._file_mtime:
            return
        try:
            loaded = json.loads(self.behaviours_file.read_text() or "{}")
        except ValueError:
            return  # half-written; the next command reads it again
        self._file_behaviours = {str(k).lower(): str(v) for k, v in loaded.items()}
        self._file_mtime = mtime

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # A failed AuthResult must say handled=False, or aiosmtpd sends no reply at all.
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        with self._lock:
            custom = self.auth_replies.get(login)
            ok = custom is None and login in self.users and self.users[login] == password
            self.logins.append((login, ok))
        if ok:
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False, message=custom)

    def record(self, session: Session, envelope: Envelope, disposition: Disposition) -> None:
        raw = envelope.original_content or b""
        headers = _headers(raw)
        message = ReceivedMessage(
            mail_from=str(envelope.mail_from or ""),
            rcpt_tos=list(envelope.rcpt_tos),
            message_id=headers.get("Message-ID", ""),
            subject=headers.get("Subject", ""),
            headers=headers,
            raw=raw.decode("utf-8", "replace"),
            auth_user=session.auth_data if session.authenticated else None,
            tls=session.ssl is not None or self.tls == "ssl",
            disposition=disposition,
            received_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        with self._lock:
            self.messages.append(message)
            if self.log_file is not None:
                # One write on an O_APPEND descriptor: lines of concurrent sessions never mix.
                fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, (message.to_json() + "\n").encode())
                finally:
                    os.close(fd)


def _is_reply(behaviour: str) -> bool:
    return len(behaviour) >= 3 and behaviour[:3].isdigit()


def _valid_behaviour(behaviour: str) -> bool:
    if behaviour in AFTER_DATA or _is_reply(behaviour):
        return True
    return behaviour.startswith(DATA_PREFIX) and _is_reply(behaviour[len(DATA_PREFIX) :])


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self,
        smtp: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.server.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        behaviour = self.server.behaviour_for(address)
        if behaviour and _is_reply(behaviour):
            return behaviour
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        smtp: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        behaviour = self.server.behaviour_for(address)
        if behaviour and _is_reply(behaviour):
            return behaviour
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        behaviours = [self.server.behaviour_for(a) or "" for a in envelope.rcpt_tos]
        for behaviour in behaviours:
            if behaviour.startswith(DATA_PREFIX):
                return behaviour[len(DATA_PREFIX) :]
        if REPLY_421_AFTER_DATA in behaviours:
            transport = smtp.transport
            assert transport is not None
            asyncio.get_running_loop().call_later(0.05, transport.close)
            return "421 4.3.0 Service shutting down, closing transmission channel"
        if DROP_AFTER_DATA in behaviours:
            self.server.record(session, envelope, "dropped")
            _abort(smtp)
            # Written to a closed transport, so never seen by the client.
            return "250 OK"
        if HANG_AFTER_DATA in behaviours:
            self.server.record(session, envelope, "hung")
            await asyncio.sleep(self.server.hang_seconds)
            _abort(smtp)
            return "250 OK"
        self.server.record(session, envelope, "accepted")
        return f"250 2.0.0 Ok: queued as {len(self.server.messages)}"


def _abort(smtp: SMTP) -> None:
    if smtp.transport is not None:
        smtp.transport.abort()  # type: ignore[attr-defined]


# --- as a process of its own -------------------------------------------------------------------


def _pair(value: str, sep: str) -> tuple[str, str]:
    if sep not in value:
        raise argparse.ArgumentTypeError(f"expected A{sep}B, got {value!r}")
    left, right = value.split(sep, 1)
    return left, right


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warmysender.testing.smtp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--log", type=Path, help="append one JSON line per received message")
    parser.add_argument(
        "--auth",
        action="append",
        default=[],
        type=lambda v: _pair(v, ":"),
        metavar="USER:PASS",
        help="a login (repeatable); with any, AUTH is required before MAIL",
    )
    parser.add_argument("--tls", choices=("none", "starttls", "ssl"), default="none")
    parser.add_argument(
        "--cert-dir", type=Path, help="where to write ca.pem/server.pem (default: a temp dir)"
    )
    parser.add_argument(
        "--behave",
        action="append",
        default=[],
        type=lambda v: _pair(v, "="),
        metavar="ADDRESS=BEHAVIOUR",
    )
    parser.add_argument(
        "--behaviours",
        type=Path,
        help="a JSON object address → behaviour, re-read whenever it changes",
    )
    parser.add_argument("--hang-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)

    tls_files = make_certificates(args.cert_dir) if args.cert_dir and args.tls != "none" else None
    server = SmtpServer(
        host=args.host,
        port=args.port,
        tls=args.tls,
        users=dict(args.auth),
        log_file=args.log,
        tls_files=tls_files,
        behaviours_file=args.behaviours,
        hang_seconds=args.hang_seconds,
    )
    for address, behaviour in args.behave:
        server.behave(address, behaviour)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    # The parent waits for this line: host, port, and the CA to trust ("-" without TLS).
    print(f"READY {server.host} {server.port} {server.ca_file or '-'}", flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
