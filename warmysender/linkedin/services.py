"""Every state change for LinkedIn accounts.

`flip_account_status` is the only way to change an account's status: it writes the paired
`LinkedInAccountAudit` row first (the database trigger looks for it), then the status together
with `disconnected_at`, `disconnected_by` and `last_error`, plus the workspace audit entry and the
`linkedin.account_status_changed` event, all in one transaction. Flips away from `connected`
caused by the system go through a `DisconnectRun`, the mass-disconnect guard.

Functions here never call Unipile; the ones that must (connect, status check, delete) live in
`connection.py` and take a client argument. Sweeps (`link_orphans`, `send_reconnect_emails`)
take none: they cannot call Unipile.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.db.models import Q

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import QuotaExceeded, plan_state
from warmysender.audit.services import Actor, emit_event, record_audit
from warmysender.lib import crypto
from warmysender.linkedin import limits
from warmysender.linkedin.models import (
    AccountStatus,
    AccountType,
    ActionUsage,
    AdminAlert,
    AdminAlertKind,
    LinkedInAccount,
    LinkedInAccountAudit,
    ProxyMode,
    Strategy,
)
from warmysender.linkedin.proxies import Proxy, ProxyError, parse_proxy

log = logging.getLogger(__name__)

SOFT_STRIKE_COPY = "Unipile temporarily unreachable (HTTP 404, strike {n}/3). Auto-retry; account remains connected."
TERMINAL_404_COPY = (
    "Account no longer registered with Unipile (HTTP 404 on three checks in a row). "
    "Please reconnect."
)
STRIKES_TO_DISCONNECT = 3
# The mass-disconnect guard: a run may not flip more than this many accounts...
MASS_DISCONNECT_MAX = 5
# ...nor more than this share of the connected fleet (a run of one flip is never "mass").
MASS_DISCONNECT_FRACTION = 0.25
RECONNECT_LINK_TTL = timedelta(seconds=90)
CONNECTING_GRACE = timedelta(minutes=5)
RECONNECT_EMAIL_AFTER = timedelta(hours=24)
RECONNECT_TOKEN_SALT = "linkedin.reconnect"
RECONNECT_TOKEN_MAX_AGE = timedelta(days=7)


class LinkedInError(Exception):
    """Input or a request that cannot be accepted; `field` names the offending input."""

    def __init__(
        self, message: str, *, field: str | None = None, code: str = "validation_error"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class MassDisconnectAborted(Exception):
    """A run would flip too many accounts at once; nothing was flipped, an alert was raised."""


# --- the mass-disconnect guard --------------------------------------------------------------------


def connected_fleet_size() -> int:
    return LinkedInAccount.objects.filter(status=AccountStatus.CONNECTED).count()


@dataclass
class DisconnectRun:
    """One sweep's budget of flips away from `connected`.

    A run states up front how many accounts it means to flip (`planned`); `start` refuses the
    whole run when that is more than 5 accounts or more than 25% of the connected fleet, and
    raises an admin alert instead. `flip_account_status` then counts every flip against the plan,
    so a run cannot flip more than it declared.
    """

    cause: str
    planned: int
    fleet_size: int
    flipped: int = 0
    account_ids: list[str] = field(default_factory=list)

    @classmethod
    def start(
        cls, cause: str, candidates: Iterable[LinkedInAccount], *, now: datetime
    ) -> DisconnectRun:
        accounts = list(candidates)
        run = cls(cause=cause, planned=len(accounts), fleet_size=connected_fleet_size())
        run.account_ids = [str(a.pk) for a in accounts]
        if run.is_mass:
            _alert_mass_disconnect(run, accounts, now=now)
            raise MassDisconnectAborted(run.describe())
        return run

    @property
    def is_mass(self) -> bool:
        if self.planned <= 1:
            return False
        return self.planned > MASS_DISCONNECT_MAX or (
            self.planned > MASS_DISCONNECT_FRACTION * max(self.fleet_size, 1)
        )

    def describe(self) -> str:
        return (
            f"{self.cause}: would flip {self.planned} of {self.fleet_size} connected LinkedIn "
            f"accounts (limit {MASS_DISCONNECT_MAX} or {int(MASS_DISCONNECT_FRACTION * 100)}%); "
            "aborted, nothing flipped"
        )

    def take(self) -> None:
        if self.flipped >= self.planned:
            raise MassDisconnectAborted(
                f"{self.cause}: a flip beyond the {self.planned} the run declared"
            )
        self.flipped += 1


def _alert_mass_disconnect(
    run: DisconnectRun, accounts: list[LinkedInAccount], *, now: datetime
) -> None:
    log.critical("[MASS-DISCONNECT-GUARD] %s", run.describe())
    by_workspace: dict[uuid.UUID, list[str]] = {}
    for account in accounts:
        by_workspace.setdefault(account.workspace_id, []).append(str(account.pk))
    with transaction.atomic():
        for workspace_id, ids in by_workspace.items():
            AdminAlert.objects.create(
                workspace_id=workspace_id,
                kind=AdminAlertKind.MASS_DISCONNECT_ABORTED,
                message=run.describe(),
                data={"cause": run.cause, "accounts": ids, "fleet": run.fleet_size},
                created_at=now,
            )


def raise_alert(
    workspace: Workspace | uuid.UUID,
    kind: str,
    message: str,
    *,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> AdminAlert:
    workspace_id = workspace.pk if isinstance(workspace, Workspace) else workspace
    log.critical("[ADMIN-ALERT] %s: %s", kind, message)
    with transaction.atomic():
        return AdminAlert.objects.create(
            workspace_id=workspace_id, kind=kind, message=message, data=data or {}, created_at=now
        )


# --- the one door for status --------------------------------------------------------------------


def flip_account_status(
    account: LinkedInAccount,
    to: str,
    *,
    cause: str,
    actor: Actor,
    now: datetime,
    error: str | None = None,
    run: DisconnectRun | None = None,
) -> bool:
    """Move `account` to status `to`. Returns whether the status changed.

    `error` becomes `last_error` (ignored for `connected`, which clears it). A flip away from
    `connected` not asked for by a person needs a `run` (the mass-disconnect guard); without
    one, a run of one is started here.
    """
    to = AccountStatus(to)
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        before = locked.status
        if before == to:
            if error is not None and to != AccountStatus.CONNECTED and locked.last_error != error:
                locked.last_error = error
                locked.updated_at = now
                locked.save(update_fields=["last_error", "updated_at"])
            _copy_into(account, locked)
            return False
        leaving_connected = before == AccountStatus.CONNECTED
        if leaving_connected and actor.user is None:
            if run is None:
                run = DisconnectRun.start(cause, [locked], now=now)
            run.take()
        # The paired audit row first: the trigger on the account looks for it.
        LinkedInAccountAudit.objects.create(
            workspace_id=locked.workspace_id,
            account=locked,
            action="status_changed",
            from_status=before,
            to_status=to,
            cause=cause,
            actor_label=actor.label,
            error=error or "",
            created_at=now,
        )
        locked.status = to
        locked.status_changed_at = now
        locked.updated_at = now
        if to == AccountStatus.CONNECTED:
            locked.disconnected_at = None
            locked.disconnected_by = ""
            locked.last_error = ""
            locked.strikes = 0
            locked.last_strike_at = None
            locked.reconnect_email_sent_at = None
            locked.reconnect_link = ""
            locked.reconnect_link_expires_at = None
            # Reconnect clears the failure-rate window; caps and ramp position are kept.
            locked.failure_window_started_at = now
            if locked.first_connected_at is None:
                locked.first_connected_at = now
        else:
            if leaving_connected or locked.disconnected_at is None:
                locked.disconnected_at = now
            locked.disconnected_by = cause
            locked.last_error = error or ""
        if to == AccountStatus.RESTRICTED:
            # A restriction restarts the ramp at week 1 of the recovery strategy.
            locked.strategy = Strategy.RECOVERY
            locked.ramp_started_at = now
        locked.save()
        record_audit(
            workspace=locked.workspace,
            actor=actor,
            action="linkedin_account.status_changed",
            obj=locked,
            from_state=before,
            to_state=to,
            reason=error or cause,
            data={"cause": cause},
            now=now,
        )
        emit_event(
            workspace=locked.workspace,
            type="linkedin.account_status_changed",
            data={
                "accountId": str(locked.pk),
                "name": locked.name,
                "from": before,
                "to": to,
                "cause": cause,
                "error": locked.last_error,
            },
            now=now,
        )
    _copy_into(account, locked)
    return True


def _copy_into(target: LinkedInAccount, source: LinkedInAccount) -> None:
    for f in LinkedInAccount._meta.concrete_fields:
        setattr(target, f.attname, getattr(source, f.attname))


# --- creating, connecting, reconnecting ------------------------------------------------------------


def check_linkedin_seat(workspace: Workspace, now: datetime) -> None:
    """One seat per LinkedIn account in the workspace (unlimited when billing is off)."""
    seats = plan_state(workspace, now).linkedin_seats
    if seats is None:
        return
    current = LinkedInAccount.objects.filter(workspace=workspace, deleted_at__isnull=True).count()
    if current >= seats:
        raise QuotaExceeded(
            "linkedin_seat_limit_reached",
            f"This workspace has {seats} LinkedIn seat{'s' if seats != 1 else ''} and "
            f"{current} account{'s' if current != 1 else ''}; add a seat on the Billing page "
            "or remove an account first.",
            limit=seats,
            current=current,
        )


def create_account(
    workspace: Workspace,
    *,
    proxy: Proxy,
    strategy: str = Strategy.NEW_ACCOUNT,
    name: str = "",
    actor: Actor,
    now: datetime,
) -> LinkedInAccount:
    """A new account in `connecting`, waiting for the Unipile handshake."""
    if strategy not in Strategy.values:
        raise LinkedInError(
            f"Unknown strategy {strategy!r}; use one of {', '.join(Strategy.values)}.",
            field="strategy",
        )
    with transaction.atomic():
        # Serialise seat checks per workspace so two tabs cannot both take the last seat.
        Workspace.objects.select_for_update().get(pk=workspace.pk)
        check_linkedin_seat(workspace, now)
        account = LinkedInAccount(
            workspace=workspace,
            name=name[:200],
            strategy=strategy,
            ramp_started_at=now,
            status=AccountStatus.CONNECTING,
            status_changed_at=now,
            disconnected_at=now,
            disconnected_by="not_yet_connected",
            created_at=now,
            updated_at=now,
        )
        _apply_proxy(account, proxy)
        account.save()
        record_audit(
            workspace=workspace,
            actor=actor,
            action="linkedin_account.created",
            obj=account,
            to_state=AccountStatus.CONNECTING,
            data={"proxy": account.proxy_display, "strategy": strategy},
            now=now,
        )
    return account


def _apply_proxy(account: LinkedInAccount, proxy: Proxy) -> None:
    account.proxy_mode = proxy.mode
    account.proxy_country = proxy.country
    account.proxy_secret = crypto.encrypt_json({"url": proxy.url}) if proxy.url else ""
    account.proxy_display = proxy.display


def account_proxy(account: LinkedInAccount) -> Proxy:
    """The account's proxy with its password, for the connect call to Unipile."""
    if account.proxy_mode == ProxyMode.CUSTOM:
        return parse_proxy(ProxyMode.CUSTOM, crypto.decrypt_json(account.proxy_secret)["url"])
    return parse_proxy(account.proxy_mode, account.proxy_country or None)


