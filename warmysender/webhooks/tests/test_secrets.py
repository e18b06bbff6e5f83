"""Webhook secrets are stored encrypted with the credentials key ring and survive key rotation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet

from warmysender.audit.services import Actor
from warmysender.conftest import Tenant
from warmysender.webhooks import services
from warmysender.webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_rotation_reencrypts_with_the_new_key_and_keeps_the_secret(
    tenant: Tenant, settings: Any
) -> None:
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [old]
    created = services.create_endpoint(
        tenant.workspace,
        {"url": "https://a.example.com/", "events": ["*"]},
        actor=Actor.system("t"),
        now=T0,
    )
    settings.CREDENTIALS_KEYS = [new, old]
    assert services.reencrypt_secrets(T0) == 1
    settings.CREDENTIALS_KEYS = [new]
    endpoint = WebhookEndpoint.objects.get()
    assert services.endpoint_secret(endpoint) == created.secret
    assert created.secret not in endpoint.secret_encrypted
