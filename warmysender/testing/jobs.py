"""Running procrastinate jobs inside tests, through the real queue in PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from django.db import connection
from procrastinate.connector import BaseConnector
from procrastinate.contrib.django import procrastinate_app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.periodic import PeriodicRegistry

FINAL_STATUSES = ("succeeded", "failed", "cancelled", "aborted")


def run_queued_jobs(queues: list[str] | None = None) -> list[tuple[str, str]]:
    """Run every job waiting in `queues` (all when None) to completion, including jobs those jobs
    defer, and return (task name, final status) for each of them in the order they were queued.

    The worker polls the database from other threads, so it sees committed rows only: use it in
    tests marked `django_db(transaction=True)`. Periodic tasks are not scheduled during the run;
    tests call sweepers directly, so what runs is exactly what was queued.
    """
    if connection.in_atomic_block:
        raise RuntimeError(
            "run_queued_jobs() needs committed data: mark the test django_db(transaction=True)"
        )
    from procrastinate.contrib.django.models import ProcrastinateJob

    waiting = set(ProcrastinateJob.objects.filter(status="todo").values_list("id", flat=True))
    last = ProcrastinateJob.objects.order_by("-id").values_list("id", flat=True).first() or 0
    app = procrastinate_app.current_app
    registry = app.periodic_registry
    app.periodic_registry = PeriodicRegistry()
    try:
        # Like `manage.py procrastinate worker`: the Django connector serves deferring from web
        # code, but a worker needs its own psycopg connector (Django's connections decode jsonb
        # as text, and cannot LISTEN).
        with app.replace_connector(worker_connector()):
            run_to_completion(_work(app, queues))
    finally:
        app.periodic_registry = registry
    ran = ProcrastinateJob.objects.filter(status__in=FINAL_STATUSES).order_by("id")
    return [(job.task_name, job.status) for job in ran if job.id in waiting or job.id > last]


def worker_connector() -> BaseConnector:
    """A connector for a worker of the Django app's database (what `manage.py procrastinate
    worker` uses)."""
    connector = procrastinate_app.current_app.connector
    assert isinstance(connector, DjangoConnector)
    return connector.get_worker_connector()


def run_to_completion(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` on a new event loop: in this thread when no loop runs here, else (e.g. after
    Playwright's sync API started one for browser tests) in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(work)
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(work)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="run_queued_jobs")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


async def _work(app: Any, queues: list[str] | None) -> None:
    async with app.open_async():
        await app.run_worker_async(
            queues=queues,
            wait=False,
            install_signal_handlers=False,
            # With wait=False the worker stops once the queue is empty: nothing to listen for.
            listen_notify=False,
        )


def clear_queue() -> None:
    """Forget every procrastinate job, worker and periodic defer.

    Django's flush between `transaction=True` tests skips procrastinate's tables (its models are
    unmanaged), so jobs queued by one test would otherwise run in the next.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, "
            "procrastinate_workers RESTART IDENTITY"
        )
