"""Background jobs of the prospects app (autodiscovered by procrastinate's Django contrib)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import InterfaceError, OperationalError
from django.utils import timezone
from procrastinate import JobContext, RetryStrategy
from procrastinate.contrib.django import app
from procrastinate.exceptions import AlreadyEnqueued

from warmysender.prospects import imports

logger = logging.getLogger(__name__)

# A lost connection or a restarting database is worth waiting for: the job resumes at the last
# committed batch. Waits 4 s, 16 s, 64 s, ~4 min and ~17 min (about 22 minutes in all). Anything
# else is a bug or bad data and retrying would only repeat it.
IMPORT_RETRY = RetryStrategy(
    max_attempts=5, exponential_wait=4, retry_exceptions=[OperationalError, InterfaceError]
)
STALLED_SWEEP_ID = "prospects.retry_stalled_imports"


def import_lock(job_id: UUID | str) -> str:
    return f"prospects.import:{job_id}"


@app.task(name="prospects.run_import", queue="imports", pass_context=True, retry=IMPORT_RETRY)
def run_import_task(context: JobContext, job_id: str) -> None:
    # The one place the import reads the clock; every row of this run shares it.
    now = timezone.now()
    try:
        imports.run_import(UUID(job_id), now=now)
    except Exception as exc:
        if IMPORT_RETRY.get_retry_decision(exception=exc, job=context.job) is None:
            _give_up(job_id, exc, now)
        raise


def _give_up(job_id: str, exc: BaseException, now: datetime) -> None:
    transient = isinstance(exc, OperationalError | InterfaceError)
    error = (
        "The import stopped because the database stayed unreachable; "
        if transient
        else f"The import stopped on an unexpected error ({type(exc).__name__}); "
    ) + "the prospects created before that are kept. Upload the file again to finish it."
    try:
        imports.fail_import(UUID(job_id), error=error, now=now)
    except Exception:
        # The original exception is what matters; procrastinate records it with the job.
        logger.exception("could not mark import %s failed", job_id)


def defer_import(job_id: UUID | str) -> None:
    """Queue the import job once. Locks are per import: `queueing_lock` keeps a second copy out of
    the queue and `lock` keeps two workers from running the same import at the same time, while
    imports of different files still run in parallel (a task-wide lock would serialise them)."""
    lock = import_lock(job_id)
    try:
        run_import_task.configure(lock=lock, queueing_lock=lock).defer(job_id=str(job_id))
    except AlreadyEnqueued:
        logger.info("import %s is already queued", job_id)


async def retry_stalled_import_jobs(job_manager: Any) -> int:
    """Put back in the queue import jobs whose worker died (no heartbeat): `run_import` resumes
    at the last committed batch. Returns how many were retried."""
    stalled = await job_manager.get_stalled_jobs(task_name="prospects.run_import")
    for job in stalled:
        await job_manager.retry_job(job)
    return len(stalled)


@app.periodic(cron="*/5 * * * *", periodic_id=STALLED_SWEEP_ID)
@app.task(name=STALLED_SWEEP_ID, queue="imports", queueing_lock=STALLED_SWEEP_ID, pass_context=True)
async def retry_stalled_imports(context: JobContext, timestamp: int) -> int:
    return await retry_stalled_import_jobs(context.app.job_manager)
