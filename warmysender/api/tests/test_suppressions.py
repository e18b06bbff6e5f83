"""/api/v1/suppressions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from warmysender.api.tests.conftest import block_subscription, error_code, make_prospect, send
from warmysender.audit.models import DomainEvent
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, api_client
from warmysender.prospects import services
from warmysender.prospects.models import Suppression

URL = "/api/v1/suppressions"


def suppress(tenant: Tenant, value: str) -> Suppression:
    entry, _ = services.add_suppression(
        workspace=tenant.workspace, value=value, actor=Actor.system("test"), now=NOW
    )
    return entry


@pytest.mark.parametrize(
    ("value", "kind", "stored"),
    [
        ("Someone@Example.com", "email", "someone@example.com"),
        ("Example.org", "domain", "example.org"),
        ("@example.net", "domain", "example.net"),
    ],
)
def test_post_adds_an_address_or_a_domain_with_201(
    client: Client, tenant: Tenant, value: str, kind: str, stored: str
) -> None:
    response = send(client, "POST", URL, {"value": value, "reason": "asked to stop"})
    assert response.status_code == 201
    data = response.json()["data"]
    entry = Suppression.objects.get(workspace=tenant.workspace)
    assert data == {
        "id": str(entry.pk),
        "kind": kind,
        "value": stored,
        "reason": "asked to stop",
        "createdAt": data["createdAt"],
    }


def test_posting_an_existing_entry_returns_it_with_200(client: Client, tenant: Tenant) -> None:
    entry = suppress(tenant, "someone@example.com")
    response = send(client, "POST", URL, {"value": "SOMEONE@example.com"})
    assert response.status_code == 200
    assert response.json()["data"]["id"] == str(entry.pk)
    assert Suppression.objects.count() == 1


def test_suppressing_a_domain_announces_each_blocked_prospect(
    client: Client, tenant: Tenant
) -> None:
    prospect = make_prospect(tenant, "ada@blocked.com")
    make_prospect(tenant, "grace@fine.com")
    send(client, "POST", URL, {"value": "blocked.com"})
    events = DomainEvent.objects.filter(workspace=tenant.workspace, type="prospect.suppressed")
    assert [e.data["prospectId"] for e in events] == [str(prospect.pk)]
    [event] = events
    # The spec's payload: prospectId, email, reason, suppressedAt.
    assert event.data["email"] == "ada@blocked.com"
    assert event.data["suppressedAt"] == event.occurred_at.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"value": ""},
        {"value": "not a domain"},
        {"value": "nodot"},
        {"value": "a@b.test"},
        {"value": "x@"},
        {"value": "example.com", "reason": "r" * 201},
        {"value": "example.com", "extra": 1},
        {"value": 5},
    ],
)
def test_post_rejects_what_is_neither_an_address_nor_a_domain(client: Client, body: Any) -> None:
    response = send(client, "POST", URL, body)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert not Suppression.objects.exists()


def test_get_lists_searches_and_pages(client: Client, tenant: Tenant) -> None:
    for value in ("a@example.com", "b@example.com", "spam.org"):
        suppress(tenant, value)
    everything = send(client, "GET", URL).json()
    assert {row["value"] for row in everything["data"]} == {
        "a@example.com",
        "b@example.com",
        "spam.org",
    }
    found = send(client, "GET", f"{URL}?q=EXAMPLE").json()["data"]
    assert {row["value"] for row in found} == {"a@example.com", "b@example.com"}
    first = send(client, "GET", f"{URL}?limit=2").json()
    rest = send(client, "GET", f"{URL}?limit=2&cursor={first['nextCursor']}").json()
    assert len(first["data"]) == 2
    assert len(rest["data"]) == 1
    assert rest["nextCursor"] is None


def test_delete_removes_the_entry(client: Client, tenant: Tenant) -> None:
    entry = suppress(tenant, "spam.org")
    response = send(client, "DELETE", f"{URL}/{entry.pk}")
    assert response.status_code == 204
    assert not Suppression.objects.exists()
    assert send(client, "DELETE", f"{URL}/{entry.pk}").status_code == 404
    assert send(client, "DELETE", f"{URL}/not-an-id").status_code == 404


def test_an_outsider_never_sees_or_removes_the_tenants_entries(
    outsider_client: Client, tenant: Tenant
) -> None:
    entry = suppress(tenant, "spam.org")
    assert send(outsider_client, "GET", URL).json()["data"] == []
    assert send(outsider_client, "GET", f"{URL}?q=spam").json()["data"] == []
    response = send(outsider_client, "DELETE", f"{URL}/{entry.pk}")
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert Suppression.objects.filter(pk=entry.pk).exists()
    # Suppressing the same value in its own workspace leaves the tenant's entry alone.
    assert send(outsider_client, "POST", URL, {"value": "spam.org"}).status_code == 201
    assert Suppression.objects.count() == 2


def test_suppression_scopes_are_separate_from_prospect_scopes(tenant: Tenant) -> None:
    entry = suppress(tenant, "spam.org")
    prospects_only = api_client(tenant.key("prospects:read", "prospects:write"))
    reader = api_client(tenant.key("suppressions:read"))
    writes = [("POST", URL, {"value": "x.org"}), ("DELETE", f"{URL}/{entry.pk}", None)]
    for method, path, body in [("GET", URL, None), *writes]:
        response = send(prospects_only, method, path, body)
        assert response.status_code == 403
        assert error_code(response) == "insufficient_scope"
    assert send(reader, "GET", URL).status_code == 200
    for method, path, body in writes:
        assert error_code(send(reader, method, path, body)) == "insufficient_scope"
    assert list(Suppression.objects.values_list("value", flat=True)) == ["spam.org"]


def test_opt_outs_are_recorded_even_when_the_subscription_is_blocked(
    client: Client, tenant: Tenant, settings: Any
) -> None:
    entry = suppress(tenant, "spam.org")
    block_subscription(tenant, settings)
    assert send(client, "POST", URL, {"value": "optout@example.com"}).status_code == 201
    # Removing one would allow sending again, so that waits for an active subscription.
    response = send(client, "DELETE", f"{URL}/{entry.pk}")
    assert response.status_code == 403
    assert error_code(response) == "subscription_blocked"
    assert Suppression.objects.count() == 2


def test_unknown_ids_are_404(client: Client) -> None:
    response = send(client, "DELETE", f"{URL}/{uuid.uuid4()}")
    assert response.status_code == 404
