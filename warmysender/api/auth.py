"""Bearer API keys with scopes, and the per-key rate limit."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from warmysender.accounts.models import ApiKey
from warmysender.accounts.services import API_KEY_PREFIX, hash_api_key
from warmysender.api.errors import ApiError

# Floating-point slack in the sliding-window comparison, so that waiting exactly the announced
# Retry-After is always enough.
_EPSILON = 1e-9


class ApiKeyAuth(HttpBearer):
    """`auth=ApiKeyAuth("prospects:read")`: a valid, unrevoked key holding the scope.

    Unknown or revoked key → 401. Then the rate limit (429), then the scope (403
    insufficient_scope): a request refused for its scope still counts toward the limit, as a
    client hammering an endpoint it cannot use must be slowed down too.
    """

    openapi_scheme = "bearer"

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        if not token.startswith(API_KEY_PREFIX):
            return None
        key = (
            ApiKey.objects.select_related("workspace", "workspace__owner")
            .filter(key_hash=hash_api_key(token), revoked_at__isnull=True)
            .first()
        )
        if key is None:
            return None
        now = timezone.now()
        enforce_rate_limit(key, now)
        if self.scope not in key.scopes:
            raise ApiError(
                "insufficient_scope",
                f"This API key lacks the {self.scope} scope.",
                details={"required": self.scope, "granted": key.scopes},
            )
        # Touch at most once a minute: a write per request would be wasted I/O.
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        request.workspace = key.workspace  # type: ignore[attr-defined]
        request.api_key = key  # type: ignore[attr-defined]
        return key


def enforce_rate_limit(key: ApiKey, now: datetime) -> None:
    """Sliding-window limit: this minute's count plus the previous minute's, weighted by how much
    of it still lies inside the last 60 seconds. Refused requests are not counted.

    The counters are rows bumped with an upsert, so the limit is exact across any number of web
    processes: the row lock orders concurrent requests of one key.
    """
    limit = settings.API_RATE_LIMIT_PER_MINUTE
    window = now.replace(second=0, microsecond=0)
    previous_window = window - timedelta(minutes=1)
    elapsed = (now - window).total_seconds()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH bumped AS (
                INSERT INTO api_ratelimitwindow (workspace_id, api_key_id, window_start, count)
                VALUES (%(ws)s, %(key)s, %(window)s, 1)
                ON CONFLICT (api_key_id, window_start)
                DO UPDATE SET count = api_ratelimitwindow.count + 1
                RETURNING count
            )
            SELECT (SELECT count FROM bumped),
                   COALESCE((SELECT count FROM api_ratelimitwindow
                             WHERE api_key_id = %(key)s AND window_start = %(prev)s), 0)
            """,
            {"ws": key.workspace_id, "key": key.pk, "window": window, "prev": previous_window},
        )
        current, previous = cursor.fetchone()
        if current == 1:
            # First request of a new minute: windows older than the previous one no longer
            # matter, so this key's table footprint stays at two rows.
            cursor.execute(
                "DELETE FROM api_ratelimitwindow WHERE api_key_id = %s AND window_start < %s",
                [key.pk, previous_window],
            )
        if previous * (1 - elapsed / 60) + current <= limit + _EPSILON:
            return
        cursor.execute(
            "UPDATE api_ratelimitwindow SET count = count - 1 "
            "WHERE api_key_id = %s AND window_start = %s",
            [key.pk, window],
        )
    retry_after = seconds_until_allowed(limit, current - 1, previous, elapsed)
    raise ApiError(
        "rate_limited",
        f"Rate limit of {limit} requests per minute exceeded; retry in {retry_after} s.",
        details={"limit": limit, "retryAfter": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def seconds_until_allowed(limit: int, current: int, previous: int, elapsed: float) -> int:
    """Whole seconds until one more request fits, given `current` requests admitted in this
    minute, `previous` in the one before, and `elapsed` seconds into this minute."""
    room = limit - current - 1
    if room >= 0 and previous > 0:
        # Later in this minute, once enough of the previous minute has slid out of the window:
        # previous * (1 - (elapsed + t) / 60) <= room.
        t = 60 * (1 - room / previous) - elapsed
        if t < 60 - elapsed:
            return max(1, math.ceil(t - _EPSILON))
    # Not before the next minute, where this minute's count becomes the weighted one:
    # current * (1 - s / 60) + 1 <= limit, s seconds into it.
    s = 0.0 if current <= limit - 1 else 60 * (1 - (limit - 1) / current)
    return max(1, math.ceil(60 - elapsed + s - _EPSILON))


def authenticated_key(request: HttpRequest) -> ApiKey:
    """The key `ApiKeyAuth` accepted for this request (its workspace is loaded with it)."""
    key: ApiKey = request.api_key  # type: ignore[attr-defined]
    return key


def scoped(scope: str, description: str) -> str:
    """An operation description that names the scope it needs, as the docs promise."""
    return f"**Scope:** `{scope}`.\n\n{description}"