def change_proxy(
    account: LinkedInAccount, mode: Any, value: Any, *, actor: Actor, now: datetime
) -> LinkedInAccount:
    try:
        proxy = parse_proxy(mode, value)
    except ProxyError as exc:
        raise LinkedInError(exc.message, field=exc.field) from exc
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        before = locked.proxy_display
        _apply_proxy(locked, proxy)
        locked.updated_at = now
        locked.save(
            update_fields=[
                "proxy_mode",
                "proxy_country",
                "proxy_secret",
                "proxy_display",
                "updated_at",
            ]
        )
        record_audit(
            workspace=locked.workspace,
            actor=actor,
            action="linkedin_account.proxy_changed",
            obj=locked,
            data={"from": before, "to": locked.proxy_display},
            now=now,
        )
    _copy_into(account, locked)
    return account


@dataclass(frozen=True)
class Profile:
    """What Unipile tells us about the LinkedIn member behind an account."""

    name: str = ""
    public_identifier: str = ""
    member_id: str = ""
    account_type: str = AccountType.UNKNOWN


def detect_account_type(premium_features: Iterable[str] | None, premium_id: str | None) -> str:
    """Account type from Unipile's `connection_params.im` (premiumFeatures / premiumId)."""
    features = {str(f).lower() for f in (premium_features or ())}
    if any("recruiter" in f for f in features):
        return AccountType.RECRUITER
    if any("sales_navigator" in f or "sales navigator" in f for f in features):
        return AccountType.SALES_NAVIGATOR
    if "premium" in features or premium_id:
        return AccountType.PREMIUM
    if premium_features is not None:
        return AccountType.FREE
    return AccountType.UNKNOWN


