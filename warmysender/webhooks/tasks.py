"""Background jobs of outgoing webhooks: a delivery pass every minute (fan-out plus due
deliveries), a pass deferred at once by the Test button, and the daily 30-day clean-up.

Passes may overlap (periodic and Test): claims use SKIP LOCKED and leases, so they never send the
same delivery twice at once."""

from __future__ import annotations

from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

from warmysender.webhooks import delivery, services

DELIVER_ID = "webhooks.deliver"
CLEANUP_ID = "webhooks.cleanup"


@app.periodic(cron="* * * * *", periodic_id=DELIVER_ID)
@app.task(name=DELIVER_ID, queue="webhooks", queueing_lock=DELIVER_ID)
def deliver(timestamp: int) -> dict[str, int]:
    report = delivery.deliver_due(timezone.now)
    return {
        "events": report.events,
        "queued": report.queued,
        "succeeded": report.succeeded,
        "retrying": report.retrying,
        "dead": report.dead,
    }


@app.task(name="webhooks.deliver_now", queue="webhooks", queueing_lock="webhooks.deliver_now")
def deliver_now() -> int:
    return delivery.deliver_due(timezone.now).succeeded


def queue_delivery_pass() -> None:
    try:
        deliver_now.defer()
    except AlreadyEnqueued:
        # A pass is already waiting; it will pick this delivery up too.
        pass


@app.periodic(cron="17 3 * * *", periodic_id=CLEANUP_ID)
@app.task(name=CLEANUP_ID, queue="webhooks", queueing_lock=CLEANUP_ID)
def cleanup(timestamp: int) -> int:
    return services.cleanup_deliveries(timezone.now())
