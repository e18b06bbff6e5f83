"""Named SQL: hot-path statements live in `.sql` files next to the code that runs them, so they
can be read, reviewed and EXPLAINed as SQL."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import psycopg
from django.db import connection


@cache
def load(package: str, name: str) -> str:
    """The text of `<package>/sql/<name>.sql`, without its comment lines (they are for readers;
    psycopg caches the conversion of short statements only, and a hot statement is sent often)."""
    text = (resources.files(package) / "sql" / f"{name}.sql").read_text()
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))


def hot_cursor() -> psycopg.Cursor[Any]:
    """A cursor with server-side parameter binding on Django's connection (in its transaction).

    Django binds parameters on the client, quoting every element of an array in Python; the hot
    path sends arrays of thousands of ids, where that quoting alone costs more than the query.
    Large arrays are best written `%(ids)b::uuid[]`: binary parameters need no quoting at all.
    """
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)
