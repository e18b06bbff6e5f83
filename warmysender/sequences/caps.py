"""Daily caps, the per-mailbox pacer and the backoff ladder. Pure; times are passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

HARD_DAILY_CAP = 500  # per mailbox, platform-wide, whatever anyone configures
BACKOFF_LADDER = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
)
BACKOFF_RESET_SUCCESSES = 30
BACKOFF_RESET_WINDOW = timedelta(minutes=60)
# Random spacing between two sends of one mailbox (spec: 1–5 minutes of jitter between sends).
SPACING_MIN = timedelta(minutes=1)
SPACING_MAX = timedelta(minutes=5)


def effective_daily_cap(
    mailbox_limit: int, campaign_limit: int, campaign_mailbox_limit: int | None
) -> int:
    """The three caps, minimum wins, and never above the hard cap."""
    caps = [mailbox_limit, campaign_limit, HARD_DAILY_CAP]
    if campaign_mailbox_limit is not None:
        caps.append(campaign_mailbox_limit)
    return max(0, min(caps))


def local_day(t: datetime, zone: ZoneInfo) -> date:
    return t.astimezone(zone).date()


def next_local_midnight(t: datetime, zone: ZoneInfo) -> datetime:
    day = local_day(t, zone) + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def spacing(min_minutes_between_sends: int, rng: random.Random) -> timedelta:
    """The gap after one send of a mailbox before its next: the pacer floor (the longest
    "minutes between sends" among the campaigns sharing the mailbox) or the 1–5 minute random
    spacing, whichever is longer."""
    jitter = timedelta(
        seconds=rng.uniform(SPACING_MIN.total_seconds(), SPACING_MAX.total_seconds())
    )
    return max(timedelta(minutes=min_minutes_between_sends), jitter)


@dataclass(frozen=True)
class Backoff:
    """A mailbox's position on the 1 → 5 → 15 → 60 minute ladder. `level` 0 means no backoff."""

    level: int = 0
    until: datetime | None = None
    successes: int = 0
    window_started_at: datetime | None = None

    def blocks(self, now: datetime) -> bool:
        return self.until is not None and now < self.until

    def after_limit_hit(self, now: datetime) -> Backoff:
        """A rate limit or temporary refusal: wait the next rung (the last rung repeats)."""
        level = min(self.level + 1, len(BACKOFF_LADDER))
        return Backoff(level=level, until=now + BACKOFF_LADDER[level - 1])

    def after_success(self, now: datetime) -> Backoff:
        """A send went through. Thirty of them within sixty minutes clear the ladder."""
        if self.level == 0:
            return self
        started = self.window_started_at
        if started is None or now - started > BACKOFF_RESET_WINDOW:
            return replace(self, successes=1, window_started_at=now)
        successes = self.successes + 1
        if successes >= BACKOFF_RESET_SUCCESSES:
            return Backoff()
        return replace(self, successes=successes)
