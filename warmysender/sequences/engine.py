"""The scheduler's decisions, as pure functions of the state and `now`: the reference model.

`plan_batch` takes claimed due enrollments and the capacity left on every mailbox and campaign,
and says for each either "send step N through mailbox M now" or "wait until T, because R". It
never exceeds a cap it was given, never schedules anything earlier than it was due, and never
outside the campaign's window; the property tests hold it to that. The tick applies the same
rules over whole batches in SQL (sql/tick_claim.sql, sql/tick_reserve.sql), held to the same
properties by test_tick_sql.py; `next_step_at` and `is_inside` are used as they are.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from warmysender.sequences import caps
from warmysender.sequences.windows import Window, clamp_to_window, describe_next

# When nothing can send and nothing says when it could (no usable mailbox), look again in an hour.
RETRY_WITHOUT_MAILBOX = timedelta(hours=1)


@dataclass(frozen=True)
class VariantChoice:
    id: int
    weight: int


@dataclass(frozen=True)
class StepPlan:
    id: int
    step_index: int
    delay: timedelta
    variants: tuple[VariantChoice, ...]
    winner_variant_id: int | None = None


@dataclass
class MailboxSlot:
    """What one mailbox can still do today, as the tick sees it."""

    id: str
    email: str
    zone: ZoneInfo
    usable: bool  # connected and sending enabled
    remaining: int  # min(daily limit, hard cap) minus today's count
    ready_at: datetime | None  # pacer or backoff: not before this
    domain_limit: int
    domain_counts: dict[str, int] = field(default_factory=dict)
    why_unusable: str = ""
    used_this_tick: bool = False
    daily_limit: int = 0  # min(daily limit, hard cap), for what `limit.hit` reports

    def blocker(self, now: datetime, domain: str) -> tuple[datetime, str] | None:
        """None when the mailbox can send to `domain` now; else when it could, and why not."""
        if not self.usable:
            return (
                now + RETRY_WITHOUT_MAILBOX,
                self.why_unusable or f"mailbox {self.email} is not usable",
            )
        if self.remaining <= 0:
            return (
                caps.next_local_midnight(now, self.zone),
                f"daily cap reached on {self.email}",
            )
        if self.domain_counts.get(domain, 0) >= self.domain_limit:
            return (
                caps.next_local_midnight(now, self.zone),
                f"daily limit for {domain} reached on {self.email}",
            )
        if self.ready_at is not None and self.ready_at > now:
            return self.ready_at, f"pacing sends of {self.email}"
        if self.used_this_tick:
            return now + caps.SPACING_MIN, f"pacing sends of {self.email}"
        return None


@dataclass
class PoolEntry:
    mailbox_id: str
    remaining: int  # maxSendsPerMailboxPerDay minus today's count for this campaign (or large)


@dataclass
class CampaignPlan:
    id: str
    window: Window
    remaining: int  # dailySendLimit minus today's count
    zone: ZoneInfo
    randomize: bool
    steps: dict[int, StepPlan]  # by step index
    pool: list[PoolEntry]  # in round-robin order: least recently assigned first
    workspace_id: str


@dataclass(frozen=True)
class Due:
    id: str
    campaign_id: str
    mailbox_id: str | None
    step_index: int
    domain: str
    due_at: datetime
    email: str = ""


@dataclass(frozen=True)
class Send:
    enrollment_id: str
    campaign_id: str
    mailbox_id: str
    step: StepPlan
    variant_id: int | None


@dataclass(frozen=True)
class Wait:
    enrollment_id: str
    until: datetime
    reason: str


@dataclass(frozen=True)
class Finish:
    """The enrollment has no step left to run."""

    enrollment_id: str


def choose_variant(step: StepPlan, rng: random.Random) -> int | None:
    if step.winner_variant_id is not None:
        return step.winner_variant_id
    weighted = [v for v in step.variants if v.weight > 0] or list(step.variants)
    if not weighted:
        return None
    weights = [max(v.weight, 1) for v in weighted]
    return rng.choices(weighted, weights=weights, k=1)[0].id


def _later_in_window(plan: CampaignPlan, t: datetime, reason: str, enrollment_id: str) -> Wait:
    clamped = clamp_to_window(t, plan.window)
    if clamped is None:
        return Wait(enrollment_id, t + timedelta(days=1), "the campaign has no sending days")
    if clamped != t:
        reason = (
            f"{reason}; {describe_next(plan.window, clamped)}"
            if reason
            else describe_next(plan.window, clamped)
        )
    return Wait(enrollment_id, clamped, reason)


def plan_batch(
    due: Sequence[Due],
    campaigns: dict[str, CampaignPlan],
    mailboxes: dict[str, MailboxSlot],
    quota_left: dict[str, int | None],
    now: datetime,
    rng: random.Random,
) -> list[Send | Wait | Finish]:
    """Decide every claimed enrollment, in the order given (oldest due first).

    Capacity is consumed from the passed-in state as it is granted, so within one call no cap can
    be over-granted; `quota_left` is the plan's remaining sends per workspace (None: unlimited).
    Each mailbox takes at most one new send per call: the pacer spaces the rest.
    """
    decisions: list[Send | Wait | Finish] = []
    for item in due:
        plan = campaigns[item.campaign_id]
        step = plan.steps.get(item.step_index)
        if step is None:
            decisions.append(Finish(item.id))
            continue
        if not is_inside(plan.window, now):
            decisions.append(_later_in_window(plan, now, "", item.id))
            continue
        if plan.remaining <= 0:
            midnight = caps.next_local_midnight(now, plan.zone)
            decisions.append(
                _later_in_window(plan, midnight, "campaign daily send limit reached", item.id)
            )
            continue
        left = quota_left.get(plan.workspace_id)
        if left is not None and left <= 0:
            midnight = caps.next_local_midnight(now, ZoneInfo("UTC"))
            decisions.append(_later_in_window(plan, midnight, "plan email quota reached", item.id))
            continue
        chosen, wait = _pick_mailbox(item, plan, mailboxes, now)
        if chosen is None:
            assert wait is not None
            until, reason = wait
            decisions.append(_later_in_window(plan, max(until, now), reason, item.id))
            continue
        slot, entry = chosen
        slot.remaining -= 1
        slot.used_this_tick = True
        slot.domain_counts[item.domain] = slot.domain_counts.get(item.domain, 0) + 1
        entry.remaining -= 1
        plan.remaining -= 1
        if left is not None:
            quota_left[plan.workspace_id] = left - 1
        # Round-robin: the mailbox just used goes to the back of the pool.
        plan.pool.remove(entry)
        plan.pool.append(entry)
        decisions.append(Send(item.id, plan.id, slot.id, step, choose_variant(step, rng)))
    return decisions


def is_inside(window: Window, t: datetime) -> bool:
    return clamp_to_window(t, window) == t


def _pick_mailbox(
    item: Due, plan: CampaignPlan, mailboxes: dict[str, MailboxSlot], now: datetime
) -> tuple[tuple[MailboxSlot, PoolEntry] | None, tuple[datetime, str] | None]:
    """The mailbox to send through, or the earliest time one could and why none can now."""
    if item.mailbox_id is not None:
        candidates = [e for e in plan.pool if e.mailbox_id == item.mailbox_id]
    else:
        candidates = list(plan.pool)
    if not candidates:
        return None, (now + RETRY_WITHOUT_MAILBOX, "no active mailbox in the campaign")
    earliest: tuple[datetime, str] | None = None
    for entry in candidates:
        slot = mailboxes.get(entry.mailbox_id)
        if slot is None:
            continue
        blocker = slot.blocker(now, item.domain)
        if blocker is None and entry.remaining <= 0:
            blocker = (
                caps.next_local_midnight(now, slot.zone),
                f"campaign limit per mailbox reached on {slot.email}",
            )
        if blocker is None:
            return (slot, entry), None
        if earliest is None or blocker[0] < earliest[0]:
            earliest = blocker
    return None, earliest or (now + RETRY_WITHOUT_MAILBOX, "no usable mailbox in the campaign")


def next_step_at(
    sent_at: datetime, delay: timedelta, window: Window, rng: random.Random, *, randomize: bool
) -> tuple[datetime, str]:
    """When the next step is due after a send at `sent_at`: the step delay plus random jitter,
    clamped forward into the window. Returns the time and, when clamped, the reason."""
    jitter = timedelta(
        seconds=rng.uniform(caps.SPACING_MIN.total_seconds(), caps.SPACING_MAX.total_seconds())
    )
    raw = sent_at + delay + jitter
    clamped = clamp_to_window(raw, window, rng=rng if randomize else None)
    if clamped is None:
        return raw + timedelta(days=1), "the campaign has no sending days"
    if clamped != raw:
        return clamped, describe_next(window, clamped)
    return clamped, ""
