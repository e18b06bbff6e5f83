"""Unipile error bodies → `Failure`: each error slug of spec §5.8 by what the engine does."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx

from warmysender.linkedin.client.results import Failure, FailureKind

_SLUGS_BY_KIND: dict[FailureKind, str] = {
    "cannot_resend_yet": "cannot_resend_yet cannot_resend_within_24hrs",
    "limit_reached": "limit_exceeded insufficient_credits",
    "rate_limited": "too_many_requests",
    "credentials": "multiple_sessions checkpoint_error invalid_credentials expired_credentials "
    "insufficient_privileges disconnected_account disconnected_feature wrong_account "
    "invalid_credentials_but_valid_account_imap invalid_authorization account_mismatch "
    "session_mismatch unknown_authentication_context action_required invalid_proxy_credentials "
    "invalid_account",
    "restricted": "account_restricted",
    "api_key": "missing_credentials",
    "checkpoint_invalid": "invalid_checkpoint_solution",
    "checkpoint_failed": "expired_link",
    "recipient_unavailable": "invalid_recipient no_connection_with_recipient blocked_recipient "
    "user_unreachable not_allowed_inmail cannot_invite_attendee comments_disabled invalid_post",
    "already_done": "already_connected already_invited_recently action_already_performed",
    "forbidden": "insufficient_permissions feature_not_subscribed subscription_required "
    "resource_access_restricted payment_error insufficient_job_slot",
    "not_found": "resource_not_found invalid_resource_identifier",
    "invalid_request": "invalid_parameters malformed_request content_too_large invalid_url "
    "too_many_characters unescaped_characters missing_parameters invalid_request limit_too_high "
    "invalid_message unprocessable_entity",
    "not_supported": "feature_not_implemented",
    "server_error": "unexpected_error provider_error authentication_intent_error no_client_session "
    "no_channel no_handler network_down service_unavailable request_timeout",
}
_KIND_BY_SLUG: dict[str, FailureKind] = {
    slug: kind for kind, slugs in _SLUGS_BY_KIND.items() for slug in slugs.split()
}

_KIND_BY_STATUS: dict[int, FailureKind] = {
    400: "invalid_request",
    401: "credentials",
    403: "credentials",
    404: "not_found",
    422: "invalid_request",
    429: "rate_limited",
    501: "not_supported",
}


def failure_from_response(
    response: httpx.Response,
    *,
    not_found: FailureKind = "not_found",
    overrides: Mapping[str, FailureKind] | None = None,
) -> Failure:
    """Unipile's error body `{"title","detail","type":"errors/<slug>","status"}` → a Failure."""
    status = response.status_code
    slug: str | None = None
    detail = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        raw_type = body.get("type")
        if isinstance(raw_type, str) and raw_type:
            slug = raw_type.rsplit("/", 1)[-1]
        detail = str(body.get("detail") or body.get("title") or "")
    if not detail:
        detail = response.reason_phrase or f"HTTP {status}"
    kind: FailureKind
    if slug and overrides and slug in overrides:
        kind = overrides[slug]
    elif status == 404:
        kind = not_found
    elif slug in _KIND_BY_SLUG:
        kind = _KIND_BY_SLUG[slug]
    elif status >= 500 and status != 501:
        kind = "server_error"
    else:
        kind = _KIND_BY_STATUS.get(status, "unknown")
    return Failure(kind, status, slug, detail, _retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    # An HTTP date is relative to the server's clock; the Date header is the fairest "now".
    date_header = response.headers.get("date")
    try:
        server_now = parsedate_to_datetime(date_header) if date_header else None
    except (TypeError, ValueError):
        server_now = None
    if server_now is None:
        return None
    return max(0.0, (when - server_now).total_seconds())
