"""Settings → Webhooks through Django's test client: roles, tenancy, the secret shown once, edit,
Test (htmx) and the recent deliveries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.urls import reverse

from warmysender.audit.services import Actor
from warmysender.conftest import Tenant, client_for
from warmysender.webhooks import delivery, services
from warmysender.webhooks.models import WebhookDelivery, WebhookEndpoint
from warmysender.webhooks.tests.receiver import Receiver, Reply

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def make(tenant: Tenant, url: str = "https://hooks.example.com/x") -> WebhookEndpoint:
    return services.create_endpoint(
        tenant.workspace, {"url": url, "events": ["*"]}, actor=Actor.system("t"), now=T0
    ).endpoint


def test_creating_shows_the_secret_once(tenant: Tenant) -> None:
    client = client_for(tenant.admin)
    page = client.post(
        reverse("webhook-list"),
        {"url": "https://hooks.example.com/in", "events": ["reply.received", "email.bounced"]},
    )
    assert page.status_code == 201
    endpoint = WebhookEndpoint.objects.get()
    secret = services.endpoint_secret(endpoint)
    assert secret in page.content.decode()
    assert page["Cache-Control"] == "no-store"
    assert endpoint.events == ["reply.received", "email.bounced"]
    again = client.get(reverse("webhook-list")).content.decode()
    assert secret not in again and "hooks.example.com/in" in again
    detail = client.get(reverse("webhook-detail", args=[endpoint.pk])).content.decode()
    assert secret not in detail and endpoint.secret_prefix in detail
    assert 'href="/settings/webhooks/"' in again  # the nav link


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "ftp://x.example.com/", "events": ["*"]}, "must start with http:// or https://"),
        ({"url": "http://192.168.1.1/", "events": ["*"]}, "private address"),
        ({"url": "https://x.example.com/"}, "Choose at least one event"),
        ({"url": "https://x.example.com/", "events": ["nope"]}, "Select a valid choice"),
    ],
)
def test_bad_input_is_explained_and_nothing_is_saved(
    tenant: Tenant, settings: Any, data: dict[str, Any], message: str
) -> None:
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    page = client_for(tenant.owner).post(reverse("webhook-list"), data)
    assert page.status_code == 200
    assert message in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_members_cannot_see_or_change_webhooks(tenant: Tenant) -> None:
    endpoint = make(tenant)
    client = client_for(tenant.member)
    for method, name, args in [
        ("get", "webhook-list", []),
        ("post", "webhook-list", []),
        ("get", "webhook-detail", [endpoint.pk]),
        ("post", "webhook-detail", [endpoint.pk]),
        ("post", "webhook-test", [endpoint.pk]),
        ("post", "webhook-delete", [endpoint.pk]),
        ("get", "webhook-deliveries", [endpoint.pk]),
    ]:
        response = getattr(client, method)(
            reverse(name, args=args),
            {"url": "https://a.example.com/", "events": ["*"]} if method == "post" else None,
        )
        assert response.status_code == 403, name
    assert WebhookEndpoint.objects.count() == 1 and not WebhookDelivery.objects.exists()


def test_another_workspaces_webhooks_are_404(tenant: Tenant, outsider: Tenant) -> None:
    endpoint = make(tenant)
    client = client_for(outsider.owner)
    assert "hooks.example.com" not in client.get(reverse("webhook-list")).content.decode()
    for method, name in [
        ("get", "webhook-detail"),
        ("post", "webhook-test"),
        ("post", "webhook-delete"),
        ("get", "webhook-deliveries"),
    ]:
        assert getattr(client, method)(reverse(name, args=[endpoint.pk])).status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_editing_events_and_pausing(tenant: Tenant) -> None:
    endpoint = make(tenant)
    client = client_for(tenant.admin)
    response = client.post(
        reverse("webhook-detail", args=[endpoint.pk]),
        {"url": endpoint.url, "events": ["limit.hit"], "description": "ops"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (
        endpoint.events == ["limit.hit"] and not endpoint.active and endpoint.description == "ops"
    )
    bad = client.post(
        reverse("webhook-detail", args=[endpoint.pk]), {"url": "nope", "events": ["*"]}
    )
    assert "must start with http:// or https://" in bad.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.events == ["limit.hit"]


def test_the_test_button_queues_and_the_log_shows_code_excerpt_and_timing(
    tenant: Tenant, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.replies = [Reply(status=202, body="accepted by n8n")]
    endpoint = make(tenant, receiver.url())
    client = client_for(tenant.admin)
    with django_capture_on_commit_callbacks(execute=True):
        partial = client.post(reverse("webhook-test", args=[endpoint.pk]), headers=HTMX)
    assert partial.status_code == 200
    html = partial.content.decode()
    assert "Test event queued" in html and "<html" not in html and "webhook.test" in html
    assert 'hx-trigger="every 3s"' in html  # watching the pending test delivery

    delivery.deliver_due(lambda: datetime.now(UTC))

    page = client.get(reverse("webhook-detail", args=[endpoint.pk])).content.decode()
    assert "Succeeded" in page and "202" in page and "accepted by n8n" in page and " ms" in page
    assert 'data-testid="last-triggered">never' not in page
    assert 'hx-trigger="every 3s"' not in page  # settled: no more polling


def test_deleting_a_webhook(tenant: Tenant) -> None:
    endpoint = make(tenant)
    response = client_for(tenant.owner).post(reverse("webhook-delete", args=[endpoint.pk]))
    assert response.status_code == 302 and not WebhookEndpoint.objects.exists()
