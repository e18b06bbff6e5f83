"""LinkedIn caps, ramps and the reservation decision: pure functions, `now` passed in.

Effective cap per action kind = min(account-type table, strategy ramp at the current week), or
the account's explicit override, which is never above the published ceiling (the type table,
and 50 InMails a day whatever the type). Invites count over a rolling 7 days (D5); the daily
kinds reset at 00:00 UTC. On top, at most 2 actions a minute per account, and nothing while
a `cannot_resend_yet` cooldown runs.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from warmysender.linkedin.models import AccountType, ActionKind, Strategy

INVITE = ActionKind.INVITE.value
MESSAGE = ActionKind.MESSAGE.value
INMAIL = ActionKind.INMAIL.value
PROFILE_VIEW = ActionKind.PROFILE_VIEW.value
ENGAGEMENT = ActionKind.ENGAGEMENT.value
KINDS: tuple[str, ...] = (INVITE, MESSAGE, INMAIL, PROFILE_VIEW, ENGAGEMENT)
# Invites are counted per rolling week; every other kind per UTC day.
WEEKLY_KINDS = frozenset({INVITE})

INVITE_WINDOW = timedelta(days=7)
RATE_WINDOW = timedelta(minutes=1)
ACTIONS_PER_MINUTE = 2
COOLDOWN_MIN = timedelta(hours=4)
COOLDOWN_MAX = timedelta(hours=8)

# The primary table (D6): invites/week, messages/day, InMails/day, profile views/day,
# engagements/day at full ramp.
TYPE_CAPS: dict[str, dict[str, int]] = {
    AccountType.FREE: {INVITE: 150, MESSAGE: 100, INMAIL: 0, PROFILE_VIEW: 30, ENGAGEMENT: 30},
    AccountType.PREMIUM: {INVITE: 200, MESSAGE: 150, INMAIL: 15, PROFILE_VIEW: 50, ENGAGEMENT: 40},
    AccountType.SALES_NAVIGATOR: {
        INVITE: 200,
        MESSAGE: 150,
        INMAIL: 50,
        PROFILE_VIEW: 60,
        ENGAGEMENT: 50,
    },
    AccountType.RECRUITER: {
        INVITE: 200,
        MESSAGE: 150,
        INMAIL: 100,
        PROFILE_VIEW: 60,
        ENGAGEMENT: 50,
    },
}
# Unipile's published safe band tops out at 50 InMails a day: no override goes above it.
OVERRIDE_CEILINGS: dict[str, int] = {INMAIL: 50}


@dataclass(frozen=True)
class RampStep:
    """A kind's ramp: `start` in week 1, rising linearly to `full` in week `weeks`."""

    start: int
    full: int
    weeks: int

    def at(self, week: int) -> int:
        if week >= self.weeks or self.weeks <= 1:
            return self.full
        return self.start + (self.full - self.start) * (week - 1) // (self.weeks - 1)


# Ramp length per strategy ("Week N of M").
RAMP_WEEKS: dict[str, int] = {
    Strategy.NEW_ACCOUNT: 6,
    Strategy.ESTABLISHED: 4,
    Strategy.VETERAN: 2,
    Strategy.RECOVERY: 8,
}

# The seed gives the engagement and profile-view ramps and the Sales Navigator InMail ramp;
# the invite and message rows follow the same shape (docs/linkedin.md). Recovery runs for 8
# weeks at half speed: half the new-account numbers.
RAMPS: dict[str, dict[str, RampStep]] = {
    Strategy.NEW_ACCOUNT: {
        INVITE: RampStep(50, 200, 6),
        MESSAGE: RampStep(30, 150, 6),
        INMAIL: RampStep(25, 40, 2),
        PROFILE_VIEW: RampStep(10, 60, 6),
        ENGAGEMENT: RampStep(5, 30, 6),
    },
    Strategy.ESTABLISHED: {
        INVITE: RampStep(100, 200, 4),
        MESSAGE: RampStep(60, 150, 4),
        INMAIL: RampStep(30, 45, 2),
        PROFILE_VIEW: RampStep(30, 80, 4),
        ENGAGEMENT: RampStep(15, 40, 4),
    },
    Strategy.VETERAN: {
        INVITE: RampStep(150, 200, 2),
        MESSAGE: RampStep(100, 150, 2),
        INMAIL: RampStep(40, 40, 1),
        PROFILE_VIEW: RampStep(50, 100, 2),
        ENGAGEMENT: RampStep(25, 50, 2),
    },
    Strategy.RECOVERY: {
        INVITE: RampStep(25, 100, 8),
        MESSAGE: RampStep(15, 75, 8),
        INMAIL: RampStep(10, 20, 8),
        PROFILE_VIEW: RampStep(5, 30, 8),
        ENGAGEMENT: RampStep(2, 15, 8),
    },
}


