"""What Unipile calls answer: typed results, and `Failure` with the `kind` the engine acts on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeAlias, TypeVar, Union

T = TypeVar("T")

INVITATION_NOTE_MAX_CHARS = 300
USAGE_THRESHOLDS = (50, 75, 90, 95)

# Unipile's source statuses (spec §5.2); DELETED only ever arrives as a webhook message.
SourceStatus = Literal["OK", "STOPPED", "ERROR", "CREDENTIALS", "PERMISSIONS", "CONNECTING"]
SOURCE_STATUSES: tuple[str, ...] = (
    "OK",
    "STOPPED",
    "ERROR",
    "CREDENTIALS",
    "PERMISSIONS",
    "CONNECTING",
)
CheckpointType = Literal["2FA", "OTP", "IN_APP_VALIDATION", "PHONE_REGISTER", "CAPTCHA"]
ReactionType = Literal["like", "celebrate", "support", "love", "insightful", "funny"]
LinkedInApi = Literal["classic", "sales_navigator", "recruiter"]

FailureKind = Literal[
    "cannot_resend_yet",  # 422 temporary provider limit → account cooldown, requeue the prospect
    "limit_reached",  # 422 limit_exceeded / insufficient_credits → stop this action for the day
    "rate_limited",  # 429 → back off (retry_after when Unipile gave one)
    "server_error",  # 5xx → back off and try later
    "account_not_found",  # 404 on the account itself → a strike (three make a disconnect)
    "credentials",  # 401/403 session problems → the account needs reconnecting
    "restricted",  # 403 account_restricted → LinkedIn restricted the account
    "api_key",  # our X-API-KEY is missing or wrong: an installation problem, not an account's
    "checkpoint_invalid",  # wrong checkpoint code; another try is allowed within its validity
    "checkpoint_failed",  # the checkpoint expired or failed: start the connection again
    "recipient_unavailable",  # per-recipient refusal: skip this prospect, keep the run going
    "already_done",  # already connected / invited / performed: skip, record as done
    "not_found",  # 404 on something other than the account (a profile, chat, post)
    "forbidden",  # 403 feature or subscription missing for this account
    "invalid_request",  # 400/422 validation (ours to fix); also refused client-side
    "not_supported",  # 501
    "network",  # the connection was never made: nothing reached Unipile, safe to try later
    "timeout",  # the request was sent and no answer came: outcome unknown, never auto-retried
    "unknown",  # anything else: halt and show it
]


# Unipile error slugs (spec §5.8) by what the engine does about them.
@dataclass(frozen=True)
class Failure:
    """Why a call did not do what was asked. `error_type` is Unipile's slug (`cannot_resend_yet`)
    or ours for refusals made before any request (`too_many_characters`)."""

    kind: FailureKind
    status: int | None = None
    error_type: str | None = None
    detail: str = ""
    retry_after: float | None = None  # seconds, when Unipile said (Retry-After)

    @property
    def outcome_unknown(self) -> bool:
        """The request may have been acted on: never repeat it automatically."""
        return self.kind == "timeout"

    def __str__(self) -> str:
        where = f"HTTP {self.status} " if self.status else ""
        slug = f"{self.error_type}: " if self.error_type else ""
        return f"{where}{slug}{self.detail or self.kind}".strip()


Result: TypeAlias = Union[T, Failure]  # noqa: UP007  (a generic alias needs Union on 3.11)


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursor: str | None  # pass back for the next page; None on the last one


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    type: str  # "LINKEDIN"
    status: str  # the first source's status: one of SOURCE_STATUSES
    created_at: datetime | None
    provider_id: str  # connection_params.im.id, the owner's LinkedIn member id
    username: str
    public_identifier: str
    premium_features: tuple[str, ...]  # e.g. ("premium", "sales_navigator", "recruiter")
    proxy: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True)
class AccountConnected:
    """201: the account is live at Unipile."""

    account_id: str


@dataclass(frozen=True)
class CheckpointRequired:
    """202: LinkedIn asks for a verification; answer it with `solve_checkpoint` in time."""

    account_id: str
    type: str  # one of CheckpointType (or a variant Unipile adds)
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)


ConnectOutcome: TypeAlias = AccountConnected | CheckpointRequired


@dataclass(frozen=True)
class HostedAuthLink:
    url: str


@dataclass(frozen=True)
class Done:
    """A call that answers nothing worth keeping (delete, reaction, resend)."""


@dataclass(frozen=True)
class Proxy:
    protocol: Literal["http", "https", "socks5"]
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def as_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"protocol": self.protocol, "host": self.host, "port": self.port}
        if self.username:
            body["username"] = self.username
        if self.password:
            body["password"] = self.password
        return body


@dataclass(frozen=True)
class CredentialsLogin:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class CookieLogin:
    access_token: str = field(repr=False)  # li_at
    user_agent: str  # must match the browser the cookie came from, or LinkedIn logs it out
    premium_token: str | None = field(default=None, repr=False)  # li_a (Sales Nav / Recruiter)


Login: TypeAlias = CredentialsLogin | CookieLogin


@dataclass(frozen=True)
class UserProfile:
    provider_id: str
    public_identifier: str
    first_name: str
    last_name: str
    headline: str
    is_premium: bool
    is_open_profile: bool
    is_relationship: bool
    network_distance: str | None  # FIRST_DEGREE … OUT_OF_NETWORK
    invitation_status: str | None  # PENDING / IGNORED / WITHDRAWN when an invitation exists
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True)
class OwnProfile:
    """`GET /users/me`: what the account's owner has, for account-type detection."""

    provider_id: str
    public_identifier: str
    premium: bool
    sales_navigator: bool
    recruiter: bool
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True)
class InvitationSent:
    invitation_id: str
    usage: int | None  # % of the provider limit, only when crossing 50/75/90/95


@dataclass(frozen=True)
class SentInvitation:
    id: str
    invited_user_id: str
    invited_user_public_id: str
    invitation_text: str
    sent_at: datetime | None


@dataclass(frozen=True)
class Relation:
    provider_id: str  # member_id
    public_identifier: str
    first_name: str
    last_name: str
    headline: str
    connected_at: datetime | None  # created_at (epoch ms) of the relation


@dataclass(frozen=True)
class Chat:
    id: str
    account_id: str
    attendee_provider_id: str
    name: str
    unread_count: int
    timestamp: datetime | None


@dataclass(frozen=True)
class Message:
    id: str
    chat_id: str
    sender_id: str
    text: str
    is_sender: bool  # sent by the account's owner (possibly from another device)
    timestamp: datetime | None


@dataclass(frozen=True)
class ChatStarted:
    chat_id: str
    message_id: str


@dataclass(frozen=True)
class MessageSent:
    message_id: str
