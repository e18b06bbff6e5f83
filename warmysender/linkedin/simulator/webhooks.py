"""Webhook delivery as Unipile does it: POSTed JSON to each registered `request_url` whose source
matches, with only the custom headers the registration asked for (no `Content-Type` unless one of
them is; no signature), a 30-second timeout and up to 5 retries at increasing delays. One
background thread delivers in order; `deliveries` keeps every attempt for tests to read."""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)

SOURCES = ("messaging", "users", "account_status", "email", "email_tracking", "calendar_event")
DEFAULT_RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0, 1800.0)


@dataclass
class Registration:
    id: str
    request_url: str
    source: str
    name: str = ""
    headers: list[dict[str, str]] = field(default_factory=list)
    account_ids: list[str] | None = None  # None: every current and future account
    enabled: bool = True
    format: str = "json"

    def as_json(self) -> dict[str, Any]:
        return {
            "object": "Webhook",
            "id": self.id,
            "request_url": self.request_url,
            "source": self.source,
            "name": self.name,
            "format": self.format,
            "enabled": self.enabled,
            "account_ids": self.account_ids,
            "headers": self.headers,
        }


@dataclass
class Delivery:
    id: str  # the same for every attempt (and duplicate) of one event
    url: str
    source: str
    payload: dict[str, Any]
    headers: dict[str, str]
    attempts: int = 0
    status_code: int | None = None
    error: str | None = None
    delivered: bool = False
    copies: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "source": self.source,
            "payload": self.payload,
            "attempts": self.attempts,
            "status_code": self.status_code,
            "error": self.error,
            "delivered": self.delivered,
        }


class Dispatcher:
    def __init__(
        self,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = 30.0,
    ) -> None:
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.duplicate = False  # deliver every event twice (redelivery drills)
        self.registrations: list[Registration] = []
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Delivery, int] | None] = queue.Queue()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._generation = 0

    # -- registrations ----------------------------------------------------------------------

    def register(self, body: dict[str, Any]) -> Registration:
        from warmysender.linkedin.simulator.errors import ApiError

        url = str(body.get("request_url") or "").strip()
        if not url.startswith(("http://", "https://")):
            raise ApiError("invalid_url", "request_url must be an http(s) URL")
        source = body.get("source")
        if source not in SOURCES:
            raise ApiError("invalid_parameters", f"source must be one of {', '.join(SOURCES)}")
        headers = body.get("headers") or []
        if not isinstance(headers, list) or not all(
            isinstance(h, dict)
            and isinstance(h.get("key"), str)
            and isinstance(h.get("value"), str)
            for h in headers
        ):
            raise ApiError("invalid_parameters", "headers must be a list of {key, value}")
        account_ids = body.get("account_ids")
        registration = Registration(
            id=secrets.token_urlsafe(12),
            request_url=url,
            source=str(source),
            name=str(body.get("name") or ""),
            headers=[{"key": h["key"], "value": h["value"]} for h in headers],
            account_ids=list(account_ids) if account_ids else None,
            enabled=bool(body.get("enabled", True)),
            format=str(body.get("format") or "json"),
        )
        with self._lock:
            self.registrations.append(registration)
        return registration

    def unregister(self, webhook_id: str) -> bool:
        with self._lock:
            before = len(self.registrations)
            self.registrations = [r for r in self.registrations if r.id != webhook_id]
            return len(self.registrations) < before

    def clear(self) -> None:
        """Forget registrations and deliveries; queued attempts of the old world are dropped."""
        with self._lock:
            self.registrations = []
            self.deliveries = []
            self._generation += 1

    # -- sending ----------------------------------------------------------------------------

    def emit(self, source: str, payload: dict[str, Any], *, account_id: str | None) -> None:
        with self._lock:
            targets = [
                r
                for r in self.registrations
                if r.enabled
                and r.source == source
                and (r.account_ids is None or account_id in r.account_ids)
            ]
        for r in targets:
            self._enqueue(r.request_url, source, payload, {h["key"]: h["value"] for h in r.headers})

    def send_to(self, url: str, payload: dict[str, Any], *, event: str) -> None:
        """The hosted-auth `notify_url` callback (JSON, as Unipile posts it)."""
        self._enqueue(url, event, payload, {"Content-Type": "application/json"})

    def _enqueue(
        self, url: str, source: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> None:
        delivery = Delivery(secrets.token_urlsafe(12), url, source, payload, headers)
        with self._lock:
            self.deliveries.append(delivery)
            generation = self._generation
        self._ensure_thread()
        for _ in range(2 if self.duplicate else 1):
            self._queue.put((delivery, generation))

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="unipile-sim-webhooks", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as http:
            while True:
                item = self._queue.get()
                if item is None:
                    self._queue.task_done()
                    return
                delivery, generation = item
                try:
                    self._deliver(http, delivery, generation)
                finally:
                    self._queue.task_done()

    def _deliver(self, http: httpx.Client, delivery: Delivery, generation: int) -> None:
        body = json.dumps(delivery.payload).encode()
        for attempt in range(len(self.retry_delays) + 1):
            if generation != self._generation:
                return
            delivery.attempts += 1
            try:
                response = http.post(delivery.url, content=body, headers=delivery.headers)
                delivery.status_code, delivery.error = response.status_code, None
                if 200 <= response.status_code < 300:
                    delivery.delivered = True
                    return
            except httpx.HTTPError as exc:
                delivery.status_code, delivery.error = None, str(exc) or type(exc).__name__
            if attempt < len(self.retry_delays):
                # Event.wait rather than sleep so stop() interrupts a long back-off.
                if self._wake.wait(self.retry_delays[attempt]):
                    return
        log.warning("webhook to %s gave up after %d attempts", delivery.url, delivery.attempts)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once every queued delivery has finished (delivered or given up)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)
