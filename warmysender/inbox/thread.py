"""A prospect's conversation: the emails we sent and what came back, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from warmysender.inbox.models import InboundMessage
from warmysender.prospects.models import Prospect
from warmysender.sequences.models import Action, ActionState


@dataclass(frozen=True)
class ThreadItem:
    at: datetime
    direction: str  # "out" or "in"
    kind: str  # "sent", "reply", "auto_reply", "bounce", "complaint", ...
    campaign_name: str
    mailbox_email: str
    subject: str
    text: str
    detail: str  # step number, bounce reason, spam folder, ...


def prospect_thread(prospect: Prospect) -> list[ThreadItem]:
    items: list[ThreadItem] = []
    sent = (
        Action.objects.filter(
            workspace_id=prospect.workspace_id,
            enrollment__prospect=prospect,
            state__in=[ActionState.SENT, ActionState.UNKNOWN],
        )
        .select_related("campaign", "step")
        .order_by("finished_at")
    )
    for action in sent:
        items.append(
            ThreadItem(
                at=action.finished_at or action.created_at,
                direction="out",
                kind="sent" if action.state == ActionState.SENT else "unknown",
                campaign_name=action.campaign.name,
                mailbox_email=action.from_email,
                subject=action.subject,
                text="",
                detail=f"step {action.step.step_index}",
            )
        )
    inbound = InboundMessage.objects.filter(
        workspace_id=prospect.workspace_id, prospect=prospect
    ).select_related("campaign", "mailbox")
    for message in inbound:
        detail = message.bounce_reason if message.kind == "bounce" else message.classified_by
        if message.in_spam_folder:
            detail = f"{detail} (found in {message.folder})".strip()
        items.append(
            ThreadItem(
                at=message.received_at,
                direction="in",
                kind=message.kind,
                campaign_name=message.campaign.name if message.campaign else "",
                mailbox_email=message.mailbox.email,
                subject=message.subject,
                text=message.text_body,
                detail=detail,
            )
        )
    items.sort(key=lambda item: item.at)
    return items
