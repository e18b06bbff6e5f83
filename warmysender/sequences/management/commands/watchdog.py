from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from warmysender.sequences import watchdog
from warmysender.sequences.management.commands._clock import add_now_argument, clock_from


class Command(BaseCommand):
    help = "Recover sends stuck over ten minutes now (the worker does this every minute)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_now_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        report = watchdog.recover_stuck_actions(clock_from(options["now"])())
        self.stdout.write(
            f"released={report.released} unknown={report.unknown} failed={report.failed}"
        )
