"""Shared set-up for the benchmarks: a database (DATABASE_URL, or a throw-away embedded
PostgreSQL), Django configured and migrated, and the A/B timing discipline of
shared/research/perf-reliability.md §5: ours and the bare baseline interleaved over several
rounds in one process, medians compared, `ratio=` printed last."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def setup_django() -> Callable[[], None]:
    """Configure Django on a database; returns a clean-up function."""
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if not os.environ.get("DATABASE_URL"):
        from warmysender.lib import embedded_pg

        home = Path(tempfile.mkdtemp(prefix="warmysender-bench-"))
        server = embedded_pg.start(home, database="bench")
        os.environ["DATABASE_URL"] = embedded_pg.url_for(server, "bench")

        def cleanup() -> None:
            server.cleanup()
            shutil.rmtree(home, ignore_errors=True)

    os.environ.setdefault("WARMYSENDER_HOME", tempfile.mkdtemp(prefix="warmysender-bench-home-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warmysender.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return cleanup


def environment() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(",")[0]
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = "?"
    cpu = platform.processor() or platform.machine()
    return f"{version}; shared_buffers={buffers}; cpu={cpu} x{os.cpu_count()}; commit={commit}"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def summary(label: str, samples: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]
    return (
        f"{label}: median {statistics.median(s) * scale:.1f} {unit}, p99 {p99 * scale:.1f} {unit}, "
        f"min {s[0] * scale:.1f}, max {s[-1] * scale:.1f} ({len(s)} samples)"
    )
