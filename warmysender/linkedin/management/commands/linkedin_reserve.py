"""Reserve LinkedIn capacity from the command line: a drill for operators and the test that runs
two of these processes against one account to prove no cap is ever passed."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from warmysender.linkedin import limits, services
from warmysender.linkedin.models import LinkedInAccount


class Command(BaseCommand):
    help = (
        "Try to reserve ATTEMPTS actions of KIND on an account, one transaction each, the first "
        "at --now and each next one --step seconds later; prints granted=N denied=M."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("account_id")
        parser.add_argument("kind", choices=limits.KINDS)
        parser.add_argument("--attempts", type=int, default=1)
        parser.add_argument("--step", type=float, default=60.0)
        parser.add_argument("--now", required=True, help="ISO 8601 instant with a UTC offset")
        parser.add_argument(
            "--hold-ms",
            type=float,
            default=0.0,
            help="stay in each transaction this long after reserving, as an action writing "
            "its own event row would",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            start = datetime.fromisoformat(options["now"])
        except ValueError as exc:
            raise CommandError(f"--now: {options['now']!r} is not an ISO 8601 instant") from exc
        if start.tzinfo is None:
            raise CommandError("--now needs a UTC offset (e.g. +00:00)")
        try:
            account = LinkedInAccount.objects.get(pk=options["account_id"])
        except (LinkedInAccount.DoesNotExist, ValueError) as exc:
            raise CommandError(f"no LinkedIn account {options['account_id']}") from exc
        granted = denied = 0
        for i in range(options["attempts"]):
            now = start + timedelta(seconds=options["step"] * i)
            with transaction.atomic():
                decision = services.reserve(account, options["kind"], now, reference=f"drill-{i}")
                if options["hold_ms"]:
                    time.sleep(options["hold_ms"] / 1000)
            if isinstance(decision, limits.Granted):
                granted += 1
            else:
                denied += 1
        self.stdout.write(f"granted={granted} denied={denied}")
