"""Every state change for mailboxes.

Callers (API handlers, pages, the sending engine) parse input, then call one function here. Each
owns its transaction and writes the audit row and domain events in it. Status changes go through
`set_status` only. Network I/O (connection tests) happens outside any transaction; only the
verdict is written inside one.

Input uses the API's names (camelCase), like the prospects services.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from django.db import IntegrityError, connection, transaction
from email_validator import EmailNotValidError, validate_email

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import check_mailbox_capacity
from warmysender.audit.services import Actor, emit_event, record_audit
from warmysender.lib import crypto
from warmysender.mailboxes import connection_test
from warmysender.mailboxes.connection_test import CheckResult, ConnectionReport
from warmysender.mailboxes.models import (
    HARD_DAILY_CAP,
    Mailbox,
    MailboxKind,
    MailboxStatus,
    Security,
)
from warmysender.mailboxes.presets import (
    CUSTOM,
    PRESET_PROVIDERS,
    PRESETS,
    SANDBOX,
    default_port,
    get_preset,
)

# The rules below are also the API's JSON Schema (api/mailbox_schemas.py), so both agree.
HOST_MAX = 253
HOST_CORE = (
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
# What is stripped around a host name: exactly what the schema's pattern allows there.
HOST_SPACE = " \t\n\r"
FROM_NAME_MAX = 100
USERNAME_MAX = 254
PASSWORD_MAX = 1000
SIGNATURE_MAX = 10_000
DEFAULT_DAILY_LIMIT = 30
_HOST_RE = re.compile(HOST_CORE)
# No control characters where values end up in headers (From name) or protocol commands.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# API name → model field, per kind of value.
TEXT_FIELDS: dict[str, tuple[str, int, bool]] = {
    # name: (model field, max length, control characters allowed)
    "fromName": ("from_name", FROM_NAME_MAX, False),
    "smtpUsername": ("smtp_username", USERNAME_MAX, False),
    "imapUsername": ("imap_username", USERNAME_MAX, False),
    "signature": ("signature", SIGNATURE_MAX, True),
}
HOST_FIELDS = {"smtpHost": "smtp_host", "imapHost": "imap_host"}
PORT_FIELDS = {"smtpPort": "smtp_port", "imapPort": "imap_port"}
SECURITY_FIELDS = {"smtpSecurity": "smtp_security", "imapSecurity": "imap_security"}
BOOL_FIELDS = {"sendingEnabled": "sending_enabled", "signatureIsHtml": "signature_is_html"}
PASSWORD_FIELDS = {"smtpPassword": "smtp_password", "imapPassword": "imap_password"}
CONNECTION_FIELDS = frozenset(
    {
        *HOST_FIELDS,
        *PORT_FIELDS,
        *SECURITY_FIELDS,
        *PASSWORD_FIELDS,
        "smtpUsername",
        "imapUsername",
    }
)
IMAP_SETTINGS = frozenset({"imapPort", "imapSecurity", "imapUsername", "imapPassword"})
UPDATABLE_FIELDS = frozenset(
    {*TEXT_FIELDS, *BOOL_FIELDS, *CONNECTION_FIELDS, "dailyLimit", "timezone"}
)
CREATE_FIELDS = frozenset({*UPDATABLE_FIELDS, "email", "kind", "provider"})


class MailboxError(Exception):
    """Input that cannot be accepted. `field` names the offending field (API name); `code` is
    `validation_error` or `conflict`."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "validation_error"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


@cache
def valid_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


# --- parsing input ------------------------------------------------------------------------------


