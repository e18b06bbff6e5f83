"""Request and response bodies of /api/v1/mailboxes, named as on the wire (camelCase).

As in `schemas.py`, whatever the OpenAPI document allows the service accepts, and what it
forbids is a 400 here. The create body is one of three shapes chosen by `provider`: a preset
(`gmail`, `outlook`, … — servers filled in, password required), `custom` (SMTP host required) and
`sandbox` (no servers at all). Passwords are accepted and never returned.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from warmysender.api.schemas import (
    NO_NUL,
    NOT_BLANK,
    Body,
    Email,
    PageFilters,
    TimeZoneName,
    _reject_null,
    _storable,
    time_zone_schema,
)
from warmysender.api.schemas import (
    WHOLE_NUMBER as _integer,
)
from warmysender.mailboxes.models import HARD_DAILY_CAP, Mailbox
from warmysender.mailboxes.presets import PRESET_PROVIDERS
from warmysender.mailboxes.services import (
    FROM_NAME_MAX,
    HOST_CORE,
    HOST_MAX,
    PASSWORD_MAX,
    SIGNATURE_MAX,
    USERNAME_MAX,
    mailbox_passwords_or_empty,
)

# A control character anywhere. Said as "not this pattern" rather than `^[^…]*$`: JSON Schema
# patterns are searched, and Python's `$` also matches before a final newline.
_CONTROL = r"[\x00-\x1f\x7f]"
_CONTROL_RE = re.compile(_CONTROL)
# Surrounding spaces/newlines are allowed (and stripped) so every regex dialect reads the
# pattern the same way, trailing newline included.
HOST_PATTERN = rf"^[ \t\n\r]*{HOST_CORE}[ \t\n\r]*$"

Security = Literal["ssl", "starttls", "none"]
Status = Literal["connected", "disconnected", "error"]
Kind = Literal["smtp", "sandbox"]
Provider = Literal[
    "gmail", "outlook", "yahoo", "zoho_com", "zoho_eu", "zoho_in", "hostinger", "custom", "sandbox"
]
PresetProvider = Literal["gmail", "outlook", "yahoo", "zoho_com", "zoho_eu", "zoho_in", "hostinger"]
assert set(PresetProvider.__args__) == set(PRESET_PROVIDERS)  # type: ignore[attr-defined]


def _no_control(value: str) -> str:
    if _CONTROL_RE.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs, …)")
    return value


def _single_line(max_length: int, description: str) -> Any:
    return WithJsonSchema(
        {
            "type": "string",
            "maxLength": max_length,
            "not": {"pattern": _CONTROL},
            "description": description,
        }
    )


FromName = Annotated[
    StrictStr,
    Field(max_length=FROM_NAME_MAX),
    AfterValidator(_no_control),
    _single_line(FROM_NAME_MAX, "The name recipients see next to the address."),
]
Username = Annotated[
    StrictStr,
    Field(max_length=USERNAME_MAX),
    AfterValidator(_no_control),
    _single_line(USERNAME_MAX, "Defaults to the mailbox address (usually what providers want)."),
]
Host = Annotated[
    StrictStr,
    Field(max_length=HOST_MAX, pattern=HOST_PATTERN),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": HOST_MAX,
            "pattern": HOST_PATTERN,
            "description": "A host name such as smtp.example.com, or an IPv4 address.",
        }
    ),
]
# The validator after the constraints, or pydantic writes `ge`/`le` into the JSON Schema.
Port = Annotated[StrictInt, Field(ge=1, le=65535), _integer]
Password = Annotated[
    StrictStr,
    Field(max_length=PASSWORD_MAX, pattern=NOT_BLANK),
    _storable,
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": PASSWORD_MAX,
            "pattern": NOT_BLANK,
            "writeOnly": True,
            "description": "Stored encrypted, never returned. Surrounding spaces are removed.",
        }
    ),
]
DailyLimit = Annotated[
    StrictInt,
    Field(
        ge=1,
        le=HARD_DAILY_CAP,
        description=f"Emails per day from this mailbox (1–{HARD_DAILY_CAP}; {HARD_DAILY_CAP} "
        "is the platform's hard cap).",
    ),
    _integer,
]
Signature = Annotated[StrictStr, Field(max_length=SIGNATURE_MAX, pattern=NO_NUL), _storable]
TimeZone = Annotated[
    TimeZoneName, time_zone_schema("IANA time zone; the daily limit resets at its midnight.")
]


class _MailboxSettings(Body):
    email: Email
    fromName: FromName | None = None
    dailyLimit: DailyLimit | None = Field(default=None, description="Defaults to 30.")
    sendingEnabled: StrictBool | None = Field(default=None, description="Defaults to true.")
    signature: Signature | None = Field(
        default=None, description="Inserted where a template says {{signature}}."
    )
    signatureIsHtml: StrictBool | None = None
    timezone: TimeZone | None = Field(default=None, description="Defaults to UTC.")


class _ServerSettings(_MailboxSettings):
    smtpPort: Port | None = None
    smtpSecurity: Security | None = Field(
        default=None, description="ssl = implicit TLS (465), starttls (587), none (25)."
    )
    smtpUsername: Username | None = None
    imapHost: Host | None = None
    imapPort: Port | None = None
    imapSecurity: Security | None = Field(
        default=None, description="ssl = implicit TLS (993), starttls (143), none."
    )
    imapUsername: Username | None = Field(default=None, description="Defaults to smtpUsername.")
    imapPassword: Password | None = Field(default=None, description="Defaults to smtpPassword.")


class PresetMailboxIn(_ServerSettings):
    """A provider preset: hosts, ports and security are filled in; any given value wins."""

    provider: PresetProvider
    smtpHost: Host | None = None
    smtpPassword: Password = Field(
        description="For Gmail, Outlook and Yahoo an App Password; for Hostinger the mailbox "
        "password; for Zoho an App Password when two-factor authentication is on."
    )


class CustomMailboxIn(_ServerSettings):
    """Any SMTP server. Without IMAP settings replies are not detected; IMAP settings without
    `imapHost` use the SMTP host. Without a password no log-in is attempted."""

    provider: Literal["custom"]
    smtpHost: Host
    smtpPassword: Password | None = None


class SandboxMailboxIn(_MailboxSettings):
    """Captures mail in WarmySender instead of sending it; connected at once."""

    provider: Literal["sandbox"]


MailboxIn = Annotated[
    PresetMailboxIn | CustomMailboxIn | SandboxMailboxIn, Field(discriminator="provider")
]


class MailboxPatch(Body):
    """Only the fields sent change. Changing server settings or a password tests the connection
    again at once. Server settings of a sandbox mailbox are a 409 conflict."""

    fromName: FromName | SkipJsonSchema[None] = None
    dailyLimit: DailyLimit | SkipJsonSchema[None] = None
    sendingEnabled: StrictBool | SkipJsonSchema[None] = None
    signature: Signature | SkipJsonSchema[None] = None
    signatureIsHtml: StrictBool | SkipJsonSchema[None] = None
    timezone: TimeZone | SkipJsonSchema[None] = None
    smtpHost: Host | SkipJsonSchema[None] = None
    smtpPort: Port | SkipJsonSchema[None] = None
    smtpSecurity: Security | SkipJsonSchema[None] = None
    smtpUsername: Username | SkipJsonSchema[None] = None
    smtpPassword: Password | SkipJsonSchema[None] = None
    imapHost: Host | None = Field(default=None, description="null removes the IMAP server.")
    imapPort: Port | SkipJsonSchema[None] = None
    imapSecurity: Security | SkipJsonSchema[None] = None
    imapUsername: Username | SkipJsonSchema[None] = None
    imapPassword: Password | SkipJsonSchema[None] = None

    @field_validator(
        "fromName",
        "dailyLimit",
        "sendingEnabled",
        "signature",
        "signatureIsHtml",
        "timezone",
        "smtpHost",
        "smtpPort",
        "smtpSecurity",
        "smtpUsername",
        "smtpPassword",
        "imapPort",
        "imapSecurity",
        "imapUsername",
        "imapPassword",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _reject_null(value)


class MailboxFilters(PageFilters):
    status: Status | SkipJsonSchema[None] = Field(default=None, description="Only this status.")
    kind: Kind | SkipJsonSchema[None] = Field(default=None, description="Only this kind.")


class MailboxOut(BaseModel):
    id: uuid.UUID
    email: str
    fromName: str
    kind: Kind
    provider: Provider
    smtpHost: str
    smtpPort: int | None
    smtpSecurity: Security
    smtpUsername: str
    imapHost: str = Field(description='"" when no IMAP server is configured.')
    imapPort: int | None
    imapSecurity: Security
    imapUsername: str
    hasPassword: bool = Field(description="Whether an SMTP password is stored (never returned).")
    hasImapPassword: bool
    status: Status
    lastError: str = Field(description="The last connection error and what to do about it.")
    lastCheckedAt: datetime | None
    sendingEnabled: bool
    usable: bool = Field(description="Connected and sending enabled: campaigns can use it.")
    dailyLimit: int
    signature: str
    signatureIsHtml: bool
    timezone: str
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def of(cls, m: Mailbox) -> MailboxOut:
        passwords = mailbox_passwords_or_empty(m)
        return cls(
            id=m.pk,
            email=m.email,
            fromName=m.from_name,
            kind=m.kind,  # type: ignore[arg-type]
            provider=m.provider,  # type: ignore[arg-type]
            smtpHost=m.smtp_host,
            smtpPort=m.smtp_port,
            smtpSecurity=m.smtp_security,  # type: ignore[arg-type]
            smtpUsername=m.smtp_username,
            imapHost=m.imap_host,
            imapPort=m.imap_port,
            imapSecurity=m.imap_security,  # type: ignore[arg-type]
            imapUsername=m.imap_username,
            hasPassword=bool(passwords.get("smtp_password")),
            hasImapPassword=bool(passwords.get("imap_password")),
            status=m.status,  # type: ignore[arg-type]
            lastError=m.last_error,
            lastCheckedAt=m.last_checked_at,
            sendingEnabled=m.sending_enabled,
            usable=m.is_usable,
            dailyLimit=m.daily_limit,
            signature=m.signature,
            signatureIsHtml=m.signature_is_html,
            timezone=m.timezone,
            createdAt=m.created_at,
            updatedAt=m.updated_at,
        )


class MailboxData(BaseModel):
    data: MailboxOut


class MailboxPage(BaseModel):
    data: list[MailboxOut]
    nextCursor: str | None


class CheckOut(BaseModel):
    ok: bool
    error: str = Field(description="What the server or the network said.")
    hint: str = Field(description="What to do about it, in plain words.")


class ConnectionTestOut(BaseModel):
    ok: bool
    checkedAt: datetime
    smtp: CheckOut
    imap: CheckOut | None = Field(description="null when no IMAP server is configured.")
    mailbox: MailboxOut = Field(description="The mailbox with its new status.")


class ConnectionTestData(BaseModel):
    data: ConnectionTestOut
