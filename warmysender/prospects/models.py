"""Prospects, lists, the suppression list and CSV import jobs."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Lower

from warmysender.accounts.models import TenantModel, User


class GlobalStatus(models.TextChoices):
    ACTIVE = "active"
    INVALID = "invalid"  # set by list verification
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class Prospect(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Stored lower-cased; unique per workspace (the index is on lower(email) to be safe anyway).
    email = models.CharField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    linkedin_url = models.CharField(max_length=300, blank=True)
    website = models.CharField(max_length=300, blank=True)
    country = models.CharField(max_length=100, blank=True)
    city = models.CharField(max_length=100, blank=True)
    industry = models.CharField(max_length=200, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    global_status = models.CharField(
        max_length=16, choices=GlobalStatus.choices, default=GlobalStatus.ACTIVE
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint("workspace", Lower("email"), name="prospect_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(global_status__in=GlobalStatus.values),
                name="prospect_global_status_valid",
            ),
        ]
        indexes = [
            # Keyset pagination, newest first.
            models.Index(fields=["workspace", "-created_at", "-id"], name="prospect_page"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_placeholder_email(self) -> bool:
        return self.email.startswith("li.") and "@noemail." in self.email


class ProspectList(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#4f46e5")
    created_at = models.DateTimeField()
    prospects: models.ManyToManyField[Prospect, ListMembership] = models.ManyToManyField(
        Prospect, through="ListMembership", related_name="lists"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "workspace", Lower("name"), name="prospect_list_name_ci_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(color__regex=r"^#[0-9a-fA-F]{6}$"),
                name="prospect_list_color_hex",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ListMembership(TenantModel):
    prospect_list = models.ForeignKey(ProspectList, on_delete=models.CASCADE)
    prospect = models.ForeignKey(Prospect, on_delete=models.CASCADE)
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prospect_list", "prospect"], name="list_membership_unique"
            )
        ]


class SuppressionKind(models.TextChoices):
    EMAIL = "email"
    DOMAIN = "domain"


class Suppression(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=8, choices=SuppressionKind.choices)
    # An address or a domain, lower-cased.
    value = models.CharField(max_length=254)
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "value"], name="suppression_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=SuppressionKind.values), name="suppression_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(value=Lower("value")), name="suppression_value_lowercase"
            ),
        ]

    def __str__(self) -> str:
        return self.value


class ImportStatus(models.TextChoices):
    MAPPING = "mapping"  # uploaded, waiting for the person to confirm the column mapping
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ImportJob(TenantModel):
    """One CSV upload. The file is kept in the row so any worker on any machine can read it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    file_name = models.CharField(max_length=255)
    content = models.TextField()  # decoded UTF-8 text of the upload
    headers = models.JSONField(default=list)
    # {"column header": "email" | "firstName" | ... | "custom:<name>" | ""(skip)}
    mapping = models.JSONField(default=dict)
    target_list = models.ForeignKey(
        ProspectList, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.MAPPING
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    suppressed_count = models.PositiveIntegerField(default=0)
    invalid_count = models.PositiveIntegerField(default=0)
    # One entry per data row: [row number, email, outcome, reason]; downloadable as CSV.
    report = models.JSONField(default=list)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ImportStatus.values), name="import_status_valid"
            )
        ]

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == ImportStatus.COMPLETED else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))
