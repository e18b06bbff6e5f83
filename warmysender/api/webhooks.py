"""/api/v1/webhooks: signed outgoing webhooks — endpoints, a test event, and the delivery log.

The secret is in the create response only. Creating does not take an `Idempotency-Key`: a
replayed answer would have to keep the secret in clear in the idempotency record.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Status
from pydantic import AfterValidator, BaseModel, Field, StrictBool, StrictStr
from pydantic.json_schema import SkipJsonSchema

from warmysender.accounts.tenancy import get_in_workspace
from warmysender.api.auth import ApiKeyAuth, authenticated_key, scoped
from warmysender.api.errors import ERROR_HEADERS, ApiError, errors
from warmysender.api.pagination import paginate
from warmysender.api.schemas import NO_NUL, Body, PageFilters, _reject_null
from warmysender.audit.services import Actor
from warmysender.webhooks import services
from warmysender.webhooks.formatters import EVENT_TYPES
from warmysender.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint

READ = "webhooks:read"
WRITE = "webhooks:write"

router = Router(tags=["webhooks"])

EventName = Literal[
    "*",
    "reply.received",
    "email.bounced",
    "email.unsubscribed",
    "email.opened",
    "email.clicked",
    "prospect.suppressed",
    "limit.hit",
    "linkedin.reply_received",
    "linkedin.invite_accepted",
    "linkedin.message_sent",
    "linkedin.account_disconnected",
]
assert set(EventName.__args__) == {"*", *EVENT_TYPES}  # type: ignore[attr-defined]
StateName = Literal["pending", "retrying", "succeeded", "dead"]

# The URL's rules (http(s), no private or loopback address, …) are checked by the service, which
# names the problem in words; the schema states the length only.
Url = Annotated[
    StrictStr,
    Field(
        max_length=services.URL_MAX,
        pattern=NO_NUL,
        description="http:// or https:// URL of a public host; Slack and Discord webhook URLs "
        "get their native message format.",
    ),
]
Events = Annotated[
    list[EventName],
    Field(min_length=1, description='Event types to send, or `["*"]` for all of them.'),
]
Description = Annotated[StrictStr, Field(max_length=services.DESCRIPTION_MAX, pattern=NO_NUL)]


class WebhookIn(Body):
    url: Url
    events: Events
    description: Description | None = None
    active: StrictBool | None = Field(default=None, description="Defaults to true.")


class WebhookPatch(Body):
    url: Annotated[Url, AfterValidator(_reject_null)] | SkipJsonSchema[None] = None
    events: Annotated[Events, AfterValidator(_reject_null)] | SkipJsonSchema[None] = None
    description: Description | None = None
    active: StrictBool | SkipJsonSchema[None] = Field(
        default=None, description="false pauses the webhook: no new deliveries, none sent."
    )


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    events: list[str]
    active: bool
    disabledReason: str = Field(description="Why the system paused it (410 Gone), or empty.")
    secretPrefix: str = Field(description="The first characters of the secret.")
    failureCount: int = Field(description="Deliveries that were dead-lettered.")
    lastTriggeredAt: datetime | None = Field(description="The last successful delivery.")
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def of(cls, w: WebhookEndpoint) -> WebhookOut:
        return cls(
            id=w.pk,
            url=w.url,
            description=w.description,
            events=w.events,
            active=w.active,
            disabledReason=w.disabled_reason,
            secretPrefix=w.secret_prefix,
            failureCount=w.failure_count,
            lastTriggeredAt=w.last_triggered_at,
            createdAt=w.created_at,
            updatedAt=w.updated_at,
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="`whsec_…`: shown in this response only; sign-check with it.")


class WebhookData(BaseModel):
    data: WebhookOut


class WebhookCreatedData(BaseModel):
    data: WebhookCreatedOut


class WebhookPage(BaseModel):
    data: list[WebhookOut]
    nextCursor: str | None


class DeliveryOut(BaseModel):
    id: uuid.UUID
    webhookId: uuid.UUID
    eventId: uuid.UUID = Field(description="The envelope id; the same on every attempt.")
    type: str
    state: StateName
    attempts: int
    nextAttemptAt: datetime | None
    statusCode: int | None
    responseExcerpt: str
    durationMs: int | None
    error: str
    lastAttemptAt: datetime | None
    succeededAt: datetime | None
    deadAt: datetime | None
    createdAt: datetime

    @classmethod
    def of(cls, d: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=d.pk,
            webhookId=d.endpoint_id,
            eventId=d.event_id,
            type=d.event_type,
            state=d.state,  # type: ignore[arg-type]
            attempts=d.attempts,
            nextAttemptAt=d.next_attempt_at,
            statusCode=d.status_code,
            responseExcerpt=d.response_excerpt,
            durationMs=d.duration_ms,
            error=d.error,
            lastAttemptAt=d.last_attempt_at,
            succeededAt=d.succeeded_at,
            deadAt=d.dead_at,
            createdAt=d.created_at,
        )


class DeliveryData(BaseModel):
    data: DeliveryOut


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    nextCursor: str | None


class DeliveryFilters(PageFilters):
    state: StateName | SkipJsonSchema[None] = Field(default=None, description="Only this state.")


def _refused(exc: services.WebhookError) -> ApiError:
    details = [{"field": exc.field, "in": "body", "message": exc.message}]
    return ApiError(exc.code, exc.message, details=details if exc.code != "conflict" else None)


def _endpoint(request: HttpRequest, id: uuid.UUID) -> WebhookEndpoint:
    return get_in_workspace(WebhookEndpoint, authenticated_key(request).workspace, id)


@router.get(
    "",
    auth=ApiKeyAuth(READ),
    response={200: WebhookPage, **errors()},
    operation_id="listWebhooks",
    summary="List webhooks",
    description=scoped(READ, "Newest first, with cursor pagination. Secrets are never listed."),
    openapi_extra=ERROR_HEADERS,
)
def list_webhooks(request: HttpRequest, filters: Query[PageFilters]) -> WebhookPage:
    qs = WebhookEndpoint.objects.filter(workspace=authenticated_key(request).workspace)
    rows, next_cursor = paginate(qs, limit=filters.limit, cursor=filters.cursor)
    return WebhookPage(data=[WebhookOut.of(w) for w in rows], nextCursor=next_cursor)


@router.post(
    "",
    auth=ApiKeyAuth(WRITE),
    response={201: WebhookCreatedData, **errors(409)},
    operation_id="createWebhook",
    summary="Create a webhook",
    description=scoped(
        WRITE,
        "The answer carries the `whsec_…` secret, **shown only this once**. The URL must be "
        "http(s) and may not name a private, loopback or link-local address (checked again, "
        'after DNS, at every delivery). `events` lists event types or is `["*"]`. Unlike '
        "other creating calls this one takes no `Idempotency-Key`, so the secret is never "
        "stored in clear.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def create_webhook(request: HttpRequest, body: WebhookIn) -> Status[WebhookCreatedData]:
    key = authenticated_key(request)
    data = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    try:
        created = services.create_endpoint(
            key.workspace, data, actor=Actor.api_key(key), now=timezone.now()
        )
    except services.WebhookError as exc:
        raise _refused(exc) from exc
    out = WebhookCreatedOut(**WebhookOut.of(created.endpoint).model_dump(), secret=created.secret)
    return Status(201, WebhookCreatedData(data=out))


@router.get(
    "/{id}",
    auth=ApiKeyAuth(READ),
    response={200: WebhookData, **errors(404)},
    operation_id="getWebhook",
    summary="Get a webhook",
    description=scoped(READ, "404 not_found for an id that is missing or of another workspace."),
    openapi_extra=ERROR_HEADERS,
)
def get_webhook(request: HttpRequest, id: uuid.UUID) -> WebhookData:
    return WebhookData(data=WebhookOut.of(_endpoint(request, id)))


@router.patch(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={200: WebhookData, **errors(404, 409)},
    operation_id="updateWebhook",
    summary="Update a webhook",
    description=scoped(
        WRITE,
        "Partial update of `url`, `events`, `description` and `active` (false pauses: events "
        "are not queued for it and waiting deliveries hold until it is active again).",
    ),
    openapi_extra=ERROR_HEADERS,
)
def update_webhook(request: HttpRequest, id: uuid.UUID, body: WebhookPatch) -> WebhookData:
    key = authenticated_key(request)
    endpoint = _endpoint(request, id)
    try:
        endpoint = services.update_endpoint(
            endpoint,
            body.model_dump(exclude_unset=True),
            actor=Actor.api_key(key),
            now=timezone.now(),
        )
    except services.WebhookError as exc:
        raise _refused(exc) from exc
    return WebhookData(data=WebhookOut.of(endpoint))


@router.delete(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={204: None, **errors(404)},
    operation_id="deleteWebhook",
    summary="Delete a webhook",
    description=scoped(WRITE, "Its waiting deliveries and its delivery log go with it."),
    openapi_extra=ERROR_HEADERS,
)
def delete_webhook(request: HttpRequest, id: uuid.UUID) -> Status[None]:
    key = authenticated_key(request)
    services.delete_endpoint(_endpoint(request, id), actor=Actor.api_key(key), now=timezone.now())
    return Status(204, None)


@router.post(
    "/{id}/test",
    auth=ApiKeyAuth(WRITE),
    response={202: DeliveryData, **errors(404, 409)},
    operation_id="testWebhook",
    summary="Send a test event",
    description=scoped(
        WRITE,
        "Queues a `webhook.test` event for this webhook alone and starts a delivery pass at "
        "once; the answer is the queued delivery (poll the deliveries list for its outcome, "
        "usually within a few seconds). A paused webhook is a 409 conflict.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def test_webhook(request: HttpRequest, id: uuid.UUID) -> Status[DeliveryData]:
    from warmysender.webhooks.tasks import queue_delivery_pass

    key = authenticated_key(request)
    endpoint = _endpoint(request, id)
    try:
        delivery = services.send_test(endpoint, actor=Actor.api_key(key), now=timezone.now())
    except services.WebhookError as exc:
        raise _refused(exc) from exc
    transaction.on_commit(queue_delivery_pass)
    return Status(202, DeliveryData(data=DeliveryOut.of(delivery)))


@router.get(
    "/{id}/deliveries",
    auth=ApiKeyAuth(READ),
    response={200: DeliveryPage, **errors(404)},
    operation_id="listWebhookDeliveries",
    summary="List a webhook's deliveries",
    description=scoped(
        READ,
        "Newest first, kept 30 days, with the last attempt's status code, response excerpt "
        "(first 1,000 characters), duration and error; `state` filters.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def list_deliveries(
    request: HttpRequest, id: uuid.UUID, filters: Query[DeliveryFilters]
) -> DeliveryPage:
    endpoint = _endpoint(request, id)
    qs = WebhookDelivery.objects.filter(workspace=endpoint.workspace, endpoint=endpoint)
    if filters.state:
        qs = qs.filter(state=DeliveryState(filters.state))
    rows, next_cursor = paginate(qs, limit=filters.limit, cursor=filters.cursor)
    return DeliveryPage(data=[DeliveryOut.of(d) for d in rows], nextCursor=next_cursor)
