"""The simulator's HTTP face (Starlette, no database): Unipile's v1 API under `/api/v1`, the
hosted-auth pages under `/hosted/…`, the control API under `/_sim/…` and its page at `/_sim/`.

Every `/api/v1` request is checked in this order, as the real service would fail: down (503),
X-API-KEY (401 missing_credentials), an injected fault for the operation and account, then the
operation itself. Each is written to the request log with the account it concerned, so a test can
prove that some code path made no Unipile call at all.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from warmysender.linkedin.simulator.errors import ApiError
from warmysender.linkedin.simulator.records import page
from warmysender.linkedin.simulator.state import SimulatorState

DOWN_SLUGS = {
    500: "unexpected_error",
    502: "provider_error",
    503: "service_unavailable",
    504: "request_timeout",
}


@dataclass
class Ctx:
    request: Request
    json: dict[str, Any] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def int_query(self, name: str) -> int | None:
        value = self.query(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise ApiError("invalid_parameters", f"{name} must be an integer") from exc

    def page(self, items: list[dict[str, Any]], object_name: str) -> dict[str, Any]:
        chunk, cursor = page(items, self.query("cursor"), self.int_query("limit"))
        return {"object": object_name, "items": chunk, "cursor": cursor}


async def _read(request: Request) -> Ctx:
    ctx = Ctx(request)
    if request.method in ("GET", "DELETE", "HEAD"):
        return ctx
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if not raw:
        return ctx
    if content_type.startswith("multipart/form-data"):
        ctx.form = _multipart(content_type, raw)
    elif content_type.startswith("application/x-www-form-urlencoded"):
        ctx.form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    else:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError("malformed_request", "the body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise ApiError("malformed_request", "the body must be a JSON object")
        ctx.json = body
    return ctx


def _multipart(content_type: str, raw: bytes) -> dict[str, list[str]]:
    """Text fields of a multipart body (the stdlib parser; attachments are ignored)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        raise ApiError("malformed_request", "the multipart body could not be read")
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        value = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        fields.setdefault(str(name), []).append(value)
    return fields


