"""Background jobs of the inbox: the IMAP sync of every mailbox every two minutes (one job per
mailbox, so a slow server delays only itself) and the safety checks (cooldowns, subscription
pauses) every five."""

from __future__ import annotations

from django.utils import timezone
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

from warmysender.email import imap_sync
from warmysender.sequences import cooldown

SYNC_ALL_ID = "inbox.sync_all"
SYNC_TASK = "inbox.sync_mailbox"
SAFETY_ID = "inbox.safety_checks"


@app.periodic(cron="*/2 * * * *", periodic_id=SYNC_ALL_ID)
@app.task(name=SYNC_ALL_ID, queue="scheduler", queueing_lock=SYNC_ALL_ID)
def sync_all(timestamp: int) -> int:
    mailbox_ids = imap_sync.syncable_mailboxes()
    for mailbox_id in mailbox_ids:
        try:
            sync_mailbox.configure(queueing_lock=f"imap:{mailbox_id}").defer(mailbox_id=mailbox_id)
        except AlreadyEnqueued:
            pass  # the queued run reads everything new anyway
    return len(mailbox_ids)


@app.task(name=SYNC_TASK, queue="imap")
def sync_mailbox(mailbox_id: str) -> int:
    # Serialised by an advisory lock inside (see email/imap_sync.py), not a procrastinate lock:
    # a killed worker's advisory lock goes away with its connection.
    return imap_sync.sync_mailbox(mailbox_id, clock=timezone.now).stored


@app.periodic(cron="*/5 * * * *", periodic_id=SAFETY_ID)
@app.task(name=SAFETY_ID, queue="scheduler", queueing_lock=SAFETY_ID)
def safety_checks(timestamp: int) -> dict[str, int]:
    report = cooldown.run_safety_checks(timezone.now())
    return {"cooled": report.cooled, "resumed": report.resumed, "paused": report.paused}
