"""The sending window: hours and weekdays in the campaign's zone; clamps only move work later."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmysender.sequences.windows import (
    LOOKAHEAD_DAYS,
    Window,
    clamp_to_window,
    describe_next,
    is_open,
    next_opening,
)

BERLIN_WEEKDAYS = Window.of("Europe/Berlin", [0, 1, 2, 3, 4], 9, 17)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        # Tue 1 Dec 2026 10:00 Berlin = 09:00 UTC: open, unchanged.
        (utc(2026, 12, 1, 9, 0), utc(2026, 12, 1, 9, 0)),
        # 07:00 Berlin: before opening → 09:00 Berlin the same day.
        (utc(2026, 12, 1, 6, 0), utc(2026, 12, 1, 8, 0)),
        # 17:00 Berlin exactly: the window is half-open → next day 09:00.
        (utc(2026, 12, 1, 16, 0), utc(2026, 12, 2, 8, 0)),
        # Friday 18:00 Berlin → Monday 09:00.
        (utc(2026, 12, 4, 17, 0), utc(2026, 12, 7, 8, 0)),
        # Saturday noon → Monday 09:00.
        (utc(2026, 12, 5, 11, 0), utc(2026, 12, 7, 8, 0)),
    ],
)
def test_it_clamps_into_the_next_opening(t: datetime, expected: datetime) -> None:
    assert clamp_to_window(t, BERLIN_WEEKDAYS) == expected


def test_it_uses_the_campaign_zone_across_daylight_saving() -> None:
    new_york = Window.of("America/New_York", [0, 1, 2, 3, 4, 5, 6], 9, 17)
    # Before the March change 09:00 EST = 14:00 UTC; after it 09:00 EDT = 13:00 UTC.
    assert clamp_to_window(utc(2026, 3, 6, 12, 0), new_york) == utc(2026, 3, 6, 14, 0)
    assert clamp_to_window(utc(2026, 3, 9, 12, 0), new_york) == utc(2026, 3, 9, 13, 0)


def test_a_window_without_days_has_no_opening() -> None:
    never = Window.of("UTC", [], 9, 17)
    assert next_opening(never, utc(2026, 12, 1, 10)) is None
    assert clamp_to_window(utc(2026, 12, 1, 10), never) is None


def test_the_search_looks_eight_days_ahead() -> None:
    sundays = Window.of("UTC", [6], 9, 17)
    # From a Sunday evening the next Sunday is 7 days ahead: found.
    assert next_opening(sundays, utc(2026, 12, 6, 18)) == utc(2026, 12, 13, 9)
    assert LOOKAHEAD_DAYS == 8


def test_invalid_windows_are_refused() -> None:
    with pytest.raises(ValueError):
        Window.of("UTC", [0], 17, 9)
    with pytest.raises(ValueError):
        Window.of("UTC", [7], 9, 17)


def test_the_reason_names_the_next_opening_in_the_campaign_zone() -> None:
    opening = clamp_to_window(utc(2026, 12, 5, 11, 0), BERLIN_WEEKDAYS)
    assert opening is not None
    assert describe_next(BERLIN_WEEKDAYS, opening) == (
        "outside sending window, next 09:00 Europe/Berlin (Mon 7 Dec)"
    )
    assert BERLIN_WEEKDAYS.label() == "Mon Tue Wed Thu Fri 9-17 Europe/Berlin"


ZONES = st.sampled_from(
    ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
)


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(st.integers(0, 23))
    end = draw(st.integers(start + 1, 24))
    days = draw(st.sets(st.integers(0, 6), min_size=1))
    return Window.of(draw(ZONES), sorted(days), start, end)


instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(window=windows(), t=instants, seed=st.integers(0, 2**32))
def test_a_clamp_never_moves_earlier_and_always_lands_inside(
    window: Window, t: datetime, seed: int
) -> None:
    for rng in (None, random.Random(seed)):
        clamped = clamp_to_window(t, window, rng=rng)
        assert clamped is not None
        assert clamped >= t
        assert is_open(window, clamped)
        assert clamped - t <= timedelta(days=LOOKAHEAD_DAYS)


@settings(max_examples=200, deadline=None)
@given(window=windows(), t=instants)
def test_a_time_inside_the_window_is_left_alone(window: Window, t: datetime) -> None:
    if is_open(window, t):
        assert clamp_to_window(t, window) == t
