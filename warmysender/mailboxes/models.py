"""Sending mailboxes (the users' own SMTP/IMAP accounts, or a sandbox that captures mail in the
database) and the messages a sandbox mailbox has captured."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Lower

from warmysender.accounts.models import TenantModel


class MailboxKind(models.TextChoices):
    SMTP = "smtp", "SMTP"
    SANDBOX = "sandbox", "Sandbox"


class Security(models.TextChoices):
    SSL = "ssl", "SSL/TLS (implicit, ports 465/993)"
    STARTTLS = "starttls", "STARTTLS (ports 587/143)"
    NONE = "none", "None (unencrypted)"


class MailboxStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    DISCONNECTED = "disconnected", "Disconnected"
    ERROR = "error", "Error"


# The product's hard ceiling on mail per mailbox per day, whatever the user configures.
HARD_DAILY_CAP = 500


class Mailbox(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Stored lower-cased; unique per workspace.
    email = models.CharField(max_length=254)
    from_name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16, choices=MailboxKind.choices)
    # Preset code: gmail, outlook, yahoo, zoho_com, zoho_eu, zoho_in, hostinger, custom, sandbox.
    provider = models.CharField(max_length=32, default="custom")
    smtp_host = models.CharField(max_length=255, blank=True)
    smtp_port = models.PositiveIntegerField(null=True, blank=True)
    smtp_security = models.CharField(
        max_length=16, choices=Security.choices, default=Security.STARTTLS
    )
    smtp_username = models.CharField(max_length=254, blank=True)
    imap_host = models.CharField(max_length=255, blank=True)
    imap_port = models.PositiveIntegerField(null=True, blank=True)
    imap_security = models.CharField(max_length=16, choices=Security.choices, default=Security.SSL)
    imap_username = models.CharField(max_length=254, blank=True)
    # MultiFernet token (warmysender.lib.crypto) of JSON {"smtp_password": ..., "imap_password": ...}.
    # Never returned by the API or shown on a page.
    credentials = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=MailboxStatus.choices, default=MailboxStatus.DISCONNECTED
    )
    last_error = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    sending_enabled = models.BooleanField(default=True)
    daily_limit = models.PositiveIntegerField(default=30)
    signature = models.TextField(blank=True)
    signature_is_html = models.BooleanField(default=False)
    # IANA zone; the daily caps reset at midnight in this zone.
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint("workspace", Lower("email"), name="mailbox_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")), name="mailbox_email_lowercase"
            ),
            # A connected mailbox carries no error; `services.set_status` keeps them together.
            models.CheckConstraint(
                condition=~models.Q(status="connected") | models.Q(last_error=""),
                name="mailbox_connected_has_no_error",
            ),
            models.CheckConstraint(
                condition=models.Q(daily_limit__gte=1, daily_limit__lte=HARD_DAILY_CAP),
                name="mailbox_daily_limit_range",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=MailboxKind.values), name="mailbox_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=MailboxStatus.values), name="mailbox_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(smtp_security__in=Security.values),
                name="mailbox_smtp_security_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(imap_security__in=Security.values),
                name="mailbox_imap_security_valid",
            ),
        ]
        indexes = [
            # Keyset pagination, newest first.
            models.Index(fields=["workspace", "-created_at", "-id"], name="mailbox_page"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_usable(self) -> bool:
        return self.status == MailboxStatus.CONNECTED and self.sending_enabled


class SandboxMessage(TenantModel):
    """Mail "sent" through a sandbox mailbox, captured so the user can look at it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="sandbox_messages")
    message_id = models.CharField(max_length=255)
    to_email = models.CharField(max_length=254)
    subject = models.TextField()
    headers = models.JSONField(default=dict)
    text = models.TextField()
    html = models.TextField()
    raw = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["mailbox", "-created_at"], name="sandbox_message_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_email}"
