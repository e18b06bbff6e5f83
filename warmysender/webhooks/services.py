"""Every state change of webhooks: endpoints (create, change, delete, test) and deliveries
(fan-out from the outbox, claims, attempt results, dead letters, clean-up).

Each function owns its transaction. Endpoint changes and dead letters write an audit row; single
attempts do not (the attempt log is their record, and a noisy receiver would flood the trail).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction

from warmysender.accounts.models import Workspace
from warmysender.audit.models import DomainEvent
from warmysender.audit.services import Actor, record_audit
from warmysender.lib import crypto, sql
from warmysender.webhooks import schedule
from warmysender.webhooks.formatters import EVENT_TYPES, TEST_EVENT
from warmysender.webhooks.models import (
    ALL_EVENTS,
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from warmysender.webhooks.signing import generate_secret
from warmysender.webhooks.transport import AttemptResult, check_url_syntax

URL_MAX = 2048
DESCRIPTION_MAX = 200
RETENTION = timedelta(days=30)
# Longer than the slowest attempt (5 s, redirects included) of a whole claimed batch, which is
# delivered concurrently; a worker that died is replaced once this has passed.
LEASE = timedelta(minutes=2)
FAN_OUT_BATCH = 500
SYSTEM = Actor.system("webhooks")


class WebhookError(Exception):
    def __init__(self, message: str, *, field: str | None = None, code: str = "validation_error"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


@dataclass
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once, never again


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    return str(crypto.decrypt_json(endpoint.secret_encrypted)["secret"])


# --- validation ---------------------------------------------------------------------------------


def clean_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise WebhookError("Enter the endpoint URL (https://…).", field="url")
    url = value.strip()
    if len(url) > URL_MAX:
        raise WebhookError(f"The URL is longer than {URL_MAX} characters.", field="url")
    problem = check_url_syntax(url, allow_loopback=settings.WEBHOOKS_ALLOW_LOOPBACK)
    if problem:
        raise WebhookError(f"The URL {problem}.", field="url")
    return url


def clean_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise WebhookError("Choose at least one event, or * for all of them.", field="events")
    if not all(isinstance(v, str) for v in value):
        raise WebhookError("Events are event type names such as reply.received.", field="events")
    events = list(dict.fromkeys(v.strip() for v in value))
    if ALL_EVENTS in events:
        return [ALL_EVENTS]
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise WebhookError(
            f"Unknown event type(s): {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}, or *.",
            field="events",
        )
    return events


def clean_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebhookError("The description is text.", field="description")
    text = value.strip()
    if len(text) > DESCRIPTION_MAX:
        raise WebhookError(
            f"The description is longer than {DESCRIPTION_MAX} characters.", field="description"
        )
    if "\x00" in text:
        raise WebhookError("The description contains a NUL character.", field="description")
    return text


def _snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "events": endpoint.events,
        "active": endpoint.active,
        "description": endpoint.description,
    }


# --- endpoints ----------------------------------------------------------------------------------


def create_endpoint(
    workspace: Workspace, data: dict[str, Any], *, actor: Actor, now: datetime
) -> CreatedEndpoint:
    url = clean_url(data.get("url"))
    events = clean_events(data.get("events"))
    description = clean_description(data.get("description"))
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise WebhookError("active is true or false.", field="active")
    secret = generate_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            workspace=workspace,
            url=url,
            events=events,
            description=description,
            active=active,
            secret_encrypted=crypto.encrypt_json({"secret": secret}),
            secret_prefix=secret[:10],
            created_at=now,
            updated_at=now,
        )
        record_audit(
            workspace=workspace,
            actor=actor,
            action="webhook.created",
            obj=endpoint,
            to_state="active" if active else "paused",
            data=_snapshot(endpoint),
            now=now,
        )
    return CreatedEndpoint(endpoint, secret)


def update_endpoint(
    endpoint: WebhookEndpoint, changes: dict[str, Any], *, actor: Actor, now: datetime
) -> WebhookEndpoint:
    """Partial update of url, events, description and active (paused = not active)."""
    cleaned: dict[str, Any] = {}
    if "url" in changes:
        cleaned["url"] = clean_url(changes["url"])
    if "events" in changes:
        cleaned["events"] = clean_events(changes["events"])
    if "description" in changes:
        cleaned["description"] = clean_description(changes["description"])
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise WebhookError("active is true or false.", field="active")
        cleaned["active"] = changes["active"]
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = _snapshot(locked)
        for name, value in cleaned.items():
            setattr(locked, name, value)
        if cleaned.get("active") is True:
            locked.disabled_reason = ""
        locked.updated_at = now
        locked.save()
        after = _snapshot(locked)
        if before != after:
            record_audit(
                workspace=locked.workspace,
                actor=actor,
                action="webhook.updated",
                obj=locked,
                from_state="active" if before["active"] else "paused",
                to_state="active" if after["active"] else "paused",
                data={"before": before, "after": after},
                now=now,
            )
    endpoint.refresh_from_db()
    return endpoint


def delete_endpoint(endpoint: WebhookEndpoint, *, actor: Actor, now: datetime) -> None:
    with transaction.atomic():
        record_audit(
            workspace=endpoint.workspace,
            actor=actor,
            action="webhook.deleted",
            obj=endpoint,
            from_state="active" if endpoint.active else "paused",
            data=_snapshot(endpoint),
            now=now,
        )
        endpoint.delete()


def send_test(endpoint: WebhookEndpoint, *, actor: Actor, now: datetime) -> WebhookDelivery:
    """Queue a `webhook.test` event for this endpoint alone, due at once.

    The event goes into the outbox already marked as dispatched, so the fan-out never sends it to
    the workspace's other endpoints.
    """
    if not endpoint.active:
        raise WebhookError(
            "This webhook is paused; resume it to send a test.", field=None, code="conflict"
        )
    with transaction.atomic():
        event = DomainEvent.objects.create(
            workspace_id=endpoint.workspace_id,
            type=TEST_EVENT,
            occurred_at=now,
            data={
                "webhookId": str(endpoint.pk),
                "timestamp": now.isoformat().replace("+00:00", "Z"),
                "message": "This is a test event from WarmySender.",
            },
            webhooks_dispatched_at=now,
        )
        delivery = WebhookDelivery.objects.create(
            workspace_id=endpoint.workspace_id,
            endpoint=endpoint,
            event=event,
            event_type=TEST_EVENT,
            next_attempt_at=now,
            created_at=now,
        )
        record_audit(
            workspace=endpoint.workspace,
            actor=actor,
            action="webhook.tested",
            obj=endpoint,
            data={"deliveryId": str(delivery.pk), "eventId": str(event.pk)},
            now=now,
        )
    return delivery


# --- deliveries ---------------------------------------------------------------------------------


def fan_out(now: datetime, *, limit: int = FAN_OUT_BATCH) -> tuple[int, int]:
    """Turn up to `limit` outbox events into deliveries; (events seen, deliveries created)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql.load("warmysender.webhooks", "fan_out"),
            {"limit": limit, "now": now, "catalogue": list(EVENT_TYPES)},
        )
        events, created = cursor.fetchone()
    return int(events), int(created)