def effective_type(account_type: str) -> str:
    """Unknown counts as Premium, never as Free (seed 004)."""
    return account_type if account_type in TYPE_CAPS else AccountType.PREMIUM


def ramp_week(ramp_started_at: datetime, now: datetime) -> int:
    """1 in the first seven days of the ramp, 2 in the next seven, ... (never below 1)."""
    return max(1, (now - ramp_started_at) // timedelta(days=7) + 1)


def ramp_progress(strategy: str, ramp_started_at: datetime, now: datetime) -> tuple[int, int]:
    """("Week N", "of M"): N stops at M once the ramp is complete."""
    weeks = RAMP_WEEKS[strategy]
    return min(ramp_week(ramp_started_at, now), weeks), weeks


def override_ceiling(account_type: str, kind: str) -> int:
    cap = TYPE_CAPS[effective_type(account_type)][kind]
    return min(cap, OVERRIDE_CEILINGS.get(kind, cap))


def effective_cap(
    account_type: str,
    strategy: str,
    ramp_started_at: datetime,
    kind: str,
    now: datetime,
    overrides: Mapping[str, int] | None = None,
) -> int:
    type_cap = TYPE_CAPS[effective_type(account_type)][kind]
    if overrides and kind in overrides:
        # An acknowledged override replaces the ramp, but never passes the ceiling.
        return max(0, min(int(overrides[kind]), override_ceiling(account_type, kind)))
    return min(type_cap, RAMPS[strategy][kind].at(ramp_week(ramp_started_at, now)))


def validate_overrides(account_type: str, overrides: Mapping[str, object]) -> dict[str, int]:
    """Overrides as stored, or ValueError naming the first offending kind."""
    clean: dict[str, int] = {}
    for kind, value in overrides.items():
        if kind not in KINDS:
            raise ValueError(f"Unknown action kind {kind!r}; use one of {', '.join(KINDS)}.")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"The {kind} override must be a whole number.")
        ceiling = override_ceiling(account_type, kind)
        if not 0 <= value <= ceiling:
            raise ValueError(
                f"The {kind} override must be between 0 and {ceiling}, the published ceiling "
                f"for this account type."
            )
        clean[kind] = value
    return clean


def window_start(kind: str, now: datetime) -> datetime:
    """The start of the window a kind is counted over."""
    if kind in WEEKLY_KINDS:
        return now - INVITE_WINDOW
    return datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)


def next_daily_reset(now: datetime) -> datetime:
    return window_start(MESSAGE, now) + timedelta(days=1)


def cooldown_after_cannot_resend(
    existing: datetime | None, now: datetime, rng: random.Random | None = None
) -> datetime:
    """A new cooldown end 4–8 h from now, never earlier than a cooldown already running."""
    draw = (rng or random.SystemRandom()).uniform(
        COOLDOWN_MIN.total_seconds(), COOLDOWN_MAX.total_seconds()
    )
    new = now + timedelta(seconds=draw)
    return new if existing is None else max(existing, new)


@dataclass(frozen=True)
class Granted:
    kind: str
    used: int  # including this one
    cap: int


@dataclass(frozen=True)
class Denied:
    reason: str
    retry_at: datetime | None  # None: waits on something other than the clock (a reconnect)


Decision = Granted | Denied


def decide(
    *,
    kind: str,
    cap: int,
    used_in_window: Sequence[datetime],
    recent_actions: Sequence[datetime],
    connected: bool,
    cooldown_until: datetime | None,
    now: datetime,
) -> Decision:
    """Whether one more `kind` action may be reserved now.

    `used_in_window`: reservation times of this kind in its window (window_start..now);
    `recent_actions`: reservation times of any kind in the last minute.
    """
    if not connected:
        return Denied("account not connected", None)
    if cooldown_until is not None and cooldown_until > now:
        return Denied(
            f"account in cannot_resend_yet cooldown until {cooldown_until.isoformat()}",
            cooldown_until,
        )
    if len(used_in_window) >= cap:
        if kind in WEEKLY_KINDS:
            # Rolling week: a slot frees when the oldest counted invite leaves the window.
            ordered = sorted(used_in_window)
            frees_at = ordered[len(ordered) - cap] + INVITE_WINDOW if cap > 0 else None
            what = "weekly"
        else:
            frees_at = next_daily_reset(now) if cap > 0 else None
            what = "daily"
        label = ActionKind(kind).label.lower()
        return Denied(f"{what} {label} cap reached ({len(used_in_window)}/{cap})", frees_at)
    recent = sorted(t for t in recent_actions if t > now - RATE_WINDOW)
    if len(recent) >= ACTIONS_PER_MINUTE:
        return Denied(
            f"at most {ACTIONS_PER_MINUTE} LinkedIn actions a minute per account",
            recent[len(recent) - ACTIONS_PER_MINUTE] + RATE_WINDOW,
        )
    return Granted(kind=kind, used=len(used_in_window) + 1, cap=cap)
