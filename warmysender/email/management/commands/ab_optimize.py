from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from warmysender.sequences import ab
from warmysender.sequences.management.commands._clock import add_now_argument, clock_from


class Command(BaseCommand):
    help = "Pick significant A/B winners now (the worker does this every hour)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_now_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = ab.run_auto_optimize(clock_from(options["now"])())
        self.stdout.write(f"winners={chosen}")
