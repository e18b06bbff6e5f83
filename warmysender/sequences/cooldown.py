"""Safety pauses: the bounce and complaint cooldown, and the pause while a workspace's
subscription is inactive.

Cooldown rules (features.md §4.12):
- a running campaign enters `cooldown` when its hard-bounce rate is above 5 % after at least 50
  sends, or when it has 3 spam complaints;
- it stays there at least 24 hours; then it is re-checked: when no new hard bounce or complaint
  arrived during the cooldown it resumes, otherwise the cooldown is extended by another 24 hours;
- the numbers are counted since the campaign last came out of a cooldown (or since it started),
  so a resumed campaign is judged on what it sends from then on, not on the bounces that put it
  in cooldown — else it would go straight back in.

Subscription: when the owner's subscription is inactive, running, scheduled and cooling-down
campaigns are paused with reason `subscription_inactive`; when it is active again exactly those
resume. Pauses with any other reason (a person, the API) never resume by themselves.

`decide` is pure (counts and `now` in, a decision out); `run_safety_checks` applies it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import plan_state
from warmysender.audit.services import Actor
from warmysender.sequences.models import (
    Action,
    ActionState,
    Campaign,
    CampaignEvent,
    CampaignStatus,
    PauseReason,
)
from warmysender.sequences.services import log_event, transition_campaign

log = logging.getLogger(__name__)
SAFETY = Actor.system("safety")
BOUNCE_RATE_LIMIT = 0.05
MIN_SENDS = 50
COMPLAINT_LIMIT = 3
COOLDOWN = timedelta(hours=24)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Stats:
    sends: int
    hard_bounces: int
    complaints: int
    # Bounces and complaints that arrived since the cooldown began (for the re-check).
    new_problems: int = 0

    @property
    def bounce_rate(self) -> float:
        return self.hard_bounces / self.sends if self.sends else 0.0


@dataclass(frozen=True)
class Decision:
    action: str  # "enter", "extend", "resume" or "stay"
    reason: str = ""


def decide(
    status: str, stats: Stats, *, cooldown_until: datetime | None, now: datetime
) -> Decision:
    if status == CampaignStatus.RUNNING:
        trigger = cooldown_trigger(stats)
        return Decision("enter", trigger) if trigger else Decision("stay")
    if status == CampaignStatus.COOLDOWN:
        if cooldown_until is not None and now < cooldown_until:
            return Decision("stay")
        if stats.new_problems:
            return Decision(
                "extend",
                f"{stats.new_problems} new bounce(s) or complaint(s) during the cooldown",
            )
        return Decision("resume", "no new bounces or complaints during the cooldown")
    return Decision("stay")


def cooldown_trigger(stats: Stats) -> str:
    if stats.complaints >= COMPLAINT_LIMIT:
        return f"{stats.complaints} spam complaints (limit {COMPLAINT_LIMIT})"
    if stats.sends >= MIN_SENDS and stats.bounce_rate > BOUNCE_RATE_LIMIT:
        return (
            f"bounce rate {stats.bounce_rate:.1%} ({stats.hard_bounces} of {stats.sends} sends) "
            f"above {BOUNCE_RATE_LIMIT:.0%}"
        )
    return ""


# --- applying --------------------------------------------------------------------------------


@dataclass
class SafetyReport:
    cooled: int = 0
    extended: int = 0
    resumed: int = 0
    paused: int = 0
    unpaused: int = 0


def run_safety_checks(now: datetime) -> SafetyReport:
    report = SafetyReport()
    _subscription_pauses(now, report)
    for campaign in Campaign.objects.filter(
        status__in=[CampaignStatus.RUNNING, CampaignStatus.COOLDOWN]
    ).select_related("workspace"):
        check_campaign(campaign, now=now, report=report)
    return report


def check_campaign(
    campaign: Campaign, *, now: datetime, report: SafetyReport | None = None
) -> Decision:
    report = report or SafetyReport()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update().select_related("workspace").get(pk=campaign.pk)
        )
        decision = decide(
            campaign.status,
            campaign_stats(campaign),
            cooldown_until=campaign.cooldown_until,
            now=now,
        )
        if decision.action == "enter":
            transition_campaign(
                campaign, CampaignStatus.COOLDOWN, actor=SAFETY, now=now, reason=decision.reason
            )
            _set_cooldown_until(campaign, now + COOLDOWN)
            log_event(
                campaign,
                "cooldown",
                f"Cooldown until {(now + COOLDOWN).isoformat()}: {decision.reason}",
                now=now,
                reason="entered",
            )
            report.cooled += 1
        elif decision.action == "extend":
            _set_cooldown_until(campaign, now + COOLDOWN)
            log_event(
                campaign,
                "cooldown",
                f"Cooldown extended until {(now + COOLDOWN).isoformat()}: {decision.reason}",
                now=now,
                reason="extended",
            )
            report.extended += 1
        elif decision.action == "resume":
            transition_campaign(
                campaign, CampaignStatus.RUNNING, actor=SAFETY, now=now, reason=decision.reason
            )
            _set_cooldown_until(campaign, None)
            log_event(
                campaign, "cooldown", f"Resumed: {decision.reason}", now=now, reason="resumed"
            )
            report.resumed += 1
    return decision


def campaign_stats(campaign: Campaign) -> Stats:
    from warmysender.inbox.models import BounceType, InboundKind, InboundMessage

    since = _window_start(campaign)
    sends = Action.objects.filter(
        campaign=campaign, state=ActionState.SENT, finished_at__gte=since
    ).count()
    bounced = InboundMessage.objects.filter(
        campaign=campaign,
        kind=InboundKind.BOUNCE,
        bounce_type=BounceType.HARD,
        action__finished_at__gte=since,
    )
    complaints = InboundMessage.objects.filter(
        campaign=campaign, kind=InboundKind.COMPLAINT, received_at__gte=since
    )
    new_problems = 0
    started = _cooldown_started(campaign)
    if campaign.status == CampaignStatus.COOLDOWN and started is not None:
        new_problems = (
            InboundMessage.objects.filter(
                campaign=campaign, created_at__gt=started, kind=InboundKind.COMPLAINT
            ).count()
            + InboundMessage.objects.filter(
                campaign=campaign,
                created_at__gt=started,
                kind=InboundKind.BOUNCE,
                bounce_type=BounceType.HARD,
            ).count()
        )
    return Stats(
        sends=sends,
        hard_bounces=bounced.values("prospect_id").distinct().count(),
        complaints=complaints.values("prospect_id").distinct().count(),
        new_problems=new_problems,
    )


def _window_start(campaign: Campaign) -> datetime:
    resumed = (
        CampaignEvent.objects.filter(campaign=campaign, type="cooldown", reason="resumed")
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return resumed or EPOCH


def _cooldown_started(campaign: Campaign) -> datetime | None:
    """When the current cooldown began, or was last extended (each extension judges the next 24
    hours only)."""
    return (
        CampaignEvent.objects.filter(
            campaign=campaign, type="cooldown", reason__in=["entered", "extended"]
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def _set_cooldown_until(campaign: Campaign, until: datetime | None) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(cooldown_until=until)


def _subscription_pauses(now: datetime, report: SafetyReport) -> None:
    workspaces = Workspace.objects.filter(
        pk__in=Campaign.objects.filter(
            status__in=[
                CampaignStatus.RUNNING,
                CampaignStatus.SCHEDULED,
                CampaignStatus.COOLDOWN,
                CampaignStatus.PAUSED,
            ]
        ).values("workspace_id")
    ).select_related("owner")
    for workspace in workspaces:
        active = plan_state(workspace, now).is_active
        if active:
            report.unpaused += resume_after_subscription(workspace, now=now)
        else:
            report.paused += pause_for_subscription(workspace, now=now)


def pause_for_subscription(workspace: Workspace, *, now: datetime) -> int:
    count = 0
    for campaign in Campaign.objects.filter(
        workspace=workspace,
        status__in=[CampaignStatus.RUNNING, CampaignStatus.SCHEDULED, CampaignStatus.COOLDOWN],
    ):
        transition_campaign(
            campaign,
            CampaignStatus.PAUSED,
            actor=SAFETY,
            now=now,
            reason=PauseReason.SUBSCRIPTION_INACTIVE,
        )
        count += 1
    return count


def resume_after_subscription(workspace: Workspace, *, now: datetime) -> int:
    """Only the campaigns the subscription paused; a person's pause stays."""
    count = 0
    for campaign in Campaign.objects.filter(
        workspace=workspace,
        status=CampaignStatus.PAUSED,
        paused_reason=PauseReason.SUBSCRIPTION_INACTIVE,
    ):
        target = (
            CampaignStatus.SCHEDULED
            if campaign.start_date is not None and campaign.start_date > now
            else CampaignStatus.RUNNING
        )
        transition_campaign(campaign, target, actor=SAFETY, now=now, reason="subscription active")
        count += 1
    return count
