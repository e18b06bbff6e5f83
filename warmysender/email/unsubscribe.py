"""Unsubscribe links: signed, so nobody can unsubscribe someone else by guessing, and the
service behind both the visible link and the RFC 8058 one-click POST."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction

from warmysender.audit.services import Actor, emit_event
from warmysender.lib.urls import reverse_token
from warmysender.prospects.models import GlobalStatus, Prospect

SALT = "warmysender.unsubscribe"


def unsubscribe_token(enrollment: Any) -> str:
    # Short on purpose: it sits in a header that must stay on one line.
    return signing.Signer(salt=SALT).sign(enrollment.pk.hex)


def unsubscribe_url(enrollment: Any) -> str:
    return settings.SITE_URL + reverse_token("unsubscribe", unsubscribe_token(enrollment))


def enrollment_for_token(token: str) -> Any | None:
    from warmysender.sequences.models import Enrollment

    try:
        enrollment_id = uuid.UUID(signing.Signer(salt=SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None
    return (
        Enrollment.objects.select_related("prospect", "workspace", "campaign")
        .filter(pk=enrollment_id)
        .first()
    )


def unsubscribe(enrollment: Any, *, now: datetime, one_click: bool) -> bool:
    """Suppress the address, stop every enrollment of the prospect, record the events. Returns
    False when the prospect was already unsubscribed (the link works any number of times)."""
    from warmysender.prospects.services import add_suppression
    from warmysender.sequences.models import EnrollmentStatus
    from warmysender.sequences.services import log_event, stop_enrollments_for_prospect

    actor = Actor.system("unsubscribe link")
    prospect: Prospect = enrollment.prospect
    with transaction.atomic():
        _, created = add_suppression(
            workspace=enrollment.workspace,
            value=prospect.email,
            reason="unsubscribed via link",
            actor=actor,
            now=now,
        )
        Prospect.objects.filter(pk=prospect.pk).update(
            global_status=GlobalStatus.UNSUBSCRIBED, updated_at=now
        )
        stop_enrollments_for_prospect(
            prospect,
            status=EnrollmentStatus.UNSUBSCRIBED,
            reason="unsubscribed",
            actor=actor,
            now=now,
        )
        # Spec §15: once per prospect per campaign, ever.
        first = emit_event(
            workspace=enrollment.workspace,
            type="email.unsubscribed",
            data={
                "prospectId": str(prospect.pk),
                "prospectEmail": prospect.email,
                "email": prospect.email,
                "campaignId": str(enrollment.campaign_id),
                "unsubscribedAt": now.isoformat(),
                "oneClick": one_click,
            },
            now=now,
            dedup_key=f"email.unsubscribed:{enrollment.campaign_id}:{prospect.pk}",
        )
        if first:
            log_event(
                enrollment.campaign,
                "unsubscribed",
                f"{prospect.email} unsubscribed"
                + (" (one-click, from the mail app)" if one_click else " (unsubscribe page)"),
                now=now,
                reason="one_click" if one_click else "link",
                data={"prospectId": str(prospect.pk), "enrollmentId": str(enrollment.pk)},
            )
    return created
