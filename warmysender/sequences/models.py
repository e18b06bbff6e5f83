"""Campaigns, their steps and variants, the prospects enrolled in them, and one row per outbound
action. Channel-agnostic: a step names its channel and action, so LinkedIn steps join the same
tables and the same scheduler.
"""

from __future__ import annotations

import uuid
from datetime import date

from django.contrib.postgres.fields import ArrayField
from django.db import models

from warmysender.accounts.models import TenantModel, User, Workspace


class CampaignType(models.TextChoices):
    EMAIL = "email"
    LINKEDIN = "linkedin"
    MULTICHANNEL = "multichannel"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COOLDOWN = "cooldown"
    COMPLETED = "completed"
    ERRORED = "errored"


class PauseReason(models.TextChoices):
    MANUAL = "manual", "Paused by a person"
    API = "api", "Paused through the API"
    SUBSCRIPTION_INACTIVE = "subscription_inactive", "Subscription inactive"
    LINKEDIN_ACCOUNT_DISCONNECTED = (
        "linkedin_account_disconnected",
        "LinkedIn account disconnected",
    )


class Channel(models.TextChoices):
    EMAIL = "email"
    LINKEDIN = "linkedin"


class StepAction(models.TextChoices):
    SEND_EMAIL = "send_email", "Send email"


MONDAY_TO_FRIDAY = [0, 1, 2, 3, 4]


def _weekdays() -> list[int]:
    return list(MONDAY_TO_FRIDAY)


class Campaign(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, choices=CampaignType.choices, default=CampaignType.EMAIL)
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    paused_reason = models.CharField(max_length=64, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    daily_send_limit = models.PositiveIntegerField(default=50)
    timezone = models.CharField(max_length=64, default="UTC")
    schedule_days = ArrayField(models.PositiveSmallIntegerField(), default=_weekdays)
    window_start_hour = models.PositiveSmallIntegerField(default=9)
    window_end_hour = models.PositiveSmallIntegerField(default=17)
    randomize_within_window = models.BooleanField(default=True)
    min_minutes_between_sends = models.PositiveIntegerField(default=0)
    stop_on_reply = models.BooleanField(default=True)
    stop_on_bounce = models.BooleanField(default=True)
    track_opens = models.BooleanField(default=True)
    track_clicks = models.BooleanField(default=True)
    # A verified custom domain for open and click links; none: links use SITE_URL.
    tracking_domain = models.ForeignKey(
        "email.TrackingDomain", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="paused") | ~models.Q(paused_reason=""),
                name="campaign_paused_has_reason",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=CampaignStatus.values), name="campaign_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(daily_send_limit__gte=1, daily_send_limit__lte=10_000),
                name="campaign_daily_send_limit_range",
            ),
            models.CheckConstraint(
                condition=models.Q(window_start_hour__lt=models.F("window_end_hour"))
                & models.Q(window_end_hour__lte=24),
                name="campaign_window_order",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="campaign_recent")]

    def __str__(self) -> str:
        return self.name


class Step(TenantModel):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    step_index = models.PositiveSmallIntegerField()
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    action = models.CharField(
        max_length=32, choices=StepAction.choices, default=StepAction.SEND_EMAIL
    )
    # Wait after the previous step (for step 1: after enrollment).
    delay_days = models.PositiveIntegerField(default=0)
    delay_hours = models.PositiveIntegerField(default=0)
    # Follow-ups reply in the thread of the previous email ("Re: <subject>", In-Reply-To).
    same_thread = models.BooleanField(default=True)
    auto_optimize = models.BooleanField(default=False)
    ab_min_sample = models.PositiveIntegerField(default=100)
    ab_confidence = models.FloatField(default=0.95)
    winner_variant = models.ForeignKey(
        "Variant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Channel-specific settings (LinkedIn steps keep their note, InMail subject, etc. here).
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "step_index"], name="step_index_unique"),
            models.CheckConstraint(
                condition=models.Q(step_index__gte=1, step_index__lte=50), name="step_index_range"
            ),
        ]
        ordering = ["step_index"]


class Variant(TenantModel):
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=8, default="A")
    subject = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    weight = models.PositiveSmallIntegerField(default=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["step", "label"], name="variant_label_unique"),
            models.CheckConstraint(
                condition=models.Q(weight__lte=100), name="variant_weight_range"
            ),
        ]
        ordering = ["label"]


class CampaignMailbox(TenantModel):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pool")
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.CASCADE, related_name="campaign_links"
    )
    is_active = models.BooleanField(default=True)
    max_sends_per_day = models.PositiveIntegerField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "mailbox"], name="campaign_mailbox_unique")
        ]
        ordering = ["position", "id"]


class EnrollmentStatus(models.TextChoices):
    PENDING = "pending"  # waiting for next_action_at; wait_reason says why
    SENDING = "sending"  # an action is reserved or on its way
    COMPLETED = "completed"  # every step done
    REPLIED = "replied"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"
    # A merge variable that would not resolve: parked, retried once the template is fixed.
    PENDING_TEMPLATE_FIX = "pending_template_fix"
    # The last send's outcome is unknown: a person decides (mark as sent, or send again).
    NEEDS_REVIEW = "needs_review"
    UNENROLLED = "unenrolled"


ACTIVE_ENROLLMENT = (
    EnrollmentStatus.PENDING,
    EnrollmentStatus.SENDING,
    EnrollmentStatus.PENDING_TEMPLATE_FIX,
    EnrollmentStatus.NEEDS_REVIEW,
)


