"""Unipile v1 error bodies: `{"status","type":"errors/<slug>","title","detail","instance"}`.

Every slug of spec §5.8 is here with its HTTP status, so the control API can make the simulator
answer any of them (`POST /_sim/faults {"error": "account_restricted"}`).
"""

from __future__ import annotations

from typing import Any

_SLUGS_BY_STATUS: dict[int, str] = {
    400: "invalid_parameters malformed_request content_too_large invalid_url too_many_characters "
    "unescaped_characters missing_parameters invalid_request limit_too_high",
    401: "missing_credentials multiple_sessions invalid_checkpoint_solution checkpoint_error "
    "invalid_credentials expired_credentials insufficient_privileges disconnected_account "
    "disconnected_feature invalid_credentials_but_valid_account_imap expired_link wrong_account "
    "invalid_proxy_credentials invalid_authorization",
    403: "account_restricted account_mismatch insufficient_permissions session_mismatch "
    "feature_not_subscribed subscription_required unknown_authentication_context action_required "
    "resource_access_restricted",
    404: "resource_not_found invalid_resource_identifier",
    422: "invalid_account invalid_recipient no_connection_with_recipient blocked_recipient "
    "user_unreachable unprocessable_entity payment_error action_already_performed invalid_message "
    "invalid_post not_allowed_inmail insufficient_credits cannot_resend_yet "
    "cannot_resend_within_24hrs limit_exceeded already_invited_recently already_connected "
    "cannot_invite_attendee comments_disabled insufficient_job_slot",
    429: "too_many_requests",
    500: "unexpected_error provider_error authentication_intent_error",
    501: "feature_not_implemented",
    503: "no_client_session no_channel no_handler network_down service_unavailable",
    504: "request_timeout",
}

STATUS_BY_SLUG: dict[str, int] = {
    slug: status for status, slugs in _SLUGS_BY_STATUS.items() for slug in slugs.split()
}

_DETAILS: dict[str, tuple[str, str]] = {
    "cannot_resend_yet": (
        "Cannot resend yet",
        "You have reached a temporary provider limit. Please try again later.",
    ),
    "too_many_requests": ("Too many requests", "Too many requests. Please try again later."),
    "resource_not_found": ("Resource not found.", "The requested resource was not found."),
    "disconnected_account": ("Disconnected account", "Account is disconnected."),
    "account_restricted": (
        "Account restricted",
        "The provider has restricted this account. Please check it on the provider's side.",
    ),
    "service_unavailable": ("Service unavailable", "The service is temporarily unavailable."),
    "missing_credentials": ("Missing credentials", "The X-API-KEY header is missing or wrong."),
}


class ApiError(Exception):
    """An error answer; raised inside the simulator's state and turned into the JSON body."""

    def __init__(
        self, slug: str, detail: str | None = None, *, retry_after: float | None = None
    ) -> None:
        self.slug = slug
        self.status = STATUS_BY_SLUG.get(slug, 400)
        title, default_detail = _DETAILS.get(slug, (slug.replace("_", " ").capitalize(), ""))
        self.title = title
        self.detail = detail or default_detail or title
        self.retry_after = retry_after
        super().__init__(f"{self.status} {slug}: {self.detail}")

    def body(self, instance: str) -> dict[str, Any]:
        return {
            "status": self.status,
            "type": f"errors/{self.slug}",
            "title": self.title,
            "detail": self.detail,
            "instance": instance,
        }
