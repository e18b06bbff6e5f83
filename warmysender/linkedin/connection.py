"""The LinkedIn operations that talk to Unipile: connect, reconnect, the status check, deletion.

Each takes the client as an argument, so what may call Unipile is visible in its signature (the
sweeps in services.py take none). Network calls happen outside transactions; the verdicts are
written by services.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from warmysender.audit.services import Actor, record_audit
from warmysender.linkedin import client as unipile
from warmysender.linkedin import services
from warmysender.linkedin.client import Failure, UnipileApi
from warmysender.linkedin.models import (
    AccountStatus,
    AccountType,
    AdminAlertKind,
    LinkedInAccount,
    LinkedInAccountAudit,
    ProxyMode,
)
from warmysender.linkedin.services import LinkedInError, Profile, Verdict

log = logging.getLogger(__name__)

HOSTED_LINK_LIFETIME = timedelta(minutes=30)
HOSTED_SALT = "linkedin.hosted"
# Delete-safety layers (spec §5.6).
GONE_POLLS_NEEDED = 3
GONE_POLL_SPACING = timedelta(seconds=60)
# The confirmation must be current: polls from an old incident do not count.
GONE_POLLS_FRESH = timedelta(minutes=10)
DELETION_ARM_TTL = timedelta(hours=4)
DELETES_PER_DAY = 3


def make_client() -> UnipileApi:
    """The configured Unipile (or the bundled simulator when LINKEDIN_BACKEND=simulator, whose
    address `warmysender serve` puts in UNIPILE_DSN)."""
    if not settings.UNIPILE_DSN or not settings.UNIPILE_API_KEY:
        raise LinkedInError(
            "LinkedIn is not configured: set UNIPILE_DSN and UNIPILE_API_KEY (or "
            "LINKEDIN_BACKEND=simulator).",
            code="not_configured",
        )
    return unipile.UnipileClient(settings.UNIPILE_DSN, settings.UNIPILE_API_KEY)


# --- profiles and types -----------------------------------------------------------------------


def account_type_of(account: unipile.Account) -> str:
    im = (account.raw.get("connection_params") or {}).get("im") or {}
    if "premiumFeatures" not in im:
        # Nothing said: treated as Premium by the caps, shown as unknown.
        return AccountType.UNKNOWN
    return services.detect_account_type(account.premium_features, im.get("premiumId"))


def profile_of(account: unipile.Account) -> Profile:
    return Profile(
        name=account.name,
        public_identifier=account.public_identifier,
        member_id=account.provider_id,
        account_type=account_type_of(account),
    )


def verdict_for(account: LinkedInAccount, answer: unipile.Account | Failure) -> Verdict:
    if isinstance(answer, Failure):
        if answer.kind == "account_not_found":
            return Verdict(account, "not_found")
        if answer.kind == "restricted":
            return Verdict(account, "restricted")
        if answer.kind == "credentials":
            return Verdict(account, "status", unipile_status="CREDENTIALS")
        # Network, 5xx, 429, our API key: says nothing about the account.
        return Verdict(account, "unknown")
    if answer.status == "OK":
        return Verdict(account, "ok", unipile_status="OK", profile=profile_of(answer))
    return Verdict(account, "status", unipile_status=answer.status)


# --- hosted auth: connect and reconnect ----------------------------------------------------------


def hosted_token(account: LinkedInAccount) -> str:
    return signing.dumps({"a": str(account.pk)}, salt=HOSTED_SALT)


def account_from_hosted_token(token: str) -> LinkedInAccount | None:
    try:
        payload = signing.loads(token, salt=HOSTED_SALT, max_age=timedelta(days=2))
        return LinkedInAccount.objects.get(pk=payload["a"])
    except (signing.BadSignature, LinkedInAccount.DoesNotExist, KeyError, ValueError):
        return None


def _urls(account: LinkedInAccount) -> dict[str, str]:
    site = settings.SITE_URL.rstrip("/")
    return {
        # Unipile sends no custom header to notify_url: the signed token in the path is the
        # authentication, and it names the one account it may link.
        "notify_url": site + reverse("linkedin:hosted_notify", args=[hosted_token(account)]),
        "success_redirect_url": site + reverse("linkedin:returned", args=[account.pk]),
        "failure_redirect_url": site
        + reverse("linkedin:returned", args=[account.pk])
        + "?failed=1",
    }


def hosted_connect_link(account: LinkedInAccount, client: UnipileApi, *, now: datetime) -> str:
    if account.proxy_mode != ProxyMode.AUTO:
        raise LinkedInError(
            "The Unipile sign-in page picks the proxy automatically; use the credentials form "
            "to connect through a country or custom proxy.",
            field="method",
        )
    link = client.create_hosted_auth_link(
        expires_on=now + HOSTED_LINK_LIFETIME, name=str(account.pk), **_urls(account)
    )
    if isinstance(link, Failure):
        raise LinkedInError(f"Unipile did not give a sign-in link: {link}", code="unipile_error")
    return link.url


def reconnect_link(account: LinkedInAccount, client: UnipileApi, *, now: datetime) -> str:
    """The hosted reconnect page; a second click within 90 s gets the same link (one session)."""
    if not account.unipile_account_id:
        return hosted_connect_link(account, client, now=now)

    def make() -> str:
        link = client.create_hosted_auth_link(
            expires_on=now + HOSTED_LINK_LIFETIME,
            name=str(account.pk),
            reconnect_account=account.unipile_account_id,
            **_urls(account),
        )
        if isinstance(link, Failure):
            raise LinkedInError(
                f"Unipile did not give a reconnect link: {link}", code="unipile_error"
            )
        return link.url

    return services.cached_reconnect_link(account, make, now=now)


def finish_handshake(
    account: LinkedInAccount,
    unipile_account_id: str,
    client: UnipileApi | None,
    *,
    cause: str,
    now: datetime,
) -> LinkedInAccount:
    """Unipile says the login went through: link the row and connect it. With a client the
    profile and type are read; without one (or when Unipile does not answer) the status check
    fills them in later."""
    services.link_unipile_account(account, unipile_account_id, unipile_status="OK", now=now)
    profile = None
    if client is not None:
        answer = client.get_account(unipile_account_id)
        if not isinstance(answer, Failure):
            if answer.status != "OK":
                services.link_unipile_account(
                    account, unipile_account_id, unipile_status=answer.status, now=now
                )
                return account
            profile = profile_of(answer)
    return services.mark_connected(
        account, profile=profile, cause=cause, actor=Actor.system(cause), now=now
    )


# --- credentials connect with checkpoints ------------------------------------------------------


@dataclass(frozen=True)
class ConnectStep:
    """Where a credentials connect stands: connected, or a checkpoint to answer."""

    connected: bool
    checkpoint: str = ""


def _login_proxy(account: LinkedInAccount) -> tuple[unipile.Proxy | None, str | None]:
    options: dict[str, Any] = services.account_proxy(account).unipile_options()
    proxy = options.get("proxy")
    return (unipile.Proxy(**proxy) if proxy else None), options.get("country")


def connect_with_credentials(
    account: LinkedInAccount,
    client: UnipileApi,
    *,
    username: str,
    password: str,
    now: datetime,
) -> ConnectStep:
    if not username.strip() or not password:
        raise LinkedInError("Enter the LinkedIn email and password.", field="username")
    proxy, country = _login_proxy(account)
    login = unipile.CredentialsLogin(username=username.strip(), password=password)
    if account.unipile_account_id:
        outcome = client.reconnect(account.unipile_account_id, login, proxy=proxy, country=country)
    else:
        outcome = client.connect(login, proxy=proxy, country=country)
    return _after_outcome(account, client, outcome, now=now)


def connect_with_cookie(
    account: LinkedInAccount,
    client: UnipileApi,
    *,
    li_at: str,
    user_agent: str,
    li_a: str = "",
    now: datetime,
) -> ConnectStep:
    """The cookie method: the `li_at` session cookie (and `li_a` for Sales Navigator or
    Recruiter) with the browser's user agent, which must match or LinkedIn logs the session
    out."""
    if not li_at.strip():
        raise LinkedInError("Paste the li_at cookie of your LinkedIn session.", field="li_at")
    if not user_agent.strip():
        raise LinkedInError(
            "Paste the user agent of the browser the cookie comes from.", field="user_agent"
        )
    proxy, country = _login_proxy(account)
    login = unipile.CookieLogin(
        access_token=li_at.strip(),
        user_agent=user_agent.strip(),
        premium_token=li_a.strip() or None,
    )
    if account.unipile_account_id:
        outcome = client.reconnect(account.unipile_account_id, login, proxy=proxy, country=country)
    else:
        outcome = client.connect(login, proxy=proxy, country=country)
    return _after_outcome(account, client, outcome, now=now)


def solve_checkpoint(
    account: LinkedInAccount, client: UnipileApi, *, code: str, now: datetime
) -> ConnectStep:
    if not account.unipile_account_id:
        raise LinkedInError("Sign in first; there is no checkpoint to answer.", field="code")
    if not code.strip():
        raise LinkedInError("Enter the code LinkedIn sent.", field="code")
    outcome = client.solve_checkpoint(account.unipile_account_id, code.strip())
    return _after_outcome(account, client, outcome, now=now)


def _after_outcome(
    account: LinkedInAccount,
    client: UnipileApi,
    outcome: unipile.ConnectOutcome | Failure,
    *,
    now: datetime,
) -> ConnectStep:
    if isinstance(outcome, Failure):
        if outcome.kind == "checkpoint_invalid":
            raise LinkedInError("That code is not right; try again.", field="code")
        raise LinkedInError(f"LinkedIn did not accept the login: {outcome}", field="username")
    if isinstance(outcome, unipile.CheckpointRequired):
        services.link_unipile_account(
            account, outcome.account_id, unipile_status="CONNECTING", now=now
        )
        return ConnectStep(False, outcome.type)
    finish_handshake(account, outcome.account_id, client, cause="connect", now=now)
    return ConnectStep(True)


# --- the status check ----------------------------------------------------------------------------


def accounts_to_check() -> list[LinkedInAccount]:
    """Every linked account, except those a person disconnected (a live Unipile session must
    not reconnect them behind their back) and deleted ones."""
    return list(
        LinkedInAccount.objects.filter(deleted_at__isnull=True)
        .exclude(unipile_account_id="")
        .exclude(status=AccountStatus.DISCONNECTED, disconnected_by="user")
        .order_by("last_checked_at", "created_at")
    )


def check_statuses(
    client: UnipileApi, *, now: datetime, accounts: list[LinkedInAccount] | None = None
) -> services.ApplyReport:
    """Ask Unipile about every account, then write all verdicts through the mass-disconnect
    guard in one run."""
    targets = accounts_to_check() if accounts is None else accounts
    verdicts = [verdict_for(a, client.get_account(a.unipile_account_id)) for a in targets]
    return services.apply_verdicts(verdicts, cause="status_check", now=now)


def sync_status(
    account: LinkedInAccount, client: UnipileApi, *, now: datetime
) -> services.ApplyReport:
    """⋮ → Sync status: the check for one account."""
    if not account.unipile_account_id:
        raise LinkedInError("This account has not finished connecting yet.", code="conflict")
    if account.status == AccountStatus.CONNECTING:
        # A person asking is the handshake's last chance before the orphan watcher: finish it
        # when Unipile says the login went through.
        answer = client.get_account(account.unipile_account_id)
        if not isinstance(answer, Failure) and answer.status == "OK":
            finish_handshake(account, account.unipile_account_id, client, cause="sync", now=now)
            return services.ApplyReport(flipped=1)
    return check_statuses(client, now=now, accounts=[account])


# --- deletion at Unipile: six layers -------------------------------------------------------------


def arm_deletion(account: LinkedInAccount, *, actor: Actor, now: datetime) -> LinkedInAccount:
    """Layer 4: the per-account flag, valid for 4 hours."""
    with transaction.atomic():
        locked = LinkedInAccount.objects.select_for_update().get(pk=account.pk)
        locked.deletion_armed_until = now + DELETION_ARM_TTL
        locked.deletion_armed_by = actor.label
        locked.save(update_fields=["deletion_armed_until", "deletion_armed_by"])
        record_audit(
            workspace=locked.workspace,
            actor=actor,
            action="linkedin_account.deletion_armed",
            obj=locked,
            data={"until": locked.deletion_armed_until.isoformat()},
            now=now,
        )
    services._copy_into(account, locked)
    return account


def poll_gone(account: LinkedInAccount, client: UnipileApi, *, now: datetime) -> bool:
    """Layer 3: one confirmation poll. Returns whether Unipile answered 404. Anything else
    starts the count again."""
    answer = client.get_account(account.unipile_account_id)
    gone = isinstance(answer, Failure) and answer.kind == "account_not_found"
    polls = [*account.gone_polls, now.isoformat()] if gone else []
    LinkedInAccount.objects.filter(pk=account.pk).update(gone_polls=polls)
    account.gone_polls = polls
    return gone


class DeleteRefused(Exception):
    def __init__(self, layer: str, message: str) -> None:
        super().__init__(message)
        self.layer = layer
        self.message = message


def deletes_in_last_day(now: datetime) -> int:
    return LinkedInAccountAudit.objects.filter(
        action="deleted_at_unipile", created_at__gt=now - timedelta(hours=24)
    ).count()


def delete_at_unipile(
    account: LinkedInAccount,
    client: UnipileApi,
    *,
    actor: Actor,
    now: datetime,
    run: services.DisconnectRun | None = None,
) -> None:
    """Delete the account at Unipile, only when all six layers agree (else DeleteRefused,
    with an admin alert)."""
    try:
        _check_delete_layers(account, now=now, run=run)
    except DeleteRefused as exc:
        services.raise_alert(
            account.workspace_id,
            AdminAlertKind.DELETE_REFUSED,
            f"Refused to delete LinkedIn account {account} at Unipile ({exc.layer}): {exc.message}",
            now=now,
            data={"accountId": str(account.pk), "layer": exc.layer},
        )
        raise
    answer = client.delete_account(account.unipile_account_id)
    if isinstance(answer, Failure) and answer.kind != "account_not_found":
        raise LinkedInError(f"Unipile did not delete the account: {answer}", code="unipile_error")
    log.warning(
        "[SENSITIVE-OP] deleted LinkedIn account %s (unipile %s) at Unipile, by %s",
        account.pk,
        account.unipile_account_id,
        actor.label,
    )
    with transaction.atomic():
        if account.status != AccountStatus.DISCONNECTED:
            services.flip_account_status(
                account,
                AccountStatus.DISCONNECTED,
                cause="deleted_at_unipile",
                actor=actor,
                now=now,
                error="Deleted at Unipile; connect the account again to use it.",
                run=run,
            )
        LinkedInAccountAudit.objects.create(
            workspace_id=account.workspace_id,
            account=account,
            action="deleted_at_unipile",
            from_status=account.status,
            to_status=account.status,
            cause="delete",
            actor_label=actor.label,
            created_at=now,
            data={"unipile_account_id": account.unipile_account_id},
        )
        LinkedInAccount.objects.filter(pk=account.pk).update(
            deleted_at=now, deletion_armed_until=None, gone_polls=[]
        )
        record_audit(
            workspace=account.workspace,
            actor=actor,
            action="linkedin_account.deleted_at_unipile",
            obj=account,
            data={"unipile_account_id": account.unipile_account_id},
            now=now,
        )
    services.raise_alert(
        account.workspace_id,
        AdminAlertKind.SENSITIVE_OP,
        f"[SENSITIVE-OP] LinkedIn account {account} deleted at Unipile by {actor.label}",
        now=now,
        data={"accountId": str(account.pk)},
    )
    account.deleted_at = now


def _check_delete_layers(
    account: LinkedInAccount, *, now: datetime, run: services.DisconnectRun | None
) -> None:
    # 1. The environment kill switch, off by default.
    if not settings.LINKEDIN_DELETE_ENABLED:
        raise DeleteRefused(
            "kill_switch", "LINKEDIN_DELETE_ENABLED is off; deletions at Unipile are disabled."
        )
    # 2. The sanity threshold: a run deleting many accounts aborts (DisconnectRun.start).
    if run is not None and run.is_mass:
        raise DeleteRefused("sanity_threshold", run.describe())
    # 3. Three 404 polls, at least 60 s apart.
    polls = [datetime.fromisoformat(p) for p in account.gone_polls][-GONE_POLLS_NEEDED:]
    spaced = all(b - a >= GONE_POLL_SPACING for a, b in pairwise(polls))
    stale = bool(polls) and now - polls[-1] > GONE_POLLS_FRESH
    if len(polls) < GONE_POLLS_NEEDED or not spaced or stale:
        raise DeleteRefused(
            "confirmation_polls",
            f"needs {GONE_POLLS_NEEDED} consecutive 404 polls 60 s apart; has {len(polls)}"
            + ("" if spaced else " (too close together)")
            + (" (the last is over 10 minutes old)" if stale else ""),
        )
    # 4. The per-account flag with its 4-hour expiry.
    if account.deletion_armed_until is None or account.deletion_armed_until <= now:
        raise DeleteRefused(
            "deletion_flag", "deletion is not armed for this account (or the 4 h flag expired)"
        )
    # 5. At most 3 deletes in any 24 hours, counted from the audit log.
    done = deletes_in_last_day(now)
    if done >= DELETES_PER_DAY:
        raise DeleteRefused(
            "daily_cap", f"{done} accounts were deleted at Unipile in the last 24 h (cap 3)"
        )
    # 6. The audit-pairing trigger guards the status change written with the deletion.
