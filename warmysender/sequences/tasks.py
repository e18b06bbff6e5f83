"""Background jobs of the sending engine: the scheduler tick every minute, the per-mailbox send
runs it queues, and the watchdog. Each periodic tick is deferred once fleet-wide by procrastinate;
the work inside is idempotent, so a duplicated job changes nothing."""

from __future__ import annotations

import logging

from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

from warmysender.sequences import scheduler, sending, watchdog

log = logging.getLogger(__name__)
TICK_ID = "sequences.tick"
WATCHDOG_ID = "sequences.watchdog"
SEND_TASK = "sequences.send_mailbox"


@app.periodic(cron="* * * * *", periodic_id=TICK_ID)
@app.task(name=TICK_ID, queue="scheduler", queueing_lock=TICK_ID)
def tick(timestamp: int) -> dict[str, int]:
    report = scheduler.run_tick(timezone.now())
    return {"claimed": report.claimed, "reserved": report.reserved, "waited": report.waited}


@app.task(name=SEND_TASK, queue="sends")
def send_mailbox(mailbox_id: str) -> int:
    # Serialised per mailbox by an advisory lock inside, not by a procrastinate `lock`: a worker
    # killed mid-run leaves its job "doing" forever, and a job lock would then block the mailbox
    # for good. The database drops a dead session's advisory lock by itself.
    return sending.send_for_mailbox(mailbox_id, clock=timezone.now)


def queue_senders(mailbox_ids: list[str]) -> None:
    for mailbox_id in mailbox_ids:
        try:
            send_mailbox.configure(queueing_lock=f"send:{mailbox_id}").defer(mailbox_id=mailbox_id)
        except AlreadyEnqueued:
            # A queued run for this mailbox exists and will send this reservation too.
            pass


@app.periodic(cron="* * * * *", periodic_id=WATCHDOG_ID)
@app.task(name=WATCHDOG_ID, queue="scheduler", queueing_lock=WATCHDOG_ID)
def run_watchdog(timestamp: int) -> dict[str, int]:
    report = watchdog.recover_stuck_actions(timezone.now())
    return {"released": report.released, "unknown": report.unknown, "failed": report.failed}
