"""One HTTP attempt of a webhook delivery, behind the SSRF guard.

Before every connection — the first and after each redirect — the host is resolved and every
address it resolves to is checked: private, loopback, link-local, multicast, reserved and other
non-global addresses are refused (loopback is allowed only with `WEBHOOKS_ALLOW_LOOPBACK=on`, for
local development and tests). The request then goes to the address that was checked, not to the
name again, so a DNS answer that changes between the check and the connection (DNS rebinding)
cannot steer it elsewhere: the URL carries the IP, `Host` carries the name, and for https the
TLS handshake sends the name as SNI and verifies the certificate against it.

Redirects are followed by hand, at most three, re-posting the same signed body (a 301/302/303 is
not turned into a GET: a webhook is a POST or nothing). No proxy from the environment is used.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

TIMEOUT_SECONDS = 5.0
MAX_REDIRECTS = 3
EXCERPT_CHARS = 1000
_READ_LIMIT = 64 * 1024
USER_AGENT = "WarmySender-Webhooks/1.0"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeDestination(Exception):
    """A URL the guard refuses to call, with the reason in words."""


@dataclass
class AttemptResult:
    status_code: int | None
    excerpt: str
    duration_ms: int
    error: str
    retry_after: str | None
    url: str

    @property
    def succeeded(self) -> bool:
        return not self.error and self.status_code is not None and 200 <= self.status_code < 300


def address_problem(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why this address may not be called, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "not a public address"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


def check_url_syntax(url: str, *, allow_loopback: bool) -> str | None:
    """What is wrong with an endpoint URL as written (no DNS lookup), or None.

    Used when an endpoint is saved; the full check (DNS included) runs at every delivery.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    host = parts.hostname
    if not host:
        return "has no host name"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if port == 0:
        return "has an invalid port"
    if any(c.isspace() for c in url):
        return "must not contain spaces"
    if host == "localhost" or host.endswith(".localhost"):
        return None if allow_loopback else "points to this machine (localhost)"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    problem = address_problem(ip, allow_loopback=allow_loopback)
    return f"points to {problem} ({ip})" if problem else None


def resolve_safe(host: str, port: int, *, allow_loopback: bool) -> IPAddress:
    """The address to connect to for `host`, after checking every address it resolves to."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise UnsafeDestination(f"could not resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise UnsafeDestination(f"{host} resolves to no address")
    for ip in addresses:
        problem = address_problem(ip, allow_loopback=allow_loopback)
        if problem:
            raise UnsafeDestination(f"refused: {host} resolves to {problem} ({ip})")
    return addresses[0]


def _pinned(url: str, ip: IPAddress) -> tuple[str, str, str]:
    """(URL with the IP as host, Host header, host name for SNI)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    ip_text = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    netloc = f"{ip_text}:{port}"
    host_header = host if port == default_port else f"{host}:{port}"
    if ":" in host:
        host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, host


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow_loopback: bool,
    timeout: float = TIMEOUT_SECONDS,
    verify: ssl.SSLContext | bool = True,
) -> AttemptResult:
    """POST `body` to `url`: success is a 2xx within `timeout` seconds, redirects included."""
    started = time.monotonic()
    current = url

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    def failed(error: str, status: int | None = None, excerpt: str = "") -> AttemptResult:
        return AttemptResult(status, excerpt, elapsed_ms(), error, None, current)

    with httpx.Client(trust_env=False, follow_redirects=False, verify=verify) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            remaining = timeout - (time.monotonic() - started)
            if remaining <= 0:
                return failed(f"timed out after {timeout:g} s")
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return failed(f"refused: redirect to {current!r}, which is not an http(s) URL")
            try:
                ip = resolve_safe(
                    parts.hostname,
                    parts.port or (443 if parts.scheme == "https" else 80),
                    allow_loopback=allow_loopback,
                )
            except UnsafeDestination as exc:
                return failed(str(exc))
            target, host_header, sni = _pinned(current, ip)
            request = client.build_request(
                "POST",
                target,
                content=body,
                headers={
                    **headers,
                    "Host": host_header,
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                },
                timeout=httpx.Timeout(remaining),
                extensions={"sni_hostname": sni} if parts.scheme == "https" else {},
            )
            try:
                response = client.send(request, stream=True)
                try:
                    raw = b""
                    for chunk in response.iter_bytes():
                        raw += chunk
                        if len(raw) >= _READ_LIMIT or time.monotonic() - started > timeout:
                            break
                finally:
                    response.close()
            except httpx.TimeoutException:
                return failed(f"timed out after {timeout:g} s")
            except httpx.HTTPError as exc:
                return failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            excerpt = raw[:_READ_LIMIT].decode("utf-8", "replace")[:EXCERPT_CHARS]
            if time.monotonic() - started > timeout:
                return failed(f"timed out after {timeout:g} s", response.status_code, excerpt)
            location = response.headers.get("location")
            if 300 <= response.status_code < 400 and location:
                current = urljoin(current, location)
                continue
            error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
            return AttemptResult(
                response.status_code,
                excerpt,
                elapsed_ms(),
                error,
                response.headers.get("retry-after"),
                current,
            )
    return failed(f"more than {MAX_REDIRECTS} redirects")
