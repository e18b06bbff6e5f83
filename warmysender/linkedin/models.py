"""LinkedIn accounts, their state machine, caps and ramps.

The account's status is guarded by the database (migration 0002): a trigger refuses any status
change that has no paired `LinkedInAccountAudit` row written in the same transaction, and CHECK
constraints refuse a connected row that carries a terminal error or a disconnect timestamp.
`services.flip_account_status` is the one door that satisfies both.
"""

from __future__ import annotations

import uuid

from django.db import models

from warmysender.accounts.models import TenantModel, User


class AccountStatus(models.TextChoices):
    CONNECTING = "connecting", "Connecting"
    CONNECTED = "connected", "Connected"
    NEEDS_VERIFICATION = "needs_verification", "Needs verification"
    DISCONNECTED = "disconnected", "Disconnected"
    RESTRICTED = "restricted", "Restricted"
    ERROR = "error", "Error"


# Statuses a person fixes by reconnecting ("Reconnect needed" pill and banner).
RECONNECT_STATUSES = frozenset(
    {AccountStatus.NEEDS_VERIFICATION, AccountStatus.DISCONNECTED, AccountStatus.ERROR}
)


class AccountType(models.TextChoices):
    FREE = "free", "Free"
    PREMIUM = "premium", "Premium"
    SALES_NAVIGATOR = "sales_navigator", "Sales Navigator"
    RECRUITER = "recruiter", "Recruiter"
    # Caps treat an unknown type as Premium (never as Free): see limits.effective_type.
    UNKNOWN = "unknown", "Unknown"


class Strategy(models.TextChoices):
    NEW_ACCOUNT = "new_account", "New account"
    ESTABLISHED = "established", "Established"
    VETERAN = "veteran", "Veteran"
    RECOVERY = "recovery", "Recovery"


class ProxyMode(models.TextChoices):
    AUTO = "auto", "Automatic"
    COUNTRY = "country", "Country"
    CUSTOM = "custom", "Custom"


class ActionKind(models.TextChoices):
    INVITE = "invite", "Invitations"
    MESSAGE = "message", "Messages"
    INMAIL = "inmail", "InMails"
    PROFILE_VIEW = "profile_view", "Profile views"
    ENGAGEMENT = "engagement", "Engagements"


# The phrases of a terminal disconnect. A connected row must never carry one (the split state
# of seed 002); the soft strike copy deliberately contains none of them.
TERMINAL_ERROR_REGEX = r"(no longer registered|please reconnect|account not found.*reconnect)"


class LinkedInAccount(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Unipile's account id; empty until the hosted-auth handshake links the row.
    unipile_account_id = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=200, blank=True)
    public_identifier = models.CharField(max_length=200, blank=True)
    provider_member_id = models.CharField(max_length=200, blank=True)
    account_type = models.CharField(
        max_length=20, choices=AccountType.choices, default=AccountType.UNKNOWN
    )
    strategy = models.CharField(
        max_length=20, choices=Strategy.choices, default=Strategy.NEW_ACCOUNT
    )
    # Week 1 of the ramp starts here; a restriction restarts it (recovery strategy).
    ramp_started_at = models.DateTimeField()

    status = models.CharField(
        max_length=20, choices=AccountStatus.choices, default=AccountStatus.CONNECTING
    )
    status_changed_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    # "Not connected since": set for every status but `connected` (the database insists), so a
    # row that never connected carries its creation time here.
    disconnected_at = models.DateTimeField(null=True, blank=True)
    # The cause of the last flip away from connected (`status_check`, `webhook`, `user`, ...).
    disconnected_by = models.CharField(max_length=64, blank=True)
    # Historical, shown apart from the live pill; never cleared.
    first_connected_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # What Unipile last said about the account (OK, CREDENTIALS, STOPPED, ...), from a webhook
    # or a status check. The orphan watcher trusts it instead of calling Unipile.
    unipile_status = models.CharField(max_length=32, blank=True)
    unipile_status_at = models.DateTimeField(null=True, blank=True)

    # The 3-strike 404 guard.
    strikes = models.PositiveSmallIntegerField(default=0)
    last_strike_at = models.DateTimeField(null=True, blank=True)
    # `cannot_resend_yet`: nothing is sent before this (only ever moved later).
    cooldown_until = models.DateTimeField(null=True, blank=True)
    # Start of the failure-rate window campaigns read; reconnect moves it to "now".
    failure_window_started_at = models.DateTimeField(null=True, blank=True)

    proxy_mode = models.CharField(max_length=10, choices=ProxyMode.choices, default=ProxyMode.AUTO)
    # ISO 3166 alpha-2 for `country`.
    proxy_country = models.CharField(max_length=2, blank=True)
    # `custom`: MultiFernet token (lib.crypto) of the whole proxy URL; `proxy_display` is the
    # same URL without the password, for pages and the API.
    proxy_secret = models.TextField(blank=True)
    proxy_display = models.CharField(max_length=300, blank=True)

    # Per-kind cap overrides {kind: int}, never above the published ceilings (limits.py); only
    # set together with an acknowledgement of the risk.
    cap_overrides = models.JSONField(default=dict, blank=True)
    overrides_acknowledged_at = models.DateTimeField(null=True, blank=True)
    overrides_acknowledged_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Reconnect idempotency: the hosted-auth link handed out, reused for 90 seconds.
    reconnect_link = models.TextField(blank=True)
    reconnect_link_expires_at = models.DateTimeField(null=True, blank=True)
    # The one reconnect email per disconnect; cleared when the account connects again.
    reconnect_email_sent_at = models.DateTimeField(null=True, blank=True)

    # Deletion at Unipile (six layers, services.delete_at_unipile): the per-account flag with
    # its 4-hour expiry, and the 404 confirmation polls (ISO timestamps).
    deletion_armed_until = models.DateTimeField(null=True, blank=True)
    deletion_armed_by = models.CharField(max_length=120, blank=True)
    gone_polls = models.JSONField(default=list, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["unipile_account_id"],
                condition=~models.Q(unipile_account_id=""),
                name="linkedin_account_unipile_id_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=AccountStatus.values),
                name="linkedin_account_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(account_type__in=AccountType.values),
                name="linkedin_account_type_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(strategy__in=Strategy.values),
                name="linkedin_account_strategy_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(proxy_mode__in=ProxyMode.values),
                name="linkedin_account_proxy_mode_valid",
            ),
            # Bidirectional: connected ⇔ no disconnect timestamp.
            models.CheckConstraint(
                condition=(
                    models.Q(status=AccountStatus.CONNECTED, disconnected_at__isnull=True)
                    | (
                        ~models.Q(status=AccountStatus.CONNECTED)
                        & models.Q(disconnected_at__isnull=False)
                    )
                ),
                name="linkedin_account_connected_iff_no_disconnect",
            ),
            # No split state: connected never carries a terminal disconnect text.
            models.CheckConstraint(
                condition=~models.Q(status=AccountStatus.CONNECTED)
                | ~models.Q(last_error__iregex=TERMINAL_ERROR_REGEX),
                name="linkedin_accounts_no_split_state_chk",
            ),
            models.CheckConstraint(
                condition=models.Q(strikes__lte=3), name="linkedin_account_strikes_range"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="linkedin_account_page"),
            models.Index(fields=["status", "status_changed_at"], name="linkedin_account_status"),
        ]

    def __str__(self) -> str:
        return self.name or self.unipile_account_id or str(self.pk)

    @property
    def needs_reconnect(self) -> bool:
        return self.status in RECONNECT_STATUSES


