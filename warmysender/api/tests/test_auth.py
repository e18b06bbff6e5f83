"""API keys, scopes and the per-key rate limit, on every operation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from warmysender.accounts.models import ApiKey, ApiScope
from warmysender.accounts.services import revoke_api_key
from warmysender.api.auth import seconds_until_allowed
from warmysender.api.tests.conftest import ALL_SCOPES, error_code, send
from warmysender.api.v1 import api
from warmysender.conftest import Tenant, api_client

LIST_URL = "/api/v1/prospects"
T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
SOME_ID = uuid.UUID("6f1c1f5e-3b9e-4f0e-9d7a-2f1b8c7e5a10")


def body_for(method: str) -> dict[str, Any] | None:
    return {} if method in ("POST", "PATCH", "DELETE") else None


def operations() -> list[tuple[str, str, str]]:
    """(method, path with a random id, scope) for every operation in the OpenAPI document."""
    found = []
    for path, item in api.get_openapi_schema()["paths"].items():
        for method, operation in item.items():
            scope = operation["description"].split("`")[1]
            found.append((method.upper(), path.replace("{id}", str(SOME_ID)), scope))
    return found


OPERATIONS = operations()


def test_every_operation_is_covered_here() -> None:
    assert len(OPERATIONS) == 41


@pytest.mark.parametrize(("method", "path", "scope"), OPERATIONS)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer ws_unknownkeyunknownkeyunknownkey",
        "Bearer not-even-our-prefix",
        "Basic d3M6eA==",
        "ws_missing_scheme",
    ],
)
def test_requests_without_a_valid_key_are_401(
    db: None, method: str, path: str, scope: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    client = Client(headers=headers)
    response = send(client, method, path, body_for(method))
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "scope"), OPERATIONS)
def test_a_revoked_key_is_401_everywhere(
    tenant: Tenant, method: str, path: str, scope: str
) -> None:
    raw = tenant.key(*ALL_SCOPES)
    key = ApiKey.objects.get(workspace=tenant.workspace)
    revoke_api_key(key=key, actor=tenant.owner, now=T0)
    response = send(api_client(raw), method, path, body_for(method))
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


@pytest.mark.parametrize(("method", "path", "scope"), OPERATIONS)
def test_a_key_without_the_operations_scope_is_403(
    tenant: Tenant, method: str, path: str, scope: str
) -> None:
    # Every scope there is but the one the operation needs.
    others = [s for s in ApiScope.values if s != scope]
    response = send(api_client(tenant.key(*others)), method, path, body_for(method))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope"
    assert error["details"]["required"] == scope


def test_a_used_key_records_when_it_was_last_used(tenant: Tenant) -> None:
    raw = tenant.key("prospects:read")
    with time_machine.travel(T0, tick=False):
        send(api_client(raw), "GET", LIST_URL)
    assert ApiKey.objects.get(workspace=tenant.workspace).last_used_at == T0


# --- rate limit -------------------------------------------------------------------------------


def burst(client: Client, count: int) -> list[int]:
    return [send(client, "GET", LIST_URL).status_code for _ in range(count)]


def test_the_61st_request_in_a_minute_is_429_until_the_window_frees_up(tenant: Tenant) -> None:
    client = api_client(tenant.key("prospects:read"))
    with time_machine.travel(T0 + timedelta(seconds=10), tick=False) as clock:
        assert burst(client, 60) == [200] * 60
        refused = send(client, "GET", LIST_URL)
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "rate_limited"
        retry_after = int(refused["Retry-After"])
        assert error["details"] == {"limit": 60, "retryAfter": retry_after}
        # All 60 fell in this minute, so they weigh fully until it ends, 50 s from now, and a
        # little into the next one, when the sliding window has let the first second go.
        assert retry_after == 51
        # Refused requests do not count, so hammering does not push the time further out.
        assert burst(client, 5) == [429] * 5
        clock.shift(timedelta(seconds=retry_after - 1))
        assert send(client, "GET", LIST_URL).status_code == 429
        clock.shift(timedelta(seconds=1))
        assert send(client, "GET", LIST_URL).status_code == 200


def test_the_window_slides_rather_than_resetting_at_the_minute(tenant: Tenant) -> None:
    client = api_client(tenant.key("prospects:read"))
    with time_machine.travel(T0 + timedelta(seconds=59), tick=False) as clock:
        assert burst(client, 60) == [200] * 60
        # One second later a new minute starts, but the last 60 s still hold 60 requests.
        clock.shift(timedelta(seconds=1))
        refused = send(client, "GET", LIST_URL)
        assert refused.status_code == 429
        assert refused["Retry-After"] == "1"
        # As the previous minute slides out, capacity returns a request at a time.
        clock.shift(timedelta(seconds=1))
        assert burst(client, 2) == [200, 429]
        clock.shift(timedelta(seconds=58))
        assert burst(client, 60) == [200] * 58 + [429] * 2


def test_each_key_has_its_own_budget(tenant: Tenant) -> None:
    first = api_client(tenant.key("prospects:read"))
    second = api_client(tenant.key("prospects:read"))
    with time_machine.travel(T0, tick=False):
        assert burst(first, 60) == [200] * 60
        assert send(first, "GET", LIST_URL).status_code == 429
        assert burst(second, 60) == [200] * 60


def test_requests_refused_for_their_scope_still_count(tenant: Tenant) -> None:
    client = api_client(tenant.key("prospects:read"))
    with time_machine.travel(T0, tick=False):
        for _ in range(60):
            assert send(client, "GET", "/api/v1/suppressions").status_code == 403
        assert send(client, "GET", LIST_URL).status_code == 429


def test_the_limit_comes_from_the_settings(tenant: Tenant, settings: Any) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    client = api_client(tenant.key("prospects:read"))
    with time_machine.travel(T0, tick=False):
        assert burst(client, 4) == [200, 200, 200, 429]


def test_old_windows_are_pruned(tenant: Tenant) -> None:
    from warmysender.api.models import RateLimitWindow

    client = api_client(tenant.key("prospects:read"))
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(5):
            send(client, "GET", LIST_URL)
            clock.shift(timedelta(minutes=1))
    assert RateLimitWindow.objects.count() == 2


def admitted_at(limit: int, current: int, previous: int, elapsed: float, wait: float) -> bool:
    """Would one more request fit `wait` seconds later? The limiter's rule, restated."""
    moment = elapsed + wait
    if moment < 60:
        return previous * (1 - moment / 60) + current + 1 <= limit + 1e-9
    if moment < 120:
        return current * (1 - (moment - 60) / 60) + 1 <= limit + 1e-9
    return True


@given(
    limit=st.integers(1, 200),
    current=st.integers(0, 200),
    previous=st.integers(0, 400),
    elapsed=st.floats(0, 59.999),
)
def test_retry_after_is_the_shortest_whole_wait_that_works(
    limit: int, current: int, previous: int, elapsed: float
) -> None:
    if admitted_at(limit, current, previous, elapsed, 0):
        return  # not a refused request
    wait = seconds_until_allowed(limit, current, previous, elapsed)
    assert wait >= 1
    assert admitted_at(limit, current, previous, elapsed, wait)
    if wait > 1:
        assert not admitted_at(limit, current, previous, elapsed, wait - 1)
