"""The hosted-auth wizard a person completes in the browser, as Unipile's hosted page does:
sign in, answer a checkpoint when LinkedIn asks for one, then go back to the application's
`success_redirect_url` while `notify_url` receives the account id and the link's `name`.

Plain HTML forms (no JavaScript), so it works in any browser and in tests that post the form.
A simulator hint under each checkpoint shows the code, since no phone receives one.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from warmysender.linkedin.simulator.errors import ApiError
from warmysender.linkedin.simulator.records import HostedLink
from warmysender.linkedin.simulator.state import SimulatorState

_STYLE = """
body{font-family:system-ui,sans-serif;background:#f3f2ef;margin:0;color:#1d2226}
main{max-width:380px;margin:48px auto;background:#fff;border-radius:8px;padding:28px;
box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.3rem;margin:0 0 4px}p{line-height:1.4}
label{display:block;margin:14px 0 4px;font-weight:600}
input{width:100%;box-sizing:border-box;padding:9px;border:1px solid #8c8c8c;border-radius:4px;
font-size:1rem}
button{margin-top:18px;width:100%;padding:10px;border:0;border-radius:20px;background:#0a66c2;
color:#fff;font-size:1rem;font-weight:600;cursor:pointer}
.error{background:#fde8e8;color:#8a1c1c;padding:8px 10px;border-radius:4px}
.hint{font-size:.85rem;color:#555;border-top:1px dashed #ccc;margin-top:22px;padding-top:10px}
.brand{color:#0a66c2;font-weight:700;letter-spacing:.02em}
"""


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)} · Unipile simulator</title><style>{_STYLE}</style></head>"
        f"<body><main><p class='brand'>Unipile · LinkedIn</p>{body}</main></body></html>",
        status_code=status,
    )


def _error(message: str | None) -> str:
    return f"<p class='error' role='alert'>{html.escape(message)}</p>" if message else ""


def _sign_in(link: HostedLink, error: str | None = None, username: str = "") -> HTMLResponse:
    verb = "Reconnect your LinkedIn account" if link.type == "reconnect" else "Connect LinkedIn"
    return _page(
        verb,
        f"<h1>{verb}</h1><p>Sign in with your LinkedIn e-mail and password.</p>{_error(error)}"
        f"<form method='post' action='/hosted/{link.token}'>"
        "<label for='username'>Email or phone</label>"
        f"<input id='username' name='username' type='text' autocomplete='username' required "
        f"value='{html.escape(username, quote=True)}'>"
        "<label for='password'>Password</label>"
        "<input id='password' name='password' type='password' autocomplete='current-password' "
        "required><button type='submit'>Sign in</button></form>"
        "<p class='hint'>Simulator: any password works except <code>wrong-password</code>. Add "
        "<code>+2fa</code>, <code>+otp</code>, <code>+captcha</code> or <code>+inapp</code> to "
        "the e-mail for a checkpoint, <code>+free</code>, <code>+sales</code> or "
        "<code>+recruiter</code> for the account type.</p>",
        status=400 if error else 200,
    )


def _checkpoint(link: HostedLink, state: SimulatorState, error: str | None = None) -> HTMLResponse:
    acct = state.accounts.get(link.account_id or "")
    checkpoint = acct.checkpoint if acct else None
    if checkpoint is None:
        return _page("Checkpoint", "<h1>Nothing to verify</h1>", status=400)
    form = f"<form method='post' action='/hosted/{link.token}/checkpoint'>"
    if checkpoint.type == "IN_APP_VALIDATION":
        body = (
            "<h1>Check your LinkedIn app</h1><p>Approve the sign-in request on your phone, "
            "then continue.</p>"
            + _error(error)
            + form
            + "<input type='hidden' name='code' value='APPROVED'>"
            "<button type='submit'>I approved it</button></form>"
            "<p class='hint'>Simulator: pressing the button approves the request.</p>"
        )
    else:
        prompt = {
            "CAPTCHA": (
                "Security check",
                "Type the characters you see.",
                f"<p><strong id='captcha'>{html.escape(checkpoint.code)}</strong></p>",
            ),
            "PHONE_REGISTER": ("Add a phone number", "Enter the code sent to your new phone.", ""),
            "OTP": ("Enter the code", "We sent a one-time code to your e-mail.", ""),
            "2FA": ("Two-step verification", "Enter the code from your authenticator app.", ""),
        }.get(checkpoint.type, ("Verification", "Enter the code.", ""))
        title, text, extra = prompt
        body = (
            f"<h1>{title}</h1><p>{text}</p>{extra}{_error(error)}{form}"
            "<label for='code'>Code</label>"
            "<input id='code' name='code' type='text' inputmode='text' autocomplete='one-time-code' "
            "required><button type='submit'>Verify</button></form>"
            f"<p class='hint'>Simulator: the code is <code id='sim-code'>{html.escape(checkpoint.code)}"
            "</code>; it is valid for "
            f"{int(state.checkpoint_validity.total_seconds() // 60)} minutes.</p>"
        )
    return _page("Verification", body, status=400 if error else 200)


def _finished(link: HostedLink) -> Response:
    if link.success_redirect_url:
        return RedirectResponse(link.success_redirect_url, status_code=303)
    return _page("Connected", "<h1>Your account is connected</h1><p>You can close this tab.</p>")


def _failed(link: HostedLink | None, message: str) -> Response:
    if link is not None and link.failure_redirect_url:
        return RedirectResponse(link.failure_redirect_url, status_code=303)
    return _page("Link unusable", f"<h1>Something went wrong</h1>{_error(message)}", status=410)


async def _fields(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def hosted_routes(state: SimulatorState) -> list[Route]:
    def live(token: str) -> tuple[HostedLink | None, str | None]:
        try:
            return state.link(token), None
        except ApiError as exc:
            return state.links.get(token), exc.detail

    async def show(request: Request) -> Response:
        if state.down_status is not None:
            return _page("Unavailable", "<h1>Service unavailable</h1>", status=503)
        link, problem = live(request.path_params["token"])
        if link is None or problem:
            return _page(
                "Link unusable", f"<h1>This link cannot be used</h1>{_error(problem)}", status=410
            )
        if (
            link.account_id
            and state.accounts.get(link.account_id)
            and state.accounts[link.account_id].checkpoint
        ):
            return _checkpoint(link, state)
        return _sign_in(link)

    async def submit(request: Request) -> Response:
        if state.down_status is not None:
            return _page("Unavailable", "<h1>Service unavailable</h1>", status=503)
        token = request.path_params["token"]
        link, problem = live(token)
        if link is None or problem:
            return _failed(link, problem or "This link cannot be used.")
        fields = await _fields(request)
        username = fields.get("username", "").strip()
        try:
            answer: dict[str, Any] = state.hosted_submit(
                token, username, fields.get("password", "")
            )
        except ApiError as exc:
            if exc.slug == "expired_link":
                return _failed(link, exc.detail)
            return _sign_in(link, exc.detail, username)
        if answer["object"] == "Checkpoint":
            return _checkpoint(link, state)
        return _finished(link)

    async def solve(request: Request) -> Response:
        if state.down_status is not None:
            return _page("Unavailable", "<h1>Service unavailable</h1>", status=503)
        token = request.path_params["token"]
        link, problem = live(token)
        if link is None or problem:
            return _failed(link, problem or "This link cannot be used.")
        code = (await _fields(request)).get("code", "").strip()
        try:
            acct = state.accounts.get(link.account_id or "")
            if (
                code == "APPROVED"
                and acct
                and acct.checkpoint
                and acct.checkpoint.type == "IN_APP_VALIDATION"
            ):
                state.approve_checkpoint(acct.id)
            answer = state.hosted_checkpoint(token, code)
        except ApiError as exc:
            if exc.slug == "invalid_checkpoint_solution":
                return _checkpoint(link, state, "That code is not right. Try again.")
            return _failed(link, exc.detail)
        if answer["object"] == "Checkpoint":
            return _checkpoint(link, state)
        return _finished(link)

    return [
        Route("/hosted/{token}", show, methods=["GET"]),
        Route("/hosted/{token}", submit, methods=["POST"]),
        Route("/hosted/{token}/checkpoint", solve, methods=["POST"]),
    ]
