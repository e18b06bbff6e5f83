"""`warmysender manage rotate_credentials`: re-encrypt stored mailbox passwords with the first
key of CREDENTIALS_KEYS, so the older keys can then be removed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from warmysender.mailboxes.services import rotate_all_credentials


class Command(BaseCommand):
    help = "Re-encrypt every mailbox's stored passwords with the first key of CREDENTIALS_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        result = rotate_all_credentials(now=timezone.now())
        self.stdout.write(f"Re-encrypted the credentials of {result.rotated} mailboxes.")
        if result.unreadable:
            ids = ", ".join(str(pk) for pk in result.unreadable)
            raise CommandError(
                f"{len(result.unreadable)} mailboxes have credentials no configured key can "
                f"read; keep the old keys, or re-enter their passwords: {ids}"
            )
