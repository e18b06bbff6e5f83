"""Tracking: every open and click hit as it arrived, the first real open and click per prospect
per campaign, and the custom domains tracking links may use."""

from __future__ import annotations

from django.db import models

from warmysender.accounts.models import TenantModel, Workspace


class HitKind(models.TextChoices):
    OPEN = "open"
    CLICK = "click"


class TrackingHit(TenantModel):
    """One request to the pixel or a click link, kept for analytics. Scanner hits are kept too,
    flagged with the reason, and left out of every displayed number."""

    # Append-only and written on every hit: the (action, kind) index below leads with what the
    # statistics join on, so the foreign keys get no index of their own.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    action = models.ForeignKey(
        "sequences.Action", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    campaign = models.ForeignKey(
        "sequences.Campaign", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=8, choices=HitKind.choices)
    url = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True)
    at = models.DateTimeField()
    is_scanner = models.BooleanField(default=False)
    scanner_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=HitKind.values), name="tracking_hit_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(is_scanner=False) | ~models.Q(scanner_reason=""),
                name="tracking_hit_scanner_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["action", "kind", "at"], name="tracking_hit_action"),
            models.Index(fields=["campaign", "kind"], name="tracking_hit_campaign"),
        ]


class TrackingFirst(TenantModel):
    """The first real (non-scanner) open or click of a prospect in a campaign: inserted once, so
    `email.opened` and the campaign's log line happen once however often the pixel loads."""

    campaign = models.ForeignKey("sequences.Campaign", on_delete=models.CASCADE, related_name="+")
    prospect = models.ForeignKey("prospects.Prospect", on_delete=models.CASCADE, related_name="+")
    action = models.ForeignKey("sequences.Action", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=HitKind.choices)
    url = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "prospect", "kind"], name="tracking_first_once"
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=HitKind.values), name="tracking_first_kind_valid"
            ),
        ]


class TrackingDomain(TenantModel):
    """A host name of the workspace (track.example.com) that CNAMEs to our tracking host."""

    domain = models.CharField(max_length=253)
    # The target the CNAME must point at, as configured when the domain was added or last checked.
    cname_target = models.CharField(max_length=253)
    created_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "domain"], name="tracking_domain_unique"),
        ]
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None
