"""The embedded PostgreSQL server used when DATABASE_URL is unset.

pgserver keeps the data directory under WARMYSENDER_HOME/pg and listens on a unix socket only.
We start it from the CLI (never from settings.py, which every manage.py command imports) and pass
its URL to child processes through DATABASE_URL.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from pgserver import PostgresServer

DATABASE_NAME = "warmysender"
log = logging.getLogger(__name__)


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
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return server


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
