from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from warmysender.sequences.management.commands._clock import add_now_argument, clock_from
from warmysender.webhooks import services


class Command(BaseCommand):
    help = "Delete webhook deliveries older than 30 days now (the worker does it daily)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_now_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = services.cleanup_deliveries(clock_from(options["now"])())
        self.stdout.write(f"deleted={deleted}")
