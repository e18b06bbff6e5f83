"""/api/v1/webhooks: CRUD, the secret shown once, the test event, the delivery log; tenancy
(another workspace's ids are 404), scopes, and malformed bodies refused with nothing saved."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from warmysender.api.tests.conftest import error_code, send
from warmysender.audit.models import AuditEntry
from warmysender.conftest import Tenant, api_client
from warmysender.webhooks import delivery, services
from warmysender.webhooks.models import WebhookDelivery, WebhookEndpoint
from warmysender.webhooks.tests.receiver import Receiver, verify

pytestmark = pytest.mark.django_db
BASE = "/api/v1/webhooks"
SCOPES = ("webhooks:read", "webhooks:write")


@pytest.fixture
def client(tenant: Tenant) -> Client:
    return api_client(tenant.key(*SCOPES))


def create(client: Client, **body: Any) -> Any:
    return send(
        client, "POST", BASE, {"url": "https://hooks.example.com/in", "events": ["*"], **body}
    )


def test_create_returns_the_secret_once_and_never_again(client: Client) -> None:
    response = create(client, events=["reply.received", "email.bounced"], description="CRM")
    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert data["secret"].startswith("whsec_") and len(data["secret"]) > 30
    assert data["secretPrefix"] == data["secret"][:10]
    assert data["events"] == ["reply.received", "email.bounced"]
    assert data["active"] is True and data["failureCount"] == 0 and data["lastTriggeredAt"] is None
    stored = WebhookEndpoint.objects.get()
    assert data["secret"] not in stored.secret_encrypted
    assert services.endpoint_secret(stored) == data["secret"]
    got = send(client, "GET", f"{BASE}/{data['id']}").json()["data"]
    listed = send(client, "GET", BASE).json()["data"]
    assert "secret" not in got and all("secret" not in w for w in listed)
    assert AuditEntry.objects.filter(action="webhook.created").count() == 1


def test_patch_changes_events_and_pauses(client: Client) -> None:
    id = create(client).json()["data"]["id"]
    response = send(client, "PATCH", f"{BASE}/{id}", {"events": ["limit.hit"], "active": False})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["events"] == ["limit.hit"] and data["active"] is False
    # "*" swallows the rest.
    data = send(client, "PATCH", f"{BASE}/{id}", {"events": ["*", "limit.hit"]}).json()["data"]
    assert data["events"] == ["*"]


def test_delete_removes_the_webhook(client: Client) -> None:
    id = create(client).json()["data"]["id"]
    assert send(client, "DELETE", f"{BASE}/{id}").status_code == 204
    assert send(client, "GET", f"{BASE}/{id}").status_code == 404
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            {"url": "ftp://example.com/x", "events": ["*"]},
            "url",
            "must start with http:// or https://",
        ),
        ({"url": "http://10.0.0.1/x", "events": ["*"]}, "url", "private address"),
        ({"url": "http://169.254.169.254/", "events": ["*"]}, "url", "link-local address"),
        ({"url": "", "events": ["*"]}, "url", "Enter the endpoint URL"),
        ({"url": "https://example.com/", "events": []}, "events", "at least 1"),
        ({"url": "https://example.com/", "events": ["email.sent"]}, "events.0", "Input should be"),
        ({"url": "https://example.com/"}, "events", "required"),
        (
            {"url": "https://example.com/", "events": ["*"], "secret": "mine"},
            "secret",
            "Unknown field",
        ),
        ({"url": 5, "events": ["*"]}, "url", "string"),
    ],
)
def test_malformed_bodies_are_refused_naming_the_problem(
    client: Client, settings: Any, body: dict[str, Any], field: str, words: str
) -> None:
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    response = send(client, "POST", BASE, body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field
    assert words in error["message"] + error["details"][0]["message"]
    assert not WebhookEndpoint.objects.exists()


def test_malformed_json_is_refused(client: Client) -> None:
    response = send(client, "POST", BASE, "{not json")
    assert response.status_code == 400 and error_code(response) == "validation_error"


def test_a_bad_patch_changes_nothing(client: Client) -> None:
    id = create(client).json()["data"]["id"]
    response = send(client, "PATCH", f"{BASE}/{id}", {"events": ["limit.hit"], "url": "gopher://x"})
    assert response.status_code == 400
    assert WebhookEndpoint.objects.get().events == ["*"]
    assert send(client, "PATCH", f"{BASE}/{id}", {"url": None}).status_code == 400


def test_another_workspace_sees_none_of_it(client: Client, outsider: Tenant) -> None:
    id = create(client).json()["data"]["id"]
    foreign = api_client(outsider.key(*SCOPES))
    assert send(foreign, "GET", BASE).json()["data"] == []
    for method, path, body in [
        ("GET", f"{BASE}/{id}", None),
        ("PATCH", f"{BASE}/{id}", {"active": False}),
        ("DELETE", f"{BASE}/{id}", None),
        ("POST", f"{BASE}/{id}/test", None),
        ("GET", f"{BASE}/{id}/deliveries", None),
    ]:
        response = send(foreign, method, path, body)
        assert response.status_code == 404, (method, path)
        assert error_code(response) == "not_found"
    assert WebhookEndpoint.objects.get().active is True
    assert not WebhookDelivery.objects.exists()


def test_scopes_are_enforced(tenant: Tenant, client: Client) -> None:
    id = create(client).json()["data"]["id"]
    read_only = api_client(tenant.key("webhooks:read"))
    write_only = api_client(tenant.key("webhooks:write"))
    assert send(read_only, "GET", BASE).status_code == 200
    for method, path in [
        ("POST", BASE),
        ("PATCH", f"{BASE}/{id}"),
        ("DELETE", f"{BASE}/{id}"),
        ("POST", f"{BASE}/{id}/test"),
    ]:
        response = send(read_only, method, path, {})
        assert response.status_code == 403 and error_code(response) == "insufficient_scope"
    for path in (BASE, f"{BASE}/{id}", f"{BASE}/{id}/deliveries"):
        assert send(write_only, "GET", path).status_code == 403
    other = api_client(tenant.key("prospects:read", "prospects:write"))
    assert send(other, "GET", BASE).status_code == 403


def test_the_test_endpoint_queues_a_signed_test_delivery_and_the_log_shows_it(
    client: Client, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    created = create(client, url=receiver.url()).json()["data"]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = send(client, "POST", f"{BASE}/{created['id']}/test")
    assert response.status_code == 202
    queued = response.json()["data"]
    assert queued["type"] == "webhook.test" and queued["state"] == "pending"
    assert len(callbacks) == 1  # the delivery pass deferred at once

    delivery.deliver_due(lambda: datetime.now(UTC))

    [got] = receiver.requests
    assert got.headers["x-warmy-event-id"] == queued["eventId"]
    assert verify(created["secret"], got.headers["x-warmy-signature"], got.body)
    log = send(client, "GET", f"{BASE}/{created['id']}/deliveries").json()
    [row] = log["data"]
    assert row["state"] == "succeeded" and row["statusCode"] == 200
    assert row["responseExcerpt"] == "ok" and row["durationMs"] is not None
    assert send(client, "GET", f"{BASE}/{created['id']}/deliveries?state=dead").json()["data"] == []
    assert send(client, "GET", f"{BASE}/{created['id']}").json()["data"]["lastTriggeredAt"]


def test_testing_a_paused_webhook_is_a_conflict(client: Client) -> None:
    id = create(client, active=False).json()["data"]["id"]
    response = send(client, "POST", f"{BASE}/{id}/test")
    assert response.status_code == 409 and error_code(response) == "conflict"
    assert "paused" in response.json()["error"]["message"]
