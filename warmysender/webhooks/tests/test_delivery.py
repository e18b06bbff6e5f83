"""Deliveries end to end against a real receiver on loopback: envelope, headers, signatures
checked with the receivers' recipe, the retry schedule under time travel, Retry-After, dead
letters with the owner's email, 410 Gone, and the fan-out's exactly-once rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import transaction

from warmysender.audit.models import AuditEntry, DomainEvent
from warmysender.audit.services import Actor, emit_event
from warmysender.conftest import Tenant
from warmysender.webhooks import delivery, services
from warmysender.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery
from warmysender.webhooks.schedule import RETRY_DELAYS
from warmysender.webhooks.tests.receiver import Receiver, Reply, verify

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ACTOR = Actor.system("test")


def endpoint_for(tenant: Tenant, url: str, events: list[str] | None = None) -> Any:
    return services.create_endpoint(
        tenant.workspace, {"url": url, "events": events or ["*"]}, actor=ACTOR, now=T0
    )


def emit(tenant: Tenant, type: str = "reply.received", **data: Any) -> DomainEvent:
    payload = {"prospectId": "p1", "prospectEmail": "ada@example.com", "subject": "Re: hi", **data}
    # Events of one test share their timestamp: tell the new one by what existed before it.
    before = list(DomainEvent.objects.values_list("id", flat=True))
    with transaction.atomic():
        assert emit_event(workspace=tenant.workspace, type=type, data=payload, now=T0)
    return DomainEvent.objects.exclude(id__in=before).get()


def run(at: datetime) -> delivery.DeliveryReport:
    return delivery.deliver_due(lambda: at)


def test_a_delivery_is_signed_and_verifies_with_the_receivers_recipe(
    tenant: Tenant, receiver: Receiver
) -> None:
    created = endpoint_for(tenant, receiver.url())
    event = emit(tenant)

    report = run(T0)

    assert (report.queued, report.succeeded) == (1, 1)
    [got] = receiver.requests
    assert verify(created.secret, got.headers["x-warmy-signature"], got.body)
    assert not verify("whsec_wrong", got.headers["x-warmy-signature"], got.body)
    t = got.headers["x-warmy-signature"].split(",")[0].removeprefix("t=")
    assert t == got.headers["x-warmy-timestamp"] == str(int(T0.timestamp() * 1000))
    assert got.headers["x-warmy-event-id"] == str(event.pk)
    assert got.headers["x-warmy-event-type"] == "reply.received"
    assert got.headers["content-type"] == "application/json"
    assert json.loads(got.body) == {
        "id": str(event.pk),
        "type": "reply.received",
        "timestamp": "2026-12-01T09:00:00Z",
        "workspaceId": str(tenant.workspace.pk),
        "data": event.data,
    }
    d = WebhookDelivery.objects.get()
    assert d.state == DeliveryState.SUCCEEDED and d.attempts == 1 and d.status_code == 200
    assert d.response_excerpt == "ok" and d.duration_ms is not None
    created.endpoint.refresh_from_db()
    assert created.endpoint.last_triggered_at == T0
    assert created.secret.startswith("whsec_")


def test_fan_out_creates_one_delivery_per_event_and_matching_active_endpoint(
    tenant: Tenant, outsider: Tenant, receiver: Receiver
) -> None:
    everything = endpoint_for(tenant, receiver.url("/all")).endpoint
    bounces = endpoint_for(tenant, receiver.url("/bounces"), ["email.bounced"]).endpoint
    paused = endpoint_for(tenant, receiver.url("/paused")).endpoint
    services.update_endpoint(paused, {"active": False}, actor=ACTOR, now=T0)
    foreign = endpoint_for(outsider, receiver.url("/foreign")).endpoint
    reply = emit(tenant, "reply.received")
    bounce = emit(tenant, "email.bounced", bounceType="hard")
    with transaction.atomic():
        # Internal events never leave, even for "*".
        emit_event(workspace=tenant.workspace, type="mailbox.created", data={}, now=T0)

    assert services.fan_out(T0) == (3, 3)
    assert services.fan_out(T0) == (0, 0)
    pairs = set(WebhookDelivery.objects.values_list("endpoint_id", "event_id"))
    assert pairs == {
        (everything.pk, reply.pk),
        (everything.pk, bounce.pk),
        (bounces.pk, bounce.pk),
    }
    assert not WebhookDelivery.objects.filter(endpoint__in=[paused, foreign]).exists()
    assert not DomainEvent.objects.filter(webhooks_dispatched_at__isnull=True).exists()


def test_failures_follow_the_retry_schedule_then_dead_letter_and_mail_the_owner(
    tenant: Tenant, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.replies = [Reply(status=500, body="boom")]
    created = endpoint_for(tenant, receiver.url())
    event = emit(tenant)
    at = T0
    with django_capture_on_commit_callbacks(execute=True):
        run(at)
        for delay in RETRY_DELAYS:
            d = WebhookDelivery.objects.get()
            assert d.state == DeliveryState.RETRYING
            assert d.next_attempt_at == at + delay
            # Not a second earlier.
            assert run(at + delay - timedelta(seconds=1)).retrying == 0
            at = at + delay
            run(at)

    d = WebhookDelivery.objects.get()
    assert d.state == DeliveryState.DEAD and d.attempts == 11 and d.next_attempt_at is None
    assert d.status_code == 500 and d.response_excerpt == "boom" and d.error == "HTTP 500"
    starts = list(WebhookAttempt.objects.order_by("number").values_list("started_at", flat=True))
    expected = [T0]
    for delay in RETRY_DELAYS:
        expected.append(expected[-1] + delay)
    assert starts == expected
    assert len(receiver.requests) == 11
    assert {r.headers["x-warmy-event-id"] for r in receiver.requests} == {str(event.pk)}
    assert all(
        verify(created.secret, r.headers["x-warmy-signature"], r.body) for r in receiver.requests
    )
    # Dead letters stay dead.
    assert run(at + timedelta(days=10)).retrying == 0 and len(receiver.requests) == 11
    created.endpoint.refresh_from_db()
    assert created.endpoint.failure_count == 1
    assert AuditEntry.objects.filter(action="webhook.delivery_dead", to_state="dead").count() == 1
    [message] = mail.outbox
    assert message.to == [tenant.owner.email]
    assert str(event.pk) in message.body and receiver.url() in message.body


def test_retry_after_postpones_a_retry_but_never_brings_it_forward(
    tenant: Tenant, receiver: Receiver
) -> None:
    receiver.replies = [
        Reply(status=429, headers={"Retry-After": "7200"}),
        Reply(status=503, headers={"Retry-After": "1"}),
        Reply(status=429, headers={"Retry-After": "Fri, 04 Dec 2026 09:00:00 GMT"}),
        Reply(status=429, headers={"Retry-After": "9999999"}),
        Reply(status=200),
    ]
    endpoint_for(tenant, receiver.url())
    emit(tenant)

    run(T0)
    d = WebhookDelivery.objects.get()
    assert d.next_attempt_at == T0 + timedelta(hours=2)  # asked 2 h, schedule said 1 min
    at = d.next_attempt_at
    run(at)
    d.refresh_from_db()
    assert d.next_attempt_at == at + timedelta(minutes=5)  # asked 1 s: the schedule wins
    at = d.next_attempt_at
    run(at)
    d.refresh_from_db()
    assert d.next_attempt_at == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # an HTTP date
    at = d.next_attempt_at
    run(at)
    d.refresh_from_db()
    assert d.next_attempt_at == at + timedelta(hours=72)  # capped at the largest step
    run(d.next_attempt_at)
    d.refresh_from_db()
    assert d.state == DeliveryState.SUCCEEDED and d.attempts == 5


def test_410_gone_dead_letters_and_pauses_the_endpoint(tenant: Tenant, receiver: Receiver) -> None:
    receiver.replies = [Reply(status=410, body="gone")]
    created = endpoint_for(tenant, receiver.url())
    emit(tenant)
    run(T0)
    d = WebhookDelivery.objects.get()
    assert d.state == DeliveryState.DEAD and d.status_code == 410
    created.endpoint.refresh_from_db()
    assert not created.endpoint.active and "410" in created.endpoint.disabled_reason
    emit(tenant)
    run(T0 + timedelta(minutes=1))
    assert WebhookDelivery.objects.count() == 1 and len(receiver.requests) == 1


def test_redirects_are_followed_with_the_same_signed_post(
    tenant: Tenant, receiver: Receiver
) -> None:
    receiver.replies = [
        Reply(status=302, headers={"Location": "/moved"}),
        Reply(status=308, headers={"Location": receiver.url("/final")}),
        Reply(status=204, body=""),
    ]
    created = endpoint_for(tenant, receiver.url("/start"))
    emit(tenant)
    assert run(T0).succeeded == 1
    assert [r.path for r in receiver.requests] == ["/start", "/moved", "/final"]
    assert len({r.body for r in receiver.requests}) == 1
    assert all(
        verify(created.secret, r.headers["x-warmy-signature"], r.body) for r in receiver.requests
    )


def test_a_retry_keeps_the_event_id_and_signs_again(tenant: Tenant, receiver: Receiver) -> None:
    receiver.replies = [Reply(status=500), Reply(status=200)]
    created = endpoint_for(tenant, receiver.url())
    emit(tenant)
    run(T0)
    run(T0 + timedelta(minutes=1))
    first, second = receiver.requests
    assert first.headers["x-warmy-event-id"] == second.headers["x-warmy-event-id"]
    assert first.body == second.body
    assert first.headers["x-warmy-timestamp"] != second.headers["x-warmy-timestamp"]
    assert verify(created.secret, second.headers["x-warmy-signature"], second.body)


def test_cleanup_deletes_deliveries_older_than_30_days(tenant: Tenant, receiver: Receiver) -> None:
    endpoint_for(tenant, receiver.url())
    emit(tenant)
    run(T0)
    assert services.cleanup_deliveries(T0 + timedelta(days=30)) == 0
    assert services.cleanup_deliveries(T0 + timedelta(days=30, seconds=1)) == 1
    assert not WebhookAttempt.objects.exists()


def test_a_test_event_goes_to_the_tested_endpoint_only(tenant: Tenant, receiver: Receiver) -> None:
    tested = endpoint_for(tenant, receiver.url("/tested"), ["email.bounced"])
    endpoint_for(tenant, receiver.url("/other"))
    services.send_test(tested.endpoint, actor=ACTOR, now=T0)
    assert run(T0).succeeded == 1
    [got] = receiver.requests
    assert got.path == "/tested" and got.headers["x-warmy-event-type"] == "webhook.test"
    body = json.loads(got.body)
    assert body["data"]["webhookId"] == str(tested.endpoint.pk)
    assert body["data"]["message"] and body["data"]["timestamp"]
    assert verify(tested.secret, got.headers["x-warmy-signature"], got.body)


@pytest.mark.slow
def test_a_receiver_hanging_past_5_seconds_is_a_failure(tenant: Tenant, receiver: Receiver) -> None:
    receiver.replies = [Reply(hang=True)]
    endpoint_for(tenant, receiver.url())
    emit(tenant)
    report = run(T0)
    assert report.retrying == 1
    d = WebhookDelivery.objects.get()
    assert d.error == "timed out after 5 s" and d.status_code is None
    assert 5000 <= d.duration_ms < 7000
    assert d.next_attempt_at == T0 + timedelta(minutes=1)
