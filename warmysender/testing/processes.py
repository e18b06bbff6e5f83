"""Running real `warmysender` processes from tests against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.db import connection


def url_of_test_database() -> str:
    """The URL of the database this test runs on (a unix socket or TCP server)."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    host = s["HOST"] or "127.0.0.1"
    port = s["PORT"] or 5432
    if host.startswith("/"):
        return f"postgresql://{auth}@/{s['NAME']}?host={host}&port={port}"
    return f"postgresql://{auth}@{host}:{port}/{s['NAME']}"


def process_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process that shares this test's database and secrets."""
    from django.conf import settings

    return {
        **os.environ,
        "DATABASE_URL": url_of_test_database(),
        "WARMYSENDER_HOME": str(home),
        # Mailbox passwords stored by the test must decrypt in the child.
        "CREDENTIALS_KEYS": ",".join(settings.CREDENTIALS_KEYS),
        "SECRET_KEY": settings.SECRET_KEY,
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`warmysender manage ARGS` as a child process."""
    return subprocess.Popen(
        [sys.executable, "-m", "warmysender.cli", "manage", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float = 60.0,
    what: str = "condition",
    process: subprocess.Popen[str] | None = None,
) -> None:
    """Poll until `condition()` holds: waiting on another process, not on the clock. With
    `process`, its early exit fails at once and shows what it printed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"exited with {process.returncode} before {what}:\n{out}\n{err}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
