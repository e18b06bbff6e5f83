"""The records of the simulated world (accounts, people, invitations, chats, links, faults)
and the helpers that shape them as Unipile does (ids, timestamps, cursors)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from warmysender.linkedin.simulator.errors import ApiError

SOURCE_STATUSES = ("OK", "STOPPED", "ERROR", "CREDENTIALS", "PERMISSIONS", "CONNECTING")
CHECKPOINT_TYPES = ("2FA", "OTP", "IN_APP_VALIDATION", "PHONE_REGISTER", "CAPTCHA")
USAGE_THRESHOLDS = (50, 75, 90, 95)
LIMIT_MODES = ("cannot_resend_yet", "limit_exceeded", "too_many_requests", "provider_error")
REINVITE_LOCK = timedelta(weeks=3)
MAX_PAGE = 250
DEFAULT_PAGE = 100

# Usernames steer a connection so a person can try every path from the hosted page:
# `ann+2fa@example.com` gets a 2FA checkpoint, `bob+sales@…` a Sales Navigator account.
_CHECKPOINT_TAGS = {
    "+2fa": "2FA",
    "+otp": "OTP",
    "+captcha": "CAPTCHA",
    "+inapp": "IN_APP_VALIDATION",
    "+phone": "PHONE_REGISTER",
}
_FEATURE_TAGS = {
    "+free": [],
    "+premium": ["premium"],
    "+sales": ["premium", "sales_navigator"],
    "+recruiter": ["premium", "recruiter"],
}
WRONG_PASSWORD = "wrong-password"


def _id(n: int = 16) -> str:
    return secrets.token_urlsafe(n)[: int(n * 1.375)].replace("-", "x").replace("_", "y")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _member_id(seed: str) -> str:
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()
    return "ACoAA" + digest[:34]


@dataclass
class Person:
    provider_id: str
    public_identifier: str
    first_name: str
    last_name: str
    headline: str = ""
    # Behaviours: cannot_invite_attendee, not_allowed_inmail, user_unreachable, blocked_recipient,
    # open_profile, premium.
    flags: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "public_identifier": self.public_identifier,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "headline": self.headline,
            "flags": sorted(self.flags),
        }


@dataclass
class Limits:
    invites_per_day: int = 100
    invites_per_week: int = 200
    messages_per_day: int = 150
    profile_views_per_day: int = 100
    inmail_credits: int = 30
    # How the provider limit answers once reached.
    mode: str = "cannot_resend_yet"


@dataclass
class Checkpoint:
    type: str
    code: str
    expires_at: datetime
    intent: str  # "create" | "reconnect"
    approved: bool = False  # IN_APP_VALIDATION, by the control API or the hosted page


@dataclass
class SimAccount:
    id: str
    name: str
    username: str
    owner: Person
    created_at: datetime
    status: str
    premium_features: list[str]
    proxy: dict[str, Any] | None = None
    country: str | None = None
    user_agent: str | None = None
    restricted: bool = False
    limits: Limits = field(default_factory=Limits)
    invites_sent: list[datetime] = field(default_factory=list)
    messages_sent: list[datetime] = field(default_factory=list)
    profile_views: list[datetime] = field(default_factory=list)
    relations: dict[str, datetime] = field(default_factory=dict)  # provider_id → connected at
    reactions: set[str] = field(default_factory=set)
    checkpoint: Checkpoint | None = None

    def as_json(self) -> dict[str, Any]:
        proxy = None
        if self.proxy:
            proxy = {k: v for k, v in self.proxy.items() if k != "password"}
        return {
            "object": "Account",
            "type": "LINKEDIN",
            "id": self.id,
            "name": self.name,
            "created_at": _iso(self.created_at),
            "connection_params": {
                "im": {
                    "id": self.owner.provider_id,
                    "username": self.username,
                    "publicIdentifier": self.owner.public_identifier,
                    "premiumId": None,
                    "premiumContractId": None,
                    "premiumFeatures": list(self.premium_features),
                    "organizations": [],
                    "proxy": proxy,
                }
            },
            "groups": [],
            "signatures": [],
            "current_signature": None,
            "sources": [{"id": f"{self.id}_MESSAGING", "status": self.status}],
        }


@dataclass
class Invitation:
    id: str
    account_id: str
    provider_id: str
    note: str
    sent_at: datetime
    status: str = "PENDING"  # PENDING | ACCEPTED | IGNORED | WITHDRAWN
    changed_at: datetime | None = None


@dataclass
class ChatMessage:
    id: str
    chat_id: str
    sender_id: str
    text: str
    at: datetime
    is_sender: bool


@dataclass
class SimChat:
    id: str
    account_id: str
    attendee: Person
    messages: list[ChatMessage] = field(default_factory=list)
    unread: int = 0
    subject: str | None = None
    inmail: bool = False

    @property
    def last_at(self) -> datetime:
        return self.messages[-1].at


@dataclass
class HostedLink:
    token: str
    type: str  # create | reconnect
    expires_at: datetime
    name: str
    notify_url: str | None
    success_redirect_url: str | None
    failure_redirect_url: str | None
    reconnect_account: str | None
    used: bool = False
    account_id: str | None = None  # once the form made (or reconnected) an account


@dataclass
class Fault:
    """An injected error: answer `slug` for `operation` (None = any) on `account_id` (None =
    any), `remaining` more times (None = until cleared)."""

    slug: str
    operation: str | None = None
    account_id: str | None = None
    remaining: int | None = 1
    retry_after: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "error": self.slug,
            "operation": self.operation,
            "account_id": self.account_id,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
        }


@dataclass
class LoggedRequest:
    method: str
    path: str
    operation: str
    account_id: str | None
    at: datetime
    status: int

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "operation": self.operation,
            "account_id": self.account_id,
            "at": _iso(self.at),
            "status": self.status,
        }


def _checked_limits(data: Any) -> dict[str, Any]:
    """The provider limits in `data`, all validated before any is applied."""
    if not isinstance(data, dict):
        raise ApiError("invalid_parameters", "limits must be an object")
    known = vars(Limits())
    for key, value in data.items():
        if key not in known:
            raise ApiError("invalid_parameters", f"unknown limit {key!r}; known: {sorted(known)}")
        if key == "mode":
            if value not in LIMIT_MODES:
                raise ApiError(
                    "invalid_parameters", f"mode must be one of {', '.join(LIMIT_MODES)}"
                )
        elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ApiError("invalid_parameters", f"{key} must be a non-negative integer")
    return dict(data)


def page(
    items: Sequence[Any], cursor: str | None, limit: int | None
) -> tuple[list[Any], str | None]:
    """Offset pagination behind an opaque cursor, as Unipile's cursors are to callers."""
    if limit is None:
        limit = DEFAULT_PAGE
    if limit < 1:
        raise ApiError("invalid_parameters", "limit must be at least 1")
    if limit > MAX_PAGE:
        raise ApiError("limit_too_high", f"limit must be at most {MAX_PAGE}")
    start = 0
    if cursor:
        try:
            start = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("o:"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError("invalid_parameters", "cursor is not one this API issued") from exc
    chunk = list(items[start : start + limit])
    following = start + limit
    next_cursor = (
        base64.urlsafe_b64encode(f"o:{following}".encode()).decode()
        if following < len(items)
        else None
    )
    return chunk, next_cursor
