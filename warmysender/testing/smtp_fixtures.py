"""pytest fixtures around `warmysender.testing.smtp` (imported by warmysender/conftest.py).

def test_it_sends(smtp_server):            # plain SMTP, no AUTH required
    ...; assert smtp_server.messages[0].rcpt_tos == ["lead@example.com"]

def test_tls(smtp_server_factory, settings):
    server = smtp_server_factory(tls="starttls", users={"me@example.com": "pw"})
    settings.SMTP_CA_FILE = str(server.ca_file)   # make clients trust its certificate
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from warmysender.testing.smtp import SmtpServer, TlsFiles, make_certificates


@pytest.fixture(scope="session")
def smtp_tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """One CA and server certificate for every test server of the session."""
    return make_certificates(tmp_path_factory.mktemp("smtp-certs"))


@pytest.fixture
def smtp_server_factory(
    tmp_path: Path, smtp_tls_files: TlsFiles
) -> Iterator[Callable[..., SmtpServer]]:
    """Start servers with any SmtpServer options; all are stopped after the test. Each logs to
    its own file in the test's tmp_path (`server.log_file`)."""
    servers: list[SmtpServer] = []
    numbers = itertools.count(1)

    def make(**options: Any) -> SmtpServer:
        options.setdefault("tls_files", smtp_tls_files)
        options.setdefault("log_file", tmp_path / f"smtp-{next(numbers)}.jsonl")
        server = SmtpServer(**options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., SmtpServer]) -> SmtpServer:
    """Plain SMTP on 127.0.0.1 that accepts mail without AUTH (AUTH still works for users
    added to `smtp_server.users`)."""
    return smtp_server_factory()
