"""Every state change of campaigns, steps and enrollments. Each function owns its transaction and
writes the audit row (and domain event) of the change in it."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction
from django.db.models import Q

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import require_active_subscription
from warmysender.audit.services import Actor, emit_event, record_audit
from warmysender.email import rendering
from warmysender.mailboxes.models import Mailbox
from warmysender.prospects.models import ListMembership, Prospect
from warmysender.sequences.models import (
    ACTIVE_ENROLLMENT,
    Action,
    ActionState,
    Campaign,
    CampaignEvent,
    CampaignMailbox,
    CampaignStatus,
    CampaignType,
    Enrollment,
    EnrollmentStatus,
    PauseReason,
    Step,
    Variant,
)
from warmysender.sequences.windows import Window, clamp_to_window, describe_next

MAX_STEPS = 50
STUCK_FAILURE = "Failed: stuck in processing loop after 3+ recovery cycles"
RECOVERY_LIMIT = 3


class CampaignError(Exception):
    """A refused campaign change. `code` is the API error code; `field` names the input."""

    def __init__(
        self, code: str, message: str, *, field: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details


# Which status may follow which. Everything else is refused with `invalid_status`.
TRANSITIONS: dict[str, set[str]] = {
    CampaignStatus.DRAFT: {CampaignStatus.SCHEDULED, CampaignStatus.RUNNING},
    CampaignStatus.SCHEDULED: {
        CampaignStatus.RUNNING,
        CampaignStatus.PAUSED,
        CampaignStatus.COMPLETED,
    },
    CampaignStatus.RUNNING: {
        CampaignStatus.PAUSED,
        CampaignStatus.COOLDOWN,
        CampaignStatus.COMPLETED,
        CampaignStatus.ERRORED,
    },
    CampaignStatus.PAUSED: {
        CampaignStatus.RUNNING,
        CampaignStatus.SCHEDULED,
        CampaignStatus.COMPLETED,
    },
    CampaignStatus.COOLDOWN: {
        CampaignStatus.RUNNING,
        CampaignStatus.PAUSED,
        CampaignStatus.COMPLETED,
    },
    CampaignStatus.COMPLETED: set(),
    CampaignStatus.ERRORED: set(),
}


def window_of(campaign: Campaign) -> Window:
    return Window(
        ZoneInfo(campaign.timezone),
        frozenset(campaign.schedule_days),
        campaign.window_start_hour,
        campaign.window_end_hour,
    )


def log_event(
    campaign: Campaign,
    type: str,
    message: str,
    *,
    now: datetime,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    CampaignEvent.objects.create(
        workspace_id=campaign.workspace_id,
        campaign=campaign,
        type=type,
        reason=reason,
        message=message,
        data=data or {},
        created_at=now,
    )


def transition_campaign(
    campaign: Campaign, to: str, *, actor: Actor, now: datetime, reason: str = ""
) -> Campaign:
    """The one door for campaign status. Locks the row, checks the move is allowed, writes the
    audit row, the domain event and the campaign log line in the same transaction."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        before = campaign.status
        if to == before:
            return campaign
        if to not in TRANSITIONS[before]:
            raise CampaignError(
                "invalid_status",
                f"A {before} campaign cannot become {to}.",
                details={"status": before},
            )
        if to == CampaignStatus.PAUSED and not reason:
            raise ValueError("a pause needs a reason")
        campaign.status = to
        campaign.updated_at = now
        fields = ["status", "updated_at"]
        if to == CampaignStatus.PAUSED:
            campaign.paused_reason, campaign.paused_at = reason, now
            fields += ["paused_reason", "paused_at"]
        elif before == CampaignStatus.PAUSED:
            campaign.paused_reason, campaign.paused_at = "", None
            fields += ["paused_reason", "paused_at"]
        if to == CampaignStatus.RUNNING and campaign.started_at is None:
            campaign.started_at = now
            fields.append("started_at")
        if to == CampaignStatus.COMPLETED:
            campaign.completed_at = now
            fields.append("completed_at")
        campaign.save(update_fields=fields)
        record_audit(
            workspace=campaign.workspace,
            actor=actor,
            action="campaign.status_changed",
            obj=campaign,
            from_state=before,
            to_state=to,
            reason=reason,
            now=now,
        )
        emit_event(
            workspace=campaign.workspace,
            type="campaign.status_changed",
            data={"campaignId": str(campaign.id), "from": before, "to": to, "reason": reason},
            now=now,
        )
        label = f"{before} → {to}" + (f" ({reason})" if reason else "")
        log_event(campaign, "status", label, now=now, reason=reason)
        if (
            before in (CampaignStatus.PAUSED, CampaignStatus.COOLDOWN)
            and to == CampaignStatus.RUNNING
        ):
            reclamp_after_pause(campaign, now)
    return campaign


def reclamp_after_pause(campaign: Campaign, now: datetime) -> int:
    """Work that fell due during a pause is moved forward to the next legal time, never replayed
    in a burst: the pacer and the caps then drain it at the normal pace."""
    window = window_of(campaign)
    opening = clamp_to_window(now, window)
    if opening is None:
        opening = now + timedelta(days=1)
    reason = "resumed" if opening == now else f"resumed; {describe_next(window, opening)}"
    return Enrollment.objects.filter(
        campaign=campaign, status=EnrollmentStatus.PENDING, next_action_at__lt=opening
    ).update(next_action_at=opening, wait_reason=reason, updated_at=now)


