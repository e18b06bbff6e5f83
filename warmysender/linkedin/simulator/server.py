"""Running the simulator: `SimulatorServer` serves it with uvicorn on a loopback port in a
background thread (tests, the embedded mode of `warmysender serve`), `run` in the foreground
(`warmysender unipile-sim`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from warmysender.linkedin.simulator.app import create_app
from warmysender.linkedin.simulator.state import SimulatorState
from warmysender.linkedin.simulator.webhooks import DEFAULT_RETRY_DELAYS, Dispatcher

log = logging.getLogger(__name__)


def build_state(
    *,
    webhook_url: str | None = None,
    webhook_headers: Mapping[str, str] | None = None,
    webhook_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    checkpoint_validity: timedelta = timedelta(minutes=10),
    state_file: Path | None = None,
) -> SimulatorState:
    state = SimulatorState(
        dispatcher=Dispatcher(retry_delays=webhook_retry_delays),
        checkpoint_validity=checkpoint_validity,
        state_file=state_file,
    )
    if webhook_url:
        register_intake(state, webhook_url, webhook_headers or {})
    return state


def register_intake(
    state: SimulatorState,
    url: str,
    headers: Mapping[str, str],
    sources: Iterable[str] = ("account_status", "messaging", "users"),
) -> None:
    """What an operator does once in Unipile's dashboard: send every LinkedIn source to our intake
    with the secret header (Unipile signs nothing)."""
    for source in sources:
        state.dispatcher.register(
            {
                "request_url": url,
                "source": source,
                "headers": [{"key": k, "value": v} for k, v in headers.items()],
            }
        )


class SimulatorServer:
    """The simulator on `host:port` (port 0: a free one) in a daemon thread.

    with SimulatorServer() as sim:
        client = UnipileClient(sim.base_url, sim.api_key)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        state: SimulatorState | None = None,
        **state_options: Any,
    ) -> None:
        self.host = host
        self.api_key = api_key or "sim-" + secrets.token_urlsafe(18)
        self.state = state or build_state(**state_options)
        self.app = create_app(self.state, api_key=self.api_key)
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = int(self._socket.getsockname()[1])
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        )
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The DSN to give UnipileClient (the v1 API is under /api/v1)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SimulatorServer:
        self._socket.listen(128)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])),
            name=f"unipile-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        ready = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if self._server.started:
                ready.set()
                break
            if not self._thread.is_alive():
                break
            ready.wait(0.02)
        if not ready.is_set():
            raise RuntimeError(f"the Unipile simulator did not start on {self.base_url}")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.state.dispatcher.stop()
        with contextlib.suppress(OSError):
            self._socket.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the control API (`sim.control("POST", "/accounts/x/expire-session")`); a refusal
        raises AssertionError with the simulator's answer, since only tests and demos call it."""
        response = httpx.request(method, f"{self.base_url}/_sim{path}", json=body, timeout=10)
        if response.status_code >= 400:
            raise AssertionError(
                f"simulator control {method} {path}: {response.status_code} {response.text}"
            )
        return response.json()

    # Shortcuts over the control API for tests (each is one documented /_sim call).

    def client(self, **options: Any) -> Any:
        from warmysender.linkedin.client import UnipileClient

        return UnipileClient(self.base_url, self.api_key, **options)

    def add_account(self, **fields: Any) -> dict[str, Any]:
        """A connected account (`username`, `name`, `premium_features`, `status`, `limits`)."""
        return dict(self.control("POST", "/accounts", fields))

    def account(self, account_id: str) -> dict[str, Any]:
        return dict(self.control("GET", f"/accounts/{account_id}"))

    def set_status(self, account_id: str, status: str) -> dict[str, Any]:
        return dict(self.control("POST", f"/accounts/{account_id}/status", {"status": status}))

    def expire_session(self, account_id: str) -> dict[str, Any]:
        return dict(self.control("POST", f"/accounts/{account_id}/expire-session"))

    def restrict(self, account_id: str, restricted: bool = True) -> dict[str, Any]:
        body = {"restricted": restricted}
        return dict(self.control("POST", f"/accounts/{account_id}/restrict", body))

    def not_found(self, account_id: str, times: int | None = None) -> None:
        """Answer 404 for the account `times` times (None: until `found_again`)."""
        self.control("POST", f"/accounts/{account_id}/not-found", {"times": times})

    def found_again(self, account_id: str) -> None:
        self.control("DELETE", f"/accounts/{account_id}/not-found")

    def set_limits(self, account_id: str, **limits: Any) -> dict[str, Any]:
        return dict(self.control("POST", f"/accounts/{account_id}/limits", limits))

    def fault(self, error: str, *, times: int | None = 1, **scope: Any) -> None:
        """Answer Unipile error `error` (`operation=`, `account_id=`, `retry_after=`)."""
        self.control("POST", "/faults", {"error": error, "times": times, **scope})

    def inbound(self, account_id: str, sender: str, text: str) -> dict[str, Any]:
        body = {"from": sender, "text": text}
        return dict(self.control("POST", f"/accounts/{account_id}/inbound", body))

    def connect_person(self, account_id: str, identifier: str) -> dict[str, Any]:
        return dict(self.control("POST", f"/accounts/{account_id}/relations", {"with": identifier}))

    def accept(self, invitation_id: str, also_on: Sequence[str] = ()) -> dict[str, Any]:
        body = {"also_on": list(also_on)}
        return dict(self.control("POST", f"/invitations/{invitation_id}/accept", body))

    def advance(self, seconds: float) -> None:
        self.control("POST", "/clock", {"advance_seconds": seconds})

    def go_down(self, status: int = 503) -> None:
        self.control("POST", "/down", {"status": status})

    def come_back(self) -> None:
        self.control("POST", "/up")

    def register_intake(self, url: str, headers: Mapping[str, str]) -> None:
        self.control("POST", "/webhooks", {"request_url": url, "headers": dict(headers)})

    def requests(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """The request log: method, path, operation, account_id, at, status."""
        query = f"?account_id={account_id}" if account_id else ""
        return list(self.control("GET", f"/requests{query}")["items"])

    def clear_requests(self) -> None:
        self.control("DELETE", "/requests")

    def deliveries(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/webhooks/deliveries")["items"])

    def wait_for_webhooks(self, timeout: float = 10.0) -> None:
        if not self.state.dispatcher.wait_idle(timeout):
            raise AssertionError(f"simulator webhooks still pending after {timeout}s")


def run(
    *,
    host: str,
    port: int,
    api_key: str,
    webhook_url: str | None = None,
    webhook_headers: Mapping[str, str] | None = None,
    state_file: Path | None = None,
) -> None:
    """Serve in the foreground until Ctrl-C (the CLI)."""
    state = build_state(
        webhook_url=webhook_url, webhook_headers=webhook_headers, state_file=state_file
    )
    uvicorn.run(
        create_app(state, api_key=api_key), host=host, port=port, log_level="info", lifespan="off"
    )
