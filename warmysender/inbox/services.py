"""Storing inbound messages and applying what they mean to campaigns. One message, one
transaction: the stored row, its effects (enrollment stopped, address suppressed, events) and the
folder's progress commit together, so a sync killed at any point neither loses nor repeats one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from warmysender.audit.services import Actor, emit_event, record_audit
from warmysender.inbox.models import BounceType, InboundKind, InboundMessage, MailboxFolderState
from warmysender.inbox.parsing import ParsedMessage, parse_message
from warmysender.mailboxes.models import Mailbox
from warmysender.prospects import services as prospect_services
from warmysender.prospects.models import Prospect
from warmysender.prospects.services import ProspectError
from warmysender.sequences import services as sequence_services
from warmysender.sequences.models import (
    ACTIVE_ENROLLMENT,
    Action,
    ActionState,
    Campaign,
    Enrollment,
    EnrollmentStatus,
)

SYNC = Actor.system("imap_sync")


@dataclass(frozen=True)
class Match:
    enrollment: Enrollment
    action: Action | None
    matched_by: str


@dataclass(frozen=True)
class Ingested:
    outcome: str  # "stored", "duplicate" or "ignored" (concerns no campaign)
    message: InboundMessage | None = None


def ingest_message(
    *,
    state: MailboxFolderState,
    uidvalidity: int,
    uid: int,
    raw: bytes,
    received_at: datetime,
    now: datetime,
) -> Ingested:
    """Store and apply one message read from `state.folder`, and record the folder's progress."""
    mailbox = state.mailbox
    parsed = parse_message(raw)
    with transaction.atomic():
        result = _ingest(mailbox, state, parsed, uidvalidity, uid, received_at, now)
        MailboxFolderState.objects.filter(pk=state.pk, last_uid__lt=uid).update(last_uid=uid)
    return result


def _ingest(
    mailbox: Mailbox,
    state: MailboxFolderState,
    parsed: ParsedMessage,
    uidvalidity: int,
    uid: int,
    received_at: datetime,
    now: datetime,
) -> Ingested:
    if parsed.from_email == mailbox.email:
        return Ingested("ignored")  # our own mail (a copy filed into the inbox)
    match = find_match(mailbox, parsed)
    if match is None:
        return Ingested("ignored")
    enrollment = match.enrollment
    inbound = InboundMessage(
        workspace_id=mailbox.workspace_id,
        mailbox=mailbox,
        dedup_key=parsed.dedup_key,
        folder=state.folder,
        in_spam_folder=state.is_spam,
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        from_email=parsed.from_email[:254],
        from_name=parsed.from_name,
        to_email=parsed.to_email,
        subject=parsed.subject,
        text_body=parsed.text_body,
        html_body=parsed.html_body,
        received_at=received_at,
        kind=parsed.kind,
        classified_by=parsed.classified_by,
        matched_by=match.matched_by,
        action=match.action,
        enrollment=enrollment,
        prospect_id=enrollment.prospect_id,
        campaign_id=enrollment.campaign_id,
        created_at=now,
    )
    report = parsed.bounce
    if report is not None:
        inbound.bounce_type = report.bounce_type
        inbound.bounce_reason = report.reason
        inbound.bounced_email = report.recipient[:254]
        inbound.original_message_id = report.original_message_id
    elif parsed.complaint is not None:
        inbound.bounced_email = parsed.complaint.recipient[:254]
        inbound.original_message_id = parsed.complaint.original_message_id
    try:
        with transaction.atomic():
            inbound.save(force_insert=True)
    except IntegrityError:
        return Ingested("duplicate")  # seen in another folder, or before a crash or renumbering
    APPLY[inbound.kind](inbound, now)
    record_audit(
        workspace=enrollment.workspace,
        actor=SYNC,
        action=f"inbound.{inbound.kind}",
        obj=inbound,
        reason=inbound.classified_by or inbound.matched_by,
        data={
            "mailboxId": str(mailbox.pk),
            "folder": state.folder,
            "campaignId": str(enrollment.campaign_id),
            "prospectId": str(enrollment.prospect_id),
            "matchedBy": match.matched_by,
        },
        now=now,
    )
    return Ingested("stored", inbound)


# --- matching -------------------------------------------------------------------------------


def find_match(mailbox: Mailbox, parsed: ParsedMessage) -> Match | None:
    """Which of our sent emails (and so which enrollment) a message answers or returns."""
    report = parsed.bounce or parsed.complaint
    if report is not None:
        return _match_report(
            mailbox, report.action_id, report.original_message_id, report.recipient
        )
    if parsed.thread_ids:
        action = _sent_action(mailbox, message_ids=parsed.thread_ids)
        if action is not None:
            how = "in_reply_to" if action.message_id in parsed.in_reply_to else "references"
            return Match(action.enrollment, action, how)
    if parsed.action_header:
        action = _sent_action(mailbox, action_id=parsed.action_header)
        if action is not None:
            return Match(action.enrollment, action, "action_header")
    return _match_sender(mailbox, parsed.from_email)


