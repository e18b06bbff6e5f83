from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from warmysender.sequences import scheduler
from warmysender.sequences.management.commands._clock import add_now_argument, clock_from


class Command(BaseCommand):
    help = "Run one scheduler tick now (the worker runs one every minute by itself)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_now_argument(parser)
        parser.add_argument(
            "--no-queue", action="store_true", help="reserve only; queue no send jobs"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = clock_from(options["now"])()
        report = scheduler.run_tick(now, queue=not options["no_queue"])
        self.stdout.write(
            f"claimed={report.claimed} reserved={report.reserved} waited={report.waited} "
            f"deferred={report.deferred} finished={report.finished} skipped={report.skipped}"
        )