# --- creating and editing ------------------------------------------------------------------


@dataclass(frozen=True)
class StepInput:
    step_index: int
    subject: str
    body_html: str
    delay_days: int = 0
    delay_hours: int = 0
    same_thread: bool = True
    variants: Sequence[tuple[str, str, str, int]] = ()  # (label, subject, body, weight), extra to A
    weight: int = 100  # variant A's weight

    def all_variants(self) -> list[tuple[str, str, str, int]]:
        return [("A", self.subject, self.body_html, self.weight), *self.variants]


SETTABLE = {
    "name",
    "daily_send_limit",
    "timezone",
    "schedule_days",
    "window_start_hour",
    "window_end_hour",
    "randomize_within_window",
    "min_minutes_between_sends",
    "stop_on_reply",
    "stop_on_bounce",
    "track_opens",
    "track_clicks",
    "start_date",
    "end_date",
}


def _validate_settings(
    values: Mapping[str, Any], now: datetime, current: Campaign | None = None
) -> None:
    if "name" in values:
        name = (values["name"] or "").strip()
        if not 1 <= len(name) <= 200:
            raise CampaignError(
                "validation_error", "The name must be 1 to 200 characters.", field="name"
            )
    if "daily_send_limit" in values:
        limit = values["daily_send_limit"]
        if not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise CampaignError(
                "validation_error",
                "dailySendLimit must be between 1 and 10,000.",
                field="dailySendLimit",
            )
    if "timezone" in values:
        try:
            ZoneInfo(values["timezone"])
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise CampaignError(
                "validation_error",
                f"Unknown time zone {values['timezone']!r} (use an IANA name such as Europe/Berlin).",
                field="timezone",
            ) from exc
    if "schedule_days" in values:
        days = values["schedule_days"]
        if not days or any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise CampaignError(
                "validation_error",
                "scheduleDays needs at least one day, 0 (Monday) to 6 (Sunday).",
                field="scheduleDays",
            )
    start = values.get("window_start_hour", current.window_start_hour if current else 9)
    end = values.get("window_end_hour", current.window_end_hour if current else 17)
    if not (0 <= start <= 23 and 1 <= end <= 24 and start < end):
        raise CampaignError(
            "validation_error",
            "The sending window needs 0 <= sendingWindowStart < sendingWindowEnd <= 24.",
            field="sendingWindowStart" if "window_start_hour" in values else "sendingWindowEnd",
        )
    start_date = values.get("start_date", current.start_date if current else None)
    end_date = values.get("end_date", current.end_date if current else None)
    if "end_date" in values and end_date is not None and end_date <= now:
        raise CampaignError("validation_error", "endDate must be in the future.", field="endDate")
    # Either date may be the one that changed; the order must hold whenever both are set.
    changed_dates = "start_date" in values or "end_date" in values
    if changed_dates and start_date is not None and end_date is not None and end_date <= start_date:
        field = "endDate" if "end_date" in values else "startDate"
        raise CampaignError("validation_error", "endDate must be after startDate.", field=field)


def _check_templates(steps: Sequence[StepInput]) -> None:
    for step in steps:
        for label, subject, body, _ in step.all_variants():
            problems = rendering.check_template(subject, body)
            if problems:
                p = problems[0]
                raise CampaignError(
                    "validation_error",
                    f"Step {step.step_index} variant {label}: {p}",
                    field=f"steps.{step.step_index}",
                    details=[
                        {
                            "field": f"steps.{step.step_index}",
                            "in": "body",
                            "message": str(p),
                            "line": p.line,
                            "column": p.column,
                        }
                    ],
                )


def _validate_steps(steps: Sequence[StepInput]) -> None:
    if not 1 <= len(steps) <= MAX_STEPS:
        raise CampaignError("validation_error", "A campaign needs 1 to 50 steps.", field="steps")
    indexes = [s.step_index for s in steps]
    if len(set(indexes)) != len(indexes):
        raise CampaignError(
            "validation_error", "Each step needs a unique stepIndex.", field="steps"
        )
    if any(not 1 <= i <= MAX_STEPS for i in indexes):
        raise CampaignError(
            "validation_error", "stepIndex must be between 1 and 50.", field="steps"
        )
    for s in steps:
        if not s.subject.strip() and not s.same_thread:
            raise CampaignError(
                "validation_error", f"Step {s.step_index} needs a subject.", field="steps"
            )
    first = min(steps, key=lambda s: s.step_index)
    if not first.subject.strip():
        raise CampaignError("validation_error", "The first step needs a subject.", field="steps")
    _check_templates(steps)


def _usable_mailboxes(workspace: Workspace, mailbox_ids: Iterable[Any]) -> list[Mailbox]:
    ids = list(dict.fromkeys(str(m) for m in mailbox_ids))
    found = {str(m.id): m for m in Mailbox.objects.filter(workspace=workspace, id__in=ids)}
    missing = [m for m in ids if m not in found]
    unusable = [m for m in ids if m in found and not found[m].is_usable]
    if missing or unusable:
        raise CampaignError(
            "unusable_mailboxes",
            "Every mailbox must exist in this workspace, be connected and have sending enabled.",
            field="mailboxIds",
            details={"missing": missing, "unusable": unusable},
        )
    return [found[m] for m in ids]


def _write_steps(campaign: Campaign, steps: Sequence[StepInput]) -> None:
    campaign.steps.all().delete()
    for s in sorted(steps, key=lambda x: x.step_index):
        _write_step(campaign, s)