def _match_report(
    mailbox: Mailbox, action_id: str, message_id: str, recipient: str
) -> Match | None:
    if action_id:
        action = _sent_action(mailbox, action_id=action_id)
        if action is not None:
            return Match(action.enrollment, action, "action_header")
    if message_id:
        action = _sent_action(mailbox, message_ids=(message_id,))
        if action is not None:
            return Match(action.enrollment, action, "original_message_id")
    if recipient:
        # The notice names only the address: the latest email this mailbox sent to it.
        action = (
            _sent_actions(mailbox)
            .filter(to_email__iexact=recipient)
            .order_by("-finished_at", "-created_at")
            .first()
        )
        if action is not None:
            return Match(action.enrollment, action, "recipient")
    return None


def _sent_actions(mailbox: Mailbox) -> Any:
    return Action.objects.select_related(
        "enrollment__workspace", "enrollment__prospect", "enrollment__campaign"
    ).filter(
        workspace_id=mailbox.workspace_id,
        state__in=[ActionState.SENT, ActionState.UNKNOWN, ActionState.SENDING],
    )


def _sent_action(
    mailbox: Mailbox, *, message_ids: tuple[str, ...] = (), action_id: str = ""
) -> Action | None:
    actions = _sent_actions(mailbox)
    if action_id:
        return actions.filter(pk=action_id).first()
    # Message-IDs compare case-sensitively in their local part, but clients rewrite case rarely
    # enough that an exact match on what we generated is right; try the ids newest first.
    found = {a.message_id: a for a in actions.filter(message_id__in=list(message_ids))}
    for message_id in message_ids:
        if message_id in found:
            return found[message_id]
    return None


def _match_sender(mailbox: Mailbox, from_email: str) -> Match | None:
    """No threading header led anywhere: an enrollment of this workspace whose prospect is the
    sender, preferring one that writes from this mailbox, then an active one, then the latest."""
    if not from_email:
        return None
    enrollments = list(
        Enrollment.objects.select_related("workspace", "prospect", "campaign")
        .filter(workspace_id=mailbox.workspace_id, prospect__email=from_email)
        .exclude(last_sent_at=None)
    )
    if not enrollments:
        return None
    enrollments.sort(
        key=lambda e: (
            e.mailbox_id == mailbox.pk,
            e.status in ACTIVE_ENROLLMENT,
            e.last_sent_at,
        ),
        reverse=True,
    )
    return Match(enrollments[0], None, "sender")


# --- applying -------------------------------------------------------------------------------


def _apply_reply(inbound: InboundMessage, now: datetime) -> None:
    enrollment, campaign, prospect = _parties(inbound)
    if campaign.stop_on_reply:
        sequence_services.stop_enrollment(
            enrollment,
            status=EnrollmentStatus.REPLIED,
            reason="prospect replied",
            actor=SYNC,
            now=now,
        )
    elif enrollment.status == EnrollmentStatus.COMPLETED:
        sequence_services.set_enrollment_status(
            enrollment, EnrollmentStatus.REPLIED, actor=SYNC, now=now, reason="prospect replied"
        )
    sequence_services.log_event(
        campaign,
        "reply",
        f"Reply from {prospect.email}: {inbound.subject}"[:500],
        now=now,
        data=_event_data(inbound),
    )
    emit_event(
        workspace=enrollment.workspace,
        type="reply.received",
        data={
            "prospectId": str(prospect.pk),
            "prospectEmail": prospect.email,
            "campaignId": str(campaign.pk),
            "mailboxId": str(inbound.mailbox_id),
            "subject": inbound.subject,
            "messageId": inbound.message_id,
            "receivedAt": inbound.received_at,
        },
        now=now,
        dedup_key=f"reply.received:{campaign.pk}:{prospect.pk}",
    )


def _apply_auto_reply(inbound: InboundMessage, now: datetime) -> None:
    # An out-of-office stops nothing: the enrollment stays pending and its next step goes out
    # when it falls due, on the next tick as usual.
    _, campaign, prospect = _parties(inbound)
    sequence_services.log_event(
        campaign,
        "auto_reply",
        f"Automatic reply from {prospect.email} ({inbound.classified_by}); the sequence continues"[
            :500
        ],
        now=now,
        data=_event_data(inbound),
    )


