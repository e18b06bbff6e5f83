"""When a failed delivery is tried again (ARCHITECTURE.md §7, D14).

Ten retries after the first attempt, at 1m, 5m, 15m, 1h, 3h, 6h, 12h, 24h, 48h and 72h after each
failure; the eleventh failure dead-letters the delivery. A `Retry-After` answer (seconds or an
HTTP date) only ever postpones a retry, never brings it forward: the receiver can ask for more
time, but cannot make us call it more often than the schedule. It is capped at the largest step
(72 h), so one answer cannot park a delivery for ever.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
    timedelta(hours=48),
    timedelta(hours=72),
)
MAX_RETRIES = len(RETRY_DELAYS)
MAX_DELAY = RETRY_DELAYS[-1]


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """The wait a `Retry-After` header asks for, or None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def next_attempt_at(
    failures: int, failed_at: datetime, retry_after: timedelta | None = None
) -> datetime | None:
    """When to try again after the `failures`-th failed attempt; None once retries are spent."""
    if failures > MAX_RETRIES:
        return None
    delay = RETRY_DELAYS[failures - 1]
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_DELAY))
    return failed_at + delay
