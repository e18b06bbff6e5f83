"""The REST API at /api/v1: one NinjaAPI, one router module per resource.

Every error leaves as {"error": {"code", "message", "details"}}; the handlers below translate the
framework's and the services' exceptions into that envelope.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from warmysender.accounts.quotas import QuotaExceeded, SubscriptionInactive
from warmysender.api.campaigns import router as campaigns_router
from warmysender.api.errors import ApiError
from warmysender.api.linkedin_accounts import router as linkedin_router
from warmysender.api.lists import router as lists_router
from warmysender.api.mailboxes import router as mailboxes_router
from warmysender.api.prospects import router as prospects_router
from warmysender.api.suppressions import router as suppressions_router
from warmysender.mailboxes.services import MailboxError
from warmysender.prospects.services import ProspectError
from warmysender.sequences.services import CampaignError

log = logging.getLogger(__name__)


class _Encoder(NinjaJSONEncoder):
    # Django's encoder cuts datetimes to milliseconds; keep microseconds and spell UTC as "Z",
    # exactly as pydantic does for the bodies built with model_dump(mode="json"), so a
    # timestamp reads the same from every endpoint (and a cursor round-trips through it).
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            return o.isoformat().replace("+00:00", "Z")
        return super().default(o)


class _Renderer(JSONRenderer):
    encoder_class = _Encoder


api = NinjaAPI(
    title="WarmySender API",
    version="1",
    description=(
        "Authenticate with `Authorization: Bearer ws_...`. Each endpoint needs the scope named "
        "in its description. 60 requests per minute per key by default. Successful responses carry "
        "`{data}`; collections use cursor pagination (`?limit=&cursor=` → `{data, nextCursor}`). "
        'Errors are `{"error": {"code", "message", "details"}}`. Creating POSTs accept an '
        "`Idempotency-Key` header. Reference: docs/api.md."
    ),
    urls_namespace="api-v1",
    renderer=_Renderer(),
)


def _respond(request: HttpRequest, error: ApiError) -> HttpResponse:
    response = api.create_response(request, error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return _respond(request, exc)


@api.exception_handler(ProspectError)
def _prospect_error(request: HttpRequest, exc: ProspectError) -> HttpResponse:
    code = "conflict" if exc.code == "conflict" else "validation_error"
    detail: dict[str, Any] = {"field": exc.field, "in": "body", "message": exc.message}
    if exc.code not in ("conflict", "validation_error"):
        # e.g. "suppressed": the input is well-formed but refused for a stated reason.
        detail["reason"] = exc.code
    return _respond(request, ApiError(code, exc.message, details=[detail]))


@api.exception_handler(CampaignError)
def _campaign_error(request: HttpRequest, exc: CampaignError) -> HttpResponse:
    details = exc.details
    if exc.code == "validation_error" and not isinstance(details, list):
        detail: dict[str, Any] = {"field": exc.field, "in": "body", "message": exc.message}
        # e.g. the custom fields a template needs ("missing") and those the prospects have.
        detail.update(details or {})
        details = [detail]
    return _respond(request, ApiError(exc.code, exc.message, details=details))


@api.exception_handler(MailboxError)
def _mailbox_error(request: HttpRequest, exc: MailboxError) -> HttpResponse:
    detail = {"field": exc.field, "in": "body", "message": exc.message}
    return _respond(request, ApiError(exc.code, exc.message, details=[detail]))


@api.exception_handler(QuotaExceeded)
def _quota(request: HttpRequest, exc: QuotaExceeded) -> HttpResponse:
    details = {"quota": exc.code, "limit": exc.limit, "current": exc.current}
    return _respond(request, ApiError("quota_exceeded", exc.message, details=details))


@api.exception_handler(SubscriptionInactive)
def _inactive(request: HttpRequest, exc: SubscriptionInactive) -> HttpResponse:
    return _respond(
        request, ApiError("subscription_blocked", str(exc), details={"status": exc.status})
    )


@api.exception_handler(ValidationError)
def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = list(exc.errors)
    # A malformed id in the path names nothing that exists: the same 404 as a missing one.
    if any(e.get("loc", ("",))[0] == "path" for e in errors):
        return _respond(request, ApiError("not_found", "No object with this id."))
    details = _validation_details(request, errors)
    first = details[0] if details else {"field": None, "message": "invalid request"}
    where = f" ({first['field']})" if first.get("field") else ""
    message = f"Invalid request{where}: {first['message']}"
    return _respond(request, ApiError("validation_error", message, details=details))


def _validation_details(request: HttpRequest, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One {field, in, message} per offending field, named as the client sent it.

    pydantic's error locations also carry the handler's parameter name and, inside unions, a tag
    per member ("constrained-str", "int", "none"); neither means anything to a client. Walking
    the location through the data actually sent keeps just the keys and indexes it contains.
    """
    merged: dict[tuple[str, str | None], list[str]] = {}
    for error in errors:
        loc = list(error.get("loc", ()))
        where = str(loc[0]) if loc else "body"
        # ninja nests a body under the handler's parameter name; other parameters it may or may
        # not nest, which the walk below sorts out.
        parts = loc[2:] if where == "body" else loc[1:]
        missing = error.get("type") == "missing"
        if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            # A body whose shape is chosen by one field (e.g. a mailbox's `provider`): the
            # error is about that field, which pydantic names only in its context.
            parts = [*parts, str(error.get("ctx", {}).get("discriminator", "")).strip("'")]
            missing = error["type"] == "union_tag_not_found"
        field = _field_path(parts, _sent(request, where), missing=missing)
        message = _message(error, field)
        messages = merged.setdefault((where, field), [])
        if message not in messages:
            messages.append(message)
    details = []
    for (where, field), messages in merged.items():
        # "Input should be None" comes from the null branch of an optional field: noise.
        useful = [m for m in messages if m != "Input should be None"] or messages
        details.append({"field": field, "in": where, "message": "; ".join(useful)})
    return details


