"""The test SMTP server itself, as a process of its own: what fault tests start and kill."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from warmysender.testing.smtp import SmtpServer, read_log


@pytest.fixture
def process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "warmysender.testing.smtp", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[0] == "READY", ready
        return proc, ready

    yield start  # type: ignore[misc]
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


def mail(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "me@example.com", to, "hi"
    msg["Message-ID"] = f"<{to.split('@')[0]}.1@example.com>"
    msg.set_content("hello")
    return msg


def test_the_process_logs_each_message_and_reloads_behaviours(
    process: object, tmp_path: Path
) -> None:
    log = tmp_path / "smtp.jsonl"
    behaviours = tmp_path / "behaviours.json"
    proc, (_, host, port, ca) = process(  # type: ignore[operator]
        "--port",
        "0",
        "--log",
        str(log),
        "--auth",
        "me@example.com:pw",
        "--behaviours",
        str(behaviours),
        "--behave",
        "gone@example.com=550 5.1.1 No such user",
    )
    assert ca == "-"
    with smtplib.SMTP(host, int(port), timeout=5) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(mail("a@example.com"))  # AUTH is required
        assert refused.value.smtp_code == 530
        client.login("me@example.com", "pw")
        client.send_message(mail("a@example.com"))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(mail("gone@example.com"))
        behaviours.write_text(json.dumps({"later@example.com": "451 4.7.1 Not now"}))
        with pytest.raises(smtplib.SMTPRecipientsRefused) as later:
            client.send_message(mail("later@example.com"))
        assert later.value.recipients["later@example.com"][0] == 451

    [received] = read_log(log)
    assert received.rcpt_tos == ["a@example.com"]
    assert received.auth_user == "me@example.com"
    assert received.message_id == "<a.1@example.com>"
    assert received.disposition == "accepted"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_the_process_speaks_implicit_tls_with_a_ca_to_trust(
    process: object, tmp_path: Path
) -> None:
    _, (_, host, port, ca) = process("--tls", "ssl", "--cert-dir", str(tmp_path / "certs"))  # type: ignore[operator]
    assert Path(ca) == tmp_path / "certs" / "ca.pem"
    context = ssl.create_default_context(cafile=ca)
    with smtplib.SMTP_SSL(host, int(port), context=context, timeout=5) as client:
        assert client.noop()[0] == 250


def test_a_killed_sender_mid_message_leaves_nothing_in_the_log(tmp_path: Path) -> None:
    """The oracle counts only messages whose final dot arrived."""
    log = tmp_path / "smtp.jsonl"
    with SmtpServer(log_file=log) as server:
        code = (
            "import smtplib,os,signal\n"
            f"c=smtplib.SMTP('{server.host}',{server.port},timeout=5)\n"
            "c.mail('me@example.com'); c.rcpt('a@example.com'); c.docmd('data')\n"
            "c.send(b'Subject: half\\r\\n\\r\\nno final dot')\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n"
        )
        child = subprocess.run([sys.executable, "-c", code], check=False)
        assert child.returncode == -signal.SIGKILL
        assert server.messages == []
    assert read_log(log) == []
    assert os.path.exists(log) is False


def test_a_port_taken_between_the_look_and_the_bind_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Other test runs share the machine: a free port can be gone a moment later."""
    from warmysender.testing import smtp

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], smtp.free_port()])
        monkeypatch.setattr(smtp, "free_port", lambda host="127.0.0.1": next(ports))
        with SmtpServer() as server:
            assert server.port != taken.getsockname()[1]
            with smtplib.SMTP(server.host, server.port, timeout=5) as client:
                assert client.noop()[0] == 250
