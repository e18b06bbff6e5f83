"""The pure parts of tracking: scanner recognition, tokens, link rewriting, and rates that never
pass 100 %."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmysender.email import scanners, tracking
from warmysender.email.stats import Counts, rate

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DELIVERED = NOW - timedelta(hours=1)
CHROME = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 Chrome/131 Safari/537.36"
NETWORKS = scanners.default_networks()


def verdict(**overrides: object) -> scanners.Verdict:
    args: dict[str, object] = {
        "kind": "open",
        "user_agent": CHROME,
        "ip": "198.51.100.7",
        "at": NOW,
        "delivered_at": DELIVERED,
        "networks": NETWORKS,
    }
    args.update(overrides)
    return scanners.classify(**args)  # type: ignore[arg-type]


def test_a_person_in_a_browser_is_not_a_scanner() -> None:
    assert verdict() == scanners.HUMAN


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ("Mozilla/5.0 (compatible; Mimecast Security Scanner)", "mimecast"),
        ("Proofpoint URL Defense", "proofpoint"),
        ("Barracuda Sentinel (EE)", "barracuda"),
        (
            "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0; Pro)",
            "microsoft office link check",
        ),
        ("Mozilla/5.0 BingPreview/1.0b", "microsoft link preview"),
        ("python-requests/2.32", "script"),
        ("Slackbot-LinkExpanding 1.0", "link preview robot"),
        ("Mozilla/5.0 HeadlessChrome/120", "headless browser"),
    ],
)
def test_scanner_user_agents_are_recognised(agent: str, reason: str) -> None:
    assert verdict(user_agent=agent) == scanners.Verdict(True, f"user agent: {reason}")


def test_no_user_agent_is_a_robot() -> None:
    assert verdict(user_agent="  ").reason == "no user agent"


@pytest.mark.parametrize(
    ("ip", "vendor"),
    [
        ("40.92.1.1", "microsoft exchange online protection"),
        ("52.101.3.4", "microsoft exchange online protection"),
        ("67.231.150.9", "proofpoint"),
        ("205.139.110.77", "mimecast"),
        ("209.222.82.1", "barracuda"),
    ],
)
def test_vendor_address_ranges_are_scanners(ip: str, vendor: str) -> None:
    assert verdict(ip=ip) == scanners.Verdict(True, f"{vendor} address range")


def test_extra_networks_are_parsed_and_used_and_bad_ones_named() -> None:
    extra = scanners.parse_networks("192.0.2.0/24, 2001:db8::/32")
    assert verdict(ip="2001:db8::1", networks=extra).is_scanner
    assert verdict(ip="192.0.2.200", networks=extra).reason == "listed network address range"
    assert not verdict(ip="198.51.100.1", networks=extra).is_scanner
    assert not verdict(ip="not an ip", networks=extra).is_scanner
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33' is not an IP network")):
        scanners.parse_networks("192.0.2.0/24,10.0.0.0/33")


def test_hits_right_after_delivery_are_prefetches() -> None:
    assert verdict(at=DELIVERED + timedelta(seconds=5)).reason == "within 30 s of delivery"
    assert not verdict(at=DELIVERED + timedelta(seconds=31)).is_scanner
    assert not verdict(at=DELIVERED + timedelta(seconds=5), prefetch_seconds=0).is_scanner
    # Gmail's proxy fetching at delivery is a prefetch; later it is a person opening.
    gmail = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    assert verdict(user_agent=gmail, at=DELIVERED + timedelta(seconds=2)).reason == (
        "gmail image proxy prefetch"
    )
    assert not verdict(user_agent=gmail).is_scanner


def test_several_links_within_a_second_are_a_scanner_but_one_link_twice_is_not() -> None:
    earlier = [(NOW - timedelta(milliseconds=400), "https://a.example/")]
    assert verdict(kind="click", url="https://b.example/", other_clicks=earlier).reason == (
        "several links clicked within a second"
    )
    assert not verdict(kind="click", url="https://a.example/", other_clicks=earlier).is_scanner
    late = [(NOW - timedelta(seconds=2), "https://a.example/")]
    assert not verdict(kind="click", url="https://b.example/", other_clicks=late).is_scanner


# --- tokens and rewriting -----------------------------------------------------------------------


def test_tokens_round_trip_and_refuse_tampering() -> None:
    action = uuid.uuid4()
    assert tracking.action_for_open_token(tracking.open_token(action)) == action
    token = tracking.click_token(action, "https://example.com/x?y=1")
    assert tracking.target_for_click_token(token) == tracking.ClickTarget(
        action, "https://example.com/x?y=1"
    )
    assert tracking.target_for_click_token(token + "x") is None
    assert tracking.action_for_open_token(token) is None
    assert tracking.target_for_click_token(tracking.open_token(action)) is None


@given(st.text(min_size=1, max_size=80))
def test_any_altered_click_token_is_refused(noise: str) -> None:
    token = tracking.click_token(uuid.UUID(int=7), "https://example.com/")
    altered = token[: len(token) // 2] + noise + token[len(token) // 2 :]
    if altered != token:
        assert tracking.target_for_click_token(altered) in (
            None,
            tracking.ClickTarget(uuid.UUID(int=7), "https://example.com/"),
        )
        # Whatever survives unsigning can only ever be the original target.


def test_rewriting_touches_only_http_links_and_escapes_them() -> None:
    action = uuid.UUID(int=1)
    html = (
        '<p><a href="https://example.com/?a=1&amp;b=2" target="_blank">x</a> '
        '<a href="mailto:a@b.c">m</a> <a href="#top">t</a> '
        '<a href="http://127.0.0.1:8000/u/abc/">u</a></p>'
    )
    out = tracking.instrument_html(
        html, action_id=action, base="https://t.example", track_opens=True, track_clicks=True
    )
    assert 'href="mailto:a@b.c"' in out and 'href="#top"' in out
    assert "/u/abc/" in out
    assert out.count("https://t.example/t/c/") == 1
    assert out.endswith('style="display:block;width:1px;height:1px;border:0">')
    token = out.split("https://t.example/t/c/")[1].split("/")[0]
    target = tracking.target_for_click_token(token)
    assert target is not None and target.url == "https://example.com/?a=1&b=2"


def test_nothing_changes_when_tracking_is_off() -> None:
    html = '<a href="https://example.com/">x</a>'
    assert (
        tracking.instrument_html(
            html, action_id=uuid.uuid4(), base="https://t", track_opens=False, track_clicks=False
        )
        == html
    )


# --- rates --------------------------------------------------------------------------------------


@given(st.integers(min_value=-5, max_value=10**7), st.integers(min_value=-5, max_value=10**7))
def test_a_rate_is_always_between_0_and_100(count: int, sent: int) -> None:
    assert 0.0 <= rate(count, sent) <= 100.0


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
)
def test_displayed_rates_never_pass_100_percent(sent: int, opens: int, clicks: int) -> None:
    counts = Counts(sent=sent, opens=opens, clicks=clicks, replies=opens, bounces=clicks)
    for value in (counts.open_rate, counts.click_rate, counts.reply_rate, counts.bounce_rate):
        assert 0.0 <= value <= 100.0
    if sent and opens <= sent:
        assert counts.open_rate == round(100 * opens / sent, 1)
