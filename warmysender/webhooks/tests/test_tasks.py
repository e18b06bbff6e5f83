"""The procrastinate jobs, run by a real worker through the queue in PostgreSQL: the pass the
Test button defers delivers at once; the periodic jobs are registered."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.db import transaction
from procrastinate.contrib.django import app

from warmysender.audit.services import Actor
from warmysender.conftest import Tenant, make_tenant
from warmysender.testing.jobs import clear_queue, run_queued_jobs
from warmysender.webhooks import services, tasks
from warmysender.webhooks.models import DeliveryState, WebhookDelivery
from warmysender.webhooks.tests.receiver import Receiver, verify

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant(transactional_db: None) -> Iterator[Tenant]:
    clear_queue()
    yield make_tenant("jobs")
    clear_queue()


def test_the_deferred_pass_delivers_the_test_event(tenant: Tenant, receiver: Receiver) -> None:
    created = services.create_endpoint(
        tenant.workspace,
        {"url": receiver.url(), "events": ["*"]},
        actor=Actor.system("t"),
        now=datetime.now(UTC),
    )
    with transaction.atomic():
        services.send_test(created.endpoint, actor=Actor.system("t"), now=datetime.now(UTC))
        transaction.on_commit(tasks.queue_delivery_pass)
        transaction.on_commit(tasks.queue_delivery_pass)  # a second click: one job

    assert run_queued_jobs(["webhooks"]) == [("webhooks.deliver_now", "succeeded")]
    [got] = receiver.requests
    assert verify(created.secret, got.headers["x-warmy-signature"], got.body)
    assert WebhookDelivery.objects.get().state == DeliveryState.SUCCEEDED


def test_the_periodic_jobs_are_registered() -> None:
    periodic = {task.task.name: task.cron for task in app.periodic_registry.periodic_tasks.values()}
    assert periodic[tasks.DELIVER_ID] == "* * * * *"
    assert tasks.CLEANUP_ID in periodic
