from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from warmysender.sequences.management.commands._clock import add_now_argument, clock_from
from warmysender.webhooks import delivery


class Command(BaseCommand):
    help = (
        "Fan out new events and send due webhook deliveries now (the worker does it every minute)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_now_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        report = delivery.deliver_due(clock_from(options["now"]))
        self.stdout.write(
            f"events={report.events} queued={report.queued} succeeded={report.succeeded} "
            f"retrying={report.retrying} dead={report.dead} lost_lease={report.lost_lease}"
        )
