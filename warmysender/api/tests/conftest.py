"""Fixtures for the API tests."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from warmysender.accounts.models import Plan, Subscription, SubscriptionStatus
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, api_client
from warmysender.prospects import services
from warmysender.prospects.models import Prospect


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    # The tenants these tests create sign their people up with passwords; argon2's deliberate
    # slowness buys nothing here and would dominate the run time. (Autouse fixtures run before
    # `tenant`, so its users are hashed with this.)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


PROSPECT_SCOPES = ("prospects:read", "prospects:write")
ALL_SCOPES = (*PROSPECT_SCOPES, "suppressions:read", "suppressions:write")


@pytest.fixture
def client(tenant: Tenant) -> Client:
    """The tenant's key with every scope these endpoints use."""
    return api_client(tenant.key(*ALL_SCOPES))


@pytest.fixture
def outsider_client(outsider: Tenant) -> Client:
    return api_client(outsider.key(*ALL_SCOPES))


def send(client: Client, method: str, path: str, body: Any = None, **headers: str) -> Any:
    """A JSON request; `body` is encoded unless it is already a string."""
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    call = getattr(client, method.lower())
    if body is None:
        return call(path, headers=headers)
    return call(path, data, content_type="application/json", headers=headers)


def error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


def make_prospect(tenant: Tenant, email: str, **fields: Any) -> Prospect:
    return services.create_prospect(
        workspace=tenant.workspace,
        data={"email": email, **fields},
        actor=Actor.system("test"),
        now=NOW,
    ).prospect


def block_subscription(tenant: Tenant, settings: Any) -> None:
    """Billing on, and the owner's trial ended yesterday."""
    settings.BILLING_ENABLED = True
    Subscription.objects.create(
        user=tenant.owner,
        plan=Plan.objects.get(code="pro"),
        status=SubscriptionStatus.TRIALING,
        trial_ends_at=timezone.now() - timedelta(days=1),
    )
