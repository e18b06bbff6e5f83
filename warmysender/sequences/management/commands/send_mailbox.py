from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from warmysender.sequences import sending
from warmysender.sequences.management.commands._clock import add_now_argument, clock_from


class Command(BaseCommand):
    help = "Send the reserved emails of one mailbox now (what a send job does)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("mailbox_id")
        add_now_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        sent = sending.send_for_mailbox(options["mailbox_id"], clock=clock_from(options["now"]))
        self.stdout.write(f"sent={sent}")
