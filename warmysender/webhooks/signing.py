"""Webhook secrets and the `X-Warmy-Signature` header.

The signature is Stripe-style, `t=<unix_ms>,v1=<hex>`, where `hex` is the lowercase HMAC-SHA256
of `"<t>.<raw body>"` keyed by the whole secret string (`whsec_…`, prefix included), exactly as the
receivers' verification recipe in docs/webhooks.md computes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp_ms: int, body: bytes) -> str:
    signed = f"{timestamp_ms}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp_ms},v1={digest}"
