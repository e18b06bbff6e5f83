"""https deliveries go to the checked IP, yet the TLS handshake sends the host name as SNI and
the certificate is verified against that name (not the IP); bad certificates fail the attempt."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from warmysender.testing.smtp import TlsFiles, make_certificates
from warmysender.webhooks import transport
from warmysender.webhooks.tests.receiver import Receiver


def tls_receiver(files: TlsFiles) -> Receiver:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_file, files.key_file)
    return Receiver(tls=context)


def trusting(files: TlsFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(files.ca_file))


@pytest.fixture
def certs(tmp_path: Path) -> TlsFiles:
    return make_certificates(tmp_path / "ok", hostnames=("localhost",))


@pytest.fixture
def https_receiver(certs: TlsFiles) -> Iterator[Receiver]:
    server = tls_receiver(certs)
    yield server
    server.close()


def test_https_with_a_valid_certificate_for_the_name_succeeds(
    https_receiver: Receiver, certs: TlsFiles
) -> None:
    result = transport.post(
        https_receiver.url(host="localhost"), b"{}", {}, allow_loopback=True, verify=trusting(certs)
    )
    assert result.succeeded, result.error
    [got] = https_receiver.requests
    assert got.headers["host"] == f"localhost:{https_receiver.port}"


def test_a_certificate_for_another_name_fails_even_though_it_covers_the_ip(
    tmp_path: Path,
) -> None:
    # The certificate names elsewhere.example and 127.0.0.1: checking it against the IP we
    # connect to would pass; checking it against the URL's name must not.
    files = make_certificates(tmp_path / "other", hostnames=("elsewhere.example",))
    server = tls_receiver(files)
    try:
        result = transport.post(
            server.url(host="localhost"), b"{}", {}, allow_loopback=True, verify=trusting(files)
        )
    finally:
        server.close()
    assert not result.succeeded
    assert "certificate" in result.error.lower() or "hostname" in result.error.lower()
    assert server.requests == []


def test_an_untrusted_certificate_fails_the_attempt(https_receiver: Receiver) -> None:
    result = transport.post(https_receiver.url(host="localhost"), b"{}", {}, allow_loopback=True)
    assert not result.succeeded and "certificate verify failed" in result.error.lower()
    assert https_receiver.requests == []