def link_unipile_account(
    account: LinkedInAccount, unipile_account_id: str, *, unipile_status: str, now: datetime
) -> LinkedInAccount:
    """Record the Unipile account behind our row (not a status change)."""
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        if locked.unipile_account_id and locked.unipile_account_id != unipile_account_id:
            raise LinkedInError(
                "This account is already linked to another Unipile account.", code="conflict"
            )
        clash = LinkedInAccount.objects.filter(unipile_account_id=unipile_account_id).exclude(
            pk=locked.pk
        )
        if clash.exists():
            raise LinkedInError(
                "That LinkedIn account is already connected as another card.", code="conflict"
            )
        locked.unipile_account_id = unipile_account_id
        locked.unipile_status = unipile_status
        locked.unipile_status_at = now
        locked.updated_at = now
        locked.save(
            update_fields=[
                "unipile_account_id",
                "unipile_status",
                "unipile_status_at",
                "updated_at",
            ]
        )
    _copy_into(account, locked)
    return account


def mark_connected(
    account: LinkedInAccount,
    *,
    profile: Profile | None,
    cause: str,
    actor: Actor,
    now: datetime,
) -> LinkedInAccount:
    """The handshake (or a reconnect) finished and Unipile says OK: connected, markers cleared,
    the profile and type refreshed. Caps and ramp position are kept."""
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        if profile is not None:
            locked.name = profile.name[:200] or locked.name
            locked.public_identifier = profile.public_identifier[:200]
            locked.provider_member_id = profile.member_id[:200]
            if profile.account_type != AccountType.UNKNOWN or not locked.account_type:
                locked.account_type = profile.account_type
        locked.unipile_status = "OK"
        locked.unipile_status_at = now
        locked.last_checked_at = now
        locked.save(
            update_fields=[
                "name",
                "public_identifier",
                "provider_member_id",
                "account_type",
                "unipile_status",
                "unipile_status_at",
                "last_checked_at",
            ]
        )
        flip_account_status(locked, AccountStatus.CONNECTED, cause=cause, actor=actor, now=now)
    _copy_into(account, locked)
    return account


