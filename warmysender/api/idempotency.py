"""`Idempotency-Key` on creating POSTs.

The first request with a key runs inside one transaction together with the insertion of its
record, and the response is stored in that same transaction. A concurrent request with the same
key (from any web process) blocks on the unique index until the first commits, then replays the
stored response; if the first failed, its record rolled back with it and the second simply runs.
Keys are scoped to the workspace and live 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from ninja.params import HeaderEx, P

from warmysender.api.auth import authenticated_key
from warmysender.api.errors import ApiError

KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# Visible ASCII, no spaces: what UUIDs and the usual client-generated keys look like, and
# nothing a proxy could rewrite on the way.
KEY_PATTERN = r"^[!-~]{1,255}$"
_KEY_RE = re.compile(r"[!-~]{1,255}")
HEADER = "Idempotency-Key"


def respond(
    request: HttpRequest, produce: Callable[[], tuple[int, Any]], *, now: datetime
) -> JsonResponse:
    """Run `produce` (returning status and a JSON-ready body) at most once per idempotency key,
    inside a transaction. `now` is the request's clock reading, also used for the key's age."""
    key = request.headers.get(HEADER)
    if key is None:
        with transaction.atomic():
            status, body = produce()
        return JsonResponse(body, status=status, safe=False)
    if not _KEY_RE.fullmatch(key):
        raise ApiError(
            "validation_error",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters without spaces.",
            details=[{"field": HEADER, "in": "header", "message": "invalid idempotency key"}],
        )
    workspace = authenticated_key(request).workspace
    request_hash = hashlib.sha256(
        f"{request.method} {request.path}\n".encode() + request.body
    ).hexdigest()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM api_idempotencyrecord WHERE workspace_id = %s AND key = %s "
                "AND created_at <= %s",
                [workspace.pk, key, now - KEY_TTL],
            )
            # Blocks while another transaction holds an uncommitted record with this key.
            cursor.execute(
                """
                INSERT INTO api_idempotencyrecord (workspace_id, key, request_hash, created_at)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (workspace_id, key) DO NOTHING
                RETURNING id
                """,
                [workspace.pk, key, request_hash, now],
            )
            inserted = cursor.fetchone()
            if inserted is None:
                cursor.execute(
                    "SELECT request_hash, status_code, response_body FROM api_idempotencyrecord "
                    "WHERE workspace_id = %s AND key = %s",
                    [workspace.pk, key],
                )
                stored_hash, status, stored_body = cursor.fetchone()
        if inserted is None:
            if stored_hash != request_hash:
                raise ApiError(
                    "idempotency_conflict",
                    f"This {HEADER} was already used with a different request.",
                    details=[{"field": HEADER, "in": "header", "message": "key reused"}],
                )
            # Django loads jsonb as text; decode it unless a driver already did.
            body = json.loads(stored_body) if isinstance(stored_body, str) else stored_body
            response = JsonResponse(body, status=status, safe=False)
            response["Idempotent-Replayed"] = "true"
            return response
        status, body = produce()
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE api_idempotencyrecord SET status_code = %s, response_body = %s::jsonb "
                "WHERE id = %s",
                [status, json.dumps(body, cls=DjangoJSONEncoder), inserted[0]],
            )
    return JsonResponse(body, status=status, safe=False)


# The header as an operation parameter, so the OpenAPI document shows it; `respond` reads it.
IdempotencyKeyHeader = HeaderEx[
    str | None,
    P(
        alias=HEADER,
        description=(
            "Makes a retried POST safe: the first response for a key is stored for 24 hours and "
            "replayed for the same request; the same key with a different body is a 409 "
            "idempotency_conflict."
        ),
        pattern=KEY_PATTERN,
        max_length=MAX_KEY_LENGTH,
    ),
]