def _write_step(campaign: Campaign, s: StepInput, step: Step | None = None) -> Step:
    """Create or update one step and make its variants exactly those of `s`."""
    if step is None:
        step = Step.objects.create(
            workspace_id=campaign.workspace_id,
            campaign=campaign,
            step_index=s.step_index,
            delay_days=s.delay_days,
            delay_hours=s.delay_hours,
            same_thread=s.same_thread,
        )
    else:
        step.delay_days, step.delay_hours = s.delay_days, s.delay_hours
        step.same_thread = s.same_thread
        step.save(update_fields=["delay_days", "delay_hours", "same_thread"])
    wanted = s.all_variants()
    # A variant left out is removed; actions that used it keep their history (variant NULL).
    Variant.objects.filter(step=step).exclude(label__in=[v[0] for v in wanted]).delete()
    for label, subject, body, weight in wanted:
        Variant.objects.update_or_create(
            step=step,
            label=label,
            defaults={
                "workspace_id": campaign.workspace_id,
                "subject": subject,
                "body_html": body,
                "weight": weight,
            },
        )
    return step


def create_campaign(
    *,
    workspace: Workspace,
    name: str,
    steps: Sequence[StepInput],
    mailbox_ids: Sequence[Any],
    settings: Mapping[str, Any],
    actor: Actor,
    now: datetime,
    type: str = CampaignType.EMAIL,
    prospect_ids: Sequence[Any] = (),
    require_mailboxes: bool = True,
) -> Campaign:
    """A new campaign, always a draft."""
    values = {k: v for k, v in settings.items() if k in SETTABLE}
    values["name"] = name
    _validate_settings(values, now)
    if steps or require_mailboxes:
        _validate_steps(steps)
    if type not in CampaignType.values:
        raise CampaignError("validation_error", f"Unknown campaign type {type!r}.", field="type")
    mailboxes = (
        _usable_mailboxes(workspace, mailbox_ids) if (mailbox_ids or require_mailboxes) else []
    )
    if require_mailboxes and not mailboxes:
        raise CampaignError(
            "validation_error", "mailboxIds needs at least one mailbox.", field="mailboxIds"
        )
    with transaction.atomic():
        values["name"] = name.strip()
        campaign = Campaign.objects.create(
            workspace=workspace,
            type=type,
            created_by=actor.user,
            created_at=now,
            updated_at=now,
            **values,
        )
        _write_steps(campaign, steps)
        set_pool(campaign, [(m, True, None) for m in mailboxes])
        record_audit(
            workspace=workspace,
            actor=actor,
            action="campaign.created",
            obj=campaign,
            to_state="draft",
            now=now,
        )
        if prospect_ids:
            enroll(campaign=campaign, prospect_ids=prospect_ids, actor=actor, now=now)
    return campaign


def set_pool(campaign: Campaign, entries: Sequence[tuple[Mailbox, bool, int | None]]) -> None:
    """Replace the campaign's mailbox pool: (mailbox, active, maxSendsPerMailboxPerDay)."""
    keep = {m.id for m, _, _ in entries}
    removed = list(campaign.pool.exclude(mailbox_id__in=keep).values_list("mailbox_id", flat=True))
    campaign.pool.exclude(mailbox_id__in=keep).delete()
    for position, (mailbox, active, max_per_day) in enumerate(entries):
        CampaignMailbox.objects.update_or_create(
            campaign=campaign,
            mailbox=mailbox,
            defaults={
                "workspace_id": campaign.workspace_id,
                "is_active": active,
                "max_sends_per_day": max_per_day,
                "position": position,
            },
        )
        if not active:
            removed.append(mailbox.id)
    if removed:
        # Prospects waiting on a mailbox that left the pool get another from the pool.
        Enrollment.objects.filter(
            campaign=campaign, mailbox_id__in=removed, status=EnrollmentStatus.PENDING
        ).update(mailbox=None)


UNCHANGED: Any = object()