def cached_reconnect_link(
    account: LinkedInAccount, make_link: Callable[[], str], *, now: datetime
) -> str:
    """The hosted-auth reconnect link: made once, then the same link for 90 seconds.

    The row lock is held while `make_link` asks Unipile on purpose: a double click waits for
    the first request's link instead of opening a second auth session.
    """
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        if (
            locked.reconnect_link
            and locked.reconnect_link_expires_at is not None
            and locked.reconnect_link_expires_at > now
        ):
            return locked.reconnect_link
        link = make_link()
        locked.reconnect_link = link
        locked.reconnect_link_expires_at = now + RECONNECT_LINK_TTL
        locked.save(update_fields=["reconnect_link", "reconnect_link_expires_at"])
    _copy_into(account, locked)
    return link


def disconnect_by_user(account: LinkedInAccount, *, actor: Actor, now: datetime) -> bool:
    return flip_account_status(
        account,
        AccountStatus.DISCONNECTED,
        cause="user",
        actor=actor,
        now=now,
        error="Disconnected by a person in WarmySender.",
    )


# --- what Unipile says: strikes, observations ------------------------------------------------------

# Unipile source status → (our status, last_error). OK and CONNECTING are handled apart.
UNIPILE_STATUS_MAP: dict[str, tuple[str, str]] = {
    "CREDENTIALS": (
        AccountStatus.NEEDS_VERIFICATION,
        "LinkedIn asked for a fresh login (Unipile status CREDENTIALS). Please reconnect.",
    ),
    "IN_APP_VALIDATION": (
        AccountStatus.NEEDS_VERIFICATION,
        "LinkedIn wants the login approved in its mobile app. Please reconnect.",
    ),
    "PERMISSIONS": (
        AccountStatus.ERROR,
        "Unipile lacks a permission on this account (PERMISSIONS). Please reconnect.",
    ),
    "ERROR": (AccountStatus.ERROR, "Unipile stopped syncing this account (ERROR)."),
    "STOPPED": (AccountStatus.ERROR, "Unipile stopped syncing this account (STOPPED)."),
    "DELETED": (
        AccountStatus.DISCONNECTED,
        "The account is no longer registered with Unipile (DELETED). Please reconnect.",
    ),
}
RESTRICTED_COPY = "LinkedIn restricted this account; it resumes on the recovery ramp once lifted."


