"""Recognising security scanners and link prefetchers among tracking hits. Pure: everything the
decision needs is passed in, so it is tested without a database or a clock.

Mail security gateways open every image and follow every link of incoming mail to check them
before (or while) the person reads it. Counted as opens and clicks, they would turn a campaign's
numbers into noise, so a hit is a scanner's when any of these holds:

- its user agent names a scanner or a link-preview robot (`SCANNER_AGENTS`);
- it comes from a network a mail-security vendor publishes (`DEFAULT_SCANNER_NETWORKS`, plus
  `TRACKING_EXTRA_SCANNER_NETWORKS`);
- it arrives within `TRACKING_SCANNER_SECONDS` of the delivery (no person reads that fast; image
  proxies such as Gmail's `GoogleImageProxy` prefetch then too);
- it is a click on a different link of the same email less than a second after another click
  (people click one link; scanners follow all of them at once).

Gmail's and Yahoo's image proxies also fetch the pixel when a person opens the email, so those
user agents are real opens unless the timing rule says prefetch.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Case-insensitive substrings of the User-Agent header.
SCANNER_AGENTS: tuple[tuple[str, str], ...] = (
    ("safelinks", "microsoft safe links"),
    ("microsoft office", "microsoft office link check"),
    ("ms-office", "microsoft office link check"),
    ("microsoft-atp", "microsoft defender for office 365"),
    ("bingpreview", "microsoft link preview"),
    ("mimecast", "mimecast"),
    ("proofpoint", "proofpoint"),
    ("ppops", "proofpoint"),
    ("barracuda", "barracuda"),
    ("messagelabs", "symantec messagelabs"),
    ("symantec", "symantec"),
    ("ironport", "cisco ironport"),
    ("trend micro", "trend micro"),
    ("forcepoint", "forcepoint"),
    ("sophos", "sophos"),
    ("fireeye", "fireeye"),
    ("cloudmark", "cloudmark"),
    ("headlesschrome", "headless browser"),
    ("phantomjs", "headless browser"),
    ("python-requests", "script"),
    ("python-urllib", "script"),
    ("go-http-client", "script"),
    ("curl/", "script"),
    ("wget/", "script"),
    ("okhttp", "script"),
    ("slackbot", "link preview robot"),
    ("linkedinbot", "link preview robot"),
    ("facebookexternalhit", "link preview robot"),
    ("twitterbot", "link preview robot"),
    ("discordbot", "link preview robot"),
    ("whatsapp", "link preview robot"),
    ("telegrambot", "link preview robot"),
    ("googlebot", "crawler"),
    ("bot/", "crawler"),
    ("crawler", "crawler"),
    ("spider", "crawler"),
)

# Proxies that fetch images on a person's behalf: real opens unless within the prefetch window.
IMAGE_PROXY_AGENTS: tuple[tuple[str, str], ...] = (
    ("googleimageproxy", "gmail image proxy prefetch"),
    ("yahoomailproxy", "yahoo image proxy prefetch"),
)

# Networks of mail-security vendors, from their own published lists (docs/tracking.md names the
# pages). Operators add more with TRACKING_EXTRA_SCANNER_NETWORKS.
DEFAULT_SCANNER_NETWORKS: tuple[tuple[str, str], ...] = (
    # Microsoft 365 / Exchange Online Protection (Microsoft 365 URLs and IP address ranges, mail).
    ("40.92.0.0/15", "microsoft exchange online protection"),
    ("40.107.0.0/16", "microsoft exchange online protection"),
    ("52.100.0.0/14", "microsoft exchange online protection"),
    ("104.47.0.0/17", "microsoft exchange online protection"),
    # Proofpoint (Proofpoint support: networks to allow for updates and services).
    ("62.209.50.0/24", "proofpoint"),
    ("91.209.104.0/24", "proofpoint"),
    ("208.36.134.0/24", "proofpoint"),
    ("208.84.64.0/22", "proofpoint"),
    ("208.86.200.0/22", "proofpoint"),
    ("209.66.100.64/26", "proofpoint"),
    ("67.231.144.0/20", "proofpoint"),
    # Mimecast (Mimecast Data Centers and URLs: US and UK grids).
    ("205.139.110.0/24", "mimecast"),
    ("216.205.24.0/24", "mimecast"),
    ("207.211.30.0/24", "mimecast"),
    ("195.130.217.0/24", "mimecast"),
    ("91.220.42.0/24", "mimecast"),
    ("146.101.78.0/24", "mimecast"),
    # Barracuda Email Security Service (Barracuda Campus: service IP ranges, US).
    ("64.235.144.0/20", "barracuda"),
    ("209.222.80.0/21", "barracuda"),
)

DEFAULT_PREFETCH_SECONDS = 30
MULTI_CLICK_WINDOW = timedelta(seconds=1)


@dataclass(frozen=True)
class Verdict:
    is_scanner: bool
    reason: str = ""


HUMAN = Verdict(False)


def parse_networks(spec: str) -> list[tuple[Network, str]]:
    """`"1.2.3.0/24, 2001:db8::/32"` as networks. Raises ValueError naming the bad entry."""
    networks: list[tuple[Network, str]] = []
    for raw in re.split(r"[,\s]+", spec.strip()):
        if not raw:
            continue
        try:
            networks.append((ipaddress.ip_network(raw, strict=False), "listed network"))
        except ValueError:
            raise ValueError(f"{raw!r} is not an IP network such as 192.0.2.0/24") from None
    return networks


def default_networks() -> list[tuple[Network, str]]:
    return [(ipaddress.ip_network(cidr), vendor) for cidr, vendor in DEFAULT_SCANNER_NETWORKS]


def _agent_match(user_agent: str, table: Iterable[tuple[str, str]]) -> str:
    lowered = user_agent.lower()
    for needle, reason in table:
        if needle in lowered:
            return reason
    return ""


def _network_match(ip: str | None, networks: Sequence[tuple[Network, str]]) -> str:
    if not ip:
        return ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    for network, vendor in networks:
        if address.version == network.version and address in network:
            return f"{vendor} address range"
    return ""


def classify(
    *,
    kind: str,
    user_agent: str,
    ip: str | None,
    at: datetime,
    delivered_at: datetime | None,
    networks: Sequence[tuple[Network, str]],
    prefetch_seconds: int = DEFAULT_PREFETCH_SECONDS,
    url: str = "",
    other_clicks: Sequence[tuple[datetime, str]] = (),
) -> Verdict:
    """Is this hit a scanner's, and why. `other_clicks` are (at, url) of earlier clicks on the
    same email (only those of the last second matter)."""
    if not user_agent.strip():
        return Verdict(True, "no user agent")
    reason = _agent_match(user_agent, SCANNER_AGENTS)
    if reason:
        return Verdict(True, f"user agent: {reason}")
    reason = _network_match(ip, networks)
    if reason:
        return Verdict(True, reason)
    if delivered_at is not None and at - delivered_at < timedelta(seconds=prefetch_seconds):
        proxy = _agent_match(user_agent, IMAGE_PROXY_AGENTS)
        return Verdict(True, proxy or f"within {prefetch_seconds} s of delivery")
    if kind == "click":
        for clicked_at, other_url in other_clicks:
            if other_url != url and abs(at - clicked_at) < MULTI_CLICK_WINDOW:
                return Verdict(True, "several links clicked within a second")
    return HUMAN
