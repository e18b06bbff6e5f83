"""The embedded server sizes its buffer cache for the machine, and keeps it across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from warmysender.lib import embedded_pg


def test_the_buffer_cache_is_a_quarter_of_memory_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = 4096
    for total_mb, expected in ((256, 128), (2048, 512), (3000, 750), (64 * 1024, 1024)):
        pages = total_mb * 1024 * 1024 // page
        monkeypatch.setattr(
            embedded_pg.os,
            "sysconf",
            lambda name, pages=pages: page if name == "SC_PAGE_SIZE" else pages,
        )
        assert embedded_pg.shared_buffers_mb() == expected


def test_a_new_server_starts_with_its_buffer_cache_sized(tmp_path: Path) -> None:
    wanted = embedded_pg.shared_buffers_mb()
    for _ in range(2):  # created, then started again from its data directory
        server = embedded_pg.start(tmp_path, database="sized")
        try:
            shown = server.psql(
                "SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers';"
            )
        finally:
            server.cleanup()
        assert f" {wanted}\n" in shown, shown