def claim_due(now: datetime, *, limit: int) -> tuple[uuid.UUID, list[WebhookDelivery]]:
    """Claim up to `limit` due deliveries until now + LEASE; (lease token, deliveries)."""
    token = uuid.uuid4()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql.load("warmysender.webhooks", "claim_due"),
            {"now": now, "limit": limit, "token": token, "lease_until": now + LEASE},
        )
        ids = [row[0] for row in cursor.fetchall()]
    rows = list(
        WebhookDelivery.objects.filter(pk__in=ids)
        .select_related("endpoint", "event")
        .order_by("next_attempt_at")
    )
    return token, rows


def record_attempt(
    delivery: WebhookDelivery,
    *,
    token: uuid.UUID,
    started_at: datetime,
    result: AttemptResult,
    now: datetime,
) -> WebhookDelivery | None:
    """Store one attempt's outcome and move the delivery on: succeeded, retrying at the next step
    of the schedule, or dead. None when this worker's lease was lost (another worker re-claimed
    the row after it expired): that worker's attempt is the one that counts."""
    with transaction.atomic():
        locked = (
            WebhookDelivery.objects.select_for_update()
            .filter(pk=delivery.pk, lease_token=token)
            .select_related("endpoint", "workspace")
            .first()
        )
        if locked is None:
            return None
        number = locked.attempts + 1
        WebhookAttempt.objects.create(
            workspace_id=locked.workspace_id,
            delivery=locked,
            number=number,
            started_at=started_at,
            url=result.url[:URL_MAX],
            status_code=result.status_code,
            response_excerpt=result.excerpt,
            duration_ms=result.duration_ms,
            error=result.error,
        )
        locked.attempts = number
        locked.status_code = result.status_code
        locked.response_excerpt = result.excerpt
        locked.duration_ms = result.duration_ms
        locked.error = result.error
        locked.last_attempt_at = started_at
        locked.lease_token = None
        locked.lease_expires_at = None
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=locked.endpoint_id)
        if result.succeeded:
            locked.state = DeliveryState.SUCCEEDED
            locked.succeeded_at = now
            locked.next_attempt_at = None
            endpoint.last_triggered_at = max(endpoint.last_triggered_at or now, now)
            endpoint.save(update_fields=["last_triggered_at"])
        elif result.status_code == 410:
            # Gone: the receiver says this URL will never take deliveries again.
            _dead_letter(locked, endpoint, now=now, reason="the endpoint answered 410 Gone")
            endpoint.active = False
            endpoint.disabled_reason = "Paused automatically: the endpoint answered 410 Gone."
            endpoint.updated_at = now
            endpoint.save(update_fields=["active", "disabled_reason", "updated_at"])
            record_audit(
                workspace=locked.workspace,
                actor=SYSTEM,
                action="webhook.disabled",
                obj=endpoint,
                from_state="active",
                to_state="paused",
                reason="410 Gone",
                now=now,
            )
        else:
            retry_after = schedule.parse_retry_after(result.retry_after, now)
            when = schedule.next_attempt_at(number, now, retry_after)
            if when is None:
                _dead_letter(locked, endpoint, now=now, reason=result.error or "failed")
            else:
                locked.state = DeliveryState.RETRYING
                locked.next_attempt_at = when
        locked.save()
    return locked


