"""The rate limit and idempotency hold across web processes: two real `warmysender web` servers
on the test database, sharing nothing but PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone

from warmysender.conftest import Tenant
from warmysender.prospects.models import Prospect
from warmysender.testing.processes import url_of_test_database

pytestmark = [
    pytest.mark.pg_server,
    pytest.mark.slow,
    # The servers see committed data only.
    pytest.mark.django_db(transaction=True),
]

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"web server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        # Polling a starting process, not waiting for the clock: nothing here depends on time.
        time.sleep(0.1)
    raise AssertionError(f"{base_url} did not become healthy in {STARTUP_TIMEOUT} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def two_web_servers(transactional_db: None, tmp_path: Path) -> Iterator[list[str]]:
    env = {
        **os.environ,
        "DATABASE_URL": url_of_test_database(),
        "WARMYSENDER_HOME": str(tmp_path),
        "API_RATE_LIMIT_PER_MINUTE": "60",
    }
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "warmysender.cli", "web", "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_until_healthy(url, process)
        yield urls
    finally:
        # Stopped before pytest-django flushes the database, which waits for their sessions.
        for process in processes:
            stop(process)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def test_the_rate_limit_counts_requests_to_every_process(
    two_web_servers: list[str], tenant: Tenant
) -> None:
    # The limit is a sliding window: a burst that straddles a minute boundary is partly weighed
    # down, and may legitimately admit a 61st request. Such a run proves nothing either way, so
    # it is repeated with a fresh key; a burst takes well under a second, so one repeat is rare.
    for _attempt in range(3):
        headers = {"Authorization": f"Bearer {tenant.key('prospects:read')}"}
        started = timezone.now()
        statuses = [
            httpx.get(f"{two_web_servers[i % 2]}/api/v1/prospects", headers=headers).status_code
            for i in range(60)
        ]
        over = [httpx.get(f"{url}/api/v1/prospects", headers=headers) for url in two_web_servers]
        if minute_of(started) == minute_of(timezone.now()):
            break
    else:
        pytest.fail("every burst straddled a minute boundary")
    assert statuses == [200] * 60
    assert [r.status_code for r in over] == [429, 429]
    for response in over:
        assert response.json()["error"]["code"] == "rate_limited"
        assert int(response.headers["Retry-After"]) >= 1


def post_at_once(urls: list[str], body: dict[str, Any], headers: dict[str, str]) -> list[Any]:
    """POST the same request to every URL, released together from a barrier."""
    barrier = threading.Barrier(len(urls))
    responses: list[Any] = [None] * len(urls)

    def post(slot: int, url: str) -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            responses[slot] = client.post(f"{url}/api/v1/prospects", json=body, headers=headers)

    threads = [threading.Thread(target=post, args=pair) for pair in enumerate(urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def test_one_idempotency_key_sent_to_both_processes_at_once_creates_one_prospect(
    two_web_servers: list[str], tenant: Tenant
) -> None:
    authorization = f"Bearer {tenant.key('prospects:write')}"
    for round_ in range(5):
        email = f"race{round_}@example.com"
        headers = {"Authorization": authorization, "Idempotency-Key": f"race-{round_}"}
        first, second = post_at_once(two_web_servers, {"email": email}, headers)
        # Without the key, the loser would get the email dedup's 200 instead of the same 201.
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert Prospect.objects.filter(workspace=tenant.workspace, email=email).count() == 1
        replayed = [r.headers.get("Idempotent-Replayed") for r in (first, second)]
        assert replayed.count("true") == 1
