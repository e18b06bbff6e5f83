"""Unipile webhook intake: payloads become internal events first, then logic acts on those.

Unipile signs nothing, so every request must carry the install's secret in `X-Unipile-Secret`
(set as a custom header on the webhook in Unipile's dashboard). A redelivery is a no-op: each
event has a dedup key, and the receipt row with it is written in the transaction of the effect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from warmysender.audit.services import Actor
from warmysender.linkedin import services
from warmysender.linkedin.client import UnipileApi
from warmysender.linkedin.connection import finish_handshake
from warmysender.linkedin.models import (
    AccountStatus,
    AdminAlert,
    AdminAlertKind,
    LinkedInAccount,
    LinkedInAccountAudit,
    WebhookReceipt,
)

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Unipile-Secret"
STALL_AFTER = timedelta(minutes=15)
# Webhook flips arrive one by one, so the mass-disconnect guard counts them over a window.
WEBHOOK_STORM_WINDOW = timedelta(minutes=10)


class WebhookHeld(Exception):
    """A flip the webhook storm guard holds back."""


class IntakeError(Exception):
    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class InternalEvent:
    """A Unipile webhook in our words. `type` is one of account_status, account_linked,
    message_received, new_relation."""

    type: str
    unipile_account_id: str
    dedup_key: str
    status: str = (
        ""  # account_status: Unipile's message; account_linked: CREATION_SUCCESS/RECONNECTED
    )
    our_account_id: str = ""  # account_linked: the row named in the hosted-auth link
    data: dict[str, Any] = field(default_factory=dict)


def check_secret(provided: str | None) -> None:
    expected = settings.UNIPILE_WEBHOOK_SECRET
    if not expected:
        raise IntakeError(
            "UNIPILE_WEBHOOK_SECRET is not set on this installation; webhooks are refused.",
            status=503,
        )
    if not provided or not hmac.compare_digest(provided.encode(), expected.encode()):
        raise IntakeError(f"Missing or wrong {SECRET_HEADER} header.", status=401)


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntakeError("The body is not JSON.") from exc
    if not isinstance(body, dict):
        raise IntakeError("The body must be a JSON object.")
    return body


def normalise(body: dict[str, Any]) -> InternalEvent:
    """One Unipile payload → one InternalEvent, or IntakeError naming what is missing."""
    if isinstance(body.get("AccountStatus"), dict):
        inner = body["AccountStatus"]
        account_id = _text(inner, "account_id")
        message = _text(inner, "message").upper()
        return InternalEvent(
            "account_status",
            account_id,
            # Unipile's body has no id or time: a redelivery is recognised by content and
            # answers with the same effect (flips are idempotent, see handle_account_status).
            f"status:{account_id}:{message}",
            status=message,
        )
    if "status" in body and "account_id" in body and "name" in body:
        # The hosted-auth notify_url callback.
        account_id = _text(body, "account_id")
        status = _text(body, "status").upper()
        return InternalEvent(
            "account_linked",
            account_id,
            f"hosted:{status}:{account_id}:{body.get('name')}",
            status=status,
            our_account_id=str(body.get("name") or ""),
        )
    event = body.get("event")
    if event == "message_received":
        account_id = _text(body, "account_id")
        message_id = _text(body, "message_id")
        raw_sender = body.get("sender")
        sender: dict[str, Any] = raw_sender if isinstance(raw_sender, dict) else {}
        return InternalEvent(
            "message_received",
            account_id,
            f"message:{message_id}",
            data={
                "chatId": str(body.get("chat_id") or ""),
                "messageId": message_id,
                "text": str(body.get("message") or ""),
                "senderProviderId": str(sender.get("attendee_provider_id") or ""),
                "timestamp": str(body.get("timestamp") or ""),
            },
        )
    if event == "new_relation":
        account_id = _text(body, "account_id")
        member = _text(body, "user_provider_id")
        return InternalEvent(
            "new_relation",
            account_id,
            f"relation:{account_id}:{member}",
            data={
                "providerId": member,
                "publicIdentifier": str(body.get("user_public_identifier") or ""),
                "name": str(body.get("user_full_name") or ""),
            },
        )
    raise IntakeError(f"Unknown Unipile webhook (keys: {', '.join(sorted(body)) or 'none'}).")


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise IntakeError(f"The webhook has no {key}.")
    return value.strip()


@dataclass(frozen=True)
class IntakeResult:
    event: InternalEvent
    duplicate: bool = False
    ignored: str = ""  # why nothing was done (an account we do not know, ...)


def receive(
    raw: bytes, secret: str | None, *, now: datetime, client: UnipileApi | None = None
) -> IntakeResult:
    check_secret(secret)
    body = parse_body(raw)
    return handle(normalise(body), now=now, client=client, raw=body)


def receive_hosted_notify(
    raw: bytes, account: LinkedInAccount, *, now: datetime, client: UnipileApi | None
) -> IntakeResult:
    """The hosted-auth callback, authenticated by the signed token in its URL (which names
    `account`): it may only link that account."""
    body = parse_body(raw)
    event = normalise(body)
    if event.type != "account_linked" or event.our_account_id != str(account.pk):
        raise IntakeError("This callback is not about the account its link was made for.")
    return handle(event, now=now, client=client, raw=body)


def handle(
    event: InternalEvent,
    *,
    now: datetime,
    client: UnipileApi | None = None,
    raw: dict[str, Any] | None = None,
) -> IntakeResult:
    if event.type == "account_linked":
        account = LinkedInAccount.objects.filter(pk=event.our_account_id).first()
    else:
        account = LinkedInAccount.objects.filter(
            unipile_account_id=event.unipile_account_id
        ).first()
    if account is None:
        log.info("Unipile webhook for an account we do not know: %s", event.dedup_key)
        return IntakeResult(event, ignored="unknown account")
    key = event.dedup_key
    if event.type == "account_status":
        # The same message is a new event once our status moved on since it was last seen.
        key = f"{key}:{account.status_changed_at.isoformat()}"
    try:
        with transaction.atomic():
            duplicate = _record_and_apply(account, event, key, now=now, raw=raw)
    except WebhookHeld as held:
        services.raise_alert(
            account.workspace_id,
            AdminAlertKind.MASS_DISCONNECT_ABORTED,
            str(held),
            now=now,
            data={"accountId": str(account.pk), "event": event.dedup_key},
        )
        raise IntakeError(str(held), status=503) from held
    if duplicate:
        return IntakeResult(event, duplicate=True)
    if event.type == "account_linked" and event.status in ("CREATION_SUCCESS", "RECONNECTED"):
        finish_handshake(
            account,
            event.unipile_account_id,
            client,
            cause="reconnect" if event.status == "RECONNECTED" else "connect",
            now=now,
        )
    return IntakeResult(event)


def _record_and_apply(
    account: LinkedInAccount,
    event: InternalEvent,
    key: str,
    *,
    now: datetime,
    raw: dict[str, Any] | None,
) -> bool:
    """The receipt and the database-only effect, in the caller's transaction. Returns whether
    the event was a duplicate."""
    try:
        with transaction.atomic():
            WebhookReceipt.objects.create(
                workspace_id=account.workspace_id,
                account=account,
                dedup_key=key[:255],
                event_type=event.type,
                payload=raw or {},
                received_at=now,
            )
    except IntegrityError:
        return True
    _resolve_stall_alerts(account.workspace_id, now)
    if event.type in ("message_received", "new_relation"):
        # Conversations and acceptance detection consume these receipts (a later issue); here
        # they prove the account is alive.
        services.record_activity(account, now)
    if event.type == "account_status":
        # In the receipt's transaction: a failed or held flip leaves no receipt, so the
        # redelivery tries again.
        handle_account_status(account, event.status, now=now)
    return False


def handle_account_status(account: LinkedInAccount, message: str, *, now: datetime) -> None:
    """An account-status webhook. Only a person's own disconnect is never undone here."""
    if account.status == AccountStatus.DISCONNECTED and account.disconnected_by == "user":
        return
    actor = Actor.system("webhook")
    if message in ("OK", "RECONNECTED", "CREATION_SUCCESS", "SYNC_SUCCESS"):
        if account.status == AccountStatus.CONNECTING:
            # The orphan watcher links it if the handshake callback never comes.
            services._observe(account, "OK", now)
            return
        if account.status != AccountStatus.CONNECTED:
            services.mark_connected(account, profile=None, cause="webhook", actor=actor, now=now)
        return
    if message == "CONNECTING":
        return
    target = services.UNIPILE_STATUS_MAP.get(message)
    services._observe(account, message, now)
    if target is None or account.status == AccountStatus.CONNECTING:
        return
    if account.status == AccountStatus.CONNECTED and webhook_storm(now):
        # A burst of disconnect webhooks looks like a Unipile incident: hold the flip (the
        # receipt rolls back with it, and the 503 makes Unipile deliver it again later). The
        # status check meanwhile decides about the account as one guarded run.
        raise WebhookHeld(
            f"Held a {message} webhook for {account}: {services.MASS_DISCONNECT_MAX} or more "
            f"accounts were disconnected by webhooks in the last "
            f"{int(WEBHOOK_STORM_WINDOW.total_seconds() // 60)} minutes."
        )
    services.flip_account_status(
        account, target[0], cause="webhook", actor=actor, now=now, error=target[1]
    )


