"""Daily caps (minimum wins, hard cap), day boundaries, the pacer and the backoff ladder."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from warmysender.sequences import caps

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mailbox", "campaign", "per_mailbox", "expected"),
    [
        (100, 50, 30, 30),  # the spec's example: sends stop at the first cap reached
        (25, 50, None, 25),
        (1000, 10_000, None, 500),  # nothing goes past the hard cap
        (600, 700, 800, 500),
        (0, 50, 10, 0),
    ],
)
def test_the_minimum_of_the_three_caps_wins(
    mailbox: int, campaign: int, per_mailbox: int | None, expected: int
) -> None:
    assert caps.effective_daily_cap(mailbox, campaign, per_mailbox) == expected


def test_days_end_at_midnight_in_the_given_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    # 12:00 UTC is 21:00 in Tokyo: its day ends three hours later.
    assert caps.next_local_midnight(NOW, tokyo) == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert (
        caps.local_day(datetime(2026, 12, 1, 15, 30, tzinfo=UTC), tokyo).isoformat() == "2026-12-02"
    )


def test_spacing_is_one_to_five_minutes_or_the_pacer_floor() -> None:
    rng = random.Random(7)
    gaps = [caps.spacing(0, rng) for _ in range(500)]
    assert min(gaps) >= timedelta(minutes=1)
    assert max(gaps) <= timedelta(minutes=5)
    assert max(gaps) - min(gaps) > timedelta(minutes=2)  # really random, not a constant
    assert all(caps.spacing(12, rng) == timedelta(minutes=12) for _ in range(50))


def test_the_backoff_ladder_climbs_one_five_fifteen_sixty() -> None:
    b = caps.Backoff()
    waits = []
    t = NOW
    for _ in range(5):
        b = b.after_limit_hit(t)
        assert b.until is not None
        waits.append(b.until - t)
    assert waits == [
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=1),
    ]
    assert b.blocks(t + timedelta(minutes=59))
    assert not b.blocks(t + timedelta(hours=1))


def test_thirty_successes_within_an_hour_reset_the_ladder() -> None:
    b = caps.Backoff().after_limit_hit(NOW).after_limit_hit(NOW)
    t = NOW + timedelta(minutes=10)
    for i in range(29):
        b = b.after_success(t + timedelta(minutes=i))
        assert b.level == 2
    b = b.after_success(t + timedelta(minutes=29))
    assert b == caps.Backoff()


def test_successes_spread_over_more_than_an_hour_do_not_reset_it() -> None:
    b = caps.Backoff().after_limit_hit(NOW)
    for i in range(40):
        b = b.after_success(NOW + timedelta(minutes=3 * i))
    assert b.level == 1
