"""Loaded by pytest before Django is configured (`-p warmysender.testing.pytest_plugin`).

Without DATABASE_URL the test run gets its own embedded PostgreSQL in a temporary directory, so
`pytest` works on a fresh machine with nothing pre-started. With DATABASE_URL set (CI's second
pass), that server is used and pytest-django creates its `test_…` database there.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

# pgserver logs every start and stop at INFO, also from atexit after pytest closed its streams.
logging.getLogger("pgserver").setLevel(logging.WARNING)

if not os.environ.get("DATABASE_URL"):
    from warmysender.lib import embedded_pg

    _home = Path(tempfile.mkdtemp(prefix="warmysender-test-"))
    _server = embedded_pg.start(_home, database="warmysender")
    os.environ["DATABASE_URL"] = embedded_pg.url_for(_server, "warmysender")
    os.environ["WARMYSENDER_TEST_EMBEDDED_PG"] = "1"

    def _stop() -> None:
        try:
            _server.cleanup()
        finally:
            shutil.rmtree(_home, ignore_errors=True)

    atexit.register(_stop)

os.environ.setdefault("WARMYSENDER_HOME", tempfile.mkdtemp(prefix="warmysender-home-"))