def webhook_storm(now: datetime) -> bool:
    """Whether webhooks already took more than the guard's absolute limit of accounts off
    `connected` fleet-wide within the window."""
    recent = LinkedInAccountAudit.objects.filter(
        action="status_changed",
        from_status=AccountStatus.CONNECTED,
        cause="webhook",
        created_at__gt=now - WEBHOOK_STORM_WINDOW,
    ).count()
    return recent >= services.MASS_DISCONNECT_MAX


def _resolve_stall_alerts(workspace_id: uuid.UUID, now: datetime) -> None:
    AdminAlert.objects.filter(
        workspace_id=workspace_id, kind=AdminAlertKind.WEBHOOKS_STALLED, resolved_at__isnull=True
    ).update(resolved_at=now)


def monitor_webhooks(now: datetime) -> int:
    """The 15-minute monitor: a workspace with connected accounts and no webhook for 15
    minutes gets one admin alert per stall (resolved by the next webhook). DB only."""
    raised = 0
    workspaces = (
        LinkedInAccount.objects.filter(status=AccountStatus.CONNECTED, deleted_at__isnull=True)
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    for workspace_id in workspaces:
        last = (
            WebhookReceipt.objects.filter(workspace_id=workspace_id)
            .order_by("-received_at")
            .values_list("received_at", flat=True)
            .first()
        )
        since = (
            LinkedInAccount.objects.filter(
                workspace_id=workspace_id, status=AccountStatus.CONNECTED
            )
            .order_by("status_changed_at")
            .values_list("status_changed_at", flat=True)
            .first()
        )
        reference = max(filter(None, [last, since]))
        if now - reference < STALL_AFTER:
            continue
        if AdminAlert.objects.filter(
            workspace_id=workspace_id,
            kind=AdminAlertKind.WEBHOOKS_STALLED,
            resolved_at__isnull=True,
        ).exists():
            continue
        services.raise_alert(
            workspace_id,
            AdminAlertKind.WEBHOOKS_STALLED,
            f"No Unipile webhook since {reference.isoformat()} while LinkedIn accounts are "
            "connected: check the webhook registration and UNIPILE_WEBHOOK_SECRET.",
            now=now,
            data={"last": last.isoformat() if last else None},
        )
        raised += 1
    return raised


def body_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()
