"""The watchdog: actions stuck over ten minutes.

`reserved` means nothing reached a server yet (the sender died or never came): the reservation
is given back and the prospect returns to the queue; the third time that happens to the same
prospect it is failed as stuck, with an `error` event in the campaign log. `sending` means the
sender died mid-conversation and the server may have the message: it becomes `unknown` and waits
for a person, never sent again by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from warmysender.audit.services import Actor, emit_event
from warmysender.sequences.models import Action, ActionState, Enrollment, EnrollmentStatus
from warmysender.sequences.services import (
    RECOVERY_LIMIT,
    STUCK_FAILURE,
    log_event,
    release_action,
    set_enrollment_status,
)

STUCK_AFTER = timedelta(minutes=10)
WATCHDOG = Actor.system("watchdog")


@dataclass
class WatchdogReport:
    released: int = 0
    unknown: int = 0
    failed: int = 0


def recover_stuck_actions(now: datetime) -> WatchdogReport:
    report = WatchdogReport()
    cutoff = now - STUCK_AFTER
    stuck_reserved = Action.objects.filter(state=ActionState.RESERVED, reserved_at__lt=cutoff)
    for action_id in list(stuck_reserved.values_list("id", flat=True)[:1000]):
        with transaction.atomic():
            action = (
                Action.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=action_id, state=ActionState.RESERVED)
                .select_related("campaign", "step")
                .first()
            )
            if action is None:
                continue
            enrollment = (
                Enrollment.objects.select_for_update()
                .select_related("workspace")
                .get(pk=action.enrollment_id)
            )
            release_action(action, now=now, error="stuck in processing over 10 minutes")
            enrollment.recovery_count += 1
            if enrollment.recovery_count >= RECOVERY_LIMIT:
                Action.objects.filter(pk=action.pk).update(
                    state=ActionState.FAILED, error=STUCK_FAILURE, finished_at=now
                )
                set_enrollment_status(
                    enrollment,
                    EnrollmentStatus.FAILED,
                    actor=WATCHDOG,
                    now=now,
                    reason="stuck_processing_loop",
                    failure_reason=STUCK_FAILURE,
                    wait_reason="",
                    next_action_at=None,
                )
                log_event(
                    action.campaign,
                    "error",
                    f"{STUCK_FAILURE} ({action.to_email})",
                    now=now,
                    reason="stuck_processing_loop",
                    data={"enrollmentId": str(enrollment.pk)},
                )
                emit_event(
                    workspace=enrollment.workspace,
                    type="campaign.error",
                    data={
                        "campaignId": str(action.campaign_id),
                        "prospectId": str(enrollment.prospect_id),
                        "reason": "stuck_processing_loop",
                    },
                    now=now,
                )
                report.failed += 1
                continue
            Enrollment.objects.filter(pk=enrollment.pk).update(
                status=EnrollmentStatus.PENDING,
                recovery_count=enrollment.recovery_count,
                next_action_at=now,
                wait_reason=f"recovered after being stuck in processing ({enrollment.recovery_count}/{RECOVERY_LIMIT})",
                updated_at=now,
            )
            report.released += 1
    stuck_sending = Action.objects.filter(state=ActionState.SENDING, sending_at__lt=cutoff)
    for action_id in list(stuck_sending.values_list("id", flat=True)[:1000]):
        with transaction.atomic():
            action = (
                Action.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=action_id, state=ActionState.SENDING)
                .select_related("campaign")
                .first()
            )
            if action is None:
                continue
            Action.objects.filter(pk=action.pk).update(
                state=ActionState.UNKNOWN,
                finished_at=now,
                error="the sender stopped while talking to the server; the message may have been delivered",
            )
            enrollment = (
                Enrollment.objects.select_for_update()
                .select_related("workspace")
                .get(pk=action.enrollment_id)
            )
            set_enrollment_status(
                enrollment,
                EnrollmentStatus.NEEDS_REVIEW,
                actor=WATCHDOG,
                now=now,
                reason="unknown_outcome",
                wait_reason="the server may have accepted the last email; mark it as sent or send it again",
                next_action_at=None,
            )
            log_event(
                action.campaign,
                "error",
                f"Outcome unknown for {action.to_email}",
                now=now,
                reason="unknown_outcome",
            )
            report.unknown += 1
    return report
