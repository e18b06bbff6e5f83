"""`--now` for the engine's commands: run a tick or a send as of a given instant (time travel in
tests and drills); without it, the wall clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone


def add_now_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--now", help="ISO 8601 instant with a UTC offset, e.g. 2026-12-01T09:00:00+00:00"
    )


def clock_from(value: str | None) -> Callable[[], datetime]:
    if not value:
        return timezone.now
    try:
        fixed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--now: {value!r} is not an ISO 8601 instant") from exc
    if fixed.tzinfo is None:
        raise CommandError("--now needs a UTC offset (e.g. +00:00)")
    return lambda: fixed
