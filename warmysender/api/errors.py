"""The API's error envelope: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. validation_error.")
    message: str = Field(description="For people; may change.")
    details: Any = Field(
        default=None,
        description="validation_error: a list of {field, in, message}; other codes: an object or null.",
    )


class ErrorOut(BaseModel):
    error: ErrorBody


STATUS_FOR_CODE = {
    "validation_error": 400,
    "invalid_status": 400,
    "unusable_mailboxes": 400,
    "end_date_expired": 400,
    "unauthorized": 401,
    "insufficient_scope": 403,
    "subscription_blocked": 403,
    "quota_exceeded": 403,
    "not_found": 404,
    "conflict": 409,
    "idempotency_conflict": 409,
    "rate_limited": 429,
    "internal_error": 500,
}


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_FOR_CODE.get(code, 400)
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def errors(*statuses: int) -> dict[int, type[ErrorOut]]:
    """Response declarations for the given error statuses. Every authenticated endpoint can answer
    400, 401, 403 and 429, so those are always included."""
    return {s: ErrorOut for s in sorted({400, 401, 403, 429, *statuses})}


# Headers that go with some errors, for `openapi_extra` (ninja declares bodies only).
ERROR_HEADERS: dict[str, Any] = {
    "responses": {
        401: {
            "headers": {
                "WWW-Authenticate": {
                    "description": "Always `Bearer`.",
                    "schema": {"type": "string"},
                }
            }
        },
        429: {
            "headers": {
                "Retry-After": {
                    "description": "Seconds until a request will be accepted again.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        },
    }
}
