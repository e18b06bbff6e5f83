"""The delivery pass a worker runs every minute: fan out new outbox events, then claim due
deliveries in batches and send each batch concurrently.

Claims commit before any HTTP call, and results are recorded one delivery at a time, so a worker
killed at any point leaves each row either recorded or still claimed; a claim lapses after the
lease and the next pass sends it again, with the same event id and signature scheme.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from warmysender.webhooks import formatters, services, transport
from warmysender.webhooks.models import DeliveryState, WebhookDelivery
from warmysender.webhooks.signing import signature

log = logging.getLogger(__name__)
BATCH = 10
MAX_BATCHES = 20


@dataclass
class DeliveryReport:
    events: int = 0
    queued: int = 0
    succeeded: int = 0
    retrying: int = 0
    dead: int = 0
    lost_lease: int = 0


def request_for(delivery: WebhookDelivery, timestamp_ms: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt; only the timestamp (and so the signature) differs
    between attempts of a delivery."""
    event = delivery.event
    env = formatters.envelope(
        event_id=str(event.pk),
        type=event.type,
        occurred_at=event.occurred_at,
        workspace_id=event.workspace_id,
        data=event.data,
    )
    body = formatters.body_for(delivery.endpoint.url, env)
    secret = services.endpoint_secret(delivery.endpoint)
    headers = {
        "X-Warmy-Event-Id": str(event.pk),
        "X-Warmy-Event-Type": event.type,
        "X-Warmy-Timestamp": str(timestamp_ms),
        "X-Warmy-Signature": signature(secret, timestamp_ms, body),
    }
    return body, headers


def attempt(delivery: WebhookDelivery, started_at: datetime) -> transport.AttemptResult:
    try:
        body, headers = request_for(delivery, int(started_at.timestamp() * 1000))
    except Exception as exc:  # an unreadable secret: recorded as the attempt's error
        log.exception("cannot build webhook delivery %s", delivery.pk)
        return transport.AttemptResult(
            None, "", 0, f"cannot sign: {exc}", None, delivery.endpoint.url
        )
    return transport.post(
        delivery.endpoint.url,
        body,
        headers,
        allow_loopback=settings.WEBHOOKS_ALLOW_LOOPBACK,
    )


def deliver_due(clock: Callable[[], datetime], *, batch: int = BATCH) -> DeliveryReport:
    """One pass: fan-out, then up to MAX_BATCHES claimed batches."""
    report = DeliveryReport()
    while True:
        events, queued = services.fan_out(clock())
        report.events += events
        report.queued += queued
        if events < services.FAN_OUT_BATCH:
            break
    for _ in range(MAX_BATCHES):
        now = clock()
        token, rows = services.claim_due(now, limit=batch)
        if not rows:
            break
        _send_batch(rows, token, now, clock, report)
        if len(rows) < batch:
            break
    return report


def _send_batch(
    rows: list[WebhookDelivery],
    token: uuid.UUID,
    started_at: datetime,
    clock: Callable[[], datetime],
    report: DeliveryReport,
) -> None:
    # Only the HTTP calls run in threads; the database is touched from this thread alone.
    with ThreadPoolExecutor(max_workers=len(rows), thread_name_prefix="webhook") as pool:
        results = list(pool.map(lambda d: attempt(d, started_at), rows))
    for delivery, result in zip(rows, results, strict=True):
        recorded = services.record_attempt(
            delivery, token=token, started_at=started_at, result=result, now=clock()
        )
        if recorded is None:
            report.lost_lease += 1
        elif recorded.state == DeliveryState.SUCCEEDED:
            report.succeeded += 1
        elif recorded.state == DeliveryState.DEAD:
            report.dead += 1
        else:
            report.retrying += 1