class LinkedInAccountAudit(TenantModel):
    """The forensic log of every account status change (and every deletion at Unipile).

    `txid` is set by the database (a BEFORE INSERT trigger, so it cannot be forged) to the
    current transaction id; the status trigger on the account looks for a row with its own txid.
    txid_current() is the top-level id even inside savepoints, so nested atomic blocks pair too.
    """

    account = models.ForeignKey(LinkedInAccount, on_delete=models.CASCADE, related_name="audit")
    txid = models.BigIntegerField(
        db_default=models.Func(function="txid_current", output_field=models.BigIntegerField())
    )
    action = models.CharField(max_length=32, default="status_changed")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    cause = models.CharField(max_length=64)
    actor_label = models.CharField(max_length=120)
    error = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["account", "txid"], name="linkedin_audit_pairing"),
            models.Index(fields=["action", "created_at"], name="linkedin_audit_action"),
        ]


class AdminAlertKind(models.TextChoices):
    MASS_DISCONNECT_ABORTED = "mass_disconnect_aborted"
    SENSITIVE_OP = "sensitive_op"
    DELETE_REFUSED = "delete_refused"
    WEBHOOKS_STALLED = "webhooks_stalled"
    ORPHAN_LINKED = "orphan_linked"


class AdminAlert(TenantModel):
    """Something an operator must look at. Fleet-wide alerts get one row per affected workspace
    (every row belongs to a workspace) and one CRITICAL log line."""

    kind = models.CharField(max_length=40, choices=AdminAlertKind.choices)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "-created_at"], name="linkedin_alert_recent")]


class ActionUsage(TenantModel):
    """One reserved LinkedIn action against an account's caps. Rows are written by
    `limits_service.reserve` in the caller's transaction, next to the action's own event row,
    so a rolled-back action gives its capacity back. The counts on the account panel are counts
    of these rows; nothing is refunded when the Unipile account later turns out to be dead."""

    account = models.ForeignKey(LinkedInAccount, on_delete=models.CASCADE, related_name="usage")
    kind = models.CharField(max_length=20, choices=ActionKind.choices)
    reserved_at = models.DateTimeField()
    # What the capacity was reserved for (e.g. the campaign action's id), for forensics.
    reference = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=ActionKind.values), name="linkedin_usage_kind_valid"
            )
        ]
        indexes = [
            models.Index(fields=["account", "kind", "reserved_at"], name="linkedin_usage_window"),
            models.Index(fields=["account", "reserved_at"], name="linkedin_usage_rate"),
        ]


class WebhookReceipt(TenantModel):
    """A Unipile webhook we acted on. The unique key makes a redelivery a no-op."""

    account = models.ForeignKey(
        LinkedInAccount, on_delete=models.CASCADE, related_name="webhooks", null=True
    )
    dedup_key = models.CharField(max_length=255)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "dedup_key"], name="linkedin_webhook_dedup"
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "-received_at"], name="linkedin_webhook_recent")
        ]