@dataclass(frozen=True)
class Verdict:
    """One account's status check, decided before anything is written (so a run can be
    guarded as a whole)."""

    account: LinkedInAccount
    kind: str  # "ok" | "status" | "not_found" | "restricted" | "unknown"
    unipile_status: str = ""
    profile: Profile | None = None

    def target(self) -> tuple[str, str] | None:
        """The (status, error) this verdict flips to, or None for no flip."""
        if self.kind == "ok":
            return (
                (AccountStatus.CONNECTED, "")
                if self.account.status != AccountStatus.CONNECTED
                else None
            )
        if self.kind == "restricted":
            return AccountStatus.RESTRICTED, RESTRICTED_COPY
        if self.kind == "not_found":
            if self.account.strikes + 1 >= STRIKES_TO_DISCONNECT:
                return AccountStatus.DISCONNECTED, TERMINAL_404_COPY
            return None
        if self.kind == "status" and self.unipile_status in UNIPILE_STATUS_MAP:
            return UNIPILE_STATUS_MAP[self.unipile_status]
        return None


@dataclass
class ApplyReport:
    flipped: int = 0
    strikes: int = 0
    aborted: bool = False
    messages: list[str] = field(default_factory=list)


def apply_verdicts(verdicts: list[Verdict], *, cause: str, now: datetime) -> ApplyReport:
    """Write a batch of status-check verdicts through the guard. No Unipile call happens here.

    Flips away from `connected` are planned first: a batch that would flip too many aborts
    whole (nothing is written for those accounts, strikes included) and raises an alert.
    """
    actor = Actor.system(cause)
    report = ApplyReport()
    leaving = []
    for v in verdicts:
        target = v.target()
        if (
            v.account.status == AccountStatus.CONNECTED
            and target
            and target[0] != AccountStatus.CONNECTED
        ):
            leaving.append(v.account)
    try:
        run = DisconnectRun.start(cause, leaving, now=now)
    except MassDisconnectAborted as exc:
        report.aborted = True
        report.messages.append(str(exc))
        leaving_ids = {a.pk for a in leaving}
        verdicts = [v for v in verdicts if v.account.pk not in leaving_ids]
        run = DisconnectRun(cause=cause, planned=0, fleet_size=0)
    for v in verdicts:
        account = v.account
        if account.status == AccountStatus.CONNECTING:
            # Rows still connecting are linked by the handshake or the orphan watcher only.
            _observe(account, v.unipile_status or ("OK" if v.kind == "ok" else ""), now)
            continue
        if v.kind == "not_found":
            report.strikes += 1
            if _strike(account, now=now, run=run):
                report.flipped += 1
            continue
        target = v.target()
        if v.kind == "ok":
            _reset_strikes(account, now)
            if target:
                mark_connected(account, profile=v.profile, cause=cause, actor=actor, now=now)
                report.flipped += 1
            else:
                _observe(account, "OK", now, checked=True)
            continue
        _observe(account, v.unipile_status, now, checked=True)
        if target and flip_account_status(
            account, target[0], cause=cause, actor=actor, now=now, error=target[1], run=run
        ):
            report.flipped += 1
    return report


