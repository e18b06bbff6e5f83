"""Sending windows: hours and weekdays in a campaign's time zone. Pure; every function takes the
time it reasons about.

The one rule everything here keeps: a clamp only ever moves work later. `clamp_to_window(t)` is
`t` itself when `t` is inside the window, otherwise the next opening, never anything earlier.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# How far ahead a slot is searched for (spec: "search up to 8 days ahead for a valid slot").
LOOKAHEAD_DAYS = 8
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Window:
    """Sending hours [start_hour, end_hour) on `days` (0 = Monday) in `zone`."""

    zone: ZoneInfo
    days: frozenset[int]
    start_hour: int
    end_hour: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_hour < self.end_hour <= 24:
            raise ValueError("a window needs 0 <= start_hour < end_hour <= 24")
        if not self.days <= frozenset(range(7)):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")

    @classmethod
    def of(
        cls, zone: str, days: list[int] | tuple[int, ...], start_hour: int, end_hour: int
    ) -> Window:
        return cls(ZoneInfo(zone), frozenset(days), start_hour, end_hour)

    def label(self) -> str:
        """ "Mon Tue Wed Thu Fri 9-17 Europe/Berlin", as on the campaign card."""
        days = " ".join(WEEKDAY_NAMES[d] for d in sorted(self.days)) or "no days"
        return f"{days} {self.start_hour}-{self.end_hour} {self.zone.key}"


def _bounds(window: Window, day: date) -> tuple[datetime, datetime]:
    """The window of local `day` as UTC instants. Wall-clock hours that do not exist (a DST gap)
    resolve forward, as zoneinfo does, so the window is never shifted earlier."""
    start = datetime.combine(day, time(window.start_hour), tzinfo=window.zone)
    if window.end_hour == 24:
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=window.zone)
    else:
        end = datetime.combine(day, time(window.end_hour), tzinfo=window.zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def is_open(window: Window, t: datetime) -> bool:
    local = t.astimezone(window.zone)
    if local.weekday() not in window.days:
        return False
    start, end = _bounds(window, local.date())
    return start <= t < end


def next_opening(window: Window, t: datetime) -> datetime | None:
    """The first instant at or after `t` inside the window, within the look-ahead; None when the
    window has no open time in that span (no active days)."""
    local_day = t.astimezone(window.zone).date()
    for offset in range(LOOKAHEAD_DAYS + 1):
        day = local_day + timedelta(days=offset)
        if day.weekday() not in window.days:
            continue
        start, end = _bounds(window, day)
        if t < end:
            return max(t, start)
    return None


def clamp_to_window(
    t: datetime, window: Window, *, rng: random.Random | None = None
) -> datetime | None:
    """`t` when it is inside the window; else the next opening. With `rng`, a time moved to an
    opening is spread over the first hour of that window (or all of it, when shorter), so work
    that piled up overnight does not all become due at the same minute."""
    opening = next_opening(window, t)
    if opening is None or opening == t or rng is None:
        return opening
    _, end = _bounds(window, opening.astimezone(window.zone).date())
    spread = min(timedelta(hours=1), end - opening)
    return opening + timedelta(seconds=rng.uniform(0, spread.total_seconds() - 1))


def describe_next(window: Window, t: datetime) -> str:
    """ "outside window, next 09:00 Europe/Berlin (Mon 7 Dec)": the reason stored on waiting work."""
    local = t.astimezone(window.zone)
    return f"outside sending window, next {local:%H:%M} {window.zone.key} ({local:%a %-d %b})"
