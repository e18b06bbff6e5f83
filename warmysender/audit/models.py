"""The audit trail and the domain-event outbox.

Services write both in the same transaction as the change they describe, so neither can disagree
with the data. Webhooks and analytics consume the outbox later.
"""

from __future__ import annotations

import uuid

from django.db import models

from warmysender.accounts.models import TenantModel, User


class AuditEntry(TenantModel):
    created_at = models.DateTimeField()
    # Who: a person, an API key, or the system (workers, sweepers).
    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=120)
    # What
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    # From / to / why
    from_state = models.CharField(max_length=64, blank=True)
    to_state = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "object_type", "object_id"], name="audit_object"),
            models.Index(fields=["workspace", "-created_at"], name="audit_recent"),
        ]


class DomainEvent(TenantModel):
    # The id is the public event id (webhook envelope `id`); it never changes on redelivery.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    data = models.JSONField(default=dict)
    # Events that must happen at most once per some scope (e.g. `prospect.suppressed` once per
    # email per day) carry a dedup key; the unique index makes a second insert a no-op.
    dedup_key = models.CharField(max_length=255, null=True, blank=True)
    # Consumers mark their progress; partial indexes find what each has not seen yet.
    webhooks_dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "dedup_key"],
                condition=models.Q(dedup_key__isnull=False),
                name="domain_event_dedup",
            )
        ]
        indexes = [
            models.Index(
                fields=["occurred_at"],
                condition=models.Q(webhooks_dispatched_at__isnull=True),
                name="domain_event_undispatched",
            ),
            models.Index(fields=["workspace", "type", "-occurred_at"], name="domain_event_by_type"),
        ]
