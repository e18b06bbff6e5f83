"""/api/v1/suppressions: the workspace's do-not-contact list of addresses and domains."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja import Query, Router, Status

from warmysender.accounts.quotas import require_active_subscription
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.api import idempotency
from warmysender.api.auth import ApiKeyAuth, authenticated_key, scoped
from warmysender.api.errors import ERROR_HEADERS, errors
from warmysender.api.idempotency import IdempotencyKeyHeader
from warmysender.api.pagination import paginate
from warmysender.api.schemas import (
    SuppressionData,
    SuppressionFilters,
    SuppressionIn,
    SuppressionOut,
    SuppressionPage,
)
from warmysender.audit.services import Actor
from warmysender.prospects import services
from warmysender.prospects.models import Suppression

READ = "suppressions:read"
WRITE = "suppressions:write"

router = Router(tags=["suppressions"])


@router.get(
    "",
    auth=ApiKeyAuth(READ),
    response={200: SuppressionPage, **errors()},
    operation_id="listSuppressions",
    summary="List suppressed addresses and domains",
    description=scoped(READ, "Newest first, with cursor pagination; `q` searches the value."),
    openapi_extra=ERROR_HEADERS,
)
def list_suppressions(request: HttpRequest, filters: Query[SuppressionFilters]) -> SuppressionPage:
    qs = Suppression.objects.filter(workspace=authenticated_key(request).workspace)
    if filters.q.strip():
        qs = qs.filter(value__icontains=filters.q.strip())
    rows, next_cursor = paginate(qs, limit=filters.limit, cursor=filters.cursor)
    return SuppressionPage(data=[SuppressionOut.of(s) for s in rows], nextCursor=next_cursor)


@router.post(
    "",
    auth=ApiKeyAuth(WRITE),
    response={200: SuppressionData, 201: SuppressionData, **errors(409)},
    operation_id="createSuppression",
    summary="Suppress an address or a domain",
    description=scoped(
        WRITE,
        "`value` is an email address (`a@b.com`) or a domain (`b.com` or `@b.com`); it is stored "
        "lower-cased. An entry that already exists is returned with 200, a new one with 201. "
        "Nothing is sent to a suppressed address or domain, whatever list or campaign it is in. "
        "This call works even when the subscription is inactive, so an opt-out is never lost.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def create_suppression(
    request: HttpRequest, body: SuppressionIn, idempotency_key: IdempotencyKeyHeader = None
) -> JsonResponse:
    key = authenticated_key(request)
    now = timezone.now()

    def produce() -> tuple[int, dict[str, Any]]:
        # No subscription check on purpose: recording an opt-out only ever reduces sending.
        entry, created = services.add_suppression(
            workspace=key.workspace,
            value=body.value,
            reason=body.reason or "",
            actor=Actor.api_key(key),
            now=now,
        )
        return (201 if created else 200), {"data": SuppressionOut.of(entry).model_dump(mode="json")}

    return idempotency.respond(request, produce, now=now)


@router.delete(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={204: None, **errors(404)},
    operation_id="deleteSuppression",
    summary="Remove a suppression",
    description=scoped(WRITE, "Mail to the address or domain becomes possible again."),
    openapi_extra=ERROR_HEADERS,
)
def delete_suppression(request: HttpRequest, id: uuid.UUID) -> Status[None]:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    entry = get_in_workspace(Suppression, key.workspace, id)
    services.remove_suppression(entry=entry, actor=Actor.api_key(key), now=now)
    return Status(204, None)
