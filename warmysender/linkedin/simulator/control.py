"""The control API under `/_sim/…`: how tests and demos move the simulated world (expire a
session, restrict an account, answer 404s, accept an invitation, write to the account, go down)
and read what happened (the request log, webhook deliveries). JSON in, JSON out; errors use the
same body as the v1 API. No key: it listens on loopback and exists for the people testing.

The actions a person can also take from the control page (`control_page.py`) are the module-level
functions below, so a button and a JSON call change the world, and send webhooks, identically."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from warmysender.linkedin.simulator.errors import ApiError
from warmysender.linkedin.simulator.records import (
    CHECKPOINT_TYPES,
    Fault,
    Invitation,
    SimAccount,
    _iso,
)
from warmysender.linkedin.simulator.state import SimulatorState

Body = dict[str, Any]


def _times(body: Body, default: int | None = 1) -> int | None:
    """`times`: a positive count, or null for "until cleared"."""
    if "times" not in body:
        return default
    value = body["times"]
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ApiError(
            "invalid_parameters", "times must be a positive integer or null (until cleared)"
        )
    return value


# -- actions shared by the JSON control API and the control page ------------------------------

DOWN_STATUSES = (500, 502, 503, 504)


def go_down(state: SimulatorState, status: Any = 503) -> int:
    if status not in DOWN_STATUSES:
        raise ApiError("invalid_parameters", "status must be 500, 502, 503 or 504")
    state.down_status = int(status)
    return state.down_status


def come_back(state: SimulatorState) -> None:
    state.down_status = None


def expire_session(state: SimulatorState, account_id: str) -> SimAccount:
    """The session dies: status CREDENTIALS and its account-status webhook."""
    return state.set_status(account_id, "CREDENTIALS")


def answer_not_found(state: SimulatorState, account_id: str, times: int | None) -> Fault:
    """Answer 404 for every call about the account, `times` times (None: until cleared)."""
    state.account(account_id)
    fault = Fault("resource_not_found", account_id=account_id, remaining=times)
    state.add_fault(fault)
    return fault


def write_to_account(
    state: SimulatorState, account_id: str, sender: str, text: str
) -> dict[str, Any]:
    """Someone writes to the account: a chat message and its `message_received` webhook."""
    sender = sender.strip()
    if not sender:
        raise ApiError(
            "missing_parameters", "from (a provider id or public identifier) is required"
        )
    if not text.strip():
        raise ApiError("missing_parameters", "text is required: the message is empty")
    return state.inbound(account_id, sender, text)


def pending_invitations(state: SimulatorState, account_id: str) -> list[Invitation]:
    with state.lock:
        return sorted(
            (
                i
                for i in state.invitations.values()
                if i.account_id == account_id and i.status == "PENDING"
            ),
            key=lambda i: i.sent_at,
        )


def accept_pending_invitations(state: SimulatorState, account_id: str) -> list[Invitation]:
    """Every invitee of the account accepts (one `new_relation` webhook each)."""
    with state.lock:
        state.account(account_id)
        return [
            state.resolve_invitation(inv.id, accept=True)
            for inv in pending_invitations(state, account_id)
        ]


def control_routes(state: SimulatorState) -> list[Route]:
    def route(path: str, method: str, handler: Callable[[Request, Body], Any]) -> Route:
        async def run(request: Request) -> Response:
            try:
                raw = await request.body()
                body: Body = {}
                if raw:
                    try:
                        parsed = json.loads(raw)
                    except ValueError as exc:
                        raise ApiError("malformed_request", "the body is not valid JSON") from exc
                    if not isinstance(parsed, dict):
                        raise ApiError("malformed_request", "the body must be a JSON object")
                    body = parsed
                result = handler(request, body)
                return JSONResponse(result if result is not None else {"ok": True})
            except ApiError as exc:
                return JSONResponse(exc.body(request.url.path), status_code=exc.status)

        run_: Callable[[Request], Awaitable[Response]] = run
        return Route(f"/_sim{path}", run_, methods=[method])

    def acct_id(request: Request) -> str:
        return str(request.path_params["account_id"])

    # -- whole world ------------------------------------------------------------------------

    def get_state(request: Request, body: Body) -> Any:
        with state.lock:
            return {
                "now": _iso(state.now()),
                "down": state.down_status,
                "accounts": [state.describe(a) for a in state.accounts.values()],
                "invitations": [state.invitation_json(i) for i in state.invitations.values()],
                "people": [p.as_json() for p in state.people.values()],
                "faults": [f.as_json() for f in state.faults],
                "webhooks": [r.as_json() for r in state.dispatcher.registrations],
            }

    def reset(request: Request, body: Body) -> Any:
        state.reset()

    def down(request: Request, body: Body) -> Any:
        return {"down": go_down(state, body.get("status", 503))}

    def up(request: Request, body: Body) -> Any:
        come_back(state)
        return {"down": None}

    def clock(request: Request, body: Body) -> Any:
        if "advance_seconds" in body:
            seconds = body["advance_seconds"]
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                raise ApiError(
                    "invalid_parameters", "advance_seconds must be a non-negative number"
                )
            state.advance(float(seconds))
        return {"now": _iso(state.now())}

    def config(request: Request, body: Body) -> Any:
        known = {"next_checkpoint", "duplicate_webhooks", "webhook_retry_delays"}
        unknown = set(body) - known
        if unknown:
            raise ApiError(
                "invalid_parameters", f"unknown settings {sorted(unknown)}; known: {sorted(known)}"
            )
        if "next_checkpoint" in body:
            kind = body["next_checkpoint"]

            if kind is not None and kind not in CHECKPOINT_TYPES:
                raise ApiError(
                    "invalid_parameters",
                    f"next_checkpoint must be one of {', '.join(CHECKPOINT_TYPES)} or null",
                )
            state.next_checkpoint = kind
        if "duplicate_webhooks" in body:
            state.dispatcher.duplicate = bool(body["duplicate_webhooks"])
        if "webhook_retry_delays" in body:
            delays = body["webhook_retry_delays"]
            if not isinstance(delays, list) or not all(
                isinstance(d, int | float) and d >= 0 for d in delays
            ):
                raise ApiError(
                    "invalid_parameters", "webhook_retry_delays must be a list of seconds"
                )
            state.dispatcher.retry_delays = tuple(float(d) for d in delays)
        return {
            "next_checkpoint": state.next_checkpoint,
            "duplicate_webhooks": state.dispatcher.duplicate,
            "webhook_retry_delays": list(state.dispatcher.retry_delays),
        }

    def requests(request: Request, body: Body) -> Any:
        account = request.query_params.get("account_id")
        with state.lock:
            rows = [
                r.as_json() for r in state.requests if account is None or r.account_id == account
            ]
        return {"items": rows}

    def clear_requests(request: Request, body: Body) -> Any:
        with state.lock:
            state.requests.clear()

    def deliveries(request: Request, body: Body) -> Any:
        return {"items": [d.as_json() for d in state.dispatcher.snapshot()]}

    def clear_deliveries(request: Request, body: Body) -> Any:
        with state.dispatcher._lock:
            state.dispatcher.deliveries.clear()

    def webhook(request: Request, body: Body) -> Any:
        """Register our intake for every LinkedIn source at once, with its secret header."""
        url = body.get("request_url")
        headers = body.get("headers") or {}
        if not isinstance(headers, dict):
            raise ApiError("invalid_parameters", "headers must be an object of header: value")
        sources = body.get("sources") or ["account_status", "messaging", "users"]
        made = [
            state.dispatcher.register(
                {
                    "request_url": url,
                    "source": source,
                    "headers": [{"key": k, "value": str(v)} for k, v in headers.items()],
                }
            )
            for source in sources
        ]
        return {"items": [r.as_json() for r in made]}

    def faults(request: Request, body: Body) -> Any:
        fault = Fault(
            slug=str(body.get("error") or ""),
            operation=body.get("operation"),
            account_id=body.get("account_id"),
            remaining=_times(body),
            retry_after=body.get("retry_after"),
        )
        state.add_fault(fault)
        return fault.as_json()

    def clear_faults(request: Request, body: Body) -> Any:
        return {"removed": state.clear_faults()}

    def people(request: Request, body: Body) -> Any:
        return state.add_person(body).as_json()

    # -- one account ------------------------------------------------------------------------

    def create_account(request: Request, body: Body) -> Any:
        acct = state.seed_account(body)
        return state.describe(acct)

    def get_account(request: Request, body: Body) -> Any:
        with state.lock:
            return state.describe(state.account(acct_id(request)))

    def set_status(request: Request, body: Body) -> Any:
        return state.describe(state.set_status(acct_id(request), str(body.get("status") or "")))

    def expire(request: Request, body: Body) -> Any:
        return state.describe(expire_session(state, acct_id(request)))

    def restrict(request: Request, body: Body) -> Any:
        return state.describe(
            state.set_restricted(acct_id(request), bool(body.get("restricted", True)))
        )

    def not_found(request: Request, body: Body) -> Any:
        return answer_not_found(state, acct_id(request), _times(body, default=None)).as_json()

    def clear_not_found(request: Request, body: Body) -> Any:
        return {
            "removed": state.clear_faults(account_id=acct_id(request), slug="resource_not_found")
        }

    def limits(request: Request, body: Body) -> Any:
        return vars(state.set_limits(acct_id(request), body))

    def inbound(request: Request, body: Body) -> Any:
        return write_to_account(
            state, acct_id(request), str(body.get("from") or ""), str(body.get("text") or "")
        )

    def relation(request: Request, body: Body) -> Any:
        identifier = str(body.get("with") or "").strip()
        if not identifier:
            raise ApiError(
                "missing_parameters", "with (a provider id or public identifier) is required"
            )
        return state.add_relation(acct_id(request), identifier).as_json()

    def approve(request: Request, body: Body) -> Any:
        state.approve_checkpoint(acct_id(request))

    def accept(request: Request, body: Body) -> Any:
        also_on = body.get("also_on") or []
        if not isinstance(also_on, list):
            raise ApiError("invalid_parameters", "also_on must be a list of account ids")
        inv = state.resolve_invitation(
            str(request.path_params["invitation_id"]), accept=True, also_on=also_on
        )
        return state.invitation_json(inv)

    def ignore(request: Request, body: Body) -> Any:
        inv = state.resolve_invitation(str(request.path_params["invitation_id"]), accept=False)
        return state.invitation_json(inv)

    return [
        route("/state", "GET", get_state),
        route("/reset", "POST", reset),
        route("/down", "POST", down),
        route("/up", "POST", up),
        route("/clock", "GET", clock),
        route("/clock", "POST", clock),
        route("/config", "POST", config),
        route("/requests", "GET", requests),
        route("/requests", "DELETE", clear_requests),
        route("/webhooks", "POST", webhook),
        route("/webhooks/deliveries", "GET", deliveries),
        route("/webhooks/deliveries", "DELETE", clear_deliveries),
        route("/faults", "POST", faults),
        route("/faults", "DELETE", clear_faults),
        route("/people", "POST", people),
        route("/accounts", "POST", create_account),
        route("/accounts/{account_id}", "GET", get_account),
        route("/accounts/{account_id}/status", "POST", set_status),
        route("/accounts/{account_id}/expire-session", "POST", expire),
        route("/accounts/{account_id}/restrict", "POST", restrict),
        route("/accounts/{account_id}/not-found", "POST", not_found),
        route("/accounts/{account_id}/not-found", "DELETE", clear_not_found),
        route("/accounts/{account_id}/limits", "POST", limits),
        route("/accounts/{account_id}/inbound", "POST", inbound),
        route("/accounts/{account_id}/relations", "POST", relation),
        route("/accounts/{account_id}/checkpoint/approve", "POST", approve),
        route("/invitations/{invitation_id}/accept", "POST", accept),
        route("/invitations/{invitation_id}/ignore", "POST", ignore),
    ]
