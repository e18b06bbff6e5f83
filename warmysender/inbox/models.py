"""Inbound messages across channels and the IMAP sync state."""

from __future__ import annotations

import uuid

from django.db import models

from warmysender.accounts.models import TenantModel


class InboundKind(models.TextChoices):
    REPLY = "reply", "Reply"
    AUTO_REPLY = "auto_reply", "Out of office / auto-reply"
    BOUNCE = "bounce", "Bounce"
    COMPLAINT = "complaint", "Spam complaint"
    OTHER = "other", "Other"


class BounceType(models.TextChoices):
    HARD = "hard", "Hard"
    SOFT = "soft", "Soft"


class InboundMessage(TenantModel):
    """One message that arrived in a synced mailbox and concerns a campaign: a reply, an
    out-of-office, a bounce or a complaint. Mail that concerns no campaign is not kept.

    `dedup_key` is the normalised Message-ID (or a hash of the message when it has none), unique
    per mailbox: the same message in two folders, or read again after a crash or a UIDVALIDITY
    change, is stored and applied once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.CASCADE, related_name="inbound_messages"
    )
    dedup_key = models.CharField(max_length=300)
    folder = models.CharField(max_length=255)
    in_spam_folder = models.BooleanField(default=False)
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    message_id = models.TextField(blank=True)
    in_reply_to = models.TextField(blank=True)
    references = models.TextField(blank=True)
    from_email = models.CharField(max_length=254, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    to_email = models.CharField(max_length=254, blank=True)
    subject = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    # Sanitised with the same allow-list as outgoing mail: safe to render in the thread.
    html_body = models.TextField(blank=True)
    received_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=InboundKind.choices)
    # Why it was classified so (the header or phrase that matched), for people reading the log.
    classified_by = models.CharField(max_length=200, blank=True)
    # How it was tied to the campaign: in_reply_to, references, action_header, sender.
    matched_by = models.CharField(max_length=32, blank=True)
    action = models.ForeignKey(
        "sequences.Action", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    enrollment = models.ForeignKey(
        "sequences.Enrollment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_messages",
    )
    prospect = models.ForeignKey(
        "prospects.Prospect",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_messages",
    )
    campaign = models.ForeignKey(
        "sequences.Campaign",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_messages",
    )
    bounce_type = models.CharField(max_length=8, choices=BounceType.choices, blank=True)
    bounce_reason = models.TextField(blank=True)
    bounced_email = models.CharField(max_length=254, blank=True)
    original_message_id = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "dedup_key"], name="inbound_once"),
            models.CheckConstraint(
                condition=models.Q(kind__in=InboundKind.values), name="inbound_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(bounce_type__in=["", *BounceType.values]),
                name="inbound_bounce_type_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["prospect", "received_at"], name="inbound_by_prospect"),
            models.Index(fields=["campaign", "kind", "received_at"], name="inbound_by_campaign"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}"


class MailboxFolderState(TenantModel):
    """Where the sync of one folder of one mailbox stands: messages up to `last_uid` under
    `uidvalidity` are done. A new UIDVALIDITY means the server renumbered the folder; it is then
    read again from the start, which the dedup key makes harmless."""

    mailbox = models.ForeignKey(
        "mailboxes.Mailbox", on_delete=models.CASCADE, related_name="folder_states"
    )
    folder = models.CharField(max_length=255)
    is_spam = models.BooleanField(default=False)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "folder"], name="folder_state_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id} {self.folder}"
