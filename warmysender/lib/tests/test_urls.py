"""reverse_token gives exactly what Django's reverse gives."""

from __future__ import annotations

import uuid

from django.urls import reverse, set_script_prefix

from warmysender.email.tracking import click_token, open_token
from warmysender.email.unsubscribe import SALT
from warmysender.lib.urls import reverse_token


def test_it_matches_reverse_for_every_link_token_and_falls_back_for_others() -> None:
    from django.core import signing

    action = uuid.uuid4()
    tokens = {
        "unsubscribe": signing.Signer(salt=SALT).sign(uuid.uuid4().hex),
        "tracking-open": open_token(action),
        "tracking-click": click_token(action, "https://example.com/a?b=c&d=é"),
    }
    for name, token in tokens.items():
        assert reverse_token(name, token) == reverse(name, args=[token])
    # Characters reverse() would quote go through reverse() itself.
    odd = "a b%cé"
    assert reverse_token("unsubscribe", odd) == reverse("unsubscribe", args=[odd])


def test_it_follows_the_script_prefix() -> None:
    token = open_token(uuid.uuid4())
    try:
        set_script_prefix("/mail/")
        assert reverse_token("tracking-open", token) == reverse("tracking-open", args=[token])
        assert reverse_token("tracking-open", token).startswith("/mail/")
    finally:
        set_script_prefix("/")