class SaveAfterChanges:
    """Write the world to the state file (when there is one) after each request that may have
    changed it."""

    def __init__(self, app: ASGIApp, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            self.state.save()


Handler = Callable[[Ctx], tuple[int, dict[str, Any]]]


def create_app(state: SimulatorState, *, api_key: str) -> Starlette:
    """The ASGI app over `state`. `api_key` is what callers must send as X-API-KEY."""

    def endpoint(
        operation: str, handler: Handler, *, account: Callable[[Ctx], str | None] | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            account_id: str | None = None
            headers: dict[str, str] = {}
            try:
                if state.down_status is not None:
                    raise ApiError(DOWN_SLUGS.get(state.down_status, "service_unavailable"))
                if request.headers.get("x-api-key") != api_key:
                    raise ApiError("missing_credentials")
                ctx = await _read(request)
                account_id = account(ctx) if account else _account_of(ctx)
                state.check_faults(operation, account_id)
                status, body = handler(ctx)
            except ApiError as exc:
                status, body = exc.status, exc.body(request.url.path)
                if state.down_status is not None and exc.status != state.down_status:
                    status = body["status"] = state.down_status
                if exc.retry_after is not None:
                    headers["Retry-After"] = str(int(exc.retry_after))
            state.log(request.method, request.url.path, operation, account_id, status)
            return JSONResponse(body, status_code=status, headers=headers)

        return run

    def _account_of(ctx: Ctx) -> str | None:
        value = (
            ctx.request.path_params.get("account_id")
            or ctx.query("account_id")
            or ctx.json.get("account_id")
            or next(iter(ctx.form.get("account_id") or []), None)
        )
        return str(value) if value else None

    def _chat_account(ctx: Ctx) -> str | None:
        chat = state.chats.get(ctx.param("chat_id"))
        return chat.account_id if chat else None

    # -- /api/v1 ---------------------------------------------------------------------------

    def list_accounts(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        with state.lock:
            items = [
                a.as_json() for a in sorted(state.accounts.values(), key=lambda a: a.created_at)
            ]
        return 200, ctx.page(items, "AccountList")

    def get_account(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 200, state.account(ctx.param("account_id")).as_json()

    def connect(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        answer = state.connect(ctx.json)
        return (202 if answer["object"] == "Checkpoint" else 201), answer

    def reconnect(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        answer = state.connect(ctx.json, reconnect_id=ctx.param("account_id"))
        return (202 if answer["object"] == "Checkpoint" else 201), answer

    def delete_account(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        state.delete_account(ctx.param("account_id"))
        return 200, {"object": "AccountDeleted"}

    def checkpoint(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        answer = state.solve_checkpoint(ctx.json)
        return (202 if answer["object"] == "Checkpoint" else 201), answer

    def checkpoint_resend(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        state.resend_checkpoint(ctx.json)
        return 201, {"object": "CheckpointResent"}

    def hosted_link(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 201, state.create_link(ctx.json, str(ctx.request.base_url))

    def users_me(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 200, state.own_profile(ctx.query("account_id") or "")

    def profile(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 200, state.profile(ctx.query("account_id") or "", ctx.param("identifier"))

    def invite(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 201, state.invite(ctx.json)

    def sent_invitations(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 200, ctx.page(
            state.sent_invitations(ctx.query("account_id") or ""), "InvitationList"
        )

    def withdraw(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        state.withdraw(ctx.query("account_id") or "", ctx.param("invitation_id"))
        return 200, {"object": "InvitationCancelled"}

    def relations(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 200, ctx.page(state.relations(ctx.query("account_id") or ""), "UserRelationsList")

    def chats(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 200, ctx.page(state.chat_list(ctx.query("account_id") or ""), "ChatList")

    def get_chat(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        chat = state.chat(ctx.param("chat_id"))
        return 200, state._chat_json(chat)

    def messages(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 200, ctx.page(state.messages(ctx.param("chat_id")), "MessageList")

    def send_message(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        text = (ctx.form.get("text") or [""])[0] if ctx.form else str(ctx.json.get("text") or "")
        return 201, state.send_message(ctx.param("chat_id"), text)

    def start_chat(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        fields = ctx.form or {
            k: v if isinstance(v, list) else [str(v)] for k, v in ctx.json.items()
        }
        return 201, state.start_chat(fields)

    def react(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        state.react(ctx.json)
        return 201, {"object": "ReactionAdded"}

    def create_webhook(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        registration = state.dispatcher.register(ctx.json)
        return 201, {"object": "WebhookCreated", "webhook_id": registration.id}

    def list_webhooks(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        return 200, ctx.page([r.as_json() for r in state.dispatcher.registrations], "WebhookList")

    def delete_webhook(ctx: Ctx) -> tuple[int, dict[str, Any]]:
        if not state.dispatcher.unregister(ctx.param("webhook_id")):
            raise ApiError("resource_not_found", "Webhook not found.")
        return 200, {"object": "WebhookDeleted"}

    def no_account(ctx: Ctx) -> str | None:
        return None

    v1 = "/api/v1"
    api_routes = [
        Route(f"{v1}/accounts", endpoint("list_accounts", list_accounts), methods=["GET"]),
        Route(f"{v1}/accounts", endpoint("connect", connect, account=no_account), methods=["POST"]),
        Route(
            f"{v1}/accounts/checkpoint", endpoint("solve_checkpoint", checkpoint), methods=["POST"]
        ),
        Route(
            f"{v1}/accounts/checkpoint/resend",
            endpoint("resend_checkpoint", checkpoint_resend),
            methods=["POST"],
        ),
        Route(
            f"{v1}/accounts/{{account_id}}", endpoint("get_account", get_account), methods=["GET"]
        ),
        Route(f"{v1}/accounts/{{account_id}}", endpoint("reconnect", reconnect), methods=["POST"]),
        Route(
            f"{v1}/accounts/{{account_id}}",
            endpoint("delete_account", delete_account),
            methods=["DELETE"],
        ),
        Route(
            f"{v1}/hosted/accounts/link",
            endpoint("hosted_link", hosted_link, account=lambda c: c.json.get("reconnect_account")),
            methods=["POST"],
        ),
        Route(f"{v1}/users/me", endpoint("get_own_profile", users_me), methods=["GET"]),
        Route(f"{v1}/users/relations", endpoint("list_relations", relations), methods=["GET"]),
        Route(f"{v1}/users/invite", endpoint("send_invitation", invite), methods=["POST"]),
        Route(
            f"{v1}/users/invite/sent",
            endpoint("list_sent_invitations", sent_invitations),
            methods=["GET"],
        ),
        Route(
            f"{v1}/users/invite/sent/{{invitation_id}}",
            endpoint("withdraw_invitation", withdraw),
            methods=["DELETE"],
        ),
        Route(f"{v1}/users/{{identifier}}", endpoint("get_profile", profile), methods=["GET"]),
        Route(f"{v1}/users/{{identifier}}/", endpoint("get_profile", profile), methods=["GET"]),
        Route(f"{v1}/chats", endpoint("list_chats", chats), methods=["GET"]),
        Route(f"{v1}/chats", endpoint("start_chat", start_chat), methods=["POST"]),
        Route(
            f"{v1}/chats/{{chat_id}}",
            endpoint("get_chat", get_chat, account=_chat_account),
            methods=["GET"],
        ),
        Route(
            f"{v1}/chats/{{chat_id}}/messages",
            endpoint("list_messages", messages, account=_chat_account),
            methods=["GET"],
        ),
        Route(
            f"{v1}/chats/{{chat_id}}/messages",
            endpoint("send_message", send_message, account=_chat_account),
            methods=["POST"],
        ),
        Route(f"{v1}/posts/reaction", endpoint("react_to_post", react), methods=["POST"]),
        Route(
            f"{v1}/webhooks",
            endpoint("create_webhook", create_webhook, account=no_account),
            methods=["POST"],
        ),
        Route(
            f"{v1}/webhooks",
            endpoint("list_webhooks", list_webhooks, account=no_account),
            methods=["GET"],
        ),
        Route(
            f"{v1}/webhooks/{{webhook_id}}",
            endpoint("delete_webhook", delete_webhook, account=no_account),
            methods=["DELETE"],
        ),
    ]

    from warmysender.linkedin.simulator.control import control_routes
    from warmysender.linkedin.simulator.control_page import control_page_routes
    from warmysender.linkedin.simulator.hosted import hosted_routes

    app = Starlette(
        routes=[
            *api_routes,
            *hosted_routes(state),
            *control_page_routes(state),
            *control_routes(state),
        ],
        middleware=[Middleware(SaveAfterChanges, state=state)],
    )

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(v1):
            error = ApiError("resource_not_found", f"No route {request.method} {request.url.path}.")
            return JSONResponse(error.body(request.url.path), status_code=404)
        return HTMLResponse("<h1>Not found</h1>", status_code=404)

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    app.state.simulator = state
    return app