def update_pool_entry(
    *,
    campaign: Campaign,
    mailbox_id: Any,
    actor: Actor,
    now: datetime,
    active: bool | None = None,
    max_sends_per_day: Any = UNCHANGED,
) -> CampaignMailbox:
    """Switch one pool mailbox on or off for this campaign, or set its own daily cap. Allowed
    while the campaign runs: the next tick uses it. Prospects waiting on a mailbox switched off
    get another from the pool."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.ERRORED):
            raise CampaignError(
                "invalid_status",
                f"A {campaign.status} campaign's mailboxes cannot change.",
                details={"status": campaign.status},
            )
        entry = (
            CampaignMailbox.objects.select_for_update()
            .filter(campaign=campaign, mailbox_id=mailbox_id)
            .first()
        )
        if entry is None:
            raise CampaignError("not_found", "This mailbox is not in the campaign's pool.")
        changed: dict[str, Any] = {}
        if max_sends_per_day is not UNCHANGED:
            if max_sends_per_day is not None and not (
                isinstance(max_sends_per_day, int) and 1 <= max_sends_per_day <= 500
            ):
                raise CampaignError(
                    "validation_error",
                    "maxSendsPerMailboxPerDay must be between 1 and 500, or null for no cap.",
                    field="maxSendsPerMailboxPerDay",
                )
            entry.max_sends_per_day = max_sends_per_day
            changed["maxSendsPerMailboxPerDay"] = max_sends_per_day
        if active is not None:
            entry.is_active = active
            changed["active"] = active
            if not active:
                Enrollment.objects.filter(
                    campaign=campaign, mailbox_id=mailbox_id, status=EnrollmentStatus.PENDING
                ).update(mailbox=None, updated_at=now)
        entry.save(update_fields=["is_active", "max_sends_per_day"])
        record_audit(
            workspace=campaign.workspace,
            actor=actor,
            action="campaign.mailbox_updated",
            obj=campaign,
            data={"mailboxId": str(mailbox_id), **changed},
            now=now,
        )
    return entry


def update_campaign(
    *,
    campaign: Campaign,
    settings: Mapping[str, Any],
    actor: Actor,
    now: datetime,
    steps: Sequence[StepInput] | None = None,
    mailbox_ids: Sequence[Any] | None = None,
) -> Campaign:
    """Only drafts and paused campaigns may change (API: `invalid_status` otherwise)."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.PAUSED):
            raise CampaignError(
                "invalid_status",
                f"Only draft or paused campaigns can be changed; this one is {campaign.status}.",
                details={"status": campaign.status},
            )
        values = {k: v for k, v in settings.items() if k in SETTABLE}
        _validate_settings(values, now, current=campaign)
        changed = {}
        for key, value in values.items():
            if key == "name":
                value = value.strip()
            if getattr(campaign, key) != value:
                changed[key] = str(value)
                setattr(campaign, key, value)
        if steps is not None:
            _validate_steps(steps)
            if (
                campaign.status != CampaignStatus.DRAFT
                and Action.objects.filter(campaign=campaign).exists()
            ):
                _update_step_content(campaign, steps)
            else:
                _write_steps(campaign, steps)
            changed["steps"] = str(len(steps))
        if mailbox_ids is not None:
            # Mailboxes already in the pool keep their switch and their cap.
            current = {e.mailbox_id: e for e in campaign.pool.all()}
            set_pool(
                campaign,
                [
                    (
                        m,
                        current[m.id].is_active if m.id in current else True,
                        current[m.id].max_sends_per_day if m.id in current else None,
                    )
                    for m in _usable_mailboxes(campaign.workspace, mailbox_ids)
                ],
            )
            changed["mailboxIds"] = ",".join(str(m) for m in mailbox_ids)
        campaign.updated_at = now
        campaign.save()
        record_audit(
            workspace=campaign.workspace,
            actor=actor,
            action="campaign.updated",
            obj=campaign,
            data=changed,
            now=now,
        )
    return campaign


def _update_step_content(campaign: Campaign, steps: Sequence[StepInput]) -> None:
    """Edit steps of a campaign that has already sent: steps are matched by index so sent
    actions keep their step; new indexes are added, missing ones removed only if unused."""
    existing = {s.step_index: s for s in campaign.steps.all()}
    wanted = {s.step_index: s for s in steps}
    for index, step in existing.items():
        if index not in wanted:
            if step.actions.exists():
                raise CampaignError(
                    "validation_error",
                    f"Step {index} has already sent and cannot be removed.",
                    field="steps",
                )
            step.delete()
    for index, s in wanted.items():
        _write_step(campaign, s, existing.get(index))


# --- launching -----------------------------------------------------------------------------


def launch_problems(campaign: Campaign, now: datetime) -> None:
    """Everything `start` checks, raised as the first CampaignError found."""
    steps = list(campaign.steps.prefetch_related("variants"))
    if not steps:
        raise CampaignError("validation_error", "The campaign has no steps.", field="steps")
    pool = list(campaign.pool.filter(is_active=True).select_related("mailbox"))
    if not pool:
        raise CampaignError(
            "unusable_mailboxes", "The campaign has no active mailbox.", field="mailboxIds"
        )
    if not any(entry.mailbox.is_usable for entry in pool):
        raise CampaignError(
            "unusable_mailboxes",
            "None of the campaign's mailboxes is connected with sending enabled.",
            field="mailboxIds",
            details={"unusable": [str(e.mailbox_id) for e in pool]},
        )
    if campaign.end_date is not None and campaign.end_date <= now:
        raise CampaignError(
            "end_date_expired", "The campaign's end date has passed.", field="endDate"
        )
    templates = [(v.subject, v.body_html) for s in steps for v in s.variants.all()]
    for subject, body in templates:
        problems = rendering.check_template(subject, body)
        if problems:
            raise CampaignError("validation_error", f"Template error: {problems[0]}", field="steps")
    available = _custom_fields_of_enrolled(campaign)
    missing = rendering.missing_custom_fields(templates, available)
    if missing:
        existing = ", ".join(sorted(available)) or "none"
        raise CampaignError(
            "validation_error",
            f"The templates use custom field(s) {', '.join(missing)} that none of the enrolled "
            f"prospects has. Existing custom fields: {existing}.",
            field="steps",
            details={"missing": missing, "existing": sorted(available)},
        )


