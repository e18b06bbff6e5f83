"""/api/v1/lists: prospect lists and their members. Lists have no scope of their own; they are
part of the prospects data, so prospects:read and prospects:write govern them."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Count, QuerySet
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja import Query, Router, Status

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import require_active_subscription
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.api import idempotency
from warmysender.api.auth import ApiKeyAuth, authenticated_key, scoped
from warmysender.api.errors import ERROR_HEADERS, errors
from warmysender.api.idempotency import IdempotencyKeyHeader
from warmysender.api.pagination import paginate
from warmysender.api.schemas import (
    AddedCount,
    AddedData,
    ListData,
    ListIn,
    ListOut,
    ListPage,
    ListPatch,
    PageFilters,
    ProspectIds,
    RemovedCount,
    RemovedData,
)
from warmysender.audit.services import Actor
from warmysender.prospects import services
from warmysender.prospects.models import ProspectList

READ = "prospects:read"
WRITE = "prospects:write"

router = Router(tags=["lists"])


def counted(workspace: Workspace) -> QuerySet[ProspectList]:
    # Counted in the page query rather than once per list.
    return ProspectList.objects.filter(workspace=workspace).annotate(
        prospect_count=Count("listmembership")
    )


def render(prospect_list: ProspectList) -> dict[str, Any]:
    count = prospect_list.prospects.count()
    return {"data": ListOut.of(prospect_list, count).model_dump(mode="json")}


@router.get(
    "",
    auth=ApiKeyAuth(READ),
    response={200: ListPage, **errors()},
    operation_id="listLists",
    summary="List prospect lists",
    description=scoped(READ, "Newest first, with cursor pagination."),
    openapi_extra=ERROR_HEADERS,
)
def list_lists(request: HttpRequest, filters: Query[PageFilters]) -> ListPage:
    workspace = authenticated_key(request).workspace
    rows, next_cursor = paginate(counted(workspace), limit=filters.limit, cursor=filters.cursor)
    return ListPage(
        data=[ListOut.of(row, row.prospect_count) for row in rows],  # type: ignore[attr-defined]
        nextCursor=next_cursor,
    )


@router.post(
    "",
    auth=ApiKeyAuth(WRITE),
    response={201: ListData, **errors(409)},
    operation_id="createList",
    summary="Create a list",
    description=scoped(
        WRITE,
        "List names are unique in a workspace, ignoring case: a taken name is a 409 conflict.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def create_list(
    request: HttpRequest, body: ListIn, idempotency_key: IdempotencyKeyHeader = None
) -> JsonResponse:
    key = authenticated_key(request)
    now = timezone.now()

    def produce() -> tuple[int, dict[str, Any]]:
        require_active_subscription(key.workspace, now)
        created = services.create_list(
            workspace=key.workspace,
            name=body.name,
            color=body.color,
            actor=Actor.api_key(key),
            now=now,
        )
        return 201, {"data": ListOut.of(created, 0).model_dump(mode="json")}

    return idempotency.respond(request, produce, now=now)


@router.get(
    "/{id}",
    auth=ApiKeyAuth(READ),
    response={200: ListData, **errors(404)},
    operation_id="getList",
    summary="Get a list",
    description=scoped(READ, "404 not_found for an id that is missing or of another workspace."),
    openapi_extra=ERROR_HEADERS,
)
def get_list(request: HttpRequest, id: uuid.UUID) -> dict[str, Any]:
    workspace = authenticated_key(request).workspace
    return render(get_in_workspace(ProspectList, workspace, id))


@router.patch(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={200: ListData, **errors(404, 409)},
    operation_id="updateList",
    summary="Rename or recolour a list",
    description=scoped(WRITE, "Fields left out keep their value; a taken name is a 409 conflict."),
    openapi_extra=ERROR_HEADERS,
)
def update_list(request: HttpRequest, id: uuid.UUID, body: ListPatch) -> dict[str, Any]:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    prospect_list = get_in_workspace(ProspectList, key.workspace, id)
    services.update_list(
        prospect_list=prospect_list,
        name=body.name,
        color=body.color,
        actor=Actor.api_key(key),
        now=now,
    )
    return render(prospect_list)


@router.delete(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={204: None, **errors(404)},
    operation_id="deleteList",
    summary="Delete a list",
    description=scoped(WRITE, "The list's prospects are kept."),
    openapi_extra=ERROR_HEADERS,
)
def delete_list(request: HttpRequest, id: uuid.UUID) -> Status[None]:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    prospect_list = get_in_workspace(ProspectList, key.workspace, id)
    services.delete_list(prospect_list=prospect_list, actor=Actor.api_key(key), now=now)
    return Status(204, None)


@router.post(
    "/{id}/prospects",
    auth=ApiKeyAuth(WRITE),
    response={200: AddedData, **errors(404)},
    operation_id="addProspectsToList",
    summary="Add prospects to a list",
    description=scoped(
        WRITE,
        "Adding a prospect already in the list changes nothing, so the call is safe to retry; "
        "`added` counts the new members only. Ids that are not prospects of this workspace are "
        "ignored.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def add_prospects(request: HttpRequest, id: uuid.UUID, body: ProspectIds) -> AddedData:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    prospect_list = get_in_workspace(ProspectList, key.workspace, id)
    added = services.add_to_list(
        prospect_list=prospect_list,
        prospect_ids=body.prospectIds,
        actor=Actor.api_key(key),
        now=now,
    )
    return AddedData(data=AddedCount(added=added))


@router.delete(
    "/{id}/prospects",
    auth=ApiKeyAuth(WRITE),
    response={200: RemovedData, **errors(404)},
    operation_id="removeProspectsFromList",
    summary="Remove prospects from a list",
    description=scoped(
        WRITE,
        "The prospects themselves are kept. `removed` counts those that were members; other ids "
        "are ignored.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def remove_prospects(request: HttpRequest, id: uuid.UUID, body: ProspectIds) -> RemovedData:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    prospect_list = get_in_workspace(ProspectList, key.workspace, id)
    removed = services.remove_from_list(
        prospect_list=prospect_list,
        prospect_ids=body.prospectIds,
        actor=Actor.api_key(key),
        now=now,
    )
    return RemovedData(data=RemovedCount(removed=removed))
