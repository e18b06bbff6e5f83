"""`reverse` for the links put in every email, without resolving the URL pattern each time.

A send run writes an unsubscribe link and tracking links into each message; Django's `reverse`
walks the URL patterns for every one of them, which costs more than signing the token. The
pattern of a named route with one token argument is resolved once (per URLconf and script
prefix) into the text around the token.
"""

from __future__ import annotations

import re
from functools import lru_cache

from django.urls import get_script_prefix, get_urlconf, reverse

_MARKER = "TOKEN0MARKER"
# What `reverse` leaves as it is in a path (unreserved characters and ':'), so that pasting the
# token between the two halves gives what `reverse` would.
_VERBATIM = re.compile(r"[A-Za-z0-9._~:-]+")


@lru_cache(maxsize=64)
def _around(name: str, urlconf: object, prefix: str) -> tuple[str, str]:
    head, _, tail = reverse(name, args=[_MARKER]).partition(_MARKER)
    return head, tail


def reverse_token(name: str, token: str) -> str:
    """`reverse(name, args=[token])` for a route whose only argument is a token."""
    if not _VERBATIM.fullmatch(token):
        return reverse(name, args=[token])
    head, tail = _around(name, get_urlconf(), get_script_prefix())
    return head + token + tail