def _custom_fields_of_enrolled(campaign: Campaign) -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT jsonb_object_keys(p.custom_fields)
            FROM sequences_enrollment e JOIN prospects_prospect p ON p.id = e.prospect_id
            WHERE e.campaign_id = %s AND jsonb_typeof(p.custom_fields) = 'object'
            """,
            [campaign.pk],
        )
        return {row[0] for row in cursor.fetchall()}


def start_campaign(*, campaign: Campaign, actor: Actor, now: datetime) -> Campaign:
    """draft or paused → running (or scheduled when its start date is ahead)."""
    campaign = Campaign.objects.select_related("workspace").get(pk=campaign.pk)
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.ERRORED):
        raise CampaignError(
            "invalid_status",
            f"A {campaign.status} campaign cannot be started.",
            details={"status": campaign.status},
        )
    if campaign.status in (
        CampaignStatus.RUNNING,
        CampaignStatus.SCHEDULED,
        CampaignStatus.COOLDOWN,
    ):
        raise CampaignError(
            "invalid_status",
            f"The campaign is already {campaign.status}.",
            details={"status": campaign.status},
        )
    require_active_subscription(campaign.workspace, now)
    launch_problems(campaign, now)
    target = (
        CampaignStatus.SCHEDULED
        if campaign.start_date is not None and campaign.start_date > now
        else CampaignStatus.RUNNING
    )
    return transition_campaign(campaign, target, actor=actor, now=now)


def pause_campaign(*, campaign: Campaign, reason: str, actor: Actor, now: datetime) -> Campaign:
    campaign = Campaign.objects.get(pk=campaign.pk)
    if campaign.status not in (
        CampaignStatus.RUNNING,
        CampaignStatus.SCHEDULED,
        CampaignStatus.COOLDOWN,
    ):
        raise CampaignError(
            "invalid_status",
            f"Only running or scheduled campaigns can be paused; this one is {campaign.status}.",
            details={"status": campaign.status},
        )
    return transition_campaign(campaign, CampaignStatus.PAUSED, actor=actor, now=now, reason=reason)


def start_due_scheduled_campaigns(now: datetime) -> int:
    due = list(Campaign.objects.filter(status=CampaignStatus.SCHEDULED, start_date__lte=now))
    for campaign in due:
        transition_campaign(
            campaign, CampaignStatus.RUNNING, actor=Actor.system("scheduler"), now=now
        )
    ended = list(
        Campaign.objects.filter(
            status__in=[
                CampaignStatus.RUNNING,
                CampaignStatus.SCHEDULED,
                CampaignStatus.PAUSED,
                CampaignStatus.COOLDOWN,
            ],
            end_date__lte=now,
        )
    )
    for campaign in ended:
        transition_campaign(
            campaign,
            CampaignStatus.COMPLETED,
            actor=Actor.system("scheduler"),
            now=now,
            reason="end date passed",
        )
    return len(due)


# --- enrollments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollResult:
    enrolled: list[Enrollment]
    skipped: dict[str, str]  # email -> why it was not enrolled


def enroll(
    *,
    campaign: Campaign,
    prospect_ids: Sequence[Any] = (),
    list_ids: Sequence[Any] = (),
    emails: Sequence[str] = (),
    actor: Actor,
    now: datetime,
    on_duplicate: str = "error",
) -> EnrollResult:
    """Enroll prospects (by id, list and email, combinable). A prospect already in the campaign is
    a `conflict` unless `on_duplicate="skip"`; ids and emails not found are `not_found`."""
    workspace = campaign.workspace
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.ERRORED):
        raise CampaignError(
            "invalid_status", f"Prospects cannot join a {campaign.status} campaign."
        )
    prospects: dict[Any, Prospect] = {}
    if prospect_ids:
        ids = list(dict.fromkeys(str(p) for p in prospect_ids))
        found = {str(p.id): p for p in Prospect.objects.filter(workspace=workspace, id__in=ids)}
        missing = [p for p in ids if p not in found]
        if missing:
            raise CampaignError(
                "not_found", "Some prospects do not exist.", details={"prospectIds": missing}
            )
        prospects.update({p.id: p for p in found.values()})
    if emails:
        wanted = list(dict.fromkeys(e.strip().lower() for e in emails))
        found_e = {
            p.email: p for p in Prospect.objects.filter(workspace=workspace, email__in=wanted)
        }
        missing = [e for e in wanted if e not in found_e]
        if missing:
            raise CampaignError(
                "not_found", "Some emails are not prospects here.", details={"emails": missing}
            )
        prospects.update({p.id: p for p in found_e.values()})
    if list_ids:
        from warmysender.prospects.models import ProspectList

        ids = list(dict.fromkeys(str(x) for x in list_ids))
        lists = set(
            str(x)
            for x in ProspectList.objects.filter(workspace=workspace, id__in=ids).values_list(
                "id", flat=True
            )
        )
        missing = [x for x in ids if x not in lists]
        if missing:
            raise CampaignError(
                "not_found", "Some lists do not exist.", details={"listIds": missing}
            )
        members = Prospect.objects.filter(
            id__in=ListMembership.objects.filter(prospect_list_id__in=ids).values("prospect_id")
        )
        prospects.update({p.id: p for p in members})
    with transaction.atomic():
        existing = dict(
            Enrollment.objects.filter(
                campaign=campaign, prospect_id__in=list(prospects)
            ).values_list("prospect_id", "status")
        )
        active_dupes = [
            pid for pid, status in existing.items() if status != EnrollmentStatus.UNENROLLED
        ]
        if active_dupes and on_duplicate == "error":
            raise CampaignError(
                "conflict",
                f"{len(active_dupes)} of these prospects are already enrolled in this campaign.",
                details={"prospectIds": [str(p) for p in active_dupes]},
            )
        skipped: dict[str, str] = {}
        created: list[Enrollment] = []
        from warmysender.prospects.services import suppressed_among

        blocked = suppressed_among(workspace, [p.email for p in prospects.values()])
        window = window_of(campaign)
        first_due = clamp_to_window(now, window) or now
        first_reason = (
            describe_next(window, first_due)
            if first_due != now
            else "due; goes out at the next free sending slot of the campaign's mailboxes"
        )
        for pid, prospect in prospects.items():
            if pid in existing and existing[pid] != EnrollmentStatus.UNENROLLED:
                skipped[prospect.email] = "already enrolled"
                continue
            if prospect.email in blocked:
                skipped[prospect.email] = "suppressed"
                continue
            if prospect.global_status != "active":
                skipped[prospect.email] = prospect.global_status
                continue
            if pid in existing:
                Enrollment.objects.filter(campaign=campaign, prospect=prospect).update(
                    status=EnrollmentStatus.PENDING,
                    next_step_index=1,
                    next_action_at=first_due,
                    wait_reason=first_reason,
                    updated_at=now,
                    finished_at=None,
                )
                created.append(Enrollment.objects.get(campaign=campaign, prospect=prospect))
                continue
            created.append(
                Enrollment(
                    workspace_id=campaign.workspace_id,
                    campaign=campaign,
                    prospect=prospect,
                    next_action_at=first_due,
                    wait_reason=first_reason,
                    enrolled_at=now,
                    updated_at=now,
                )
            )
        new = [e for e in created if e._state.adding]
        try:
            Enrollment.objects.bulk_create(new)
        except IntegrityError as exc:
            raise CampaignError(
                "conflict", "A prospect was enrolled at the same moment; try again."
            ) from exc
        record_audit(
            workspace=workspace,
            actor=actor,
            action="campaign.enrolled",
            obj=campaign,
            data={"enrolled": len(created), "skipped": len(skipped)},
            now=now,
        )
    return EnrollResult(created, skipped)


@dataclass(frozen=True)
class UnenrollResult:
    unenrolled: int
    processed: int


def unenroll(
    *,
    campaign: Campaign,
    prospect_ids: Sequence[Any] = (),
    emails: Sequence[str] = (),
    actor: Actor,
    now: datetime,
) -> UnenrollResult:
    """Stop these prospects in this campaign. Their history stays; what is not enrolled counts
    toward `processed` only."""
    workspace = campaign.workspace
    cond = Q()
    ids = [str(p) for p in prospect_ids]
    lowered = [e.strip().lower() for e in emails]
    if ids:
        cond |= Q(prospect_id__in=_valid_uuids(ids))
    if lowered:
        cond |= Q(prospect__email__in=lowered)
    # Each prospect once, whether named by id, by email or both; names matching no prospect
    # here count too ("not-enrolled are counted in totalProcessed only").
    found = Prospect.objects.filter(workspace=workspace).filter(
        Q(id__in=_valid_uuids(ids)) | Q(email__in=lowered)
    )
    found_ids = {str(p.id) for p in found.only("id")}
    found_emails = set(found.values_list("email", flat=True))
    unknown = {i for i in ids if i not in found_ids} | {e for e in lowered if e not in found_emails}
    processed = len(found_ids) + len(unknown)
    with transaction.atomic():
        qs = Enrollment.objects.filter(
            campaign=campaign, workspace=workspace, status__in=ACTIVE_ENROLLMENT
        ).filter(cond)
        ids_done = list(qs.select_for_update().values_list("id", flat=True))
        Enrollment.objects.filter(id__in=ids_done).update(
            status=EnrollmentStatus.UNENROLLED,
            finished_at=now,
            updated_at=now,
            wait_reason="removed from the campaign",
        )
        # A reservation that has not started sending gives its slot back.
        for action in Action.objects.filter(enrollment_id__in=ids_done, state=ActionState.RESERVED):
            release_action(action, now=now)
        record_audit(
            workspace=workspace,
            actor=actor,
            action="campaign.unenrolled",
            obj=campaign,
            data={"unenrolled": len(ids_done), "processed": processed},
            now=now,
        )
    return UnenrollResult(len(ids_done), max(processed, len(ids_done)))


def _valid_uuids(values: Iterable[str]) -> list[str]:
    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return valid


def set_enrollment_status(
    enrollment: Enrollment, to: str, *, actor: Actor, now: datetime, reason: str = "", **fields: Any
) -> None:
    """The door for enrollment status changes that matter (finished, failed, parked, review)."""
    before = enrollment.status
    enrollment.status = to
    enrollment.updated_at = now
    for key, value in fields.items():
        setattr(enrollment, key, value)
    if to not in ACTIVE_ENROLLMENT:
        enrollment.finished_at = now
    enrollment.save()
    record_audit(
        workspace=enrollment.workspace,
        actor=actor,
        action="enrollment.status_changed",
        obj=enrollment,
        from_state=before,
        to_state=to,
        reason=reason,
        data={"campaignId": str(enrollment.campaign_id), "prospectId": str(enrollment.prospect_id)},
        now=now,
    )


def finish_enrollment(enrollment_id: str, *, now: datetime) -> None:
    enrollment = Enrollment.objects.select_related("workspace").get(pk=enrollment_id)
    set_enrollment_status(
        enrollment,
        EnrollmentStatus.COMPLETED,
        actor=Actor.system("scheduler"),
        now=now,
        reason="sequence finished",
        wait_reason="",
        next_action_at=None,
    )


def flag_existing_action(enrollment_id: str, step_index: int, *, now: datetime) -> None:
    """The scheduler found this step's action already past `planned`: never send it again."""
    enrollment = Enrollment.objects.select_related("workspace").get(pk=enrollment_id)
    action = Action.objects.filter(enrollment=enrollment, step__step_index=step_index).first()
    state = action.state if action else "missing"
    set_enrollment_status(
        enrollment,
        EnrollmentStatus.NEEDS_REVIEW,
        actor=Actor.system("scheduler"),
        now=now,
        reason=f"step {step_index} already has an action in state {state}",
        wait_reason=f"step {step_index} was already attempted ({state}); review it",
    )


