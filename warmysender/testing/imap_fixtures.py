"""pytest fixtures around `warmysender.testing.imap` (imported by warmysender/conftest.py).

def test_it(imap_server, settings):
    imap_server.add_user("me@example.com", "pw")       # unique logins per test
    settings.SMTP_CA_FILE = str(imap_server.ca_file)   # trust its certificate
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from warmysender.testing.imap import DovecotServer, dovecot_available
from warmysender.testing.smtp import TlsFiles


@pytest.fixture(scope="session")
def imap_server(smtp_tls_files: TlsFiles) -> Iterator[DovecotServer]:
    """One Dovecot for the session (IMAP with STARTTLS on `.port`, IMAPS on `.ssl_port`), with
    the same certificate as the test SMTP servers. Dovecot is a required test peer: without it
    the IMAP tests fail rather than pass unseen (scripts/test.sh installs it)."""
    if not dovecot_available():
        pytest.fail(
            "Dovecot is not installed: run bash scripts/test.sh, or apt-get install dovecot-imapd"
        )
    with DovecotServer(tls_files=smtp_tls_files) as server:
        yield server
