"""/api/v1/prospects: list, create (dedup by email), read, update, delete."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, QuerySet
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
    ProspectData,
    ProspectFilters,
    ProspectIn,
    ProspectOut,
    ProspectPage,
    ProspectPatch,
)
from warmysender.audit.services import Actor
from warmysender.prospects import services
from warmysender.prospects.models import Prospect, ProspectList

READ = "prospects:read"
WRITE = "prospects:write"

router = Router(tags=["prospects"])


def with_lists(qs: QuerySet[Prospect]) -> QuerySet[Prospect]:
    # One query for the list ids of a whole page instead of one per prospect.
    return qs.prefetch_related(
        Prefetch("lists", queryset=ProspectList.objects.only("id").order_by("created_at", "id"))
    )


def render(prospect: Prospect) -> dict[str, Any]:
    return {"data": ProspectOut.of(prospect).model_dump(mode="json")}


@router.get(
    "",
    auth=ApiKeyAuth(READ),
    response={200: ProspectPage, **errors(404)},
    operation_id="listProspects",
    summary="List prospects",
    description=scoped(
        READ,
        "Newest first, with cursor pagination. Filters combine: `q` searches email, names and "
        "company; `listId` keeps members of a list (404 when no such list exists in this "
        "workspace); `status` and `company` match exactly.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def list_prospects(request: HttpRequest, filters: Query[ProspectFilters]) -> ProspectPage:
    workspace = authenticated_key(request).workspace
    if filters.listId is not None:
        get_in_workspace(ProspectList, workspace, filters.listId)
    qs = services.search_prospects(
        workspace,
        query=filters.q,
        list_id=filters.listId,
        status=filters.status or "",
        company=filters.company,
    )
    rows, next_cursor = paginate(with_lists(qs), limit=filters.limit, cursor=filters.cursor)
    return ProspectPage(data=[ProspectOut.of(p) for p in rows], nextCursor=next_cursor)


@router.post(
    "",
    auth=ApiKeyAuth(WRITE),
    response={200: ProspectData, 201: ProspectData, **errors(409)},
    operation_id="createProspect",
    summary="Create a prospect (or return the one with this email)",
    description=scoped(
        WRITE,
        "Deduplicates by email, ignoring case: when the workspace already has the address, that "
        "prospect is returned unchanged with 200; a new one is answered with 201. A suppressed "
        "address is refused (400 validation_error, `details[0].reason` = `suppressed`); the "
        "plan's prospect limit gives 403 quota_exceeded.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def create_prospect(
    request: HttpRequest, body: ProspectIn, idempotency_key: IdempotencyKeyHeader = None
) -> JsonResponse:
    key = authenticated_key(request)
    now = timezone.now()

    def produce() -> tuple[int, dict[str, Any]]:
        require_active_subscription(key.workspace, now)
        result = services.create_prospect(
            workspace=key.workspace,
            data=body.model_dump(exclude_unset=True),
            actor=Actor.api_key(key),
            now=now,
        )
        return (201 if result.created else 200), render(result.prospect)

    return idempotency.respond(request, produce, now=now)


@router.get(
    "/{id}",
    auth=ApiKeyAuth(READ),
    response={200: ProspectData, **errors(404)},
    operation_id="getProspect",
    summary="Get a prospect",
    description=scoped(READ, "404 not_found for an id that is missing or of another workspace."),
    openapi_extra=ERROR_HEADERS,
)
def get_prospect(request: HttpRequest, id: uuid.UUID) -> dict[str, Any]:
    prospect = get_in_workspace(Prospect, authenticated_key(request).workspace, id)
    return render(prospect)


@router.patch(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={200: ProspectData, **errors(404, 409)},
    operation_id="updateProspect",
    summary="Update a prospect",
    description=scoped(
        WRITE,
        'Partial update: only the fields sent change; `null` or `""` clears a field. '
        '`customFields` are merged into the stored ones, and a `""` value removes a field. '
        "Changing the email to one another prospect has is a 409 conflict.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def update_prospect(request: HttpRequest, id: uuid.UUID, body: ProspectPatch) -> dict[str, Any]:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    prospect = get_in_workspace(Prospect, key.workspace, id)
    services.update_prospect(
        prospect=prospect,
        data=body.model_dump(exclude_unset=True),
        actor=Actor.api_key(key),
        now=now,
    )
    return render(prospect)


@router.delete(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={204: None, **errors(404)},
    operation_id="deleteProspect",
    summary="Delete a prospect",
    description=scoped(WRITE, "Removes the prospect and its list memberships."),
    openapi_extra=ERROR_HEADERS,
)
def delete_prospect(request: HttpRequest, id: uuid.UUID) -> Status[None]:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    prospect = get_in_workspace(Prospect, key.workspace, id)
    services.delete_prospect(prospect=prospect, actor=Actor.api_key(key), now=now)
    return Status(204, None)
