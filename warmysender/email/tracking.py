"""Open and click tracking in outgoing email: signed tokens, link rewriting and the pixel.

A tracking URL carries a token signed with SECRET_KEY (Django's `signing`, its own salt per
kind). The open token signs the action id; the click token signs the action id *and* the target
URL, so a click link cannot be altered to send people elsewhere (no open redirect) nor forged for
another email. Rewriting happens at send time, after rendering and sanitising, on the HTML part
only; the unsubscribe link is added after it and never rewritten. See docs/tracking.md.
"""

from __future__ import annotations

import html as html_lib
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing

from warmysender.lib.urls import reverse_token

OPEN_SALT = "warmysender.tracking.open"
CLICK_SALT = "warmysender.tracking.click"

# nh3 writes every attribute double-quoted, so one pattern finds each link's href.
_HREF = re.compile(r'(<a\b[^>]*?\shref=")([^"]*)(")', re.IGNORECASE)
_TRACKABLE = re.compile(r"^https?://", re.IGNORECASE)


@dataclass(frozen=True)
class ClickTarget:
    action_id: uuid.UUID
    url: str


def open_token(action_id: uuid.UUID) -> str:
    return signing.Signer(salt=OPEN_SALT).sign(action_id.hex)


def click_token(action_id: uuid.UUID, url: str) -> str:
    return signing.dumps([action_id.hex, url], salt=CLICK_SALT, compress=True)


def action_for_open_token(token: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(signing.Signer(salt=OPEN_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def target_for_click_token(token: str) -> ClickTarget | None:
    """The signed action and URL, or None when the token was altered or forged."""
    try:
        value = signing.loads(token, salt=CLICK_SALT)
    except (signing.BadSignature, ValueError, UnicodeDecodeError):
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        return None
    action_hex, url = value
    if not _TRACKABLE.match(url):
        return None
    try:
        return ClickTarget(uuid.UUID(action_hex), url)
    except ValueError:
        return None


def open_url(base: str, action_id: uuid.UUID) -> str:
    return base + reverse_token("tracking-open", open_token(action_id))


def click_url(base: str, action_id: uuid.UUID, url: str) -> str:
    return base + reverse_token("tracking-click", click_token(action_id, url))


def _is_ours(url: str, bases: tuple[str, ...]) -> bool:
    return any(url.startswith(base + "/u/") or url.startswith(base + "/t/") for base in bases)


def instrument_html(
    html: str, *, action_id: uuid.UUID, base: str, track_opens: bool, track_clicks: bool
) -> str:
    """`html` with http(s) links going through the click redirect and the pixel at the end.

    mailto:, tel: and in-page links stay as they are, and so do our own unsubscribe and
    tracking links."""
    if track_clicks:
        bases = (base, settings.SITE_URL)

        def rewrite(match: re.Match[str]) -> str:
            target = html_lib.unescape(match.group(2)).strip()
            if not _TRACKABLE.match(target) or _is_ours(target, bases):
                return match.group(0)
            tracked = html_lib.escape(click_url(base, action_id, target), quote=True)
            return f"{match.group(1)}{tracked}{match.group(3)}"

        html = _HREF.sub(rewrite, html)
    if track_opens:
        pixel = html_lib.escape(open_url(base, action_id), quote=True)
        html += (
            f'<img src="{pixel}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0">'
        )
    return html


# Verified domains per id, for a few seconds: a send run asks once per campaign, not per message.
_DOMAINS: dict[int, tuple[float, str | None]] = {}
DOMAIN_CACHE_SECONDS = 5.0


def base_url(campaign: Any) -> str:
    """Where tracking links of `campaign` point: its verified custom domain, else SITE_URL."""
    domain_id = getattr(campaign, "tracking_domain_id", None)
    if domain_id is None:
        return settings.SITE_URL
    cached = _DOMAINS.get(domain_id)
    if cached is None or time.monotonic() - cached[0] >= DOMAIN_CACHE_SECONDS:
        from warmysender.email.models import TrackingDomain

        row = TrackingDomain.objects.filter(pk=domain_id, verified_at__isnull=False).first()
        cached = (time.monotonic(), row.domain if row else None)
        _DOMAINS[domain_id] = cached
    if cached[1] is None:
        return settings.SITE_URL
    return f"{settings.TRACKING_DOMAIN_SCHEME}://{cached[1]}"


def instrument(html: str, *, action: Any, campaign: Any, base: str | None = None) -> str:
    """What the sender calls for each email: tracking as the campaign's settings ask. `base`
    (the campaign's `base_url`, read beforehand) keeps this free of database reads."""
    if not (campaign.track_opens or campaign.track_clicks):
        return html
    return instrument_html(
        html,
        action_id=action.pk,
        base=base if base is not None else base_url(campaign),
        track_opens=campaign.track_opens,
        track_clicks=campaign.track_clicks,
    )
