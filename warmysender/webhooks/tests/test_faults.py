"""F9 (shared/research/perf-reliability.md §6) with real processes: a delivery worker is a
`warmysender manage webhooks_deliver` child killed with SIGKILL while the receiver holds its
request; the delivery is not lost, waits out the lease, and goes again with the same event id
and a valid signature. Two workers side by side deliver each event exactly once."""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import transaction

from warmysender.audit.services import Actor, emit_event
from warmysender.conftest import Tenant, make_tenant
from warmysender.testing.processes import manage, process_env, wait_for
from warmysender.webhooks import services
from warmysender.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery
from warmysender.webhooks.tests.receiver import Receiver, Reply, verify

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def tenant(transactional_db: None) -> Tenant:
    return make_tenant("f9")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return process_env(tmp_path, WEBHOOKS_ALLOW_LOOPBACK="on")


def deliver(env: dict[str, str], at: datetime) -> str:
    process = manage(env, "webhooks_deliver", "--now", at.isoformat())
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out.strip()


def emit(tenant: Tenant, n: int = 1) -> None:
    with transaction.atomic():
        for i in range(n):
            emit_event(
                workspace=tenant.workspace,
                type="reply.received",
                data={"prospectId": f"p{i}", "prospectEmail": f"lead{i}@example.com"},
                now=T0,
            )


def test_a_worker_killed_mid_delivery_loses_nothing_and_the_retry_keeps_the_event_id(
    tenant: Tenant, receiver: Receiver, env: dict[str, str]
) -> None:
    receiver.replies = [Reply(hang=True), Reply(status=200)]
    created = services.create_endpoint(
        tenant.workspace, {"url": receiver.url(), "events": ["*"]}, actor=Actor.system("t"), now=T0
    )
    emit(tenant)

    worker = manage(env, "webhooks_deliver", "--now", T0.isoformat())
    wait_for(receiver.holding.is_set, what="the receiver holding the request", process=worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    receiver.release.set()

    held = WebhookDelivery.objects.get()
    assert held.state == DeliveryState.PENDING and held.attempts == 0
    assert held.lease_token is not None and held.lease_expires_at == T0 + services.LEASE

    # Inside the lease nobody else takes it (the first worker might still be running).
    assert "succeeded=0" in deliver(env, T0 + services.LEASE - timedelta(seconds=1))
    assert len(receiver.requests) == 1
    # Once it lapses, the next worker delivers it.
    assert "succeeded=1" in deliver(env, T0 + services.LEASE)

    first, second = receiver.requests
    assert first.headers["x-warmy-event-id"] == second.headers["x-warmy-event-id"]
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"] == str(held.event_id)
    assert verify(created.secret, second.headers["x-warmy-signature"], second.body)
    done = WebhookDelivery.objects.get()
    assert done.state == DeliveryState.SUCCEEDED and done.attempts == 1
    assert done.lease_token is None and WebhookAttempt.objects.count() == 1
    # Nothing is sent again afterwards.
    assert "succeeded=0" in deliver(env, T0 + timedelta(hours=1))
    assert len(receiver.requests) == 2


def test_two_workers_side_by_side_deliver_each_event_once(
    tenant: Tenant, receiver: Receiver, env: dict[str, str]
) -> None:
    services.create_endpoint(
        tenant.workspace, {"url": receiver.url(), "events": ["*"]}, actor=Actor.system("t"), now=T0
    )
    emit(tenant, 40)
    workers = [manage(env, "webhooks_deliver", "--now", T0.isoformat()) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    seen = Counter(r.headers["x-warmy-event-id"] for r in receiver.requests)
    assert len(seen) == 40 and set(seen.values()) == {1}
    assert WebhookDelivery.objects.filter(state=DeliveryState.SUCCEEDED).count() == 40
