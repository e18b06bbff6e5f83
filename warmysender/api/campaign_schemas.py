"""Request and response bodies of /api/v1/campaigns, named as on the wire (camelCase).

As in `schemas.py`, the schemas state every rule a single field can carry, so anything the
OpenAPI document forbids is refused here with a per-field message. What JSON Schema cannot say
(stepIndex unique across steps, sendingWindowStart before sendingWindowEnd, endDate in the future
and after startDate, template syntax, mailboxes that exist and can send) is checked by
`warmysender.sequences.services` and answered with the same envelope.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
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
    WHOLE_NUMBER as _whole,
)
from warmysender.email.merge_tags import BODY_OUTPUT_LIMIT, SUBJECT_OUTPUT_LIMIT
from warmysender.email.stats import Counts
from warmysender.sequences.models import (
    Action,
    Campaign,
    CampaignMailbox,
    Enrollment,
    EnrollmentStatus,
    Step,
)
from warmysender.sequences.services import MAX_STEPS, StepInput

# The template limits are in bytes of UTF-8; a character takes at most four.
SUBJECT_MAX = SUBJECT_OUTPUT_LIMIT // 4
BODY_MAX = BODY_OUTPUT_LIMIT // 4
# Extra A/B variants of a step get the labels B, C, … in the order sent; A is the step itself.
VARIANT_LABELS = "BCDEFGHIJ"
MAX_IDS = 1000
MAX_MAILBOXES = 100
MAX_LISTS = 100

CampaignStatusName = Literal[
    "draft", "scheduled", "running", "paused", "cooldown", "completed", "errored"
]
EnrollmentStatusName = Literal[
    "pending",
    "sending",
    "completed",
    "replied",
    "bounced",
    "unsubscribed",
    "failed",
    "pending_template_fix",
    "needs_review",
    "unenrolled",
]
ActionStateName = Literal["planned", "reserved", "sending", "sent", "failed", "unknown"]


# --- field types ----------------------------------------------------------------------------

# RFC 3339, as JSON Schema's "date-time" format means it: an offset is required, so a time is
# never read in some implicit zone. (pydantic alone would also take "1700000000" or a bare date.)
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


# The first and the last day Python can represent are left out: with an offset, a time on them
# may lie outside that range in UTC. (The pattern only documents this; the validator applies it.)
_EDGE_DAYS = ("0001-01-01", "9999-12-31")
_NOT_EDGE_DAYS = r"^(?!0001-01-01|9999-12-31)"


def _timestamp(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:00:00Z")
    if value.startswith(_EDGE_DAYS):
        raise ValueError("must lie between 0001-01-02 and 9999-12-30")
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except ValueError:
        raise ValueError("is not a valid date and time") from None


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": _NOT_EDGE_DAYS}),
]


TimeZone = Annotated[TimeZoneName, time_zone_schema("An IANA time zone name.")]
CampaignName = Annotated[StrictStr, Field(max_length=200, pattern=NOT_BLANK), _storable]
Subject = Annotated[StrictStr, Field(max_length=SUBJECT_MAX, pattern=NO_NUL), _storable]
BodyHtml = Annotated[StrictStr, Field(max_length=BODY_MAX, pattern=NO_NUL), _storable]
StepIndex = Annotated[StrictInt, Field(ge=1, le=MAX_STEPS), _whole]
DelayDays = Annotated[StrictInt, Field(ge=0, le=365), _whole]
DelayHours = Annotated[StrictInt, Field(ge=0, le=23), _whole]
Weight = Annotated[StrictInt, Field(ge=0, le=100), _whole]
DailySendLimit = Annotated[StrictInt, Field(ge=1, le=10_000), _whole]
Weekday = Annotated[StrictInt, Field(ge=0, le=6), _whole]
ScheduleDays = Annotated[
    list[Weekday],
    Field(min_length=1, max_length=7, description="0 = Monday … 6 = Sunday."),
]
WindowStart = Annotated[
    StrictInt, Field(ge=0, le=23, description="Hour (0–23) in `timezone`; before the end."), _whole
]
WindowEnd = Annotated[
    StrictInt, Field(ge=1, le=24, description="Hour (1–24) in `timezone`, exclusive."), _whole
]
MinutesBetweenSends = Annotated[StrictInt, Field(ge=0, le=1440), _whole]
MaxSendsPerMailbox = Annotated[StrictInt, Field(ge=1, le=500), _whole]
MailboxIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_MAILBOXES)]
# Constraints inside the alias: on an optional field pydantic would put them on the union and
# describe them as string lengths.
ProspectIdList = Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_IDS)]
ListIdList = Annotated[
    list[uuid.UUID],
    Field(min_length=1, max_length=MAX_LISTS, description="Every member is enrolled."),
]
EmailList = Annotated[list[Email], Field(min_length=1, max_length=MAX_IDS)]


# --- requests -------------------------------------------------------------------------------


class VariantIn(Body):
    subject: Subject
    bodyHtml: BodyHtml
    weight: Weight = Field(
        default=100, description="Relative to the other variants; the step itself weighs 100."
    )


class StepIn(Body):
    stepIndex: StepIndex = Field(description="Unique in the campaign; steps run in its order.")
    subject: Subject = Field(
        description='May be empty for a follow-up in the same thread ("Re: " + the thread\'s).'
    )
    bodyHtml: BodyHtml
    delayDays: DelayDays = Field(default=0, description="Wait after the previous step.")
    delayHours: DelayHours = 0
    sameThread: StrictBool = Field(
        default=True, description="Reply in the thread of the previous email."
    )
    variants: list[VariantIn] = Field(
        default_factory=list,
        max_length=len(VARIANT_LABELS),
        description=(
            "Extra A/B variants. The step's own subject and body are variant A (weight 100); "
            "these become B, C, … in order."
        ),
    )

    def to_input(self) -> StepInput:
        return StepInput(
            step_index=self.stepIndex,
            subject=self.subject,
            body_html=self.bodyHtml,
            delay_days=self.delayDays,
            delay_hours=self.delayHours,
            same_thread=self.sameThread,
            variants=tuple(
                (label, v.subject, v.bodyHtml, v.weight)
                for label, v in zip(VARIANT_LABELS, self.variants, strict=False)
            ),
        )


Steps = Annotated[list[StepIn], Field(min_length=1, max_length=MAX_STEPS)]

# Wire name → Campaign field, for the settings both create and update take.
SETTING_FIELDS = {
    "name": "name",
    "dailySendLimit": "daily_send_limit",
    "timezone": "timezone",
    "scheduleDays": "schedule_days",
    "sendingWindowStart": "window_start_hour",
    "sendingWindowEnd": "window_end_hour",
    "minutesBetweenSends": "min_minutes_between_sends",
    "trackOpens": "track_opens",
    "trackClicks": "track_clicks",
    "stopOnReply": "stop_on_reply",
    "stopOnBounce": "stop_on_bounce",
    "startDate": "start_date",
    "endDate": "end_date",
}


def _settings(body: BaseModel, sent: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in sent:
        if name in SETTING_FIELDS:
            value = getattr(body, name)
            if name == "scheduleDays":
                value = sorted(set(value))
            values[SETTING_FIELDS[name]] = value
    return values


class CampaignIn(Body):
    name: CampaignName = Field(description="1–200 characters.")
    steps: Steps
    mailboxIds: MailboxIds = Field(
        description="Mailboxes of this workspace, connected and with sending enabled."
    )
    prospectIds: list[uuid.UUID] = Field(
        default_factory=list, max_length=MAX_IDS, description="Prospects to enroll at once."
    )
    dailySendLimit: DailySendLimit = Field(default=50, description="Across all its mailboxes.")
    timezone: TimeZone = "UTC"
    scheduleDays: ScheduleDays = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    sendingWindowStart: WindowStart = 9
    sendingWindowEnd: WindowEnd = 17
    minutesBetweenSends: MinutesBetweenSends = 0
    trackOpens: StrictBool = True
    trackClicks: StrictBool = True
    stopOnReply: StrictBool = True
    stopOnBounce: StrictBool = True
    startDate: Timestamp | None = Field(
        default=None, description="A future start makes `start` schedule the campaign."
    )
    endDate: Timestamp | None = Field(
        default=None, description="In the future and after startDate; sending stops then."
    )

    def settings(self) -> dict[str, Any]:
        # Every setting, defaults included: what the document promises is what is stored.
        return _settings(self, SETTING_FIELDS)

    def step_inputs(self) -> list[StepInput]:
        return [s.to_input() for s in self.steps]


class CampaignPatch(Body):
    """Only the fields sent change. `steps` and `mailboxIds` replace the whole set."""

    name: CampaignName | SkipJsonSchema[None] = None
    steps: Steps | SkipJsonSchema[None] = None
    mailboxIds: MailboxIds | SkipJsonSchema[None] = None
    dailySendLimit: DailySendLimit | SkipJsonSchema[None] = None
    timezone: TimeZone | SkipJsonSchema[None] = None
    scheduleDays: ScheduleDays | SkipJsonSchema[None] = None
    sendingWindowStart: WindowStart | SkipJsonSchema[None] = None
    sendingWindowEnd: WindowEnd | SkipJsonSchema[None] = None
    minutesBetweenSends: MinutesBetweenSends | SkipJsonSchema[None] = None
    trackOpens: StrictBool | SkipJsonSchema[None] = None
    trackClicks: StrictBool | SkipJsonSchema[None] = None
    stopOnReply: StrictBool | SkipJsonSchema[None] = None
    stopOnBounce: StrictBool | SkipJsonSchema[None] = None
    startDate: Timestamp | None = Field(default=None, description="null removes it.")
    endDate: Timestamp | None = Field(default=None, description="null removes it.")

    @field_validator(
        "name",
        "steps",
        "mailboxIds",
        "dailySendLimit",
        "timezone",
        "scheduleDays",
        "sendingWindowStart",
        "sendingWindowEnd",
        "minutesBetweenSends",
        "trackOpens",
        "trackClicks",
        "stopOnReply",
        "stopOnBounce",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _reject_null(value)

    def settings(self) -> dict[str, Any]:
        return _settings(self, self.model_fields_set)

    def step_inputs(self) -> list[StepInput] | None:
        return None if self.steps is None else [s.to_input() for s in self.steps]


def _at_least_one(*names: str) -> Any:
    # The rule in the document too, so clients (and schemathesis) know an empty body is refused.
    return {"anyOf": [{"required": [name]} for name in names]}


class EnrollIn(Body):
    model_config = {"json_schema_extra": _at_least_one("prospectIds", "listIds", "emails")}

    prospectIds: ProspectIdList | SkipJsonSchema[None] = None
    listIds: ListIdList | SkipJsonSchema[None] = None
    emails: EmailList | SkipJsonSchema[None] = None

    @field_validator("prospectIds", "listIds", "emails", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _reject_null(value)

    @model_validator(mode="after")
    def _something(self) -> EnrollIn:
        if not (self.prospectIds or self.listIds or self.emails):
            raise ValueError("send at least one of prospectIds, listIds, emails")
        return self


class UnenrollIn(Body):
    model_config = {"json_schema_extra": _at_least_one("prospectIds", "emails")}

    prospectIds: ProspectIdList | SkipJsonSchema[None] = None
    emails: EmailList | SkipJsonSchema[None] = None

    @field_validator("prospectIds", "emails", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _reject_null(value)

    @model_validator(mode="after")
    def _something(self) -> UnenrollIn:
        if not (self.prospectIds or self.emails):
            raise ValueError("send at least one of prospectIds, emails")
        return self


class PoolEntryPatch(Body):
    """Only the fields sent change."""

    active: StrictBool | SkipJsonSchema[None] = Field(
        default=None, description="false: the campaign stops using this mailbox from the next tick."
    )
    maxSendsPerMailboxPerDay: MaxSendsPerMailbox | None = Field(
        default=None, description="This campaign's own daily cap on the mailbox; null removes it."
    )

    @field_validator("active", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _reject_null(value)


class ResolveIn(Body):
    decision: Literal["mark_sent", "send_again"] = Field(
        description="mark_sent: the email did arrive; send_again: send this step once more."
    )


class CampaignFilters(PageFilters):
    status: CampaignStatusName | SkipJsonSchema[None] = Field(
        default=None, description="Only campaigns in this status."
    )


class EnrollmentFilters(PageFilters):
    status: EnrollmentStatusName | SkipJsonSchema[None] = Field(
        default=None, description="Only enrollments in this status."
    )


# --- responses ------------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float:
    # Scanners and re-sends can push events past the sends; shown rates never pass 100 %.
    return 0.0 if whole == 0 else min(100.0, round(100 * part / whole, 1))


class StatsOut(BaseModel):
    sent: int
    opens: int
    clicks: int
    replies: int
    bounces: int
    openRate: float = Field(description="Percent of sent, at most 100.")
    clickRate: float
    replyRate: float
    bounceRate: float

    @classmethod
    def of(cls, counts: Counts) -> StatsOut:
        """Opens and clicks leave security scanners out; each email counts once."""
        sent = counts.sent
        return cls(
            sent=sent,
            opens=counts.opens,
            clicks=counts.clicks,
            replies=counts.replies,
            bounces=counts.bounces,
            openRate=_rate(counts.opens, sent),
            clickRate=_rate(counts.clicks, sent),
            replyRate=_rate(counts.replies, sent),
            bounceRate=_rate(counts.bounces, sent),
        )


class SettingsOut(BaseModel):
    dailySendLimit: int
    timezone: str
    scheduleDays: list[int]
    sendingWindowStart: int
    sendingWindowEnd: int
    minutesBetweenSends: int
    stopOnReply: bool
    stopOnBounce: bool
    trackOpens: bool
    trackClicks: bool
    startDate: datetime | None
    endDate: datetime | None

    @classmethod
    def of(cls, c: Campaign) -> SettingsOut:
        return cls(
            dailySendLimit=c.daily_send_limit,
            timezone=c.timezone,
            scheduleDays=list(c.schedule_days),
            sendingWindowStart=c.window_start_hour,
            sendingWindowEnd=c.window_end_hour,
            minutesBetweenSends=c.min_minutes_between_sends,
            stopOnReply=c.stop_on_reply,
            stopOnBounce=c.stop_on_bounce,
            trackOpens=c.track_opens,
            trackClicks=c.track_clicks,
            startDate=c.start_date,
            endDate=c.end_date,
        )


class CampaignOut(BaseModel):
    id: uuid.UUID
    name: str
    type: Literal["email", "linkedin", "multichannel"]
    status: CampaignStatusName
    pausedReason: str | None = Field(description="Why it is paused (e.g. `api`); else null.")
    pausedAt: datetime | None
    settings: SettingsOut
    stats: StatsOut = Field(description="All-time, since the campaign was created.")
    createdAt: datetime
    updatedAt: datetime
    startedAt: datetime | None
    completedAt: datetime | None

    @classmethod
    def fields_of(cls, c: Campaign, *, counts: Counts) -> dict[str, Any]:
        return {
            "id": c.pk,
            "name": c.name,
            "type": c.type,
            "status": c.status,
            "pausedReason": c.paused_reason or None,
            "pausedAt": c.paused_at,
            "settings": SettingsOut.of(c),
            "stats": StatsOut.of(counts),
            "createdAt": c.created_at,
            "updatedAt": c.updated_at,
            "startedAt": c.started_at,
            "completedAt": c.completed_at,
        }

    @classmethod
    def of(cls, c: Campaign, *, counts: Counts) -> CampaignOut:
        return cls(**cls.fields_of(c, counts=counts))


class VariantOut(BaseModel):
    label: str
    subject: str
    bodyHtml: str
    weight: int


class StepOut(BaseModel):
    stepIndex: int
    subject: str
    bodyHtml: str
    delayDays: int
    delayHours: int
    sameThread: bool
    variants: list[VariantOut] = Field(description="Variants besides A (the step itself).")

    @classmethod
    def of(cls, step: Step) -> StepOut:
        variants = list(step.variants.all())
        first = next((v for v in variants if v.label == "A"), None)
        return cls(
            stepIndex=step.step_index,
            subject=first.subject if first else "",
            bodyHtml=first.body_html if first else "",
            delayDays=step.delay_days,
            delayHours=step.delay_hours,
            sameThread=step.same_thread,
            variants=[
                VariantOut(label=v.label, subject=v.subject, bodyHtml=v.body_html, weight=v.weight)
                for v in variants
                if v is not first
            ],
        )


class CampaignMailboxOut(BaseModel):
    id: uuid.UUID
    email: str
    active: bool = Field(description="Whether the campaign uses it.")
    maxSendsPerMailboxPerDay: int | None = Field(description="This campaign's cap; null: none.")

    @classmethod
    def of(cls, entry: CampaignMailbox) -> CampaignMailboxOut:
        return cls(
            id=entry.mailbox_id,
            email=entry.mailbox.email,
            active=entry.is_active,
            maxSendsPerMailboxPerDay=entry.max_sends_per_day,
        )


class EnrollmentCountsOut(BaseModel):
    total: int
    byStatus: dict[str, int] = Field(description="Every enrollment status, with 0 when none.")

    @classmethod
    def of(cls, counts: dict[str, int]) -> EnrollmentCountsOut:
        by_status = {status: counts.get(status, 0) for status in EnrollmentStatus.values}
        return cls(total=sum(by_status.values()), byStatus=by_status)


class CampaignDetailOut(CampaignOut):
    steps: list[StepOut]
    mailboxes: list[CampaignMailboxOut]
    enrollments: EnrollmentCountsOut


class CampaignData(BaseModel):
    data: CampaignDetailOut


class CampaignPage(BaseModel):
    data: list[CampaignOut]
    nextCursor: str | None


class SkippedOut(BaseModel):
    email: str
    reason: str = Field(description="e.g. suppressed, bounced, unsubscribed.")


class EnrolledOut(BaseModel):
    enrolledCount: int
    skipped: list[SkippedOut] = Field(description="Prospects found but not enrolled, and why.")


class EnrolledData(BaseModel):
    data: EnrolledOut


class UnenrolledOut(BaseModel):
    unenrolledCount: int = Field(description="Enrollments stopped by this call.")
    totalProcessed: int = Field(description="Ids and emails looked at, enrolled or not.")


class UnenrolledData(BaseModel):
    data: UnenrolledOut


class EnrolledProspectOut(BaseModel):
    id: uuid.UUID
    email: str
    firstName: str
    lastName: str


class EnrollmentOut(BaseModel):
    id: uuid.UUID
    prospect: EnrolledProspectOut
    status: EnrollmentStatusName
    currentStep: int = Field(description="The step to run next (1-based).")
    nextActionAt: datetime | None
    waitingReason: str = Field(description="Why it waits, in words; empty when it does not.")
    mailboxId: uuid.UUID | None = Field(description="The sender kept for the whole sequence.")
    lastSentAt: datetime | None
    failureReason: str
    enrolledAt: datetime

    @classmethod
    def of(cls, e: Enrollment) -> EnrollmentOut:
        p = e.prospect
        return cls(
            id=e.pk,
            prospect=EnrolledProspectOut(
                id=p.pk, email=p.email, firstName=p.first_name, lastName=p.last_name
            ),
            status=e.status,  # type: ignore[arg-type]
            currentStep=e.next_step_index,
            nextActionAt=e.next_action_at,
            waitingReason=e.wait_reason,
            mailboxId=e.mailbox_id,
            lastSentAt=e.last_sent_at,
            failureReason=e.failure_reason,
            enrolledAt=e.enrolled_at,
        )


class EnrollmentPage(BaseModel):
    data: list[EnrollmentOut]
    nextCursor: str | None


class ActionOut(BaseModel):
    id: uuid.UUID
    enrollmentId: uuid.UUID
    stepIndex: int
    state: ActionStateName
    toEmail: str
    mailboxId: uuid.UUID | None
    error: str

    @classmethod
    def of(cls, a: Action) -> ActionOut:
        return cls(
            id=a.pk,
            enrollmentId=a.enrollment_id,
            stepIndex=a.step.step_index,
            state=a.state,  # type: ignore[arg-type]
            toEmail=a.to_email,
            mailboxId=a.mailbox_id,
            error=a.error,
        )


class ActionData(BaseModel):
    data: ActionOut
