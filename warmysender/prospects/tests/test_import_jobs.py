"""CSV import through the real procrastinate queue in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, connection
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob

from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant
from warmysender.prospects import imports, tasks
from warmysender.prospects.imports import confirm_import, start_import
from warmysender.prospects.models import ImportJob, ImportStatus, ListMembership, Prospect
from warmysender.testing.jobs import (
    clear_queue,
    run_queued_jobs,
    run_to_completion,
    worker_connector,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_queue(transactional_db: None) -> Iterator[None]:
    clear_queue()
    yield
    clear_queue()


FILE = b"email,first_name\nann@example.com,Ann\nbob@example.com,Bob\nnope,Nope\n"


def queue_import(tenant: Tenant, data: bytes = FILE, **kwargs: Any) -> ImportJob:
    actor = Actor.person(tenant.owner)
    job = start_import(
        workspace=tenant.workspace, actor=actor, file_name="p.csv", data=data, now=NOW
    )
    return confirm_import(job=job, mapping=job.mapping, actor=actor, now=NOW, **kwargs)


def test_a_confirmed_import_runs_in_the_worker(tenant: Tenant) -> None:
    job = queue_import(tenant, new_list_name="From the queue")
    queued = ProcrastinateJob.objects.get(task_name="prospects.run_import")
    assert (queued.status, queued.queue_name) == ("todo", "imports")
    assert queued.args == {"job_id": str(job.pk)}
    assert queued.lock == queued.queueing_lock == f"prospects.import:{job.pk}"

    assert run_queued_jobs() == [("prospects.run_import", "succeeded")]

    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETED
    assert (job.created_count, job.invalid_count, job.processed_rows) == (2, 1, 3)
    assert job.started_at is not None and job.finished_at is not None
    assert set(Prospect.objects.values_list("email", flat=True)) == {
        "ann@example.com",
        "bob@example.com",
    }
    assert ListMembership.objects.filter(prospect_list=job.target_list).count() == 2
    # Nothing is left to run, and the worker's connections were closed.
    assert run_queued_jobs() == []


def test_an_import_is_queued_once(tenant: Tenant) -> None:
    job = queue_import(tenant)
    tasks.defer_import(job.pk)
    assert ProcrastinateJob.objects.filter(task_name="prospects.run_import").count() == 1


def test_imports_of_different_files_queue_side_by_side(tenant: Tenant, outsider: Tenant) -> None:
    queue_import(tenant)
    queue_import(outsider)
    assert run_queued_jobs(["imports"]) == [("prospects.run_import", "succeeded")] * 2
    assert Prospect.objects.filter(workspace=tenant.workspace).count() == 2
    assert Prospect.objects.filter(workspace=outsider.workspace).count() == 2


def test_an_unexpected_error_fails_the_import_with_a_reason(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = queue_import(tenant)

    def broken(job_id: Any, *, now: Any) -> ImportJob:
        raise ValueError("boom")

    monkeypatch.setattr(imports, "run_import", broken)
    assert run_queued_jobs() == [("prospects.run_import", "failed")]
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert job.error.startswith("The import stopped on an unexpected error (ValueError)")


def test_a_database_hiccup_is_retried_later_and_the_import_stays_running(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = queue_import(tenant)
    monkeypatch.setattr(imports, "BATCH_SIZE", 1)
    real = imports._write_batch
    calls: list[int] = []

    def flaky(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("the database system is shutting down")
        return real(*args)

    monkeypatch.setattr(imports, "_write_batch", flaky)
    # The retry is scheduled seconds ahead, so this run ends with the job waiting for it.
    assert run_queued_jobs() == []
    queued = ProcrastinateJob.objects.get(task_name="prospects.run_import")
    assert (queued.status, queued.attempts) == ("todo", 1)
    job.refresh_from_db()
    assert (job.status, job.processed_rows) == (ImportStatus.RUNNING, 1)

    # What the retry does: carry on from the committed row.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = %s", [queued.id]
        )
    assert run_queued_jobs() == [("prospects.run_import", "succeeded")]
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count, job.invalid_count) == (
        ImportStatus.COMPLETED,
        3,
        2,
        1,
    )


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: nothing after it runs, not even `except Exception` handlers."""


def test_an_import_whose_worker_died_is_picked_up_again(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = queue_import(tenant)
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    real = imports._write_batch
    calls: list[int] = []

    def killed_in_second_batch(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise WorkerKilled
        return real(*args)

    # A worker took the job and was killed during the second batch: its job row stays `doing`
    # with no live worker behind it, and the first batch is committed.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = NULL "
            "WHERE task_name = 'prospects.run_import'"
        )
    monkeypatch.setattr(imports, "_write_batch", killed_in_second_batch)
    with pytest.raises(WorkerKilled):
        imports.run_import(job.pk, now=NOW)
    monkeypatch.setattr(imports, "_write_batch", real)
    job.refresh_from_db()
    assert (job.status, job.processed_rows) == (ImportStatus.RUNNING, 2)

    assert run_queued_jobs() == []  # a `doing` job is not picked up by itself
    assert _sweep() == 1
    assert run_queued_jobs() == [("prospects.run_import", "succeeded")]
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count, job.invalid_count) == (
        ImportStatus.COMPLETED,
        3,
        2,
        1,
    )
    assert [entry[0] for entry in job.report] == [2, 3, 4]


def _sweep() -> int:
    """Run the stalled-import sweeper the way a worker would, with a worker connector."""
    retried: list[int] = []

    async def sweep() -> None:
        async with app.open_async():
            retried.append(await tasks.retry_stalled_import_jobs(app.job_manager))

    with app.replace_connector(worker_connector()):
        run_to_completion(sweep())
    return retried[0]


def test_run_queued_jobs_refuses_uncommitted_data(tenant: Tenant) -> None:
    from django.db import transaction

    with transaction.atomic(), pytest.raises(RuntimeError, match="transaction=True"):
        run_queued_jobs()


def test_the_stalled_import_sweeper_is_scheduled_every_five_minutes() -> None:
    periodic = {
        task.periodic_id: task.cron for task in app.periodic_registry.periodic_tasks.values()
    }
    assert periodic[tasks.STALLED_SWEEP_ID] == "*/5 * * * *"