def _dead_letter(
    delivery: WebhookDelivery, endpoint: WebhookEndpoint, *, now: datetime, reason: str
) -> None:
    delivery.state = DeliveryState.DEAD
    delivery.dead_at = now
    delivery.next_attempt_at = None
    endpoint.failure_count += 1
    endpoint.save(update_fields=["failure_count"])
    record_audit(
        workspace=delivery.workspace,
        actor=SYSTEM,
        action="webhook.delivery_dead",
        obj=delivery,
        object_type="webhookdelivery",
        from_state="retrying",
        to_state="dead",
        reason=reason,
        data={
            "webhookId": str(endpoint.pk),
            "eventId": str(delivery.event_id),
            "type": delivery.event_type,
            "attempts": delivery.attempts,
        },
        now=now,
    )
    delivery_id, endpoint_id = delivery.pk, endpoint.pk
    transaction.on_commit(lambda: notify_owner_of_dead_letter(delivery_id, endpoint_id))


def notify_owner_of_dead_letter(delivery_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    delivery = WebhookDelivery.objects.select_related("workspace__owner").get(pk=delivery_id)
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    workspace = delivery.workspace
    link = f"{settings.SITE_URL}/settings/webhooks/{endpoint.pk}/"
    send_mail(
        subject=f"A webhook delivery failed for good in {workspace.name}",
        message=(
            f"WarmySender could not deliver the {delivery.event_type} event {delivery.event_id} "
            f"to {endpoint.url} after {delivery.attempts} attempts, and has stopped trying.\n\n"
            f"Last answer: {delivery.error or 'no error recorded'}"
            f"{f' (HTTP {delivery.status_code})' if delivery.status_code else ''}.\n\n"
            f"The webhook has now failed {endpoint.failure_count} time(s). Its delivery log: "
            f"{link}"
        ),
        from_email=None,
        recipient_list=[workspace.owner.email],
    )


def cleanup_deliveries(now: datetime) -> int:
    """Delete deliveries (and their attempts) older than 30 days; returns how many."""
    with transaction.atomic():
        _, per_model = WebhookDelivery.objects.filter(created_at__lt=now - RETENTION).delete()
    return int(per_model.get(WebhookDelivery._meta.label, 0))


def reencrypt_secrets(now: datetime) -> int:
    """Re-encrypt every stored webhook secret with the first key of `CREDENTIALS_KEYS` (after a
    new key was put in front); returns how many. The secrets themselves do not change."""
    count = 0
    for endpoint_id in list(WebhookEndpoint.objects.values_list("pk", flat=True)):
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
            endpoint.secret_encrypted = crypto.rotate(endpoint.secret_encrypted)
            endpoint.save(update_fields=["secret_encrypted"])
            record_audit(
                workspace=endpoint.workspace,
                actor=SYSTEM,
                action="webhook.secret_reencrypted",
                obj=endpoint,
                now=now,
            )
        count += 1
    return count
