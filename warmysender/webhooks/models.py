"""Outgoing webhooks: endpoints, one delivery per (event, endpoint), and the attempts made.

A delivery is a row claimed by workers (`FOR UPDATE SKIP LOCKED` plus a lease), so a worker that
dies mid-request loses nothing: once the lease passes the row is due again, with the same event
id. Rows are kept 30 days (`cleanup_deliveries`).
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models

from warmysender.accounts.models import TenantModel
from warmysender.audit.models import DomainEvent

ALL_EVENTS = "*"


class WebhookEndpoint(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=200, blank=True)
    # Event types, or ["*"] for every type in the catalogue.
    events = ArrayField(models.CharField(max_length=64))
    active = models.BooleanField(default=True)
    # Why the system paused it (a 410 Gone answer); empty when a person did, or when active.
    disabled_reason = models.CharField(max_length=200, blank=True)
    # The `whsec_…` secret, encrypted with the credentials key ring (it must be read back to
    # sign); the first characters are kept in clear so people can tell secrets apart.
    secret_encrypted = models.TextField()
    secret_prefix = models.CharField(max_length=16)
    failure_count = models.PositiveIntegerField(default=0)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "-created_at"], name="webhook_recent")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(events=[]), name="webhook_endpoint_has_events"
            )
        ]

    def wants(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Failed, retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    DEAD = "dead", "Dead-lettered"


class WebhookDelivery(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # The envelope id: the DomainEvent's id, the same on every attempt.
    event = models.ForeignKey(DomainEvent, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=64)
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    # Attempts finished so far (a claimed attempt whose worker died is not counted).
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A claim: the worker holding the row until `lease_expires_at`; its result is recorded only
    # while the token still matches, so a worker that outlived its lease cannot overwrite.
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The last attempt, for the delivery log.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once"),
            models.CheckConstraint(
                condition=~models.Q(state__in=["pending", "retrying"])
                | models.Q(next_attempt_at__isnull=False),
                name="webhook_delivery_due_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state__in=["pending", "retrying"]),
                name="webhook_delivery_due",
            ),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_recent"),
            models.Index(fields=["created_at"], name="webhook_delivery_age"),
        ]


class WebhookAttempt(TenantModel):
    """One HTTP attempt of a delivery, for the log and the retry-schedule record."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    url = models.URLField(max_length=2048)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_once")
        ]
