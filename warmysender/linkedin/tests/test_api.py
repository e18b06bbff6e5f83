"""GET /api/v1/linkedin/accounts and /accounts/{id}: scope, tenancy, shape."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from warmysender.conftest import NOW, Tenant, api_client
from warmysender.linkedin import services
from warmysender.linkedin.tests.factories import connected_account

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_list_and_get_show_caps_usage_and_ramp(tenant: Tenant, outsider: Tenant) -> None:
    account = connected_account(tenant.workspace, account_type="sales_navigator", name="Ada L")
    connected_account(outsider.workspace)
    later = NOW + timedelta(days=8)
    services.reserve(account, "invite", later)
    client = api_client(tenant.key("linkedin:read"))
    with time_machine.travel(later, tick=False):
        listing = client.get("/api/v1/linkedin/accounts")
        one = client.get(f"/api/v1/linkedin/accounts/{account.pk}")
    assert listing.status_code == 200
    assert [a["id"] for a in listing.json()["data"]] == [str(account.pk)]
    assert listing.json()["nextCursor"] is None
    data = one.json()["data"]
    assert data["name"] == "Ada L"
    assert data["status"] == "connected" and data["needsReconnect"] is False
    assert (data["accountType"], data["strategy"]) == ("sales_navigator", "new_account")
    assert (data["rampWeek"], data["rampWeeks"]) == (2, 6)
    assert data["caps"]["invite"] == {"cap": 80, "used": 1, "window": "rolling_7_days"}
    assert data["caps"]["inmail"] == {"cap": 40, "used": 0, "window": "utc_day"}
    assert data["proxy"] == {"mode": "auto", "country": "", "display": "Automatic"}
    assert data["firstConnectedAt"].startswith("2026-11-23T12:00:00")


def test_status_filter(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    services.disconnect_by_user(account, actor=services.Actor.person(tenant.owner), now=NOW)
    connected_account(tenant.workspace)
    client = api_client(tenant.key("linkedin:read"))
    got = client.get("/api/v1/linkedin/accounts?status=disconnected").json()["data"]
    assert [a["id"] for a in got] == [str(account.pk)]
    assert got[0]["needsReconnect"] is True
    bad = client.get("/api/v1/linkedin/accounts?status=sleeping")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"


def test_another_workspaces_account_is_not_found(tenant: Tenant, outsider: Tenant) -> None:
    theirs = connected_account(outsider.workspace)
    client = api_client(tenant.key("linkedin:read"))
    for path in (theirs.pk, uuid.uuid4(), "not-a-uuid"):
        response = client.get(f"/api/v1/linkedin/accounts/{path}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_a_key_without_the_scope_is_refused(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    client = api_client(tenant.key("prospects:read"))
    for path in ("/api/v1/linkedin/accounts", f"/api/v1/linkedin/accounts/{account.pk}"):
        response = client.get(path)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_scope"
    assert api_client("ws_nonsense").get("/api/v1/linkedin/accounts").status_code == 401
