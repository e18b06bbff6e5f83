"""Proxy parsing: clear errors for bad input, and what Unipile receives."""

from __future__ import annotations

import pytest

from warmysender.linkedin.proxies import ProxyError, parse_proxy


def test_auto_is_the_default() -> None:
    proxy = parse_proxy(None)
    assert (proxy.mode, proxy.display, proxy.unipile_options()) == ("auto", "Automatic", {})


def test_a_country_from_the_list() -> None:
    proxy = parse_proxy("country", " de ")
    assert proxy.display == "Germany (DE)"
    assert proxy.unipile_options() == {"country": "DE"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "socks5://bob:s3cr%40t@proxy.example.com:1080",
            {
                "protocol": "socks5",
                "host": "proxy.example.com",
                "port": 1080,
                "username": "bob",
                "password": "s3cr@t",
            },
        ),
        ("http://10.0.0.5:3128", {"protocol": "http", "host": "10.0.0.5", "port": 3128}),
        (
            "HTTPS://Proxy.Example.com:443/",
            {"protocol": "https", "host": "proxy.example.com", "port": 443},
        ),
    ],
)
def test_custom_proxies(url: str, expected: dict[str, object]) -> None:
    proxy = parse_proxy("custom", url)
    assert proxy.unipile_options() == {"proxy": expected}
    assert "s3cr" not in proxy.display


@pytest.mark.parametrize(
    ("mode", "value", "message"),
    [
        ("vpn", None, "Unknown proxy mode"),
        ("country", "XX", "not one of the proxy countries"),
        ("country", None, "not one of the proxy countries"),
        ("custom", "", "needs its address"),
        ("custom", "proxy.example.com:8080", "no protocol"),
        ("custom", "ftp://proxy.example.com:21", "protocol 'ftp' is not supported"),
        ("custom", "http://proxy.example.com", "port is missing"),
        ("custom", "http://proxy.example.com:99999", "port"),
        ("custom", "http://proxy.example.com:abc", "port"),
        ("custom", "http://bob@proxy.example.com:8080", "username but no password"),
        ("custom", "http://proxy.example.com:8080/path", "no path"),
        ("custom", "http://bad_host!:8080", "not a valid host"),
        ("custom", "http://proxy.example.com:8080\n", "one line"),
        ("custom", 42, "needs its address"),
    ],
)
def test_bad_proxies_are_refused_with_a_clear_message(
    mode: str, value: object, message: str
) -> None:
    with pytest.raises(ProxyError, match=message):
        parse_proxy(mode, value)
