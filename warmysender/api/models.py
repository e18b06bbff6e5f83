from __future__ import annotations

from django.db import models

from warmysender.accounts.models import ApiKey, TenantModel


class RateLimitWindow(TenantModel):
    """Requests per API key per minute. One row per (key, minute), bumped with an upsert, so the
    count is exact across any number of web processes."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "window_start"], name="ratelimit_key_window")
        ]


class IdempotencyRecord(TenantModel):
    """The first response to a creating POST with an `Idempotency-Key`, replayed for 24 hours."""

    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="idempotency_workspace_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]
