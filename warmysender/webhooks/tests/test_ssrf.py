"""The SSRF guard: refused at save time when the URL itself names a forbidden address, and at
every delivery after DNS resolution and after each redirect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction

from warmysender.audit.services import Actor, emit_event
from warmysender.conftest import Tenant
from warmysender.webhooks import delivery, services, transport
from warmysender.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint
from warmysender.webhooks.tests.receiver import Receiver, Reply

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ACTOR = Actor.system("test")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/hook", "must start with http:// or https://"),
        ("javascript:alert(1)", "must start with http:// or https://"),
        ("https:///nohost", "has no host name"),
        ("http://10.0.0.5/hook", "points to a private address (10.0.0.5)"),
        ("http://192.168.1.1/", "points to a private address (192.168.1.1)"),
        ("http://169.254.169.254/latest/meta-data", "points to a link-local address"),
        ("http://127.0.0.1:8000/", "points to a loopback address (127.0.0.1)"),
        ("http://[::1]/", "points to a loopback address (::1)"),
        ("http://[::ffff:10.0.0.1]/", "points to a private address"),
        ("http://0.0.0.0/", "not a public address"),
        ("http://localhost:9000/", "points to this machine (localhost)"),
        ("https://user:pw@example.com/", "must not contain a user name or password"),
        ("https://example.com:99999/", "is not a valid URL"),
    ],
)
def test_urls_that_name_a_forbidden_destination_are_refused_as_written(
    url: str, problem: str
) -> None:
    found = transport.check_url_syntax(url, allow_loopback=False)
    assert found is not None and problem in found


def test_public_urls_and_loopback_with_the_switch_pass_the_syntax_check() -> None:
    assert (
        transport.check_url_syntax("https://hooks.example.com/x?y=1", allow_loopback=False) is None
    )
    assert transport.check_url_syntax("http://93.184.216.34/x", allow_loopback=False) is None
    assert transport.check_url_syntax("http://127.0.0.1:9/", allow_loopback=True) is None
    assert transport.check_url_syntax("http://localhost:9/", allow_loopback=True) is None
    # The switch is about loopback only.
    assert transport.check_url_syntax("http://10.1.2.3/", allow_loopback=True) is not None


@pytest.mark.django_db
def test_creating_an_endpoint_with_a_private_address_is_refused(tenant: Tenant) -> None:
    with pytest.raises(services.WebhookError) as caught:
        services.create_endpoint(
            tenant.workspace, {"url": "http://10.0.0.1/x", "events": ["*"]}, actor=ACTOR, now=T0
        )
    assert caught.value.field == "url" and "private address" in caught.value.message
    assert not WebhookEndpoint.objects.exists()


def _endpoint_bypassing_validation(tenant: Tenant, url: str) -> WebhookEndpoint:
    # Stored while the switch was on (or before a DNS change): the delivery must still refuse.
    created = services.create_endpoint(
        tenant.workspace, {"url": "https://example.com/", "events": ["*"]}, actor=ACTOR, now=T0
    )
    WebhookEndpoint.objects.filter(pk=created.endpoint.pk).update(url=url)
    return created.endpoint


def _emit(tenant: Tenant) -> None:
    with transaction.atomic():
        emit_event(workspace=tenant.workspace, type="reply.received", data={}, now=T0)


@pytest.mark.django_db
def test_a_hostname_resolving_to_loopback_is_refused_when_the_switch_is_off(
    tenant: Tenant, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    _endpoint_bypassing_validation(tenant, f"http://localhost:{receiver.port}/hook")
    _emit(tenant)
    delivery.deliver_due(lambda: T0)
    d = WebhookDelivery.objects.get()
    assert d.state == DeliveryState.RETRYING
    assert d.error.startswith("refused: localhost resolves to a loopback address")
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_private_ip_literal_is_refused_at_delivery(tenant: Tenant) -> None:
    _endpoint_bypassing_validation(tenant, "http://10.255.255.1:81/hook")
    _emit(tenant)
    delivery.deliver_due(lambda: T0)
    d = WebhookDelivery.objects.get()
    assert d.error == "refused: 10.255.255.1 resolves to a private address (10.255.255.1)"


@pytest.mark.django_db
def test_a_redirect_to_a_private_address_is_refused(tenant: Tenant, receiver: Receiver) -> None:
    receiver.replies = [Reply(status=307, headers={"Location": "http://192.168.0.10/steal"})]
    services.create_endpoint(
        tenant.workspace, {"url": receiver.url(), "events": ["*"]}, actor=ACTOR, now=T0
    )
    _emit(tenant)
    delivery.deliver_due(lambda: T0)
    d = WebhookDelivery.objects.get()
    assert d.state == DeliveryState.RETRYING
    assert "192.168.0.10 resolves to a private address" in d.error
    assert len(receiver.requests) == 1


def test_a_redirect_to_the_cloud_metadata_address_is_refused(receiver: Receiver) -> None:
    receiver.replies = [
        Reply(status=301, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    ]
    result = transport.post(receiver.url(), b"{}", {}, allow_loopback=True)
    assert result.error == (
        "refused: 169.254.169.254 resolves to a link-local address (169.254.169.254)"
    )
    assert result.url == "http://169.254.169.254/latest/meta-data/"


def test_redirect_loops_stop_after_three_hops(receiver: Receiver) -> None:
    receiver.replies = [Reply(status=302, headers={"Location": "/again"})]
    result = transport.post(receiver.url(), b"{}", {}, allow_loopback=True)
    assert result.error == "more than 3 redirects" and len(receiver.requests) == 4


def test_a_non_http_redirect_is_refused(receiver: Receiver) -> None:
    receiver.replies = [Reply(status=302, headers={"Location": "file:///etc/passwd"})]
    result = transport.post(receiver.url(), b"{}", {}, allow_loopback=True)
    assert "not an http(s) URL" in result.error