def _sent(request: HttpRequest, where: str) -> Any:
    if where == "query":
        return request.GET
    if where == "header":
        return request.headers
    try:
        return json.loads(request.body)
    except ValueError:
        return None


def _field_path(loc: list[Any], data: Any, *, missing: bool) -> str | None:
    path: list[str] = []
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(data, Mapping) and part in data:
            data = data[part]
            path.append(str(part))
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
            path.append(str(part))
        elif last and missing and isinstance(part, str):
            path.append(part)
    return ".".join(path) or None


def _message(error: dict[str, Any], field: str | None) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        return f"Unknown field {field!r}."
    if kind in ("missing", "union_tag_not_found"):
        return "This field is required."
    return str(error.get("msg", "invalid"))


@api.exception_handler(AuthenticationError)
def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    error = ApiError(
        "unauthorized",
        "A valid API key is required: Authorization: Bearer ws_...",
        headers={"WWW-Authenticate": "Bearer"},
    )
    return _respond(request, error)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _respond(request, ApiError("not_found", str(exc) or "Not found."))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        # ninja raises this for a body it cannot parse as JSON.
        details = [{"field": None, "in": "body", "message": "malformed JSON"}]
        return _respond(
            request,
            ApiError("validation_error", "The request body is not valid JSON.", details=details),
        )
    code = {
        401: "unauthorized",
        403: "insufficient_scope",
        404: "not_found",
        409: "conflict",
        429: "rate_limited",
    }.get(exc.status_code, "error")
    return _respond(request, ApiError(code, exc.message, status=exc.status_code))


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    details = [{"field": None, "in": "body", "message": f"larger than {limit} bytes"}]
    message = f"The request body is larger than {limit} bytes."
    return _respond(request, ApiError("validation_error", message, details=details))


@api.exception_handler(Exception)
def _internal(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Clients get the envelope rather than Django's HTML page; the traceback goes to the log.
    log.exception("unhandled error in %s %s", request.method, request.path)
    return _respond(request, ApiError("internal_error", "Something went wrong on our side."))


api.add_router("/prospects", prospects_router)
api.add_router("/lists", lists_router)
api.add_router("/suppressions", suppressions_router)
api.add_router("/mailboxes", mailboxes_router)
api.add_router("/campaigns", campaigns_router)
api.add_router("/linkedin", linkedin_router)
api.add_router("/webhooks", "warmysender.api.webhooks.router")