def release_action(action: Action, *, now: datetime, error: str = "") -> None:
    """A reservation that never reached a server: back to `planned`, capacity given back."""
    from django.db import connection

    from warmysender.sequences.scheduler import release_counters

    with transaction.atomic():
        updated = Action.objects.filter(pk=action.pk, state=ActionState.RESERVED).update(
            state=ActionState.PLANNED, error=error, reserved_at=None
        )
        if updated:
            with connection.cursor() as cursor:
                release_counters(cursor, action.counters)


def resolve_unknown(
    *, action: Action, decision: str, actor: Actor, now: datetime, rng: random.Random | None = None
) -> None:
    """A person's answer to an `unknown` outcome: "mark_sent" (it arrived) or "send_again"."""
    from warmysender.sequences import sending

    if decision not in ("mark_sent", "send_again"):
        raise CampaignError(
            "validation_error", "decision must be mark_sent or send_again.", field="decision"
        )
    with transaction.atomic():
        action = (
            Action.objects.select_for_update()
            .select_related("enrollment", "step")
            .get(pk=action.pk)
        )
        if action.state != ActionState.UNKNOWN:
            raise CampaignError("invalid_status", f"This send is {action.state}, not unknown.")
        enrollment = (
            Enrollment.objects.select_for_update()
            .select_related("workspace", "campaign")
            .get(pk=action.enrollment_id)
        )
        if decision == "mark_sent":
            Action.objects.filter(pk=action.pk).update(
                state=ActionState.SENT, finished_at=now, error="marked as sent by a person"
            )
            sending.advance_after_send(enrollment, action, now=now, rng=rng or random.Random())
        else:
            # Counters stay consumed by the first attempt; the new attempt reserves its own.
            Action.objects.filter(pk=action.pk).update(
                state=ActionState.PLANNED, error="sent again by a person"
            )
            set_enrollment_status(
                enrollment,
                EnrollmentStatus.PENDING,
                actor=actor,
                now=now,
                reason="send again",
                next_action_at=now,
                wait_reason="",
            )
        record_audit(
            workspace=enrollment.workspace,
            actor=actor,
            action="action.unknown_resolved",
            obj=action,
            from_state=ActionState.UNKNOWN,
            to_state=ActionState.SENT if decision == "mark_sent" else ActionState.PLANNED,
            reason=decision,
            now=now,
        )


