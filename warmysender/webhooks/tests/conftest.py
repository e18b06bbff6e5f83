from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from warmysender.webhooks.tests.receiver import Receiver


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
