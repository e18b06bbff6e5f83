"""Periodic LinkedIn jobs. Each reads the clock once; the work inside is idempotent, so a
duplicated run changes nothing.

Only `check_statuses` talks to Unipile (it is the detection half of "disconnects within 5
minutes", with the webhooks). The orphan watcher, the reconnect emails and the webhook monitor
are database-only sweeps: they take no client and cannot call Unipile.
"""

from __future__ import annotations

import logging

from django.utils import timezone
from procrastinate.contrib.django import app

from warmysender.linkedin import connection, intake, services

log = logging.getLogger(__name__)
STATUS_CHECK_ID = "linkedin.check_statuses"
ORPHANS_ID = "linkedin.link_orphans"
RECONNECT_EMAILS_ID = "linkedin.reconnect_emails"
WEBHOOK_MONITOR_ID = "linkedin.webhook_monitor"


@app.periodic(cron="*/4 * * * *", periodic_id=STATUS_CHECK_ID)
@app.task(name=STATUS_CHECK_ID, queue="scheduler", queueing_lock=STATUS_CHECK_ID)
def check_statuses(timestamp: int) -> dict[str, int]:
    if not connection.accounts_to_check():
        return {"flipped": 0, "strikes": 0, "aborted": 0}
    try:
        client = connection.make_client()
    except services.LinkedInError as exc:
        log.warning("LinkedIn status check skipped: %s", exc.message)
        return {"flipped": 0, "strikes": 0, "aborted": 0}
    report = connection.check_statuses(client, now=timezone.now())
    return {"flipped": report.flipped, "strikes": report.strikes, "aborted": int(report.aborted)}


@app.periodic(cron="7 * * * *", periodic_id=ORPHANS_ID)
@app.task(name=ORPHANS_ID, queue="scheduler", queueing_lock=ORPHANS_ID)
def link_orphans(timestamp: int) -> int:
    return services.link_orphans(timezone.now())


@app.periodic(cron="*/15 * * * *", periodic_id=RECONNECT_EMAILS_ID)
@app.task(name=RECONNECT_EMAILS_ID, queue="scheduler", queueing_lock=RECONNECT_EMAILS_ID)
def send_reconnect_emails(timestamp: int) -> int:
    return services.send_reconnect_emails(timezone.now())


@app.periodic(cron="*/15 * * * *", periodic_id=WEBHOOK_MONITOR_ID)
@app.task(name=WEBHOOK_MONITOR_ID, queue="scheduler", queueing_lock=WEBHOOK_MONITOR_ID)
def monitor_webhooks(timestamp: int) -> int:
    return intake.monitor_webhooks(timezone.now())
