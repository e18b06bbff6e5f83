"""/api/v1/mailboxes: list, connect, read, change, delete, and test the connection."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja import Body, Query, Router, Status

from warmysender.accounts.quotas import require_active_subscription
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.api import idempotency
from warmysender.api.auth import ApiKeyAuth, authenticated_key, scoped
from warmysender.api.errors import ERROR_HEADERS, errors
from warmysender.api.idempotency import IdempotencyKeyHeader
from warmysender.api.mailbox_schemas import (
    CheckOut,
    ConnectionTestData,
    ConnectionTestOut,
    MailboxData,
    MailboxFilters,
    MailboxIn,
    MailboxOut,
    MailboxPage,
    MailboxPatch,
)
from warmysender.api.pagination import paginate
from warmysender.audit.services import Actor
from warmysender.mailboxes import services
from warmysender.mailboxes.connection_test import CheckResult
from warmysender.mailboxes.models import Mailbox

READ = "mailboxes:read"
WRITE = "mailboxes:write"

router = Router(tags=["mailboxes"])


def render(mailbox: Mailbox) -> dict[str, Any]:
    return {"data": MailboxOut.of(mailbox).model_dump(mode="json")}


def _check(result: CheckResult) -> CheckOut:
    return CheckOut(ok=result.ok, error=result.error, hint=result.hint)


@router.get(
    "",
    auth=ApiKeyAuth(READ),
    response={200: MailboxPage, **errors()},
    operation_id="listMailboxes",
    summary="List mailboxes",
    description=scoped(READ, "Newest first, with cursor pagination; `status` and `kind` filter."),
    openapi_extra=ERROR_HEADERS,
)
def list_mailboxes(request: HttpRequest, filters: Query[MailboxFilters]) -> MailboxPage:
    qs = Mailbox.objects.filter(workspace=authenticated_key(request).workspace)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    rows, next_cursor = paginate(qs, limit=filters.limit, cursor=filters.cursor)
    return MailboxPage(data=[MailboxOut.of(m) for m in rows], nextCursor=next_cursor)


@router.post(
    "",
    auth=ApiKeyAuth(WRITE),
    response={201: MailboxData, **errors(409)},
    operation_id="createMailbox",
    summary="Connect a mailbox",
    description=scoped(
        WRITE,
        "`provider` picks the shape: a preset (`gmail`, `outlook`, `yahoo`, `zoho_com`, "
        "`zoho_eu`, `zoho_in`, `hostinger`) fills in the servers and needs `smtpPassword`; "
        "`custom` needs `smtpHost`; `sandbox` captures mail instead of sending it. SMTP "
        "mailboxes start `disconnected`: call `POST /mailboxes/{id}/test` to connect them. The "
        "same address twice is a 409 conflict; the plan's mailbox limit gives 403 "
        "quota_exceeded. A `null` value means the same as leaving the field out.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def create_mailbox(
    request: HttpRequest, body: Body[MailboxIn], idempotency_key: IdempotencyKeyHeader = None
) -> JsonResponse:
    key = authenticated_key(request)
    now = timezone.now()
    data = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}

    def produce() -> tuple[int, dict[str, Any]]:
        require_active_subscription(key.workspace, now)
        mailbox = services.create_mailbox(key.workspace, data, actor=Actor.api_key(key), now=now)
        return 201, render(mailbox)

    return idempotency.respond(request, produce, now=now)


@router.get(
    "/{id}",
    auth=ApiKeyAuth(READ),
    response={200: MailboxData, **errors(404)},
    operation_id="getMailbox",
    summary="Get a mailbox",
    description=scoped(READ, "404 not_found for an id that is missing or of another workspace."),
    openapi_extra=ERROR_HEADERS,
)
def get_mailbox(request: HttpRequest, id: uuid.UUID) -> dict[str, Any]:
    return render(get_in_workspace(Mailbox, authenticated_key(request).workspace, id))


@router.patch(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={200: MailboxData, **errors(404, 409)},
    operation_id="updateMailbox",
    summary="Update a mailbox",
    description=scoped(
        WRITE,
        "Partial update: only the fields sent change, live from the next scheduler tick. "
        "`dailyLimit` is 1–500. New server settings or a new password are tested at once and "
        "the answer carries the resulting `status` and `lastError`. Server settings of a "
        "sandbox mailbox are a 409 conflict.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def update_mailbox(request: HttpRequest, id: uuid.UUID, body: MailboxPatch) -> dict[str, Any]:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    mailbox = get_in_workspace(Mailbox, key.workspace, id)
    result = services.update_mailbox(
        mailbox, body.model_dump(exclude_unset=True), actor=Actor.api_key(key), now=now
    )
    return render(result.mailbox)


@router.delete(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={204: None, **errors(404)},
    operation_id="deleteMailbox",
    summary="Delete a mailbox",
    description=scoped(
        WRITE,
        "Prospects and their campaign progress are kept; the mailbox's captured sandbox "
        "messages are removed. Reconnecting the address later creates a new mailbox id.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def delete_mailbox(request: HttpRequest, id: uuid.UUID) -> Status[None]:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    mailbox = get_in_workspace(Mailbox, key.workspace, id)
    services.delete_mailbox(mailbox, actor=Actor.api_key(key), now=now)
    return Status(204, None)


@router.post(
    "/{id}/test",
    auth=ApiKeyAuth(WRITE),
    response={200: ConnectionTestData, **errors(404)},
    operation_id="testMailbox",
    summary="Test the connection",
    description=scoped(
        WRITE,
        "Logs in to the SMTP server and, when configured, the IMAP server (no mail is sent), "
        "and sets the status to `connected` or `error`. A failed check carries the server's "
        "error and a plain-language `hint`. Takes up to about 40 seconds when a server does "
        "not answer.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def test_mailbox(request: HttpRequest, id: uuid.UUID) -> ConnectionTestData:
    key = authenticated_key(request)
    now = timezone.now()
    mailbox = get_in_workspace(Mailbox, key.workspace, id)
    report = services.run_connection_test(mailbox, actor=Actor.api_key(key), now=now)
    return ConnectionTestData(
        data=ConnectionTestOut(
            ok=report.ok,
            checkedAt=report.checked_at,
            smtp=_check(report.smtp),
            imap=_check(report.imap) if report.imap is not None else None,
            mailbox=MailboxOut.of(mailbox),
        )
    )