def normalize_email(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise MailboxError("An email address is required.", field="email")
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise MailboxError(
            f"{raw.strip()!r} is not a valid email address: {exc}", field="email"
        ) from exc
    return result.normalized.lower()


def _text(name: str, value: Any) -> str:
    _, max_length, control_ok = TEXT_FIELDS[name]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MailboxError(f"{name} must be a string.", field=name)
    # Checked before stripping: a trailing line break is a control character too.
    if "\x00" in value or (not control_ok and _CONTROL_RE.search(value)):
        raise MailboxError(f"{name} must not contain control characters.", field=name)
    value = value.strip()
    if len(value) > max_length:
        raise MailboxError(f"{name} has at most {max_length} characters.", field=name)
    return value


def _host(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MailboxError(f"{name} must be a string.", field=name)
    host = value.strip(HOST_SPACE).lower()
    if not host:
        return ""
    if len(host) > HOST_MAX or not _HOST_RE.fullmatch(host):
        raise MailboxError(
            f"{host!r} is not a host name (like smtp.example.com) or IPv4 address.",
            field=name,
        )
    return host


def _port(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise MailboxError(f"{name} must be a port number between 1 and 65535.", field=name)
    return value


def _security(name: str, value: Any) -> str:
    if value not in Security.values:
        raise MailboxError(f"{name} must be one of {', '.join(Security.values)}.", field=name)
    return str(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise MailboxError(f"{name} must be true or false.", field=name)
    return value


def _password(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise MailboxError(f"{name} must be a string.", field=name)
    # Pasted App Passwords often carry a stray space at either end (the seed's own advice).
    value = value.strip()
    if not value:
        raise MailboxError(f"{name} must not be empty.", field=name)
    if "\x00" in value:
        raise MailboxError(f"{name} must not contain NUL characters.", field=name)
    if len(value) > PASSWORD_MAX:
        raise MailboxError(f"{name} has at most {PASSWORD_MAX} characters.", field=name)
    return value


def clean_daily_limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MailboxError("dailyLimit must be a whole number.", field="dailyLimit")
    if not 1 <= value <= HARD_DAILY_CAP:
        raise MailboxError(
            f"dailyLimit must be between 1 and {HARD_DAILY_CAP} emails per day "
            f"({HARD_DAILY_CAP} is the platform's hard cap per mailbox); got {value}.",
            field="dailyLimit",
        )
    return value


def clean_timezone(value: Any) -> str:
    if not isinstance(value, str) or value.strip() not in valid_timezones():
        raise MailboxError(
            f"{value!r} is not an IANA time zone such as Europe/Berlin or America/New_York.",
            field="timezone",
        )
    return value.strip()


def _reject_unknown(data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key in data:
        if key not in allowed:
            raise MailboxError(f"Unknown field {key!r}.", field=key)


def _settings_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The model values of the fields every mailbox has (not connection settings)."""
    fields: dict[str, Any] = {}
    for name in ("fromName", "signature"):
        if name in data:
            fields[TEXT_FIELDS[name][0]] = _text(name, data[name])
    for name, model_field in BOOL_FIELDS.items():
        if name in data:
            fields[model_field] = _bool(name, data[name])
    if "dailyLimit" in data:
        fields["daily_limit"] = clean_daily_limit(data["dailyLimit"])
    if "timezone" in data:
        fields["timezone"] = clean_timezone(data["timezone"])
    return fields


# --- credentials ----------------------------------------------------------------------------------


def mailbox_passwords(mailbox: Mailbox) -> dict[str, str]:
    """The decrypted passwords ({"smtp_password", "imap_password"}), or {} when none are stored.
    Raises crypto.UnreadableSecret when the key ring cannot read them."""
    if not mailbox.credentials:
        return {}
    return {str(k): str(v) for k, v in crypto.decrypt_json(mailbox.credentials).items()}


def _encrypt(passwords: Mapping[str, str]) -> str:
    kept = {k: v for k, v in passwords.items() if v}
    return crypto.encrypt_json(kept) if kept else ""


# --- create ----------------------------------------------------------------------------------------


def _port_for(
    data: Mapping[str, Any], protocol: str, security: str, preset_port: int | None
) -> int:
    name = f"{protocol}Port"
    if name in data:
        return _port(name, data[name])
    if f"{protocol}Security" in data or preset_port is None:
        return default_port(protocol, security)
    return preset_port


def _connection_fields(
    data: Mapping[str, Any], provider: str, email: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Model values of the SMTP/IMAP settings of a new mailbox (preset first, then what was
    given), and its passwords."""
    preset = get_preset(provider)
    fields: dict[str, Any] = {}
    smtp_host = _host("smtpHost", data["smtpHost"]) if "smtpHost" in data else preset.smtp_host
    if not smtp_host:
        raise MailboxError("The SMTP host is required.", field="smtpHost")
    smtp_security = (
        _security("smtpSecurity", data["smtpSecurity"])
        if "smtpSecurity" in data
        else preset.smtp_security
    )
    fields.update(
        smtp_host=smtp_host,
        smtp_security=smtp_security,
        smtp_port=_port_for(data, "smtp", smtp_security, preset.smtp_port),
    )
    smtp_username = _text("smtpUsername", data["smtpUsername"]) if "smtpUsername" in data else email
    fields["smtp_username"] = smtp_username

    imap_host = _host("imapHost", data["imapHost"]) if "imapHost" in data else preset.imap_host
    if not imap_host and IMAP_SETTINGS & set(data):
        # IMAP settings without a host: the usual custom setup, one server for both.
        imap_host = smtp_host
    if imap_host:
        imap_security = (
            _security("imapSecurity", data["imapSecurity"])
            if "imapSecurity" in data
            else preset.imap_security
        )
        fields.update(
            imap_host=imap_host,
            imap_security=imap_security,
            imap_port=_port_for(data, "imap", imap_security, preset.imap_port),
            imap_username=(
                _text("imapUsername", data["imapUsername"])
                if "imapUsername" in data
                else smtp_username
            ),
        )

    smtp_password = (
        _password("smtpPassword", data["smtpPassword"]) if "smtpPassword" in data else ""
    )
    if provider in PRESET_PROVIDERS and not smtp_password:
        raise MailboxError(f"Enter the password. {preset.help_text}", field="smtpPassword")
    imap_password = (
        _password("imapPassword", data["imapPassword"]) if "imapPassword" in data else smtp_password
    )
    return fields, {"smtp_password": smtp_password, "imap_password": imap_password}


def create_mailbox(
    workspace: Workspace, data: Mapping[str, Any], *, actor: Actor, now: datetime
) -> Mailbox:
    """A new mailbox. SMTP mailboxes start `disconnected` until a connection test passes;
    sandbox mailboxes have no servers and are `connected` at once."""
    _reject_unknown(data, CREATE_FIELDS)
    email = normalize_email(data.get("email"))
    provider = data.get("provider", SANDBOX if data.get("kind") == MailboxKind.SANDBOX else CUSTOM)
    if provider not in (*PRESETS, SANDBOX):
        raise MailboxError(f"Unknown provider {provider!r}.", field="provider")
    kind = data.get("kind", MailboxKind.SANDBOX if provider == SANDBOX else MailboxKind.SMTP)
    if kind not in MailboxKind.values:
        raise MailboxError(f"kind must be one of {', '.join(MailboxKind.values)}.", field="kind")
    if (kind == MailboxKind.SANDBOX) != (provider == SANDBOX):
        raise MailboxError(
            "Sandbox mailboxes have the provider 'sandbox', and only they do.", field="provider"
        )
    fields = _settings_fields(data)
    if kind == MailboxKind.SANDBOX:
        given = sorted(CONNECTION_FIELDS & set(data))
        if given:
            raise MailboxError(
                "Sandbox mailboxes have no server settings or passwords.", field=given[0]
            )
        passwords: dict[str, str] = {}
        status = MailboxStatus.CONNECTED
    else:
        connection_fields, passwords = _connection_fields(data, provider, email)
        fields.update(connection_fields)
        status = MailboxStatus.DISCONNECTED
    mailbox = Mailbox(
        workspace=workspace,
        email=email,
        kind=kind,
        provider=provider,
        status=status,
        credentials=_encrypt(passwords),
        created_at=now,
        updated_at=now,
        **fields,
    )
    with transaction.atomic():
        # Serialise creators in this workspace so the plan's mailbox limit holds under concurrency.
        _lock_workspace(workspace, "mailbox-quota")
        check_mailbox_capacity(workspace, now)
        if Mailbox.objects.filter(workspace=workspace, email=email).exists():
            raise _duplicate(email)
        try:
            with transaction.atomic():
                mailbox.save(force_insert=True)
        except IntegrityError as exc:
            raise _duplicate(email) from exc
        record_audit(
            workspace=workspace,
            actor=actor,
            action="mailbox.created",
            obj=mailbox,
            to_state=status,
            data={"email": email, "kind": kind, "provider": provider},
            now=now,
        )
        emit_event(
            workspace=workspace,
            type="mailbox.created",
            data={"mailboxId": str(mailbox.pk), "email": email, "kind": kind, "status": status},
            now=now,
        )
    return mailbox


def _duplicate(email: str) -> MailboxError:
    return MailboxError(
        f"This workspace already has the mailbox {email}.", field="email", code="conflict"
    )


def _lock_workspace(workspace: Workspace, purpose: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s || ':' || %s))", [purpose, str(workspace.pk)]
        )


# --- update ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailboxUpdate:
    mailbox: Mailbox
    changed: list[str] = field(default_factory=list)  # API names of the fields that changed
    # The connection test run because server settings or passwords changed, else None.
    report: ConnectionReport | None = None


def update_mailbox(
    mailbox: Mailbox,
    data: Mapping[str, Any],
    *,
    actor: Actor,
    now: datetime,
    timeout: float = connection_test.DEFAULT_TIMEOUT,
) -> MailboxUpdate:
    """Change settings; only the fields given change. New server settings or passwords are
    tested at once (re-entering a password is how a disconnected mailbox reconnects)."""
    _reject_unknown(data, UPDATABLE_FIELDS)
    if mailbox.kind == MailboxKind.SANDBOX:
        given = sorted(CONNECTION_FIELDS & set(data))
        if given:
            raise MailboxError(
                "Sandbox mailboxes have no server settings or passwords.",
                field=given[0],
                code="conflict",
            )
    fields = _settings_fields(data)
    new_passwords: dict[str, str] = {}
    if mailbox.kind == MailboxKind.SMTP:
        fields.update(_changed_connection_fields(mailbox, data))
        for name, key in PASSWORD_FIELDS.items():
            if name in data:
                new_passwords[key] = _password(name, data[name])
    credentials_changed = False
    with transaction.atomic():
        locked = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
        changed = [name for name, value in fields.items() if getattr(locked, name) != value]
        before = {_api_name(n): getattr(locked, n) for n in changed if n != "signature"}
        if new_passwords:
            stored = mailbox_passwords_or_empty(locked)
            merged = {**stored, **new_passwords}
            # One password for both servers (the usual case) stays one password.
            shared = stored.get("imap_password") == stored.get("smtp_password")
            if "imap_password" not in new_passwords and shared:
                merged["imap_password"] = new_passwords["smtp_password"]
            if merged != stored:
                locked.credentials = _encrypt(merged)
                credentials_changed = True
        if not changed and not credentials_changed:
            _copy_into(mailbox, locked)
            return MailboxUpdate(mailbox)
        for name in changed:
            setattr(locked, name, fields[name])
        locked.updated_at = now
        extra = ["credentials"] if credentials_changed else []
        locked.save(update_fields=[*changed, *extra, "updated_at"])
        api_names = sorted(_api_name(n) for n in changed) + extra
        record_audit(
            workspace=locked.workspace,
            actor=actor,
            action="mailbox.updated",
            obj=locked,
            # Never the passwords, not even encrypted.
            data={"changed": api_names, "before": before},
            now=now,
        )
    _copy_into(mailbox, locked)
    needs_test = credentials_changed or any(_api_name(n) in CONNECTION_FIELDS for n in changed)
    report = (
        run_connection_test(mailbox, actor=actor, now=now, timeout=timeout) if needs_test else None
    )
    return MailboxUpdate(mailbox, api_names, report)


def mailbox_passwords_or_empty(mailbox: Mailbox) -> dict[str, str]:
    """The stored passwords, or {} when they cannot be decrypted (new ones replace them)."""
    try:
        return mailbox_passwords(mailbox)
    except crypto.UnreadableSecret:
        return {}


_MODEL_TO_API = {
    **{model: api for api, (model, _, _) in TEXT_FIELDS.items()},
    **{model: api for api, model in HOST_FIELDS.items()},
    **{model: api for api, model in PORT_FIELDS.items()},
    **{model: api for api, model in SECURITY_FIELDS.items()},
    **{model: api for api, model in BOOL_FIELDS.items()},
    "daily_limit": "dailyLimit",
    "timezone": "timezone",
}


def _api_name(model_field: str) -> str:
    return _MODEL_TO_API.get(model_field, model_field)


def _changed_connection_fields(mailbox: Mailbox, data: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "smtpHost" in data:
        host = _host("smtpHost", data["smtpHost"])
        if not host:
            raise MailboxError("The SMTP host is required.", field="smtpHost")
        fields["smtp_host"] = host
    for protocol in ("smtp", "imap"):
        if f"{protocol}Security" in data:
            fields[f"{protocol}_security"] = _security(
                f"{protocol}Security", data[f"{protocol}Security"]
            )
        if f"{protocol}Port" in data:
            fields[f"{protocol}_port"] = _port(f"{protocol}Port", data[f"{protocol}Port"])
        if f"{protocol}Username" in data:
            fields[f"{protocol}_username"] = _text(
                f"{protocol}Username", data[f"{protocol}Username"]
            )
    imap_host = _host("imapHost", data["imapHost"]) if "imapHost" in data else None
    if imap_host == "":
        # No IMAP server any more (sending only; replies are not detected).
        fields.update(imap_host="", imap_port=None)
    elif not mailbox.imap_host and (imap_host or IMAP_SETTINGS & set(data)):
        # IMAP is being added; without a host given, at the SMTP server's host.
        fields["imap_host"] = imap_host or fields.get("smtp_host", mailbox.smtp_host)
        security = fields.setdefault("imap_security", mailbox.imap_security)
        fields.setdefault("imap_port", default_port("imap", security))
        fields.setdefault("imap_username", fields.get("smtp_username", mailbox.smtp_username))
    elif imap_host:
        fields["imap_host"] = imap_host
    return fields


def _copy_into(target: Mailbox, source: Mailbox) -> None:
    for f in Mailbox._meta.concrete_fields:
        setattr(target, f.attname, getattr(source, f.attname))


# --- status: the one door ------------------------------------------------------------------------------


def set_status(
    mailbox: Mailbox,
    status: str,
    *,
    error: str = "",
    actor: Actor,
    now: datetime,
    checked: bool = False,
) -> bool:
    """Move the mailbox to `status` (with `error` for `error`/`disconnected`), writing the audit
    row and the `mailbox.status_changed` event when the status actually changes. `checked`
    stamps `last_checked_at` (a connection test just ran). Returns whether the status changed.
    A connected mailbox carries no error (the database insists)."""
    status = MailboxStatus(status)
    error = "" if status == MailboxStatus.CONNECTED else error.replace("\x00", "")
    with transaction.atomic():
        locked = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
        before = locked.status
        update_fields = []
        if locked.status != status:
            locked.status = status
            update_fields.append("status")
        if locked.last_error != error:
            locked.last_error = error
            update_fields.append("last_error")
        if checked:
            locked.last_checked_at = now
            update_fields.append("last_checked_at")
        if update_fields:
            locked.save(update_fields=update_fields)
        changed = before != status
        if changed:
            record_audit(
                workspace=locked.workspace,
                actor=actor,
                action="mailbox.status_changed",
                obj=locked,
                from_state=before,
                to_state=status,
                reason=error,
                now=now,
            )
            emit_event(
                workspace=locked.workspace,
                type="mailbox.status_changed",
                data={
                    "mailboxId": str(locked.pk),
                    "email": locked.email,
                    "from": before,
                    "to": status,
                    "error": error,
                },
                now=now,
            )
    _copy_into(mailbox, locked)
    return changed


def run_connection_test(
    mailbox: Mailbox,
    *,
    actor: Actor,
    now: datetime,
    timeout: float = connection_test.DEFAULT_TIMEOUT,
) -> ConnectionReport:
    """Test the stored settings and record the verdict: `connected`, or `error` with the
    errors and hints in `last_error`."""
    try:
        report = connection_test.test_connection(mailbox, now=now, timeout=timeout)
    except crypto.UnreadableSecret as exc:
        failed = CheckResult(
            "smtp",
            False,
            str(exc),
            "The stored password cannot be read (the credentials keys changed). Enter the "
            "password again.",
        )
        report = ConnectionReport(failed, None, now)
    set_status(
        mailbox,
        MailboxStatus.CONNECTED if report.ok else MailboxStatus.ERROR,
        error=report.summary(),
        actor=actor,
        now=now,
        checked=True,
    )
    return report


# --- delete -------------------------------------------------------------------------------------------

DeleteHook = Callable[[Mailbox, Actor, datetime], None]

# Called inside delete_mailbox's transaction, with the mailbox row locked, before the row goes.
# Apps above this one (sequences: release the enrollments assigned to the mailbox) append their
# function here from their AppConfig.ready(); this app cannot import them (dependencies point up).
# A hook that raises aborts the deletion.
before_mailbox_delete: list[DeleteHook] = []


def delete_mailbox(mailbox: Mailbox, *, actor: Actor, now: datetime) -> None:
    """Delete the mailbox and its captured sandbox messages. Reconnecting later creates a new
    mailbox record."""
    with transaction.atomic():
        locked = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
        for hook in list(before_mailbox_delete):
            hook(locked, actor, now)
        record_audit(
            workspace=locked.workspace,
            actor=actor,
            action="mailbox.deleted",
            obj=locked,
            from_state=locked.status,
            data={"email": locked.email, "kind": locked.kind},
            now=now,
        )
        emit_event(
            workspace=locked.workspace,
            type="mailbox.deleted",
            data={"mailboxId": str(locked.pk), "email": locked.email},
            now=now,
        )
        locked.delete()


# --- key rotation -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    rotated: int
    unreadable: list[uuid.UUID]


def rotate_all_credentials(*, now: datetime, batch_size: int = 200) -> Rotation:
    """Re-encrypt every stored password with the first key of CREDENTIALS_KEYS. Afterwards the
    older keys can be removed. Mailboxes whose secret no key reads are listed, not changed."""
    actor = Actor.system("rotate_credentials")
    rotated = 0
    unreadable: list[uuid.UUID] = []
    last: uuid.UUID | None = None
    while True:
        with transaction.atomic():
            qs = Mailbox.objects.exclude(credentials="").order_by("pk")
            if last is not None:
                qs = qs.filter(pk__gt=last)
            batch = list(
                qs.select_related("workspace").select_for_update(of=("self",))[:batch_size]
            )
            if not batch:
                return Rotation(rotated, unreadable)
            for mailbox in batch:
                try:
                    mailbox.credentials = crypto.rotate(mailbox.credentials)
                except crypto.UnreadableSecret:
                    unreadable.append(mailbox.pk)
                    continue
                mailbox.save(update_fields=["credentials"])
                record_audit(
                    workspace=mailbox.workspace,
                    actor=actor,
                    action="mailbox.credentials_rotated",
                    obj=mailbox,
                    now=now,
                )
                rotated += 1
            last = batch[-1].pk
