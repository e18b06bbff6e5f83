"""The simulator's world: LinkedIn accounts at "Unipile", the people they reach, invitations,
relations, chats, checkpoints and hosted-auth links, all in memory behind one lock.

Every method that answers the API takes the lock for its whole read-modify-write, so concurrent
requests (two workers inviting from one account) see one consistent order, exactly as one
Unipile account's counters would. Errors are raised as `ApiError` and turned into Unipile's JSON
error body by the app. Time comes from `self.now()`: the real clock plus an offset the control
API moves, so tests can let a checkpoint expire without sleeping.
"""

from __future__ import annotations

import logging
import pickle
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warmysender.linkedin.simulator.errors import STATUS_BY_SLUG, ApiError
from warmysender.linkedin.simulator.network import NetworkMixin
from warmysender.linkedin.simulator.records import (
    _CHECKPOINT_TAGS,
    _FEATURE_TAGS,
    SOURCE_STATUSES,
    WRONG_PASSWORD,
    Checkpoint,
    Fault,
    HostedLink,
    Invitation,
    Limits,
    LoggedRequest,
    Person,
    SimAccount,
    SimChat,
    _checked_limits,
    _id,
    _iso,
    _member_id,
)
from warmysender.linkedin.simulator.webhooks import Dispatcher

log = logging.getLogger(__name__)

# What survives a restart; faults, the request log and webhook registrations do not (each start
# registers its intake again).
_PERSISTED = ("offset", "accounts", "people", "invitations", "chats", "links")


