"""Request and response bodies of the REST API, named as they appear on the wire (camelCase).

The request schemas and the services agree: whatever the OpenAPI document allows, the services
accept, and whatever it forbids is answered 400 (mostly here, before a service runs; email syntax
by the service itself). schemathesis checks both directions. Patterns avoid the constructs on which
regex dialects disagree (`\\s`, `.`, and a `$` that a trailing newline could slip past), so a
client validating with any JSON Schema library reads them as we do.
"""

from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated, Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from warmysender.api.pagination import CURSOR_LENGTH, CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT
from warmysender.prospects.models import Prospect, ProspectList, Suppression
from warmysender.prospects.services import (
    CUSTOM_FIELD_MAX_NAME,
    CUSTOM_FIELD_MAX_VALUE,
    FIELD_MAX_LENGTH,
    MAX_CUSTOM_FIELDS,
)

# What Python's str.strip() removes, spelled out so every regex engine agrees on it.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# PostgreSQL text cannot hold NUL.
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"
LINKEDIN_URL = (
    r"^https?://([a-z0-9-]+\.)*linkedin\.com/(in|pub|sales/lead|sales/people|talent/profile)/"
    rf"[^\x00/?#{_SPACE}][^\x00]*$"
)
COLOR = r"^#[0-9a-fA-F]{6}$"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOMAIN = rf"^[ \t\n\r]*@?({_LABEL}\.)+[A-Za-z]{{2,63}}[ \t\n\r]*$"
# email-validator, which the service uses, refuses addresses under the special-use names of
# RFC 6761 (`x@host.test`); the schema says so, in any letter case. This pattern documents the rule
# and is not applied here (pydantic's regex engine has no lookahead); the service decides.
EMAIL = r"^(?![^\x00]*\.({})$)[^\x00]*$".format(
    "|".join("".join(f"[{c}{c.upper()}]" for c in name) for name in SPECIAL_USE_DOMAIN_NAMES)
)
EMAIL_MAX = FIELD_MAX_LENGTH["email"]
DOMAIN_MAX = 253


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"), which no database encoding can store.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


_storable = AfterValidator(_encodable)


def _limit(name: str) -> Any:
    return Field(max_length=FIELD_MAX_LENGTH[name], pattern=NO_NUL)


# One alias per limit; mypy needs real aliases, not a factory, in annotations.
FirstName = Annotated[StrictStr, _limit("firstName"), _storable]
LastName = Annotated[StrictStr, _limit("lastName"), _storable]
Company = Annotated[StrictStr, _limit("company"), _storable]
Role = Annotated[StrictStr, _limit("role"), _storable]
Phone = Annotated[StrictStr, _limit("phone"), _storable]
Website = Annotated[StrictStr, _limit("website"), _storable]
Country = Annotated[StrictStr, _limit("country"), _storable]
City = Annotated[StrictStr, _limit("city"), _storable]
Industry = Annotated[StrictStr, _limit("industry"), _storable]
Query200 = Annotated[StrictStr, Field(max_length=200, pattern=NO_NUL), _storable]
SuppressionSearch = Annotated[StrictStr, Field(max_length=EMAIL_MAX, pattern=NO_NUL), _storable]
Reason = Annotated[StrictStr, Field(max_length=200, pattern=NO_NUL), _storable]
Cursor = Annotated[StrictStr, Field(pattern=CURSOR_PATTERN, max_length=CURSOR_LENGTH)]
Email = Annotated[
    StrictStr,
    Field(max_length=EMAIL_MAX, json_schema_extra={"format": "email", "pattern": EMAIL}),
    _storable,
]
LinkedinUrl = Annotated[
    StrictStr, Field(max_length=FIELD_MAX_LENGTH["linkedinUrl"], pattern=LINKEDIN_URL), _storable
]
ListName = Annotated[StrictStr, Field(max_length=100, pattern=NOT_BLANK), _storable]
Color = Annotated[StrictStr, Field(max_length=7, pattern=COLOR)]
CustomFieldName = Annotated[
    StrictStr, Field(max_length=CUSTOM_FIELD_MAX_NAME, pattern="[A-Za-z0-9]")
]
CustomFieldText = Annotated[
    StrictStr, Field(max_length=CUSTOM_FIELD_MAX_VALUE, pattern=NO_NUL), _storable
]
CustomFieldValue = CustomFieldText | StrictInt | StrictFloat | None
CustomFields = Annotated[
    dict[CustomFieldName, CustomFieldValue],
    Field(max_length=MAX_CUSTOM_FIELDS),
    # pydantic would describe the key rule as patternProperties, which lets other keys through.
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_CUSTOM_FIELDS,
            "propertyNames": {"maxLength": CUSTOM_FIELD_MAX_NAME, "pattern": "[A-Za-z0-9]"},
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": CUSTOM_FIELD_MAX_VALUE, "pattern": NO_NUL},
                    {"type": "number"},
                    {"type": "null"},
                ]
            },
            "description": (
                "Names: up to 30 characters with at least one letter or digit, stored lower-cased "
                "with other characters replaced by `_`. Values: strings (≤ 1000 characters) or "
                "numbers, stored as text."
            ),
        }
    ),
]