class Enrollment(TenantModel):
    # Hot table: every index costs on each tick's update, so the foreign keys that composite
    # indexes already lead with get no index of their own.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="enrollments", db_index=False
    )
    prospect = models.ForeignKey(
        "prospects.Prospect", on_delete=models.CASCADE, related_name="enrollments"
    )
    status = models.CharField(
        max_length=24, choices=EnrollmentStatus.choices, default=EnrollmentStatus.PENDING
    )
    # The step to run next (1-based); past the last step the enrollment is completed.
    next_step_index = models.PositiveSmallIntegerField(default=1)
    next_action_at = models.DateTimeField(null=True, blank=True)
    wait_reason = models.CharField(max_length=255, blank=True)
    # The sender, kept for the whole sequence so follow-ups come from the same address. Deleting
    # the mailbox nulls it; the scheduler then picks another from the pool.
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # {"<step index>": <variant id>}: the A/B variant each step used or will use.
    variants = models.JSONField(default=dict, blank=True)
    # Threading: the Message-ID and subject of the last email sent to this prospect here.
    last_message_id = models.CharField(max_length=255, blank=True)
    thread_subject = models.TextField(blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    recovery_count = models.PositiveSmallIntegerField(default=0)
    failure_reason = models.TextField(blank=True)
    enrolled_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "prospect"], name="enrollment_unique"),
            models.CheckConstraint(
                condition=models.Q(status__in=EnrollmentStatus.values),
                name="enrollment_status_valid",
            ),
        ]
        indexes = [
            # The scheduler's claim: due work of running campaigns, oldest first.
            models.Index(
                fields=["next_action_at"],
                condition=models.Q(status="pending"),
                name="enrollment_due",
            ),
            # A campaign's enrollments by status, and its due ones in order (the deferral of a
            # closed campaign's work probes only that campaign's range of the due rows).
            models.Index(
                fields=["campaign", "status", "next_action_at"], name="enrollment_by_campaign_due"
            ),
        ]


class ActionState(models.TextChoices):
    PLANNED = "planned"  # exists, holds no capacity (a send that was deferred before hand-over)
    RESERVED = "reserved"  # capacity taken; a sender will pick it up
    SENDING = "sending"  # the sender is talking to the server: the outcome may become unknown
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the server may or may not have taken it: never retried automatically


class Action(TenantModel):
    """One outbound action: at most one per (enrollment, step), ever."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Covered by the (enrollment, step) and (campaign, state) indexes below.
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="actions", db_index=False
    )
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="actions")
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="actions", db_index=False
    )
    variant = models.ForeignKey(
        Variant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="actions",
        db_index=False,
    )
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    state = models.CharField(max_length=16, choices=ActionState.choices)
    from_email = models.CharField(max_length=254, blank=True)
    to_email = models.CharField(max_length=254)
    message_id = models.CharField(max_length=255, blank=True)
    subject = models.TextField(blank=True)
    # The counters this action's reservation incremented: [[scope, key, day], ...]. Releasing the
    # reservation decrements exactly these.
    counters = models.JSONField(default=list, blank=True)
    recovery_count = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    reserved_at = models.DateTimeField(null=True, blank=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="action_once_per_step"),
            models.CheckConstraint(
                condition=models.Q(state__in=ActionState.values), name="action_state_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["mailbox", "reserved_at"],
                condition=models.Q(state="reserved"),
                name="action_reserved",
            ),
            models.Index(
                fields=["state", "reserved_at"],
                condition=models.Q(state__in=["reserved", "sending"]),
                name="action_in_flight",
            ),
            models.Index(fields=["campaign", "state"], name="action_by_campaign"),
            models.Index(
                fields=["message_id"], condition=~models.Q(message_id=""), name="action_message_id"
            ),
        ]


class SendCounter(TenantModel):
    """Sends counted against a cap on one day: scope `campaign` (day in the campaign's zone),
    `campaign_mailbox` (mailbox zone), `workspace_day` and `workspace_month` (UTC, for plan
    quotas). A mailbox's own count and its per-recipient-domain counts live on its
    MailboxThrottle row. Reserved and sent actions count; a reservation released before
    hand-over gives its slot back.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    scope = models.CharField(max_length=24)
    key = models.CharField(max_length=300)
    day = models.DateField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key", "day"], name="send_counter_unique"),
            models.CheckConstraint(condition=models.Q(count__gte=0), name="send_counter_positive"),
        ]


class MailboxThrottle(TenantModel):
    """The pacer and the backoff ladder of one mailbox, shared by every campaign (and warmup)."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    mailbox = models.OneToOneField(
        "mailboxes.Mailbox", on_delete=models.CASCADE, primary_key=True, related_name="throttle"
    )
    next_send_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    backoff_level = models.PositiveSmallIntegerField(default=0)
    backoff_until = models.DateTimeField(null=True, blank=True)
    backoff_successes = models.PositiveSmallIntegerField(default=0)
    backoff_window_started_at = models.DateTimeField(null=True, blank=True)
    # Round-robin cursor: when it last got new work.
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    # Today's sends (reserved and sent) in the mailbox's own zone, and per recipient domain:
    # kept here rather than as counter rows because the tick writes this row anyway.
    count_day = models.DateField(null=True, blank=True)
    day_count = models.PositiveIntegerField(default=0)
    domain_counts = models.JSONField(default=dict, blank=True)

    def sends_on(self, day: date) -> int:
        return self.day_count if self.count_day == day else 0


class CampaignEvent(TenantModel):
    """The campaign's event log as shown on its page (errors, pauses, limits)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=32)
    reason = models.CharField(max_length=64, blank=True)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["campaign", "-created_at"], name="campaign_event_recent")]