def _apply_bounce(inbound: InboundMessage, now: datetime) -> None:
    enrollment, campaign, prospect = _parties(inbound)
    hard = inbound.bounce_type == BounceType.HARD
    sequence_services.log_event(
        campaign,
        "bounce",
        f"{inbound.bounce_type.capitalize()} bounce for {prospect.email}: {inbound.bounce_reason}"[
            :500
        ],
        now=now,
        reason=inbound.bounce_type,
        data=_event_data(inbound),
    )
    if not hard:
        return  # recorded; the address may take mail again, and nothing is stopped
    _suppress(prospect, f"bounce: {inbound.bounce_reason}", now)
    if campaign.stop_on_bounce:
        sequence_services.stop_enrollment(
            enrollment,
            status=EnrollmentStatus.BOUNCED,
            reason=f"hard bounce: {inbound.bounce_reason}"[:255],
            actor=SYNC,
            now=now,
        )
    emit_event(
        workspace=enrollment.workspace,
        type="email.bounced",
        data={
            "prospectId": str(prospect.pk),
            "prospectEmail": prospect.email,
            "campaignId": str(campaign.pk),
            "mailboxId": str(inbound.mailbox_id),
            "bounceType": inbound.bounce_type,
            "bounceReason": inbound.bounce_reason,
            "bouncedAt": inbound.received_at,
        },
        now=now,
        dedup_key=f"email.bounced:{campaign.pk}:{prospect.pk}:{now.date().isoformat()}",
    )


def _apply_complaint(inbound: InboundMessage, now: datetime) -> None:
    enrollment, campaign, prospect = _parties(inbound)
    sequence_services.log_event(
        campaign,
        "complaint",
        f"Spam complaint from {prospect.email}",
        now=now,
        data=_event_data(inbound),
    )
    _suppress(prospect, "spam complaint", now)
    sequence_services.stop_enrollment(
        enrollment,
        status=EnrollmentStatus.UNSUBSCRIBED,
        reason="spam complaint",
        actor=SYNC,
        now=now,
    )


def _apply_other(inbound: InboundMessage, now: datetime) -> None:
    return None


APPLY: dict[str, Callable[[InboundMessage, datetime], None]] = {
    InboundKind.REPLY: _apply_reply,
    InboundKind.AUTO_REPLY: _apply_auto_reply,
    InboundKind.BOUNCE: _apply_bounce,
    InboundKind.COMPLAINT: _apply_complaint,
    InboundKind.OTHER: _apply_other,
}


def _parties(inbound: InboundMessage) -> tuple[Enrollment, Campaign, Prospect]:
    enrollment = inbound.enrollment
    assert enrollment is not None
    return enrollment, enrollment.campaign, enrollment.prospect


def _suppress(prospect: Prospect, reason: str, now: datetime) -> None:
    try:
        prospect_services.add_suppression(
            workspace=prospect.workspace,
            value=prospect.email,
            reason=reason[:200],
            actor=SYNC,
            now=now,
        )
    except ProspectError:
        # A placeholder address that is not a valid email cannot be listed; it bounced anyway.
        pass


def _event_data(inbound: InboundMessage) -> dict[str, Any]:
    return {
        "inboundMessageId": str(inbound.pk),
        "prospectId": str(inbound.prospect_id),
        "mailboxId": str(inbound.mailbox_id),
        "folder": inbound.folder,
        "kind": inbound.kind,
    }


# --- sync state -----------------------------------------------------------------------------


def folder_state(mailbox: Mailbox, folder: str, *, is_spam: bool) -> MailboxFolderState:
    state, _ = MailboxFolderState.objects.get_or_create(
        mailbox=mailbox,
        folder=folder,
        defaults={"workspace_id": mailbox.workspace_id, "is_spam": is_spam},
    )
    if state.is_spam != is_spam:
        state.is_spam = is_spam
        state.save(update_fields=["is_spam"])
    state.mailbox = mailbox
    return state


def record_folder_error(state: MailboxFolderState, error: str, *, now: datetime) -> None:
    MailboxFolderState.objects.filter(pk=state.pk).update(
        last_error=error[:2000], last_error_at=now
    )


def record_folder_synced(state: MailboxFolderState, *, now: datetime) -> None:
    MailboxFolderState.objects.filter(pk=state.pk).update(
        last_synced_at=now, last_error="", last_error_at=None
    )


def reset_folder(state: MailboxFolderState, uidvalidity: int) -> None:
    """The server renumbered the folder (or we see it for the first time): read it from the
    start again; messages already stored are recognised by their dedup key."""
    state.uidvalidity, state.last_uid = uidvalidity, 0
    MailboxFolderState.objects.filter(pk=state.pk).update(uidvalidity=uidvalidity, last_uid=0)


def skip_folder_to(state: MailboxFolderState, last_uid: int) -> None:
    state.last_uid = last_uid
    MailboxFolderState.objects.filter(pk=state.pk).update(last_uid=last_uid)
