"""The control page at `/_sim/`: the control API as buttons, for a person trying the product in a
browser (expire a session, restrict an account, answer 404s, accept its invitations, write to it,
take the whole API down and bring it back).

Server-rendered HTML and plain forms, no JavaScript or external assets. Each form posts to
`/_sim/ui/…`, runs the same action the JSON control API runs (so the same webhooks fire), then
redirects 303 back to `/_sim/` with what happened in `?done=`. A refused action answers an HTML
page naming the problem (404 for an unknown account, 400 for bad input) and changes nothing.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from warmysender.linkedin.simulator import control
from warmysender.linkedin.simulator.errors import ApiError
from warmysender.linkedin.simulator.records import SimAccount
from warmysender.linkedin.simulator.state import SimulatorState
from warmysender.linkedin.simulator.webhooks import Delivery

# How many times "Answer 404" makes the account's calls fail: enough for the product's
# three-strikes rule to mark the account disconnected.
NOT_FOUND_TIMES = 3
RECENT_DELIVERIES = 10

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f3f2ef;margin:0;color:#1d2226}
main{max-width:1100px;margin:24px auto;padding:0 16px}
h1{font-size:1.4rem;margin:0 0 4px}h2{font-size:1.1rem;margin:24px 0 8px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:12px 0;
box-shadow:0 1px 3px rgba(0,0,0,.15)}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:8px 6px;
border-bottom:1px solid #e6e6e6;vertical-align:top}th{font-size:.85rem;color:#555}
form{display:inline-block;margin:0 4px 4px 0}
button{padding:5px 12px;border:1px solid #0a66c2;border-radius:14px;background:#fff;
color:#0a66c2;font-weight:600;cursor:pointer}button.danger{border-color:#b24020;color:#b24020}
input,select{padding:4px 6px;border:1px solid #8c8c8c;border-radius:4px}
code{font-size:.85rem}.muted{color:#666;font-size:.85rem}
.status{display:inline-block;padding:1px 8px;border-radius:10px;background:#e1f0e4;color:#1d6b34;
font-weight:600}.status.bad{background:#fde8e8;color:#8a1c1c}
.flash{background:#e8f3fd;border:1px solid #9cc6ee;padding:8px 12px;border-radius:6px}
.error{background:#fde8e8;color:#8a1c1c;padding:8px 12px;border-radius:6px}
.brand{color:#0a66c2;font-weight:700;letter-spacing:.02em;margin:0}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)} · Unipile simulator</title><style>{_STYLE}</style></head>"
        f"<body><main><p class='brand'>Unipile simulator</p>{body}</main></body></html>",
        status_code=status,
    )


def _refused(exc: ApiError) -> HTMLResponse:
    status = 404 if exc.status == 404 else 400
    return _page(
        "Not done",
        f"<h1>Nothing was changed</h1><p class='error' role='alert'>{_e(exc.detail)}</p>"
        "<p><a href='/_sim/'>Back to the control page</a></p>",
        status=status,
    )


def _button(action: str, label: str, *, fields: dict[str, str] | None = None, css: str = "") -> str:
    hidden = "".join(
        f"<input type='hidden' name='{_e(k)}' value='{_e(v)}'>" for k, v in (fields or {}).items()
    )
    klass = f" class='{css}'" if css else ""
    return (
        f"<form method='post' action='{_e(action)}'>{hidden}"
        f"<button type='submit'{klass}>{_e(label)}</button></form>"
    )


def _faults_text(state: SimulatorState, account_id: str | None) -> str:
    with state.lock:
        faults = [f for f in state.faults if f.account_id == account_id]
    if not faults:
        return "<span class='muted'>none</span>"
    parts = []
    for f in faults:
        times = "until cleared" if f.remaining is None else f"× {f.remaining}"
        scope = f" on {f.operation}" if f.operation else ""
        parts.append(f"<code>{_e(f.slug)}</code>{_e(scope)} {_e(times)}")
    return "<br>".join(parts)


def _status_text(acct: SimAccount) -> str:
    css = "status" if acct.status == "OK" else "status bad"
    text = f"<span class='{css}' data-testid='provider-status'>{_e(acct.status)}</span>"
    if acct.restricted:
        text += " <span class='status bad'>restricted</span>"
    if acct.checkpoint is not None:
        text += f"<br><span class='muted'>checkpoint {_e(acct.checkpoint.type)} waiting</span>"
    return text


def _default_sender(state: SimulatorState, acct: SimAccount) -> str:
    """Who "Write to the account" writes as: its newest connection, as a reply would come."""
    with state.lock:
        if acct.relations:
            newest = max(acct.relations.items(), key=lambda kv: kv[1])[0]
            return state.person(newest).public_identifier
    return "jamie-rivera"


def _account_row(state: SimulatorState, acct: SimAccount) -> str:
    base = f"/_sim/ui/accounts/{acct.id}"
    pending = len(control.pending_invitations(state, acct.id))
    restrict = (
        _button(f"{base}/restrict", "Lift restriction", fields={"restricted": "false"})
        if acct.restricted
        else _button(f"{base}/restrict", "Restrict", fields={"restricted": "true"}, css="danger")
    )
    actions = (
        _button(f"{base}/expire", "Expire session", css="danger")
        + restrict
        + _button(f"{base}/fail-404", f"Answer 404 × {NOT_FOUND_TIMES}", css="danger")
        + _button(f"{base}/clear", "Clear faults")
        + _button(f"{base}/accept-invitations", "Accept pending invitations")
        + f"<form method='post' action='{_e(base)}/message'>"
        f"<input name='from' aria-label='From' size='14' value='{_e(_default_sender(state, acct))}'>"
        " <input name='text' aria-label='Message' placeholder='Message text' size='22' required>"
        " <button type='submit'>Write to the account</button></form>"
    )
    return (
        f"<tr id='account-{_e(acct.id)}' data-testid='sim-account'>"
        f"<td><strong>{_e(acct.name)}</strong><br><code>{_e(acct.id)}</code>"
        f"<br><span class='muted'>{_e(acct.username)}</span></td>"
        f"<td>{_status_text(acct)}</td>"
        f"<td data-testid='pending-invitations'>{pending}</td>"
        f"<td data-testid='faults'>{_faults_text(state, acct.id)}</td>"
        f"<td>{actions}</td></tr>"
    )


def _delivery_summary(d: Delivery) -> str:
    payload: dict[str, Any] = d.payload
    status = payload.get("AccountStatus")
    if isinstance(status, dict):
        what = f"{status.get('message')} for {status.get('account_id')}"
    else:
        what = (
            f"{payload.get('event') or payload.get('status') or ''} for {payload.get('account_id')}"
        )
    outcome = (
        "delivered"
        if d.delivered
        else f"not delivered yet ({d.attempts} attempt{'s' if d.attempts != 1 else ''})"
    )
    return f"<li><code>{_e(d.source)}</code> {_e(what)} — {_e(outcome)}</li>"


def _control_page(state: SimulatorState, done: str | None) -> HTMLResponse:
    with state.lock:
        accounts = sorted(state.accounts.values(), key=lambda a: a.created_at)
        down = state.down_status
        intakes = sorted({r.request_url for r in state.dispatcher.registrations})
    flash = f"<p class='flash' role='status'>{_e(done)}</p>" if done else ""
    if down is None:
        fleet = (
            "<p>The API is <span class='status' data-testid='fleet'>up</span>.</p>"
            "<form method='post' action='/_sim/ui/down'><label>Answer every API call with "
            "<select name='status'>"
            + "".join(
                f"<option value='{s}'{' selected' if s == 503 else ''}>{s}</option>"
                for s in control.DOWN_STATUSES
            )
            + "</select></label> <button type='submit' class='danger'>Go down</button></form>"
        )
    else:
        fleet = (
            f"<p>The API is <span class='status bad' data-testid='fleet'>down ({down})</span>: "
            "every API call and hosted page fails.</p>" + _button("/_sim/ui/up", "Come back")
        )
    if accounts:
        table = (
            "<table><thead><tr><th>Account</th><th>Provider status</th>"
            "<th>Pending invitations</th><th>Active faults</th><th>Actions</th></tr></thead><tbody>"
            + "".join(_account_row(state, a) for a in accounts)
            + "</tbody></table>"
        )
    else:
        table = (
            "<p class='muted'>No accounts yet. Connect one from WarmySender "
            "(LinkedIn → Accounts → Connect Account) and it appears here.</p>"
        )
    deliveries = state.dispatcher.snapshot()[-RECENT_DELIVERIES:]
    webhooks = (
        "<ul>" + "".join(_delivery_summary(d) for d in reversed(deliveries)) + "</ul>"
        if deliveries
        else "<p class='muted'>No webhook sent yet.</p>"
    )
    intake_text = (
        "Webhooks go to " + ", ".join(f"<code>{_e(u)}</code>" for u in intakes) + "."
        if intakes
        else "No webhook intake is registered, so changes here reach WarmySender only when it "
        "next polls the account."
    )
    body = (
        "<h1>Control page</h1>"
        f"<p class='muted'>Simulated time {_e(state.now().strftime('%Y-%m-%d %H:%M:%S UTC'))}. "
        f"{intake_text}</p>{flash}"
        f"<section><h2>Fleet</h2>{fleet}"
        f"{_button('/_sim/ui/faults/clear', 'Clear every fault')} "
        f"<span class='muted'>Fleet-wide faults: {_faults_text(state, None)}</span></section>"
        f"<section><h2>Accounts</h2>{table}</section>"
        f"<section><h2>Recent webhooks</h2>{webhooks}</section>"
    )
    return _page("Control page", body)


async def _fields(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


# An action gets the account id from the path ("" for fleet actions) and the form fields, and
# answers the line the page shows afterwards; an ApiError means nothing was changed.
Action = Callable[[str, dict[str, str]], str]


def control_page_routes(state: SimulatorState) -> list[Route]:
    def form_route(path: str, action: Action) -> Route:
        async def run(request: Request) -> Response:
            account_id = str(request.path_params.get("account_id", ""))
            try:
                done = action(account_id, await _fields(request))
            except ApiError as exc:
                return _refused(exc)
            anchor = f"#account-{account_id}" if account_id else ""
            return RedirectResponse(f"/_sim/?{urlencode({'done': done})}{anchor}", status_code=303)

        run_: Callable[[Request], Awaitable[Response]] = run
        return Route(f"/_sim/ui{path}", run_, methods=["POST"])

    def name(account_id: str) -> str:
        return state.account(account_id).name

    def expire(account_id: str, form: dict[str, str]) -> str:
        acct = control.expire_session(state, account_id)
        return f"{acct.name}: session expired (CREDENTIALS, sent as the account-status webhook)."

    def restrict(account_id: str, form: dict[str, str]) -> str:
        value = form.get("restricted", "true")
        if value not in ("true", "false"):
            raise ApiError("invalid_parameters", "restricted must be true or false")
        acct = state.set_restricted(account_id, value == "true")
        if acct.restricted:
            return f"{acct.name}: restricted; its LinkedIn actions answer account_restricted."
        return f"{acct.name}: restriction lifted."

    def fail_404(account_id: str, form: dict[str, str]) -> str:
        control.answer_not_found(state, account_id, NOT_FOUND_TIMES)
        return f"{name(account_id)}: the next {NOT_FOUND_TIMES} calls about it answer 404."

    def clear(account_id: str, form: dict[str, str]) -> str:
        label = name(account_id)
        removed = state.clear_faults(account_id=account_id)
        return f"{label}: {removed} fault{'s' if removed != 1 else ''} cleared."

    def accept(account_id: str, form: dict[str, str]) -> str:
        accepted = control.accept_pending_invitations(state, account_id)
        if not accepted:
            return f"{name(account_id)}: no pending invitation to accept."
        n = len(accepted)
        return f"{name(account_id)}: {n} invitation{'s' if n != 1 else ''} accepted."

    def message(account_id: str, form: dict[str, str]) -> str:
        label = name(account_id)
        answer = control.write_to_account(
            state, account_id, form.get("from", ""), form.get("text", "")
        )
        sender = state.person(answer["sender_provider_id"]).public_identifier
        return f"{label}: message from {sender} received."

    def down(account_id: str, form: dict[str, str]) -> str:
        raw = form.get("status", "503")
        status = control.go_down(state, int(raw) if raw.isdigit() else raw)
        return f"The API is down: every call answers {status}."

    def up(account_id: str, form: dict[str, str]) -> str:
        control.come_back(state)
        return "The API is back up."

    def clear_all(account_id: str, form: dict[str, str]) -> str:
        removed = state.clear_faults()
        return f"{removed} fault{'s' if removed != 1 else ''} cleared."

    async def show(request: Request) -> Response:
        return _control_page(state, request.query_params.get("done"))

    async def to_page(request: Request) -> Response:
        return RedirectResponse("/_sim/", status_code=307)

    account = "/accounts/{account_id}"
    return [
        Route("/_sim", to_page, methods=["GET"]),
        Route("/_sim/", show, methods=["GET"]),
        form_route(f"{account}/expire", expire),
        form_route(f"{account}/restrict", restrict),
        form_route(f"{account}/fail-404", fail_404),
        form_route(f"{account}/clear", clear),
        form_route(f"{account}/accept-invitations", accept),
        form_route(f"{account}/message", message),
        form_route("/down", down),
        form_route("/up", up),
        form_route("/faults/clear", clear_all),
    ]
