"""Named SQL: hot-path statements live in `.sql` files next to the code that runs them, so they
can be read, reviewed and EXPLAINed as SQL."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(package: str, name: str) -> str:
    """The text of `<package>/sql/<name>.sql`."""
    return (resources.files(package) / "sql" / f"{name}.sql").read_text()
