"""Proxy settings for a LinkedIn account: parsing and the shape Unipile receives at connection.

Auto (Unipile picks an address near the account), a country from the guaranteed list, or a
custom `http|https|socks5://[user:pass@]host:port`. Pure: no database, no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from warmysender.linkedin.models import ProxyMode

# The guaranteed locations (spec §5.18), ISO 3166 alpha-2 → name.
COUNTRIES: dict[str, str] = {
    "US": "United States",
    "CA": "Canada",
    "BR": "Brazil",
    "GB": "United Kingdom",
    "DE": "Germany",
    "FR": "France",
    "CH": "Switzerland",
    "AT": "Austria",
    "NL": "Netherlands",
    "BE": "Belgium",
    "IT": "Italy",
    "ES": "Spain",
    "PT": "Portugal",
    "SE": "Sweden",
    "NO": "Norway",
    "DK": "Denmark",
    "IE": "Ireland",
    "SG": "Singapore",
    "JP": "Japan",
    "IN": "India",
    "AU": "Australia",
    "AE": "United Arab Emirates",
}
PROTOCOLS = ("http", "https", "socks5")
_HOST_RE = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
CUSTOM_MAX = 500


class ProxyError(ValueError):
    def __init__(self, message: str, *, field: str = "proxy") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Proxy:
    mode: str
    country: str = ""
    protocol: str = ""
    host: str = ""
    port: int = 0
    username: str = ""
    password: str = ""

    @property
    def display(self) -> str:
        """For pages and the API: never the password."""
        if self.mode == ProxyMode.AUTO:
            return "Automatic"
        if self.mode == ProxyMode.COUNTRY:
            return f"{COUNTRIES[self.country]} ({self.country})"
        user = f"{self.username}:•••@" if self.username else ""
        return f"{self.protocol}://{user}{self.host}:{self.port}"

    @property
    def url(self) -> str:
        if self.mode != ProxyMode.CUSTOM:
            return ""
        creds = f"{self.username}:{self.password}@" if self.username else ""
        return f"{self.protocol}://{creds}{self.host}:{self.port}"

    def unipile_options(self) -> dict[str, Any]:
        """The fields of Unipile's connect body for this proxy."""
        if self.mode == ProxyMode.COUNTRY:
            return {"country": self.country}
        if self.mode == ProxyMode.CUSTOM:
            proxy: dict[str, Any] = {
                "protocol": self.protocol,
                "host": self.host,
                "port": self.port,
            }
            if self.username:
                proxy["username"] = self.username
                proxy["password"] = self.password
            return {"proxy": proxy}
        return {}


def parse_proxy(mode: Any, value: Any = None) -> Proxy:
    """A Proxy from a mode and its value (a country code or a custom URL), or ProxyError."""
    if mode in (None, ""):
        mode = ProxyMode.AUTO
    if mode not in ProxyMode.values:
        raise ProxyError(
            f"Unknown proxy mode {mode!r}; use auto, country or custom.", field="proxyMode"
        )
    if mode == ProxyMode.AUTO:
        return Proxy(ProxyMode.AUTO)
    if mode == ProxyMode.COUNTRY:
        code = value.strip().upper() if isinstance(value, str) else ""
        if code not in COUNTRIES:
            raise ProxyError(
                f"{value!r} is not one of the proxy countries: {', '.join(COUNTRIES)}.",
                field="proxyCountry",
            )
        return Proxy(ProxyMode.COUNTRY, country=code)
    return _parse_custom(value)


def _parse_custom(value: Any) -> Proxy:
    hint = "Use protocol://[username:password@]host:port with http, https or socks5."
    if not isinstance(value, str) or not value.strip():
        raise ProxyError(f"A custom proxy needs its address. {hint}", field="proxyUrl")
    # Checked before stripping: a trailing line break is a control character too.
    raw = value.strip(" ")
    if len(raw) > CUSTOM_MAX or re.search(r"[\s\x00-\x1f\x7f]", raw):
        raise ProxyError(
            f"The proxy address must be one line of at most {CUSTOM_MAX} characters.",
            field="proxyUrl",
        )
    if "://" not in raw:
        raise ProxyError(f"The proxy address has no protocol. {hint}", field="proxyUrl")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ProxyError(
            f"The proxy port is not a number from 1 to 65535. {hint}", field="proxyUrl"
        ) from exc
    protocol = parts.scheme.lower()
    if protocol not in PROTOCOLS:
        raise ProxyError(
            f"The proxy protocol {parts.scheme!r} is not supported. {hint}", field="proxyUrl"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ProxyError(
            f"The proxy address takes no path or query after host:port. {hint}", field="proxyUrl"
        )
    host = parts.hostname or ""
    if not host or not _HOST_RE.fullmatch(host) or len(host) > 253:
        raise ProxyError(
            f"The proxy host is missing or not a valid host name. {hint}", field="proxyUrl"
        )
    if port is None or not 1 <= port <= 65535:
        raise ProxyError(f"The proxy port is missing or not 1–65535. {hint}", field="proxyUrl")
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    if parts.username is not None and parts.password is None:
        raise ProxyError(
            "The proxy has a username but no password; give both (user:pass@) or neither.",
            field="proxyUrl",
        )
    if password and not username:
        raise ProxyError("The proxy has a password but no username.", field="proxyUrl")
    return Proxy(
        ProxyMode.CUSTOM,
        protocol=protocol,
        host=host.lower(),
        port=port,
        username=username,
        password=password,
    )
