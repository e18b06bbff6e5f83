"""Fixtures for the LinkedIn tests: the bundled Unipile simulator on a loopback port, and a
loopback HTTP receiver standing in for our webhook intake."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from warmysender.linkedin.simulator import SimulatorServer

# Webhook retries in tests: quick, so a test that makes the receiver fail once sees the retry.
FAST_RETRIES = (0.05, 0.1, 0.2, 0.4, 0.8)


@pytest.fixture
def unipile_sim() -> Iterator[SimulatorServer]:
    """A fresh simulator per test: `.base_url` (the DSN), `.api_key`, `.client()`, the control
    helpers (`add_account`, `expire_session`, `not_found`, `accept`, `inbound`, `go_down`,
    `requests()` …) and `.state` for direct inspection."""
    with SimulatorServer(webhook_retry_delays=FAST_RETRIES) as sim:
        yield sim


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    url: str
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many requests first (retry drills)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.arrived:
            ok = self.arrived.wait_for(lambda: len(self.received) >= count, timeout)
        assert ok, f"expected {count} webhook(s), got {len(self.received)}"
        return list(self.received)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver: WebhookReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            failing = receiver.fail_next > 0
            if failing:
                receiver.fail_next -= 1
            with receiver.arrived:
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                receiver.arrived.notify_all()
            self.send_response(500 if failing else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/unipile")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
