"""Keyset (cursor) pagination: `?limit=&cursor=` → {"data": [...], "nextCursor": ...}.

Rows come newest first, ordered by (created_at, id); the cursor names the last row returned, so
pages stay stable while rows are added or removed. A cursor is `<created_at in µs since the
epoch, 17 digits>.<id as 32 hex digits>`. Clients treat it as opaque, but its shape is strict and fully
described by CURSOR_PATTERN: every string that matches it is a valid position (it may simply
point past the end), and anything else is a 400, so the OpenAPI schema and the server agree.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from warmysender.api.errors import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# 17 digits of microseconds reach the year 5138, within datetime's and PostgreSQL's range. The
# fixed length (with maxLength) also keeps regex dialects from disagreeing about a trailing "\n".
CURSOR_PATTERN = r"^[0-9]{17}\.[0-9a-f]{32}$"
CURSOR_LENGTH = 50
_CURSOR_RE = re.compile(r"[0-9]{17}\.[0-9a-f]{32}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

M = TypeVar("M", bound=Model)


def encode_cursor(created_at: datetime, pk: uuid.UUID) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros:017d}.{pk.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    if not _CURSOR_RE.fullmatch(cursor):
        raise ApiError(
            "validation_error",
            "The cursor is not valid; pass back a nextCursor value or start again without it.",
            details=[{"field": "cursor", "in": "query", "message": "malformed cursor"}],
        )
    micros, hex_id = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id)


def paginate(
    qs: QuerySet[M], *, limit: int | None, cursor: str | None
) -> tuple[list[M], str | None]:
    """One page of `qs` (a model with a UUID primary key and `created_at`), newest first."""
    size = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        raise ApiError(
            "validation_error",
            f"limit must be between 1 and {MAX_LIMIT}.",
            details=[{"field": "limit", "in": "query", "message": f"between 1 and {MAX_LIMIT}"}],
        )
    qs = qs.order_by("-created_at", "-id")
    if cursor:
        created_at, pk = decode_cursor(cursor)
        qs = qs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))
    rows = list(qs[: size + 1])
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last: Any = rows[-1]
        next_cursor = encode_cursor(last.created_at, last.pk)
    return rows, next_cursor