def resume_template_fix(*, campaign: Campaign, actor: Actor, now: datetime) -> int:
    """After the template is fixed: parked prospects go back to the queue for the next tick."""
    with transaction.atomic():
        qs = Enrollment.objects.filter(
            campaign=campaign, status=EnrollmentStatus.PENDING_TEMPLATE_FIX
        )
        count = qs.update(
            status=EnrollmentStatus.PENDING, next_action_at=now, wait_reason="", updated_at=now
        )
        if count:
            record_audit(
                workspace=campaign.workspace,
                actor=actor,
                action="campaign.template_fixed",
                obj=campaign,
                data={"resumed": count},
                now=now,
            )
    return count


def before_mailbox_delete(mailbox: Mailbox, *, now: datetime) -> int:
    """Deleting a mailbox keeps prospects, their step and thread ids; enrollments waiting on it
    lose it and wait one hour, after which the scheduler picks another mailbox from the pool."""
    for action in Action.objects.filter(mailbox=mailbox, state=ActionState.RESERVED):
        release_action(action, now=now, error="mailbox deleted")
    in_flight = Enrollment.objects.filter(
        mailbox=mailbox, status__in=[EnrollmentStatus.PENDING, EnrollmentStatus.SENDING]
    )
    return in_flight.update(
        mailbox=None,
        status=EnrollmentStatus.PENDING,
        next_action_at=now + timedelta(hours=1),
        wait_reason=f"mailbox {mailbox.email} was deleted; another from the pool is picked",
        updated_at=now,
    )


def stop_enrollments_for_prospect(
    prospect: Prospect, *, status: str, reason: str, actor: Actor, now: datetime
) -> int:
    """A reply, bounce or unsubscribe anywhere stops this prospect's active enrollments."""
    count = 0
    with transaction.atomic():
        for enrollment in (
            Enrollment.objects.select_for_update()
            .select_related("workspace")
            .filter(prospect=prospect, status__in=ACTIVE_ENROLLMENT)
        ):
            for action in Action.objects.filter(enrollment=enrollment, state=ActionState.RESERVED):
                release_action(action, now=now, error=reason)
            set_enrollment_status(
                enrollment,
                status,
                actor=actor,
                now=now,
                reason=reason,
                wait_reason="",
                next_action_at=None,
            )
            count += 1
    return count


PAUSE_REASONS = set(PauseReason.values)


# --- the campaign pages ----------------------------------------------------------------------


