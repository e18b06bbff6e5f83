"""Plan limits as checks. Every write path that adds something a plan limits calls one of these.

With billing off (the self-hosted default) every workspace gets the unlimited `self_hosted` plan,
but the checks still run: the same code paths are exercised, they just never refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from warmysender.accounts.models import (
    ACTIVE_STATUSES,
    Invitation,
    Membership,
    Plan,
    Subscription,
    SubscriptionStatus,
    User,
    Workspace,
)

SELF_HOSTED = "self_hosted"


class QuotaExceeded(Exception):
    """A plan limit would be passed. `code` is stable; the message is for people."""

    def __init__(self, code: str, message: str, *, limit: int, current: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.limit = limit
        self.current = current


class SubscriptionInactive(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(f"The workspace subscription is {status}; renew it on the Billing page.")
        self.status = status


@dataclass(frozen=True)
class PlanState:
    plan: Plan
    status: str
    linkedin_seats: int | None  # None = unlimited

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def subscription_status(sub: Subscription, now: datetime) -> str:
    """The status as of `now`: a trial past its end is `expired` even before a job rewrites it."""
    if sub.status == SubscriptionStatus.TRIALING and sub.trial_ends_at and sub.trial_ends_at <= now:
        return SubscriptionStatus.EXPIRED
    return sub.status


def plan_state_for_user(user: User, now: datetime) -> PlanState:
    if not settings.BILLING_ENABLED:
        return PlanState(Plan.objects.get(code=SELF_HOSTED), SubscriptionStatus.ACTIVE, None)
    sub = Subscription.objects.select_related("plan").filter(user=user).first()
    if sub is None:
        return PlanState(Plan.objects.get(code="free"), SubscriptionStatus.ACTIVE, 0)
    included = sub.plan.linkedin_seats
    seats = None if included is None else included + sub.linkedin_seats
    return PlanState(sub.plan, subscription_status(sub, now), seats)


def plan_state(workspace: Workspace, now: datetime) -> PlanState:
    return plan_state_for_user(workspace.owner, now)


def require_active_subscription(workspace: Workspace, now: datetime) -> None:
    state = plan_state(workspace, now)
    if not state.is_active:
        raise SubscriptionInactive(state.status)


def check_prospect_capacity(workspace: Workspace, adding: int, now: datetime) -> None:
    from warmysender.prospects.models import Prospect

    limit = plan_state(workspace, now).plan.max_prospects
    if limit is None or adding <= 0:
        return
    current = Prospect.objects.filter(workspace=workspace).count()
    if current + adding > limit:
        raise QuotaExceeded(
            "prospect_limit_reached",
            f"Your plan stores at most {limit:,} prospects; this workspace has {current:,} and "
            f"this would add {adding:,}. Upgrade the plan or remove prospects first.",
            limit=limit,
            current=current,
        )


def check_member_capacity(workspace: Workspace, now: datetime) -> None:
    """Pending invitations count toward the member limit (seed §10)."""
    limit = plan_state(workspace, now).plan.max_members
    if limit is None:
        return
    members = Membership.objects.filter(workspace=workspace).count()
    pending = Invitation.objects.filter(
        workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).count()
    if members + pending >= limit:
        raise QuotaExceeded(
            "member_limit_reached",
            f"Your plan allows {limit} members (pending invitations count); upgrade to add more.",
            limit=limit,
            current=members + pending,
        )


def check_workspace_capacity(user: User, now: datetime) -> None:
    limit = plan_state_for_user(user, now).plan.max_workspaces
    if limit is None:
        return
    current = Workspace.objects.filter(owner=user).count()
    if current >= limit:
        raise QuotaExceeded(
            "workspace_limit_reached",
            f"Your plan allows {limit} workspace{'s' if limit != 1 else ''}; "
            "upgrade to Business for more.",
            limit=limit,
            current=current,
        )


def check_mailbox_capacity(workspace: Workspace, now: datetime) -> None:
    """Connecting one more mailbox (Free: 1; paid plans: unlimited)."""
    from warmysender.mailboxes.models import Mailbox

    limit = plan_state(workspace, now).plan.max_mailboxes
    if limit is None:
        return
    current = Mailbox.objects.filter(workspace=workspace).count()
    if current >= limit:
        raise QuotaExceeded(
            "mailbox_limit_reached",
            f"Your plan allows {limit} mailbox{'es' if limit != 1 else ''}; this workspace has "
            f"{current}. Upgrade the plan or remove a mailbox first.",
            limit=limit,
            current=current,
        )
