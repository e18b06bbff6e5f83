"""The embedded PostgreSQL server used when DATABASE_URL is unset.

pgserver keeps the data directory under WARMYSENDER_HOME/pg and listens on a unix socket only.
We start it from the CLI (never from settings.py, which every manage.py command imports) and pass
its URL to child processes through DATABASE_URL.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from pgserver import PostgresServer

DATABASE_NAME = "warmysender"
log = logging.getLogger(__name__)
# PostgreSQL's own default buffer cache (128 MB) is sized for a server that shares its machine
# with anything. The embedded server is this application's database, and the scheduler and the
# sender touch rows spread over large tables (a million enrollments is some 400 MB with their
# indexes): a quarter of the memory, at least the default and at most 1 GB — more than that is
# a machine for a database of its own (DATABASE_URL).
MIN_SHARED_BUFFERS_MB = 128
MAX_SHARED_BUFFERS_MB = 1024


def shared_buffers_mb() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):  # pragma: no cover - not a POSIX system
        return MIN_SHARED_BUFFERS_MB
    return max(MIN_SHARED_BUFFERS_MB, min(MAX_SHARED_BUFFERS_MB, total // 4))


def pgdata_for(home: Path) -> Path:
    return home / "pg"


def start(home: Path, *, database: str = DATABASE_NAME) -> PostgresServer:
    """Start (or re-attach to) the embedded server and make sure `database` exists.

    Returns the pgserver handle; call `.cleanup()` on it to stop the server when this process was
    the last user.
    """
    import pgserver

    home.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata_for(home), cleanup_mode="stop")
    if _size_buffers(server):
        # The new size takes a restart. When another process is using the server, cleanup only
        # lets go of it and the size applies from its next start.
        server.cleanup()
        server = pgserver.get_server(pgdata_for(home), cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return server


def _size_buffers(server: PostgresServer) -> bool:
    """Set shared_buffers to `shared_buffers_mb()`; whether a restart is needed for it."""
    wanted = shared_buffers_mb()
    shown = server.psql(
        "SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers';"
    )
    found = re.search(r"^\s*(\d+)\s*$", shown, re.MULTILINE)
    if found is not None and int(found.group(1)) == wanted:
        return False
    server.psql(f"ALTER SYSTEM SET shared_buffers = '{wanted}MB';")
    log.info("embedded PostgreSQL: shared_buffers set to %s MB", wanted)
    return True


def url_for(server: PostgresServer, database: str = DATABASE_NAME) -> str:
    uri: str = server.get_uri()
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=f"/{database}"))


def running_url(home: Path, database: str = DATABASE_NAME) -> str | None:
    """The URL of an embedded server already running for `home`, without starting one."""
    try:
        from pgserver.utils import PostmasterInfo
    except ImportError:  # pragma: no cover - pgserver is a hard dependency
        return None
    pgdata = pgdata_for(home)
    if not (pgdata / "postmaster.pid").exists():
        return None
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    if info is None or not info.is_running():
        return None
    parts = urlsplit(info.get_uri())
    return urlunsplit(parts._replace(path=f"/{database}"))