class SimulatorState(NetworkMixin):
    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        dispatcher: Dispatcher | None = None,
        checkpoint_validity: timedelta = timedelta(minutes=10),
        hosted_base_url: str | None = None,
        state_file: Path | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.dispatcher = dispatcher or Dispatcher()
        self.checkpoint_validity = checkpoint_validity
        self.hosted_base_url = hosted_base_url
        self.state_file = state_file
        self.reset()
        self.load()

    def reset(self) -> None:
        with self.lock:
            self.offset = timedelta(0)
            self.down_status: int | None = None
            self.accounts: dict[str, SimAccount] = {}
            self.people: dict[str, Person] = {}
            self.invitations: dict[str, Invitation] = {}
            self.chats: dict[str, SimChat] = {}
            self.links: dict[str, HostedLink] = {}
            self.faults: list[Fault] = []
            self.requests: list[LoggedRequest] = []
            self.next_checkpoint: str | None = None
            self.dispatcher.clear()

    # -- persistence (the embedded simulator of `serve` keeps its world across restarts) ----

    def save(self) -> None:
        if self.state_file is None:
            return
        with self.lock:
            # One dump keeps shared records shared (a chat's attendee is the person record).
            data = pickle.dumps({name: getattr(self, name) for name in _PERSISTED})
        partial = self.state_file.with_name(self.state_file.name + ".partial")
        partial.write_bytes(data)
        partial.replace(self.state_file)

    def load(self) -> None:
        """Read the world `save` wrote. The file is our own, in the data directory; one that
        cannot be read is set aside rather than stopping the simulator."""
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            snapshot = pickle.loads(self.state_file.read_bytes())
            if not isinstance(snapshot, dict) or set(snapshot) != set(_PERSISTED):
                raise ValueError("not a simulator state file")
        except Exception as exc:
            log.warning("ignoring unreadable simulator state %s: %s", self.state_file, exc)
            self.state_file.replace(self.state_file.with_name(self.state_file.name + ".bad"))
            return
        with self.lock:
            for name, value in snapshot.items():
                setattr(self, name, value)

    # -- clock, log, faults -----------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock() + self.offset

    def advance(self, seconds: float) -> datetime:
        with self.lock:
            self.offset += timedelta(seconds=seconds)
            return self.now()

    def log(
        self, method: str, path: str, operation: str, account_id: str | None, status: int
    ) -> None:
        with self.lock:
            self.requests.append(
                LoggedRequest(method, path, operation, account_id, self.now(), status)
            )

    def add_fault(self, fault: Fault) -> None:
        if fault.slug not in STATUS_BY_SLUG:
            raise ApiError("invalid_parameters", f"unknown Unipile error type {fault.slug!r}")
        if fault.remaining is not None and fault.remaining < 1:
            raise ApiError(
                "invalid_parameters", "times must be at least 1, or null for until cleared"
            )
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self, *, account_id: str | None = None, slug: str | None = None) -> int:
        with self.lock:
            keep = [
                f
                for f in self.faults
                if (account_id is not None and f.account_id != account_id)
                or (slug is not None and f.slug != slug)
            ]
            removed = len(self.faults) - len(keep)
            self.faults = keep
            return removed

    def check_faults(self, operation: str, account_id: str | None) -> None:
        """Raise the first matching injected error (the app calls this before the operation)."""
        with self.lock:
            for fault in self.faults:
                if fault.operation not in (None, operation):
                    continue
                if fault.account_id is not None and fault.account_id != account_id:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                raise ApiError(fault.slug, retry_after=fault.retry_after)

    # -- accounts ---------------------------------------------------------------------------

    def account(self, account_id: str | None) -> SimAccount:
        if not account_id:
            raise ApiError("missing_parameters", "account_id is required")
        with self.lock:
            acct = self.accounts.get(account_id)
            if acct is None:
                raise ApiError("resource_not_found", f"Account {account_id} not found.")
            return acct

    def usable_account(self, account_id: str | None) -> SimAccount:
        """An account that may act on LinkedIn: live session, not restricted."""
        acct = self.account(account_id)
        if acct.status in ("CREDENTIALS", "CONNECTING"):
            raise ApiError("disconnected_account", "Account is disconnected.")
        if acct.status in ("ERROR", "STOPPED", "PERMISSIONS"):
            raise ApiError("no_client_session", f"The account's sync is {acct.status}.")
        if acct.restricted:
            raise ApiError("account_restricted")
        return acct

    def seed_account(self, data: dict[str, Any]) -> SimAccount:
        """An account that is already connected (control API, for tests and demos)."""
        username = str(data.get("username") or f"user{len(self.accounts) + 1}@example.com")
        status = str(data.get("status") or "OK")
        if status not in SOURCE_STATUSES:
            raise ApiError(
                "invalid_parameters", f"status must be one of {', '.join(SOURCE_STATUSES)}"
            )
        features = data.get("premium_features")
        if features is not None and not (
            isinstance(features, list) and all(isinstance(f, str) for f in features)
        ):
            raise ApiError("invalid_parameters", "premium_features must be a list of strings")
        limits = _checked_limits(data.get("limits") or {})
        with self.lock:
            acct = self._new_account(username, features=features, name=data.get("name"))
            acct.status = status
            for key, value in limits.items():
                setattr(acct.limits, key, value)
            return acct

    def _new_account(
        self, username: str, *, features: list[str] | None = None, name: Any = None
    ) -> SimAccount:
        local = username.split("@")[0].split("+")[0] or "member"
        owner = Person(
            provider_id=_member_id("owner:" + username + _id(4)),
            public_identifier=local.replace(".", "-").lower(),
            first_name=local.split(".")[0].capitalize(),
            last_name=" ".join(w.capitalize() for w in local.split(".")[1:]),
            headline="Account owner",
        )
        if features is None:
            features = ["premium"]
            for tag, tagged in _FEATURE_TAGS.items():
                if tag in username.lower():
                    features = list(tagged)
        acct = SimAccount(
            id=_id(16),
            name=str(name or f"{owner.first_name} {owner.last_name}".strip()),
            username=username,
            owner=owner,
            created_at=self.now(),
            status="CONNECTING",
            premium_features=list(features),
        )
        self.accounts[acct.id] = acct
        self.people[owner.provider_id] = owner
        return acct

    def _checkpoint_for(self, username: str) -> str | None:
        if self.next_checkpoint:
            kind, self.next_checkpoint = self.next_checkpoint, None
            return kind
        for tag, kind in _CHECKPOINT_TAGS.items():
            if tag in username.lower():
                return kind
        return None

    def _validate_login(self, body: dict[str, Any]) -> str:
        """The username (or a name for a cookie login) after checking the login body."""
        if body.get("provider") != "LINKEDIN":
            raise ApiError("invalid_parameters", "provider must be LINKEDIN")
        if body.get("access_token") is not None:
            if not str(body["access_token"]).strip():
                raise ApiError("invalid_parameters", "access_token is empty")
            if body["access_token"] == WRONG_PASSWORD:
                raise ApiError("invalid_credentials", "The li_at cookie is not valid.")
            return str(body.get("username") or f"cookie-{str(body['access_token'])[:12]}")
        username = str(body.get("username") or "").strip()
        password = str(body.get("password") or "")
        if not username or not password:
            raise ApiError(
                "missing_parameters", "username and password (or access_token) are required"
            )
        if password == WRONG_PASSWORD:
            raise ApiError("invalid_credentials", "Invalid credentials.")
        proxy = body.get("proxy")
        if proxy is not None:
            if not isinstance(proxy, dict) or proxy.get("protocol") not in (
                "http",
                "https",
                "socks5",
            ):
                raise ApiError("invalid_parameters", "proxy.protocol must be http, https or socks5")
            if not proxy.get("host") or not isinstance(proxy.get("port"), int):
                raise ApiError("invalid_parameters", "proxy needs a host and an integer port")
            if proxy.get("password") == WRONG_PASSWORD:
                raise ApiError("invalid_proxy_credentials", "The proxy refused the credentials.")
        return username

    def connect(self, body: dict[str, Any], *, reconnect_id: str | None = None) -> dict[str, Any]:
        """POST /accounts (create) or /accounts/{id} (reconnect): 201 answer or 202 checkpoint."""
        username = self._validate_login(body)
        with self.lock:
            if reconnect_id is not None:
                acct = self.account(reconnect_id)
                intent = "reconnect"
            else:
                acct = self._new_account(username)
                intent = "create"
            acct.proxy = body.get("proxy") or acct.proxy
            acct.country = body.get("country") or acct.country
            acct.user_agent = body.get("user_agent") or acct.user_agent
            kind = self._checkpoint_for(username)
            if kind is not None:
                code = {
                    "CAPTCHA": "".join(secrets.choice("ABCDEFGHJKMNPQRSTUVWXYZ") for _ in range(5))
                }.get(kind, f"{secrets.randbelow(10**6):06d}")
                acct.checkpoint = Checkpoint(
                    kind, code, self.now() + self.checkpoint_validity, intent
                )
                if intent == "create":
                    acct.status = "CONNECTING"
                return self._checkpoint_answer(acct)
            return self._finish_connection(acct, intent)

    def _checkpoint_answer(self, acct: SimAccount) -> dict[str, Any]:
        assert acct.checkpoint is not None
        checkpoint: dict[str, Any] = {"type": acct.checkpoint.type}
        if acct.checkpoint.type == "CAPTCHA":
            checkpoint["public_key"] = "sim-captcha"
            checkpoint["data"] = acct.checkpoint.code  # the "image" a person reads
        return {"object": "Checkpoint", "account_id": acct.id, "checkpoint": checkpoint}

    def _finish_connection(self, acct: SimAccount, intent: str) -> dict[str, Any]:
        acct.checkpoint = None
        acct.status = "OK"
        if intent == "reconnect":
            self.emit_status(acct, "RECONNECTED")
            return {"object": "AccountReconnected", "account_id": acct.id}
        self.emit_status(acct, "CREATION_SUCCESS")
        self.emit_status(acct, "SYNC_SUCCESS")
        return {"object": "AccountCreated", "account_id": acct.id}

    def solve_checkpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("provider") not in ("LINKEDIN", "INSTAGRAM", "TWITTER", "MESSENGER"):
            raise ApiError(
                "invalid_parameters", "provider must be LINKEDIN, INSTAGRAM, TWITTER or MESSENGER"
            )
        code = str(body.get("code") or "").strip()
        if not code:
            raise ApiError("missing_parameters", "code is required")
        with self.lock:
            acct = self.account(str(body.get("account_id") or ""))
            checkpoint = acct.checkpoint
            if checkpoint is None:
                raise ApiError(
                    "checkpoint_error", "There is no checkpoint to solve for this account."
                )
            if self.now() > checkpoint.expires_at:
                self._drop_checkpoint(acct)
                raise ApiError(
                    "checkpoint_error", "The checkpoint expired; start the connection again."
                )
            if code == "TRY_ANOTHER_WAY":
                if checkpoint.type in ("2FA", "IN_APP_VALIDATION"):
                    checkpoint.type = "OTP"
                return self._checkpoint_answer(acct)
            if checkpoint.type == "IN_APP_VALIDATION":
                if not checkpoint.approved:
                    return self._checkpoint_answer(acct)  # still waiting for the phone
            elif code.upper() != checkpoint.code.upper():
                raise ApiError("invalid_checkpoint_solution", "The code is not the one sent.")
            return self._finish_connection(acct, checkpoint.intent)

    def _drop_checkpoint(self, acct: SimAccount) -> None:
        intent = acct.checkpoint.intent if acct.checkpoint else "create"
        acct.checkpoint = None
        if intent == "create":
            self.accounts.pop(acct.id, None)

    def resend_checkpoint(self, body: dict[str, Any]) -> None:
        with self.lock:
            acct = self.account(str(body.get("account_id") or ""))
            if acct.checkpoint is None:
                raise ApiError(
                    "checkpoint_error", "There is no checkpoint to resend for this account."
                )
            if self.now() > acct.checkpoint.expires_at:
                self._drop_checkpoint(acct)
                raise ApiError(
                    "checkpoint_error", "The checkpoint expired; start the connection again."
                )
            acct.checkpoint.expires_at = self.now() + self.checkpoint_validity

    def approve_checkpoint(self, account_id: str) -> None:
        with self.lock:
            acct = self.account(account_id)
            if acct.checkpoint is None or acct.checkpoint.type != "IN_APP_VALIDATION":
                raise ApiError(
                    "invalid_parameters", "the account is not waiting for an in-app validation"
                )
            acct.checkpoint.approved = True

    def delete_account(self, account_id: str) -> None:
        with self.lock:
            acct = self.account(account_id)
            del self.accounts[account_id]
            self.emit_status(acct, "DELETED")

    def set_status(self, account_id: str, status: str) -> SimAccount:
        if status not in SOURCE_STATUSES:
            raise ApiError(
                "invalid_parameters", f"status must be one of {', '.join(SOURCE_STATUSES)}"
            )
        with self.lock:
            acct = self.account(account_id)
            acct.status = status
            self.emit_status(acct, status)
            return acct

    def set_restricted(self, account_id: str, restricted: bool) -> SimAccount:
        with self.lock:
            acct = self.account(account_id)
            acct.restricted = restricted
            return acct

    def set_limits(self, account_id: str, data: dict[str, Any]) -> Limits:
        with self.lock:
            limits = self.account(account_id).limits
            for key, value in _checked_limits(data).items():
                setattr(limits, key, value)
            return limits

    def emit_status(self, acct: SimAccount, message: str) -> None:
        self.dispatcher.emit(
            "account_status",
            {
                "AccountStatus": {
                    "account_id": acct.id,
                    "account_type": "LINKEDIN",
                    "message": message,
                }
            },
            account_id=acct.id,
        )

    # -- hosted auth ------------------------------------------------------------------------

    def create_link(self, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        kind = body.get("type")
        if kind not in ("create", "reconnect"):
            raise ApiError("invalid_parameters", "type must be create or reconnect")
        providers = body.get("providers")
        if not (providers == "*" or (isinstance(providers, list) and providers)):
            raise ApiError("missing_parameters", 'providers is required (e.g. ["LINKEDIN"])')
        try:
            expires_at = datetime.fromisoformat(
                str(body.get("expiresOn") or "").replace("Z", "+00:00")
            )
        except ValueError as exc:
            raise ApiError(
                "invalid_parameters", "expiresOn must be an ISO date, e.g. 2025-12-31T23:59:59.999Z"
            ) from exc
        if expires_at.tzinfo is None:
            raise ApiError("invalid_parameters", "expiresOn must be in UTC (end it with Z)")
        if not body.get("api_url"):
            raise ApiError("missing_parameters", "api_url is required")
        reconnect = body.get("reconnect_account")
        with self.lock:
            if kind == "reconnect":
                self.account(str(reconnect or ""))
            link = HostedLink(
                token=_id(24),
                type=kind,
                expires_at=expires_at,
                name=str(body.get("name") or ""),
                notify_url=body.get("notify_url"),
                success_redirect_url=body.get("success_redirect_url"),
                failure_redirect_url=body.get("failure_redirect_url"),
                reconnect_account=reconnect if kind == "reconnect" else None,
            )
            self.links[link.token] = link
        return {
            "object": "HostedAuthURL",
            "url": f"{(self.hosted_base_url or base_url).rstrip('/')}/hosted/{link.token}",
        }

    def link(self, token: str) -> HostedLink:
        """A live link, or ApiError expired_link."""
        with self.lock:
            link = self.links.get(token)
            if link is None:
                raise ApiError("expired_link", "This link does not exist.")
            if link.used:
                raise ApiError("expired_link", "This link was already used.")
            if self.now() > link.expires_at:
                raise ApiError("expired_link", "This link has expired; ask for a new one.")
            return link

    def hosted_submit(self, token: str, username: str, password: str) -> dict[str, Any]:
        with self.lock:
            link = self.link(token)
            body = {"provider": "LINKEDIN", "username": username, "password": password}
            answer = self.connect(body, reconnect_id=link.reconnect_account)
            link.account_id = answer["account_id"]
            if answer["object"] != "Checkpoint":
                self._hosted_done(link)
            return answer

    def hosted_checkpoint(self, token: str, code: str) -> dict[str, Any]:
        with self.lock:
            link = self.link(token)
            if link.account_id is None:
                raise ApiError("checkpoint_error", "Sign in first.")
            answer = self.solve_checkpoint(
                {"provider": "LINKEDIN", "account_id": link.account_id, "code": code}
            )
            if answer["object"] != "Checkpoint":
                self._hosted_done(link)
            return answer

    def _hosted_done(self, link: HostedLink) -> None:
        link.used = True
        if link.notify_url:
            status = "RECONNECTED" if link.type == "reconnect" else "CREATION_SUCCESS"
            self.dispatcher.send_to(
                link.notify_url,
                {"status": status, "account_id": link.account_id, "name": link.name},
                event="hosted_auth",
            )

    # -- control-API views ------------------------------------------------------------------

    def describe(self, acct: SimAccount) -> dict[str, Any]:
        now = self.now()
        week = [t for t in acct.invites_sent if now - t < timedelta(days=7)]
        return {
            **acct.as_json(),
            "restricted": acct.restricted,
            "limits": vars(acct.limits),
            "invites_this_week": len(week),
            "invites_today": len([t for t in week if t.date() == now.date()]),
            "relations": len(acct.relations),
            "checkpoint": (
                {
                    "type": acct.checkpoint.type,
                    "code": acct.checkpoint.code,
                    "expires_at": _iso(acct.checkpoint.expires_at),
                    "approved": acct.checkpoint.approved,
                }
                if acct.checkpoint
                else None
            ),
        }

    def invitation_json(self, inv: Invitation) -> dict[str, Any]:
        return {
            "id": inv.id,
            "account_id": inv.account_id,
            "provider_id": inv.provider_id,
            "note": inv.note,
            "status": inv.status,
            "sent_at": _iso(inv.sent_at),
        }
