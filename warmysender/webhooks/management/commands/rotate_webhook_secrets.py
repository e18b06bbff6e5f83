from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from warmysender.webhooks import services


class Command(BaseCommand):
    help = "Re-encrypt stored webhook secrets with the first key of CREDENTIALS_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"reencrypted={services.reencrypt_secrets(timezone.now())}")