def _observe(
    account: LinkedInAccount, unipile_status: str, now: datetime, *, checked: bool = False
) -> None:
    fields: dict[str, Any] = {"unipile_status_at": now}
    if unipile_status:
        fields["unipile_status"] = unipile_status
    if checked:
        fields["last_checked_at"] = now
    LinkedInAccount.objects.filter(pk=account.pk).update(**fields)
    for name, value in fields.items():
        setattr(account, name, value)


def _reset_strikes(account: LinkedInAccount, now: datetime) -> None:
    """A successful check forgives earlier 404s (and drops their soft copy)."""
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        if locked.strikes == 0:
            return
        locked.strikes = 0
        locked.last_strike_at = None
        if locked.status == AccountStatus.CONNECTED:
            locked.last_error = ""
        locked.updated_at = now
        locked.save(update_fields=["strikes", "last_strike_at", "last_error", "updated_at"])
    _copy_into(account, locked)


def _strike(account: LinkedInAccount, *, now: datetime, run: DisconnectRun) -> bool:
    """Count one 404 on the account-status check. Returns whether the account was flipped."""
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        strikes = min(locked.strikes + 1, STRIKES_TO_DISCONNECT)
        locked.strikes = strikes
        locked.last_strike_at = now
        locked.last_checked_at = now
        locked.updated_at = now
        fields = ["strikes", "last_strike_at", "last_checked_at", "updated_at"]
        if strikes < STRIKES_TO_DISCONNECT and locked.status == AccountStatus.CONNECTED:
            locked.last_error = SOFT_STRIKE_COPY.format(n=strikes)
            fields.append("last_error")
        locked.save(update_fields=fields)
        flipped = False
        if strikes >= STRIKES_TO_DISCONNECT:
            flipped = flip_account_status(
                locked,
                AccountStatus.DISCONNECTED,
                cause="status_check_404",
                actor=Actor.system("status_check"),
                now=now,
                error=TERMINAL_404_COPY,
                run=run,
            )
    _copy_into(account, locked)
    return flipped


def record_activity(account: LinkedInAccount, now: datetime) -> None:
    LinkedInAccount.objects.filter(pk=account.pk).update(last_activity_at=now)


# --- cooldown and overrides --------------------------------------------------------------------


