from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from warmysender.email import imap_sync
from warmysender.mailboxes.models import Mailbox
from warmysender.sequences.management.commands._clock import add_now_argument, clock_from


class Command(BaseCommand):
    help = (
        "Read new replies, bounces and complaints from the mailboxes' IMAP servers now (the worker "
        "does it every two minutes by itself)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", help="id of one mailbox (default: every mailbox)")
        add_now_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        clock = clock_from(options["now"])
        if options["mailbox"]:
            try:
                exists = Mailbox.objects.filter(pk=options["mailbox"]).exists()
            except Exception as exc:  # a malformed UUID
                raise CommandError(
                    f"--mailbox: {options['mailbox']!r} is not a mailbox id"
                ) from exc
            if not exists:
                raise CommandError(f"--mailbox: no mailbox {options['mailbox']}")
            ids = [options["mailbox"]]
        else:
            ids = imap_sync.syncable_mailboxes()
        for mailbox_id in ids:
            report = imap_sync.sync_mailbox(mailbox_id, clock=clock)
            self.stdout.write(report.summary())
