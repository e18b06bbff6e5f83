"""Provider presets: the server settings the provider guide lists."""

from __future__ import annotations

import pytest

from warmysender.mailboxes.presets import (
    PRESETS,
    PROVIDER_CODES,
    default_port,
    get_preset,
    provider_choices,
)


@pytest.mark.parametrize(
    ("code", "smtp", "imap"),
    [
        ("gmail", ("smtp.gmail.com", 587, "starttls"), ("imap.gmail.com", 993, "ssl")),
        (
            "outlook",
            ("smtp.office365.com", 587, "starttls"),
            ("outlook.office365.com", 993, "ssl"),
        ),
        ("yahoo", ("smtp.mail.yahoo.com", 465, "ssl"), ("imap.mail.yahoo.com", 993, "ssl")),
        ("zoho_com", ("smtp.zoho.com", 465, "ssl"), ("imap.zoho.com", 993, "ssl")),
        ("zoho_eu", ("smtp.zoho.eu", 465, "ssl"), ("imap.zoho.eu", 993, "ssl")),
        ("zoho_in", ("smtp.zoho.in", 465, "ssl"), ("imap.zoho.in", 993, "ssl")),
        ("hostinger", ("smtp.hostinger.com", 465, "ssl"), ("imap.hostinger.com", 993, "ssl")),
        ("custom", ("", None, "starttls"), ("", None, "ssl")),
    ],
)
def test_each_provider_has_its_documented_servers(
    code: str, smtp: tuple[str, int | None, str], imap: tuple[str, int | None, str]
) -> None:
    preset = PRESETS[code]
    assert (preset.smtp_host, preset.smtp_port, preset.smtp_security) == smtp
    assert (preset.imap_host, preset.imap_port, preset.imap_security) == imap


def test_every_preset_port_matches_its_security_mode() -> None:
    """465/993 are implicit TLS and 587/143 STARTTLS: never mixed up."""
    for preset in PRESETS.values():
        if preset.smtp_port:
            assert preset.smtp_port == default_port("smtp", preset.smtp_security), preset.code
        if preset.imap_port:
            assert preset.imap_port == default_port("imap", preset.imap_security), preset.code


@pytest.mark.parametrize(
    ("code", "phrase"),
    [
        ("gmail", "App Password"),
        ("outlook", "App Password"),
        ("yahoo", "App Password"),
        ("hostinger", "regular email password"),
        ("zoho_com", "two-factor"),
    ],
)
def test_the_password_advice_follows_the_provider_guide(code: str, phrase: str) -> None:
    assert phrase in PRESETS[code].help_text
    assert PRESETS[code].auth_help


def test_default_ports() -> None:
    assert [default_port("smtp", s) for s in ("ssl", "starttls", "none")] == [465, 587, 25]
    assert [default_port("imap", s) for s in ("ssl", "starttls", "none")] == [993, 143, 143]


def test_provider_codes_and_choices_agree() -> None:
    assert PROVIDER_CODES == (
        "gmail",
        "outlook",
        "yahoo",
        "zoho_com",
        "zoho_eu",
        "zoho_in",
        "hostinger",
        "custom",
        "sandbox",
    )
    assert [code for code, _ in provider_choices()] == list(PROVIDER_CODES)
    assert get_preset("sandbox") is PRESETS["custom"]
    assert get_preset("no-such-provider") is PRESETS["custom"]