def apply_cannot_resend_yet(
    account: LinkedInAccount, *, now: datetime, rng: random.Random | None = None
) -> datetime:
    """Unipile answered `cannot_resend_yet`: the account waits 4–8 h. GREATEST in SQL, so a
    concurrent longer cooldown is never shortened."""
    candidate = limits.cooldown_after_cannot_resend(None, now, rng)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE linkedin_linkedinaccount
               SET cooldown_until = GREATEST(COALESCE(cooldown_until, %(c)s), %(c)s),
                   updated_at = %(now)s
             WHERE id = %(id)s
         RETURNING cooldown_until
            """,
            {"c": candidate, "now": now, "id": account.pk},
        )
        (until,) = cursor.fetchone()
        locked = LinkedInAccount.objects.get(pk=account.pk)
        record_audit(
            workspace=locked.workspace,
            actor=Actor.system("unipile"),
            action="linkedin_account.cooldown",
            obj=locked,
            reason=f"Account in cannot_resend_yet cooldown until {until.isoformat()}",
            now=now,
        )
    account.cooldown_until = until
    return until


def set_cap_overrides(
    account: LinkedInAccount,
    overrides: dict[str, Any],
    *,
    acknowledged: bool,
    actor: Actor,
    now: datetime,
) -> LinkedInAccount:
    """Custom caps per kind, only with an explicit acknowledgement of the risk; `{}` removes
    them. Never above the published ceilings."""
    if overrides and not acknowledged:
        raise LinkedInError(
            "Custom caps raise the risk of a LinkedIn restriction; confirm that you accept it.",
            field="acknowledged",
        )
    try:
        clean = limits.validate_overrides(account.account_type, overrides)
    except ValueError as exc:
        raise LinkedInError(str(exc), field="overrides") from exc
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        before = locked.cap_overrides
        locked.cap_overrides = clean
        locked.overrides_acknowledged_at = now if clean else None
        locked.overrides_acknowledged_by = actor.user if clean else None
        locked.updated_at = now
        locked.save(
            update_fields=[
                "cap_overrides",
                "overrides_acknowledged_at",
                "overrides_acknowledged_by",
                "updated_at",
            ]
        )
        record_audit(
            workspace=locked.workspace,
            actor=actor,
            action="linkedin_account.caps_overridden",
            obj=locked,
            data={"from": before, "to": clean, "acknowledged": acknowledged},
            now=now,
        )
    _copy_into(account, locked)
    return account


def effective_caps(account: LinkedInAccount, now: datetime) -> dict[str, int]:
    return {
        kind: limits.effective_cap(
            account.account_type,
            account.strategy,
            account.ramp_started_at,
            kind,
            now,
            account.cap_overrides,
        )
        for kind in limits.KINDS
    }


def usage(account: LinkedInAccount, now: datetime) -> dict[str, int]:
    """Used capacity per kind in its current window (this week's invites, today's others)."""
    result = {}
    for kind in limits.KINDS:
        result[kind] = (
            ActionUsage.objects.filter(
                account=account, kind=kind, reserved_at__gt=limits.window_start(kind, now)
            ).count()
            if kind in limits.WEEKLY_KINDS
            else ActionUsage.objects.filter(
                account=account, kind=kind, reserved_at__gte=limits.window_start(kind, now)
            ).count()
        )
    return result


# --- the reservation API ---------------------------------------------------------------------------


def reserve(
    account: LinkedInAccount, kind: str, now: datetime, *, reference: str = ""
) -> limits.Decision:
    """Reserve one `kind` action on the account: Granted, or Denied(reason, retry_at).

    Call it inside the transaction that writes the action's own event row: the usage row is
    part of that transaction, so a rolled-back action gives its capacity back. The account row
    lock serialises reservations on one account across processes, so no cap is passed.
    """
    if kind not in limits.KINDS:
        raise LinkedInError(f"Unknown action kind {kind!r}.", field="kind")
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        cap = limits.effective_cap(
            locked.account_type,
            locked.strategy,
            locked.ramp_started_at,
            kind,
            now,
            locked.cap_overrides,
        )
        start = limits.window_start(kind, now)
        window = (
            Q(reserved_at__gt=start) if kind in limits.WEEKLY_KINDS else Q(reserved_at__gte=start)
        )
        used = list(
            # No upper bound: a reservation stamped later by a worker whose clock runs ahead
            # still counts, so clock skew between processes cannot pass a cap.
            ActionUsage.objects.filter(window, account=locked, kind=kind).values_list(
                "reserved_at", flat=True
            )
        )
        recent = list(
            ActionUsage.objects.filter(
                account=locked, reserved_at__gt=now - limits.RATE_WINDOW
            ).values_list("reserved_at", flat=True)
        )
        decision = limits.decide(
            kind=kind,
            cap=cap,
            used_in_window=used,
            recent_actions=recent,
            connected=locked.status == AccountStatus.CONNECTED,
            cooldown_until=locked.cooldown_until,
            now=now,
        )
        if isinstance(decision, limits.Granted):
            ActionUsage.objects.create(
                workspace_id=locked.workspace_id,
                account=locked,
                kind=kind,
                reserved_at=now,
                reference=reference[:64],
            )
    return decision


# --- sweeps: database only, no client ------------------------------------------------------------


def link_orphans(now: datetime) -> int:
    """The hourly orphan watcher: rows stuck in `connecting` for over 5 minutes whose Unipile
    side was last seen OK (a webhook or a check recorded it) are linked and flipped to
    connected. Trusts the recorded status; calls nothing."""
    stuck = LinkedInAccount.objects.filter(
        status=AccountStatus.CONNECTING,
        status_changed_at__lt=now - CONNECTING_GRACE,
        unipile_status="OK",
        deleted_at__isnull=True,
    ).exclude(unipile_account_id="")
    linked = 0
    for account in stuck:
        flip_account_status(
            account,
            AccountStatus.CONNECTED,
            cause="orphan_watcher",
            actor=Actor.system("orphan_watcher"),
            now=now,
        )
        raise_alert(
            account.workspace_id,
            AdminAlertKind.ORPHAN_LINKED,
            f"Linked LinkedIn account {account} stuck in connecting since "
            f"{account.disconnected_at.isoformat() if account.disconnected_at else '?'}",
            now=now,
            data={"accountId": str(account.pk)},
        )
        linked += 1
    return linked


def reconnect_token(account: LinkedInAccount) -> str:
    return signing.dumps(
        {"a": str(account.pk), "w": str(account.workspace_id)}, salt=RECONNECT_TOKEN_SALT
    )


def account_from_reconnect_token(token: str) -> LinkedInAccount:
    try:
        payload = signing.loads(token, salt=RECONNECT_TOKEN_SALT, max_age=RECONNECT_TOKEN_MAX_AGE)
        return LinkedInAccount.objects.get(pk=payload["a"], workspace_id=payload["w"])
    except (signing.BadSignature, LinkedInAccount.DoesNotExist, KeyError, ValueError) as exc:
        raise LinkedInError(
            "This reconnect link is invalid or has expired.", code="not_found"
        ) from exc


def send_reconnect_emails(now: datetime) -> int:
    """Accounts disconnected for over 24 h get one email (to the workspace owner) with a
    signed one-click link to the reconnect screen. Sent at most once per disconnect."""
    due = LinkedInAccount.objects.filter(
        status__in=[
            AccountStatus.DISCONNECTED,
            AccountStatus.NEEDS_VERIFICATION,
            AccountStatus.ERROR,
        ],
        first_connected_at__isnull=False,
        disconnected_at__lt=now - RECONNECT_EMAIL_AFTER,
        reconnect_email_sent_at__isnull=True,
        deleted_at__isnull=True,
    ).select_related("workspace__owner")
    sent = 0
    for account in due:
        with transaction.atomic():
            # The conditional update claims the email: two workers never both send it.
            claimed = LinkedInAccount.objects.filter(
                pk=account.pk, reconnect_email_sent_at__isnull=True
            ).update(reconnect_email_sent_at=now)
            if not claimed:
                continue
            record_audit(
                workspace=account.workspace,
                actor=Actor.system("reconnect_email"),
                action="linkedin_account.reconnect_email_sent",
                obj=account,
                data={"to": account.workspace.owner.email},
                now=now,
            )
            token = reconnect_token(account)
            transaction.on_commit(partial(_send_reconnect_email, account, token))
        sent += 1
    return sent


def _send_reconnect_email(account: LinkedInAccount, token: str) -> None:
    from django.core.mail import send_mail

    link = f"{settings.SITE_URL}/linkedin/reconnect/{token}/"
    name = account.name or "LinkedIn"
    send_mail(
        subject=f"Your LinkedIn account {name} needs to be reconnected",
        message=(
            f"Your LinkedIn account {name} has been disconnected from WarmySender since "
            f"{account.disconnected_at:%d/%m/%Y %H:%M} UTC, so its campaigns are waiting.\n\n"
            f"Reconnect it in one click (no WarmySender log-in needed): {link}\n\n"
            "Caps, ramp progress and every prospect's step are kept. The link works for 7 days."
        ),
        from_email=None,
        recipient_list=[account.workspace.owner.email],
    )
