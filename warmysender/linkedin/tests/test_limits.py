"""Caps, ramps and the reservation decision (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmysender.linkedin import limits
from warmysender.linkedin.limits import Denied, Granted

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("account_type", "caps"),
    [
        ("free", (150, 100, 0, 30, 30)),
        ("premium", (200, 150, 15, 50, 40)),
        ("sales_navigator", (200, 150, 50, 60, 50)),
        ("recruiter", (200, 150, 100, 60, 50)),
        ("unknown", (200, 150, 15, 50, 40)),  # unknown counts as Premium, never Free
    ],
)
def test_fully_ramped_caps_follow_the_type_table(account_type: str, caps: tuple[int, ...]) -> None:
    # A veteran ramp is complete after two weeks; its ramp numbers are at or above the table.
    later = T0 + timedelta(weeks=10)
    got = tuple(limits.effective_cap(account_type, "veteran", T0, k, later) for k in limits.KINDS)
    expected = tuple(
        min(c, limits.RAMPS["veteran"][k].full) for c, k in zip(caps, limits.KINDS, strict=True)
    )
    assert got == expected


@pytest.mark.parametrize(
    ("strategy", "kind", "week", "expected"),
    [
        ("new_account", "engagement", 1, 5),
        ("new_account", "engagement", 6, 30),
        ("new_account", "profile_view", 1, 10),
        ("established", "engagement", 1, 15),
        ("established", "engagement", 4, 40),
        ("veteran", "engagement", 1, 25),
        ("veteran", "engagement", 2, 50),
        ("recovery", "engagement", 1, 2),
        ("recovery", "engagement", 8, 15),
        ("recovery", "profile_view", 8, 30),
        ("new_account", "inmail", 1, 25),
        ("new_account", "inmail", 2, 40),
    ],
)
def test_ramps_match_the_documented_examples(
    strategy: str, kind: str, week: int, expected: int
) -> None:
    assert limits.RAMPS[strategy][kind].at(week) == expected


@pytest.mark.parametrize(
    ("strategy", "weeks"),
    [("new_account", 6), ("established", 4), ("veteran", 2), ("recovery", 8)],
)
def test_ramp_lengths_and_week_n_of_m(strategy: str, weeks: int) -> None:
    assert limits.ramp_progress(strategy, T0, T0) == (1, weeks)
    assert limits.ramp_progress(strategy, T0, T0 + timedelta(days=6, hours=23)) == (1, weeks)
    assert limits.ramp_progress(strategy, T0, T0 + timedelta(days=7)) == (2, weeks)
    assert limits.ramp_progress(strategy, T0, T0 + timedelta(weeks=50)) == (weeks, weeks)


def test_recovery_runs_at_half_the_new_account_speed() -> None:
    for kind in ("invite", "message", "profile_view"):
        assert limits.RAMPS["recovery"][kind].full <= limits.RAMPS["new_account"][kind].full // 2


def test_sales_navigator_new_account_inmails_ramp_25_then_40() -> None:
    assert limits.effective_cap("sales_navigator", "new_account", T0, "inmail", T0) == 25
    week2 = T0 + timedelta(weeks=1)
    assert limits.effective_cap("sales_navigator", "new_account", T0, "inmail", week2) == 40
    assert limits.effective_cap("premium", "new_account", T0, "inmail", week2) == 15


@pytest.mark.parametrize(
    ("account_type", "kind", "value", "ok"),
    [
        ("recruiter", "inmail", 50, True),
        ("recruiter", "inmail", 51, False),  # InMails never above 50 with an override
        ("premium", "inmail", 16, False),
        ("free", "invite", 150, True),
        ("free", "invite", 151, False),
        ("premium", "message", -1, False),
        ("premium", "message", "10", False),
        ("premium", "message", True, False),
        ("premium", "likes", 3, False),
    ],
)
def test_overrides_never_pass_the_published_ceiling(
    account_type: str, kind: str, value: object, ok: bool
) -> None:
    if ok:
        assert limits.validate_overrides(account_type, {kind: value}) == {kind: value}
    else:
        with pytest.raises(ValueError):
            limits.validate_overrides(account_type, {kind: value})


@given(
    account_type=st.sampled_from(["free", "premium", "sales_navigator", "recruiter", "unknown"]),
    strategy=st.sampled_from(list(limits.RAMPS)),
    kind=st.sampled_from(limits.KINDS),
    days=st.integers(min_value=-30, max_value=1000),
    override=st.one_of(st.none(), st.integers(min_value=-5, max_value=10_000)),
)
def test_effective_cap_never_passes_the_type_table_or_the_inmail_ceiling(
    account_type: str, strategy: str, kind: str, days: int, override: int | None
) -> None:
    overrides = {kind: override} if override is not None else None
    cap = limits.effective_cap(
        account_type, strategy, T0, kind, T0 + timedelta(days=days), overrides
    )
    assert 0 <= cap <= limits.TYPE_CAPS[limits.effective_type(account_type)][kind]
    if kind == "inmail" and overrides:
        assert cap <= 50


@given(
    strategy=st.sampled_from(list(limits.RAMPS)),
    kind=st.sampled_from(limits.KINDS),
    week=st.integers(min_value=1, max_value=60),
)
def test_ramps_never_go_down_week_over_week(strategy: str, kind: str, week: int) -> None:
    step = limits.RAMPS[strategy][kind]
    assert step.start <= step.at(week) <= step.at(week + 1) <= step.full


def test_daily_windows_reset_at_midnight_utc_and_invites_roll_over_seven_days() -> None:
    late = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)
    assert limits.window_start("message", late) == datetime(2026, 11, 23, tzinfo=UTC)
    assert limits.next_daily_reset(late) == datetime(2026, 11, 24, tzinfo=UTC)
    assert limits.window_start("invite", late) == late - timedelta(days=7)


def _decide(**kw: object) -> limits.Decision:
    args: dict[str, object] = {
        "kind": "message",
        "cap": 3,
        "used_in_window": [],
        "recent_actions": [],
        "connected": True,
        "cooldown_until": None,
        "now": T0,
    }
    args.update(kw)
    return limits.decide(**args)  # type: ignore[arg-type]


def test_decide_grants_within_the_cap() -> None:
    assert _decide(used_in_window=[T0 - timedelta(hours=1)]) == Granted("message", 2, 3)


def test_decide_denies_a_full_daily_cap_until_midnight() -> None:
    got = _decide(used_in_window=[T0 - timedelta(hours=h) for h in (1, 2, 3)])
    assert got == Denied("daily messages cap reached (3/3)", datetime(2026, 11, 24, tzinfo=UTC))


def test_decide_denies_a_full_rolling_week_until_the_oldest_invite_leaves() -> None:
    used = [T0 - timedelta(days=6), T0 - timedelta(days=2), T0 - timedelta(days=1)]
    got = _decide(kind="invite", used_in_window=used)
    assert isinstance(got, Denied)
    assert got.retry_at == T0 + timedelta(days=1)


def test_decide_allows_two_actions_a_minute() -> None:
    recent = [T0 - timedelta(seconds=50), T0 - timedelta(seconds=10)]
    got = _decide(recent_actions=recent)
    assert got == Denied(
        "at most 2 LinkedIn actions a minute per account", T0 + timedelta(seconds=10)
    )
    assert isinstance(_decide(recent_actions=recent[1:]), Granted)


def test_decide_waits_for_cooldown_and_connection() -> None:
    until = T0 + timedelta(hours=5)
    got = _decide(cooldown_until=until)
    assert isinstance(got, Denied) and got.retry_at == until and "cannot_resend_yet" in got.reason
    assert _decide(connected=False) == Denied("account not connected", None)
    assert isinstance(_decide(cooldown_until=T0), Granted)


@given(seed=st.integers(), existing_hours=st.one_of(st.none(), st.floats(-10, 20)))
def test_cooldown_is_four_to_eight_hours_and_never_shortened(
    seed: int, existing_hours: float | None
) -> None:
    existing = None if existing_hours is None else T0 + timedelta(hours=existing_hours)
    got = limits.cooldown_after_cannot_resend(existing, T0, random.Random(seed))
    assert got >= T0 + timedelta(hours=4)
    if existing is not None:
        assert got >= existing
        assert got == existing or got <= T0 + timedelta(hours=8)
    else:
        assert got <= T0 + timedelta(hours=8)


@given(
    cap=st.integers(min_value=0, max_value=20),
    offsets=st.lists(st.integers(min_value=0, max_value=7 * 24 * 60 - 1), max_size=30),
)
def test_a_granted_reservation_never_makes_the_count_exceed_the_cap(
    cap: int, offsets: list[int]
) -> None:
    used = [T0 - timedelta(minutes=m) for m in offsets]
    got = _decide(kind="invite", cap=cap, used_in_window=used)
    if isinstance(got, Granted):
        assert len(used) + 1 <= cap
    else:
        assert len(used) >= cap
        if got.retry_at is not None:
            # At retry_at, at least one counted invite has left the rolling window.
            still = [t for t in used if t > got.retry_at - limits.INVITE_WINDOW]
            assert len(still) < cap