def _reject_null(value: Any) -> Any:
    # For fields that may be left out but not cleared: an explicit null is an error, not a no-op.
    if value is None:
        raise ValueError("must not be null")
    return value


class Body(BaseModel):
    """A request body: unknown fields are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class PageFilters(BaseModel):
    # A query parameter is absent or a string, never null: SkipJsonSchema keeps `null` out of
    # the documented schema while None still stands for "left out".
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")
    cursor: Cursor | SkipJsonSchema[None] = Field(
        default=None, description="The nextCursor of the previous page."
    )


# --- prospects ------------------------------------------------------------------------------

GlobalStatusName = Literal["active", "invalid", "unsubscribed", "bounced"]


class ProspectIn(Body):
    email: Email
    firstName: FirstName | None = None
    lastName: LastName | None = None
    company: Company | None = None
    role: Role | None = None
    phone: Phone | None = None
    linkedinUrl: LinkedinUrl | None = Field(
        default=None, description="A LinkedIn profile URL (linkedin.com/in/…, /pub/, /sales/…)."
    )
    website: Website | None = None
    country: Country | None = None
    city: City | None = None
    industry: Industry | None = None
    customFields: CustomFields | None = None


class ProspectPatch(Body):
    """Only the fields sent change; null or "" clears a field; customFields merge."""

    email: Email | SkipJsonSchema[None] = None
    firstName: FirstName | None = None
    lastName: LastName | None = None
    company: Company | None = None
    role: Role | None = None
    phone: Phone | None = None
    linkedinUrl: LinkedinUrl | None = None
    website: Website | None = None
    country: Country | None = None
    city: City | None = None
    industry: Industry | None = None
    customFields: CustomFields | None = Field(
        default=None, description='Merged into the stored fields; a "" or null value removes one.'
    )

    @field_validator("email", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _reject_null(value)


class ProspectOut(BaseModel):
    id: uuid.UUID
    email: str
    firstName: str
    lastName: str
    company: str
    role: str
    phone: str
    linkedinUrl: str
    website: str
    country: str
    city: str
    industry: str
    customFields: dict[str, str]
    globalStatus: GlobalStatusName
    lists: list[uuid.UUID] = Field(description="Ids of the lists the prospect belongs to.")
    createdAt: datetime
    updatedAt: datetime

    @classmethod
    def of(cls, p: Prospect) -> ProspectOut:
        return cls(
            id=p.pk,
            email=p.email,
            firstName=p.first_name,
            lastName=p.last_name,
            company=p.company,
            role=p.role,
            phone=p.phone,
            linkedinUrl=p.linkedin_url,
            website=p.website,
            country=p.country,
            city=p.city,
            industry=p.industry,
            customFields=p.custom_fields,
            globalStatus=p.global_status,  # type: ignore[arg-type]
            lists=[m.pk for m in p.lists.all()],
            createdAt=p.created_at,
            updatedAt=p.updated_at,
        )


class ProspectFilters(PageFilters):
    q: Query200 = Field(default="", description="Search in email, first and last name, company.")
    listId: uuid.UUID | SkipJsonSchema[None] = Field(
        default=None, description="Only members of this list."
    )
    status: GlobalStatusName | SkipJsonSchema[None] = Field(
        default=None, description="Only this globalStatus."
    )
    company: Query200 = Field(default="", description="Exact company, any case.")


class ProspectData(BaseModel):
    data: ProspectOut


class ProspectPage(BaseModel):
    data: list[ProspectOut]
    nextCursor: str | None


# --- lists ----------------------------------------------------------------------------------


class ListIn(Body):
    name: ListName
    color: Color | None = Field(default=None, description="Defaults to #4f46e5.")


class ListPatch(Body):
    name: ListName | SkipJsonSchema[None] = None
    color: Color | SkipJsonSchema[None] = None

    @field_validator("name", "color", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _reject_null(value)


class ListOut(BaseModel):
    id: uuid.UUID
    name: str
    color: str
    prospectCount: int
    createdAt: datetime

    @classmethod
    def of(cls, prospect_list: ProspectList, prospect_count: int) -> ListOut:
        return cls(
            id=prospect_list.pk,
            name=prospect_list.name,
            color=prospect_list.color,
            prospectCount=prospect_count,
            createdAt=prospect_list.created_at,
        )


class ListData(BaseModel):
    data: ListOut


class ListPage(BaseModel):
    data: list[ListOut]
    nextCursor: str | None


class ProspectIds(Body):
    prospectIds: list[uuid.UUID] = Field(
        min_length=1,
        max_length=1000,
        description="Prospects of this workspace; ids of other workspaces are ignored.",
    )


class AddedCount(BaseModel):
    added: int = Field(description="How many were not in the list before.")


class RemovedCount(BaseModel):
    removed: int = Field(description="How many were in the list.")


class AddedData(BaseModel):
    data: AddedCount


class RemovedData(BaseModel):
    data: RemovedCount


# --- suppressions ---------------------------------------------------------------------------


_DOMAIN_RE = re.compile(DOMAIN)


def _email_or_domain(value: str) -> str:
    # The service decides what a valid address is; here only the documented shape is enforced.
    if "@" in value.strip().lstrip("@") and len(value) <= EMAIL_MAX:
        return value
    if _DOMAIN_RE.fullmatch(value) and len(value) <= DOMAIN_MAX:
        return value
    raise ValueError("must be an email address or a domain such as example.com")


SuppressionValue = Annotated[
    StrictStr,
    AfterValidator(_encodable),
    AfterValidator(_email_or_domain),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "email", "pattern": EMAIL, "maxLength": EMAIL_MAX},
                {"type": "string", "pattern": DOMAIN, "maxLength": DOMAIN_MAX},
            ],
            "description": "An email address, or a domain (`example.com` or `@example.com`).",
        }
    ),
]


class SuppressionIn(Body):
    value: SuppressionValue
    reason: Reason | None = None


class SuppressionOut(BaseModel):
    id: uuid.UUID
    kind: Literal["email", "domain"]
    value: str
    reason: str
    createdAt: datetime

    @classmethod
    def of(cls, entry: Suppression) -> SuppressionOut:
        return cls(
            id=entry.pk,
            kind=entry.kind,  # type: ignore[arg-type]
            value=entry.value,
            reason=entry.reason,
            createdAt=entry.created_at,
        )


class SuppressionFilters(PageFilters):
    q: SuppressionSearch = Field(default="", description="Search in the value.")


class SuppressionData(BaseModel):
    data: SuppressionOut


class SuppressionPage(BaseModel):
    data: list[SuppressionOut]
    nextCursor: str | None


# --- shared field types ----------------------------------------------------------------------

TIME_ZONES = sorted(zoneinfo.available_timezones())
_TIME_ZONE_SET = frozenset(TIME_ZONES)


def _integral(value: Any) -> Any:
    # JSON Schema counts 18.0 as an integer, and so do many JSON encoders; strings and booleans
    # stay errors (StrictInt).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# After the bounds in an Annotated integer, so they stay on it and the document shows them as
# minimum/maximum.
WHOLE_NUMBER = BeforeValidator(_integral)


def _time_zone(value: str) -> str:
    if value not in _TIME_ZONE_SET:
        raise ValueError("must be an IANA time zone name such as Europe/Berlin")
    return value


# An IANA zone name; users add the OpenAPI description (with TIME_ZONES as its enum).
TimeZoneName = Annotated[StrictStr, AfterValidator(_time_zone)]


def time_zone_schema(description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": TIME_ZONES, "description": description})