def save_from_builder(
    *,
    workspace: Workspace,
    campaign: Campaign | None,
    name: str,
    steps: Sequence[StepInput],
    pool: Sequence[tuple[Any, int | None]],
    settings: Mapping[str, Any],
    actor: Actor,
    now: datetime,
) -> Campaign:
    """The campaign builder's save: a new draft (mailboxes optional until launch) or a change to
    a draft or paused campaign, together with each pool mailbox's own daily cap (`pool` is
    (mailbox id, maxSendsPerMailboxPerDay or None)), in one transaction."""
    mailbox_ids = [mailbox_id for mailbox_id, _ in pool]
    with transaction.atomic():
        if campaign is None:
            campaign = create_campaign(
                workspace=workspace,
                name=name,
                steps=steps,
                mailbox_ids=mailbox_ids,
                settings=settings,
                actor=actor,
                now=now,
                require_mailboxes=False,
            )
        else:
            campaign = update_campaign(
                campaign=campaign,
                settings={**settings, "name": name},
                steps=steps,
                mailbox_ids=mailbox_ids,
                actor=actor,
                now=now,
            )
        caps = {str(mailbox_id): cap for mailbox_id, cap in pool}
        changed: dict[str, Any] = {}
        for entry in campaign.pool.all():
            cap = caps.get(str(entry.mailbox_id))
            if entry.max_sends_per_day != cap:
                entry.max_sends_per_day = cap
                entry.save(update_fields=["max_sends_per_day"])
                changed[str(entry.mailbox_id)] = cap
        if changed:
            record_audit(
                workspace=workspace,
                actor=actor,
                action="campaign.mailbox_caps_changed",
                obj=campaign,
                data={"maxSendsPerMailboxPerDay": changed},
                now=now,
            )
    return campaign


@dataclass(frozen=True)
class VariantPreview:
    """One variant rendered for one prospect, or why it could not be."""

    label: str
    weight: int
    subject: str  # as it would be sent: a threaded follow-up without one gets "Re: <first>"
    html: str
    text: str
    subject_variations: int
    body_variations: int
    problem: str = ""
    line: int = 0
    column: int = 0


@dataclass(frozen=True)
class StepPreview:
    step: Step
    variants: list[VariantPreview]


def preview_sender(campaign: Campaign) -> Mailbox | None:
    """The mailbox whose name and signature fill the sender merge tags in a preview: the first
    active one of the pool."""
    entry = campaign.pool.filter(is_active=True).select_related("mailbox").first()
    return entry.mailbox if entry is not None else None


def preview_campaign(
    campaign: Campaign, prospect: Prospect, *, mailbox: Mailbox | None, seed: int = 0
) -> list[StepPreview]:
    """Every step and variant of `campaign` rendered for `prospect` as `mailbox` would send it
    (with a fixed spintax choice). Template problems and merge tags without a value are
    reported per variant with their line and column instead of being raised."""
    sender = rendering.Sender(
        email=mailbox.email if mailbox else "",
        name=mailbox.from_name if mailbox else "",
        signature=mailbox.signature if mailbox else "",
        signature_is_html=mailbox.signature_is_html if mailbox else False,
    )
    context = rendering.prospect_context(prospect, sender)
    previews: list[StepPreview] = []
    thread_subject = ""
    for step in campaign.steps.prefetch_related("variants").order_by("step_index"):
        variants: list[VariantPreview] = []
        for variant in step.variants.all():
            try:
                shown = rendering.preview(
                    subject=variant.subject,
                    body_html=variant.body_html,
                    context=context,
                    seed=seed,
                )
            except (rendering.TemplateProblem, rendering.MissingVariable) as problem:
                variants.append(
                    VariantPreview(
                        label=variant.label,
                        weight=variant.weight,
                        subject="",
                        html="",
                        text="",
                        subject_variations=rendering.variation_count(variant.subject),
                        body_variations=rendering.variation_count(variant.body_html),
                        problem=str(problem),
                        line=problem.line,
                        column=problem.column,
                    )
                )
                continue
            subject = shown.rendered.subject
            if not subject and step.same_thread and thread_subject:
                subject = (
                    thread_subject
                    if thread_subject.lower().startswith("re:")
                    else f"Re: {thread_subject}"
                )
            variants.append(
                VariantPreview(
                    label=variant.label,
                    weight=variant.weight,
                    subject=subject,
                    html=shown.rendered.html,
                    text=shown.rendered.text,
                    subject_variations=shown.subject_variations,
                    body_variations=shown.body_variations,
                )
            )
        # As in sending: the thread keeps the subject of the first email that went out.
        first = next((v for v in variants if not v.problem), None)
        if first is not None and not thread_subject:
            thread_subject = first.subject
        previews.append(StepPreview(step=step, variants=variants))
    return previews


# --- inbound mail (replies, bounces, complaints found by the IMAP sync) -----------------------


def stop_enrollment(
    enrollment: Enrollment, *, status: str, reason: str, actor: Actor, now: datetime
) -> bool:
    """Stop one active enrollment (a reply or bounce in its campaign): reservations not yet
    handed over are given back. False when it was no longer active."""
    with transaction.atomic():
        enrollment = (
            Enrollment.objects.select_for_update().select_related("workspace").get(pk=enrollment.pk)
        )
        if enrollment.status not in ACTIVE_ENROLLMENT:
            return False
        for action in Action.objects.filter(enrollment=enrollment, state=ActionState.RESERVED):
            release_action(action, now=now, error=reason)
        set_enrollment_status(
            enrollment,
            status,
            actor=actor,
            now=now,
            reason=reason,
            wait_reason="",
            next_action_at=None,
        )
    return True
