"""`UnipileClient`: Unipile v1 over httpx, and the parsers of its answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from warmysender.linkedin.client.errors import failure_from_response
from warmysender.linkedin.client.results import (
    INVITATION_NOTE_MAX_CHARS,
    Account,
    AccountConnected,
    Chat,
    ChatStarted,
    CheckpointRequired,
    ConnectOutcome,
    CredentialsLogin,
    Done,
    Failure,
    FailureKind,
    HostedAuthLink,
    InvitationSent,
    LinkedInApi,
    Login,
    Message,
    MessageSent,
    OwnProfile,
    Page,
    Proxy,
    ReactionType,
    Relation,
    Result,
    SentInvitation,
    T,
    UserProfile,
)

log = logging.getLogger("warmysender.linkedin.client")


def base_url_for(dsn: str) -> str:
    """`api13.unipile.com:14376`, `https://api13.unipile.com:14376` or `…/api/v1` → the v1 base URL
    (a DSN without a scheme is https; the simulator's is `http://127.0.0.1:PORT`)."""
    root = dsn.strip().rstrip("/")
    if not root:
        raise ValueError("the Unipile DSN is empty; copy it from the Unipile dashboard")
    if "://" not in root:
        root = "https://" + root
    if root.endswith("/api/v1"):
        root = root[: -len("/api/v1")]
    return root + "/api/v1"


class UnipileClient:
    """Unipile v1 over httpx. One instance may be shared by the calls of one job; `close()` it
    (or use it as a context manager) when done."""

    def __init__(
        self,
        dsn: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | float | None = None,
        max_retries: int = 2,
        backoff_seconds: float = 0.5,
        max_retry_after: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key:
            raise ValueError("the Unipile API key is empty")
        self.base_url = base_url_for(dsn)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"X-API-KEY": api_key, "accept": "application/json"},
            # Sends are made once, so the read timeout is generous: a slow answer beats an
            # `unknown` outcome a person has to look at.
            timeout=timeout if timeout is not None else httpx.Timeout(30.0, connect=5.0),
            transport=transport,
            # `GET /users/{id}` answers 301 to the trailing-slash form on some instances.
            follow_redirects=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UnipileClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        files: Sequence[tuple[str, tuple[None, str]]] | None = None,
        retry: bool = False,
        not_found: FailureKind = "not_found",
        overrides: Mapping[str, FailureKind] | None = None,
    ) -> httpx.Response | Failure:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method, path, params=query, json=json, files=files or None
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                failure = Failure("network", detail=f"could not reach Unipile: {exc}")
            except httpx.TimeoutException as exc:
                failure = Failure("timeout", detail=f"no answer from Unipile in time: {exc}")
            except httpx.TransportError as exc:
                # The connection broke after the request may have gone out.
                failure = Failure("timeout", detail=f"connection to Unipile broke: {exc}")
            else:
                if response.status_code < 400:
                    return response
                failure = failure_from_response(response, not_found=not_found, overrides=overrides)
            retryable = failure.kind in ("rate_limited", "server_error", "network") or (
                failure.kind == "timeout" and method == "GET"
            )
            if not (retry and retryable and attempt < self.max_retries):
                return failure
            attempt += 1
            delay = self.backoff_seconds * 2 ** (attempt - 1)
            if failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, self.max_retry_after))
            log.info("unipile %s %s: %s; retry %d in %.1fs", method, path, failure, attempt, delay)
            self._sleep(delay)

    def _json(self, response: httpx.Response | Failure) -> dict[str, Any] | Failure:
        if isinstance(response, Failure):
            return response
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            return Failure(
                "unknown", response.status_code, detail="Unipile answered something not JSON"
            )
        if not isinstance(body, dict):
            return Failure("unknown", response.status_code, detail="Unipile answered a non-object")
        return body

    def _get(self, path: str, *, not_found: FailureKind = "not_found", **params: Any) -> Any:
        return self._json(
            self._request("GET", path, params=params, retry=True, not_found=not_found)
        )

    def _page(
        self, path: str, parse: Callable[[dict[str, Any]], T], **params: Any
    ) -> Result[Page[T]]:
        body = self._get(path, **params)
        if isinstance(body, Failure):
            return body
        return _parse(
            lambda: Page(
                [parse(item) for item in body.get("items") or []], body.get("cursor") or None
            )
        )

    # -- accounts ------------------------------------------------------------------------------

    def list_accounts(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[Account]]:
        return self._page("/accounts", parse_account, cursor=cursor, limit=limit)

    def get_account(self, account_id: str) -> Result[Account]:
        body = self._get(f"/accounts/{account_id}", not_found="account_not_found")
        if isinstance(body, Failure):
            return body
        return _parse(lambda: parse_account(body))

    def account_status(self, account_id: str) -> Result[str]:
        account = self.get_account(account_id)
        return account if isinstance(account, Failure) else account.status

    def create_hosted_auth_link(
        self,
        *,
        expires_on: datetime,
        name: str,
        notify_url: str,
        success_redirect_url: str,
        failure_redirect_url: str,
        reconnect_account: str | None = None,
    ) -> Result[HostedAuthLink]:
        body: dict[str, Any] = {
            "type": "reconnect" if reconnect_account else "create",
            "providers": ["LINKEDIN"],
            "api_url": self.base_url.removesuffix("/api/v1"),
            "expiresOn": expires_on.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{expires_on.microsecond // 1000:03d}Z",
            "name": name,
            "notify_url": notify_url,
            "success_redirect_url": success_redirect_url,
            "failure_redirect_url": failure_redirect_url,
        }
        if reconnect_account:
            body["reconnect_account"] = reconnect_account
        # Minting a link acts on nothing, so it is retried like a GET.
        answer = self._json(self._request("POST", "/hosted/accounts/link", json=body, retry=True))
        if isinstance(answer, Failure):
            return answer
        return _parse(lambda: HostedAuthLink(str(answer["url"])))

    def connect(
        self, login: Login, *, proxy: Proxy | None = None, country: str | None = None
    ) -> Result[ConnectOutcome]:
        return self._connect("/accounts", login, proxy, country, not_found="not_found")

    def reconnect(
        self,
        account_id: str,
        login: Login,
        *,
        proxy: Proxy | None = None,
        country: str | None = None,
    ) -> Result[ConnectOutcome]:
        return self._connect(
            f"/accounts/{account_id}", login, proxy, country, not_found="account_not_found"
        )

    def _connect(
        self,
        path: str,
        login: Login,
        proxy: Proxy | None,
        country: str | None,
        *,
        not_found: FailureKind,
    ) -> Result[ConnectOutcome]:
        body: dict[str, Any] = {"provider": "LINKEDIN"}
        if isinstance(login, CredentialsLogin):
            body |= {"username": login.username, "password": login.password}
        else:
            body |= {"access_token": login.access_token, "user_agent": login.user_agent}
            if login.premium_token:
                body["premium_token"] = login.premium_token
        if proxy is not None:
            body["proxy"] = proxy.as_body()
        if country:
            body["country"] = country.upper()
        return self._connect_outcome(self._request("POST", path, json=body, not_found=not_found))

    def _connect_outcome(self, response: httpx.Response | Failure) -> Result[ConnectOutcome]:
        body = self._json(response)
        if isinstance(body, Failure):
            return body

        def parse() -> ConnectOutcome:
            if body.get("object") == "Checkpoint":
                checkpoint = body.get("checkpoint") or {}
                return CheckpointRequired(str(body["account_id"]), str(checkpoint["type"]), body)
            return AccountConnected(str(body["account_id"]))

        return _parse(parse)

    def solve_checkpoint(self, account_id: str, code: str) -> Result[ConnectOutcome]:
        response = self._request(
            "POST",
            "/accounts/checkpoint",
            json={"provider": "LINKEDIN", "account_id": account_id, "code": code},
            # While answering a checkpoint these mean "that code" rather than "this account".
            overrides={
                "checkpoint_error": "checkpoint_failed",
                "expired_credentials": "checkpoint_failed",
            },
            not_found="checkpoint_failed",
        )
        return self._connect_outcome(response)

    def resend_checkpoint(self, account_id: str) -> Result[Done]:
        response = self._request(
            "POST",
            "/accounts/checkpoint/resend",
            json={"provider": "LINKEDIN", "account_id": account_id},
            overrides={"checkpoint_error": "checkpoint_failed"},
            not_found="checkpoint_failed",
        )
        return response if isinstance(response, Failure) else Done()

    def delete_account(self, account_id: str) -> Result[Done]:
        response = self._request("DELETE", f"/accounts/{account_id}", not_found="account_not_found")
        return response if isinstance(response, Failure) else Done()

    # -- users, invitations, relations ---------------------------------------------------------

    def get_profile(
        self, account_id: str, identifier: str, *, sections: Sequence[str] = ()
    ) -> Result[UserProfile]:
        body = self._get(
            f"/users/{identifier}",
            account_id=account_id,
            linkedin_sections=",".join(sections) or None,
        )
        if isinstance(body, Failure):
            return body
        return _parse(lambda: parse_profile(body))

    def get_own_profile(self, account_id: str) -> Result[OwnProfile]:
        body = self._get("/users/me", account_id=account_id)
        if isinstance(body, Failure):
            return body
        return _parse(lambda: parse_own_profile(body))

    def send_invitation(
        self,
        account_id: str,
        provider_id: str,
        *,
        note: str | None = None,
        user_email: str | None = None,
    ) -> Result[InvitationSent]:
        if note is not None and len(note) > INVITATION_NOTE_MAX_CHARS:
            return Failure(
                "invalid_request",
                error_type="too_many_characters",
                detail=f"the invitation note has {len(note)} characters; LinkedIn allows at "
                f"most {INVITATION_NOTE_MAX_CHARS}",
            )
        body: dict[str, Any] = {"account_id": account_id, "provider_id": provider_id}
        if note:
            body["message"] = note
        if user_email:
            body["user_email"] = user_email
        answer = self._json(self._request("POST", "/users/invite", json=body))
        if isinstance(answer, Failure):
            return answer
        usage = answer.get("usage")
        return _parse(
            lambda: InvitationSent(
                str(answer["invitation_id"]), int(usage) if usage is not None else None
            )
        )

    def list_sent_invitations(
        self, account_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[SentInvitation]]:
        return self._page(
            "/users/invite/sent",
            parse_sent_invitation,
            account_id=account_id,
            cursor=cursor,
            limit=limit,
        )

    def withdraw_invitation(self, account_id: str, invitation_id: str) -> Result[Done]:
        response = self._request(
            "DELETE", f"/users/invite/sent/{invitation_id}", params={"account_id": account_id}
        )
        return response if isinstance(response, Failure) else Done()

    def list_relations(
        self, account_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[Relation]]:
        return self._page(
            "/users/relations", parse_relation, account_id=account_id, cursor=cursor, limit=limit
        )

    # -- chats, messages, InMail, posts --------------------------------------------------------

    def list_chats(
        self, account_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[Chat]]:
        return self._page("/chats", parse_chat, account_id=account_id, cursor=cursor, limit=limit)

    def list_messages(
        self, chat_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Result[Page[Message]]:
        return self._page(f"/chats/{chat_id}/messages", parse_message, cursor=cursor, limit=limit)

    def send_message(self, chat_id: str, text: str) -> Result[MessageSent]:
        # Unipile takes chat sends as multipart; (None, value) makes httpx send a plain field.
        answer = self._json(
            self._request("POST", f"/chats/{chat_id}/messages", files=[("text", (None, text))])
        )
        if isinstance(answer, Failure):
            return answer
        return _parse(lambda: MessageSent(str(answer["message_id"])))

    def start_chat(
        self, account_id: str, attendee_provider_id: str, text: str
    ) -> Result[ChatStarted]:
        return self._start_chat(account_id, attendee_provider_id, text, extra=[])

    def send_inmail(
        self,
        account_id: str,
        attendee_provider_id: str,
        *,
        subject: str,
        text: str,
        api: LinkedInApi = "classic",
    ) -> Result[ChatStarted]:
        extra = [("subject", subject), ("linkedin[api]", api)]
        if api == "classic":
            extra.append(("linkedin[inmail]", "true"))
        return self._start_chat(account_id, attendee_provider_id, text, extra=extra)

    def _start_chat(
        self, account_id: str, attendee: str, text: str, *, extra: list[tuple[str, str]]
    ) -> Result[ChatStarted]:
        fields = [("account_id", account_id), ("attendees_ids[]", attendee), ("text", text), *extra]
        answer = self._json(
            self._request("POST", "/chats", files=[(k, (None, v)) for k, v in fields])
        )
        if isinstance(answer, Failure):
            return answer
        return _parse(
            lambda: ChatStarted(str(answer["chat_id"]), str(answer.get("message_id") or ""))
        )

    def react_to_post(
        self, account_id: str, post_id: str, reaction: ReactionType = "like"
    ) -> Result[Done]:
        response = self._request(
            "POST",
            "/posts/reaction",
            json={"account_id": account_id, "post_id": post_id, "reaction_type": reaction},
        )
        return response if isinstance(response, Failure) else Done()

    def iter_pages(
        self, fetch_page: Callable[[str | None], Result[Page[T]]], *, max_pages: int = 100
    ) -> Iterator[Result[Page[T]]]:
        """Pages one by one (for large lists read incrementally); stops after a failure."""
        cursor: str | None = None
        for _ in range(max_pages):
            page = fetch_page(cursor)
            yield page
            if isinstance(page, Failure) or not page.cursor:
                return
            cursor = page.cursor


def _parse(build: Callable[[], T]) -> Result[T]:
    """Unipile answered 2xx but not the shape we know: a Failure, never a KeyError upstream."""
    try:
        return build()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Failure("unknown", detail=f"unexpected answer from Unipile: {exc!r}")


def _when(value: Any) -> datetime | None:
    """ISO strings or epoch milliseconds, as Unipile mixes both."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_account(body: Mapping[str, Any]) -> Account:
    im = (body.get("connection_params") or {}).get("im") or {}
    sources = body.get("sources") or []
    status = str(sources[0].get("status")) if sources else "CONNECTING"
    return Account(
        id=str(body["id"]),
        name=str(body.get("name") or ""),
        type=str(body.get("type") or "LINKEDIN"),
        status=status,
        created_at=_when(body.get("created_at")),
        provider_id=str(im.get("id") or ""),
        username=str(im.get("username") or ""),
        public_identifier=str(im.get("publicIdentifier") or ""),
        premium_features=tuple(str(f) for f in im.get("premiumFeatures") or ()),
        proxy=im.get("proxy") or None,
        raw=body,
    )


def parse_profile(body: Mapping[str, Any]) -> UserProfile:
    invitation = body.get("invitation") or {}
    return UserProfile(
        provider_id=str(body["provider_id"]),
        public_identifier=str(body.get("public_identifier") or ""),
        first_name=str(body.get("first_name") or ""),
        last_name=str(body.get("last_name") or ""),
        headline=str(body.get("headline") or ""),
        is_premium=bool(body.get("is_premium")),
        is_open_profile=bool(body.get("is_open_profile")),
        is_relationship=bool(body.get("is_relationship")),
        network_distance=body.get("network_distance"),
        invitation_status=invitation.get("status"),
        raw=body,
    )


def parse_own_profile(body: Mapping[str, Any]) -> OwnProfile:
    def seat(name: str) -> bool:
        value = body.get(name)
        return isinstance(value, dict) and "error" not in value

    return OwnProfile(
        provider_id=str(body["provider_id"]),
        public_identifier=str(body.get("public_identifier") or ""),
        premium=bool(body.get("premium")),
        sales_navigator=seat("sales_navigator"),
        recruiter=seat("recruiter"),
        raw=body,
    )


def parse_sent_invitation(body: Mapping[str, Any]) -> SentInvitation:
    return SentInvitation(
        id=str(body["id"]),
        invited_user_id=str(body.get("invited_user_id") or ""),
        invited_user_public_id=str(body.get("invited_user_public_id") or ""),
        invitation_text=str(body.get("invitation_text") or ""),
        sent_at=_when(body.get("parsed_datetime") or body.get("date")),
    )


def parse_relation(body: Mapping[str, Any]) -> Relation:
    return Relation(
        provider_id=str(body["member_id"]),
        public_identifier=str(body.get("public_identifier") or ""),
        first_name=str(body.get("first_name") or ""),
        last_name=str(body.get("last_name") or ""),
        headline=str(body.get("headline") or ""),
        connected_at=_when(body.get("created_at")),
    )


def parse_chat(body: Mapping[str, Any]) -> Chat:
    return Chat(
        id=str(body["id"]),
        account_id=str(body.get("account_id") or ""),
        attendee_provider_id=str(body.get("attendee_provider_id") or ""),
        name=str(body.get("name") or ""),
        unread_count=int(body.get("unread_count") or 0),
        timestamp=_when(body.get("timestamp")),
    )


def parse_message(body: Mapping[str, Any]) -> Message:
    return Message(
        id=str(body["id"]),
        chat_id=str(body.get("chat_id") or ""),
        sender_id=str(body.get("sender_id") or ""),
        text=str(body.get("text") or ""),
        is_sender=bool(body.get("is_sender")),
        timestamp=_when(body.get("timestamp")),
    )
