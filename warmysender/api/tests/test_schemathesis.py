"""The whole API against its own OpenAPI document, with schemathesis's default checks: no 5xx,
only declared status codes, bodies and headers matching their schemas, invalid input rejected
and valid input accepted, authentication enforced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from warmysender.accounts.models import ApiScope
from warmysender.conftest import Tenant

# Loaded through the WSGI handler at collection time; fetching the document needs no database.
# (schemathesis's lazy `from_fixture` loader does not run under this pytest version.)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


# Operations whose bodies have rules JSON Schema cannot state, so a schema-valid body may still be
# a 400: creating a campaign names mailboxes that must exist here and be able to send, and its
# fields have rules across each other (stepIndex unique, window start before end, endDate after
# startDate). Each field's own rules are still checked both ways: PATCH /campaigns/{id} shares
# the field types and answers a random id with 404 before any rule across fields runs. A
# webhook's URL must be http(s) and never name a private, loopback or link-local address.
SEMANTIC_RULES = {"POST /api/v1/campaigns", "POST /api/v1/webhooks"}

# The key of the current test's workspace, for the auth provider below.
_current_key: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class BearerKey:
    """Every generated request authenticates with a key holding all scopes, the way schemathesis
    expects credentials to be supplied, so it can still test requests without them."""

    def get(self, case: schemathesis.Case, context: Any) -> str:
        # Also asked while pytest collects, before any test has a workspace.
        return _current_key.get("raw", "ws_collecting")

    def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(autouse=True)
def all_scopes_key(tenant: Tenant) -> Iterator[None]:
    _current_key["raw"] = tenant.key(*ApiScope.values)
    yield
    _current_key.clear()


@pytest.fixture(autouse=True)
def in_process_requests(db: None, settings: Any) -> Iterator[None]:
    # Hundreds of generated requests per minute; the limit itself is tested elsewhere.
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    # Requests go through the WSGI handler in this process and this test's transaction. Django
    # closes the connection when a request ends; the test client switches that off, and so
    # must we, or the first request would end the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case) -> None:
    excluded = [positive_data_acceptance] if case.operation.label in SEMANTIC_RULES else []
    case.call_and_validate(excluded_checks=excluded)
