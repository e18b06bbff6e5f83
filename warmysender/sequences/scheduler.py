"""The scheduler tick: load what can send, push what cannot to when it can, claim due work in
batches, let the pure engine decide, and write the decisions — all in one transaction.

One tick runs at a time fleet-wide (a transaction-level advisory lock; a second scheduler skips
its turn rather than queueing behind the first), which is what makes the in-memory capacity
bookkeeping of `engine.plan_batch` exact. The claim still uses SKIP LOCKED so it never waits on
rows a reply or a person is changing at the same moment.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import plan_state
from warmysender.lib.sql import hot_cursor, load
from warmysender.sequences import caps
from warmysender.sequences.engine import (
    RETRY_WITHOUT_MAILBOX,
    CampaignPlan,
    Due,
    Finish,
    MailboxSlot,
    PoolEntry,
    Send,
    StepPlan,
    VariantChoice,
    Wait,
    is_inside,
    plan_batch,
)
from warmysender.sequences.models import Campaign, CampaignStatus, Step, Variant
from warmysender.sequences.windows import Window, clamp_to_window, describe_next

# Blocks shorter than this are filtered at the claim instead of written to the enrollments.
DEFER_AFTER = timedelta(minutes=10)
TICK_LOCK = 0x5753_5449  # "WSTI": the advisory lock key of the scheduler tick
UTC = ZoneInfo("UTC")


def _sql(name: str) -> str:
    return load("warmysender.sequences", name)


@dataclass
class TickReport:
    skipped: bool = False
    claimed: int = 0
    reserved: int = 0
    waited: int = 0
    finished: int = 0
    deferred: int = 0
    mailboxes: set[str] = field(default_factory=set)


@dataclass
class TickState:
    campaigns: dict[str, CampaignPlan]
    mailboxes: dict[str, MailboxSlot]
    quota_left: dict[str, int | None]
    # Per campaign: the longest "minutes between sends" of the campaigns sharing each mailbox.
    pacer_floor: dict[str, int]
    campaign_meta: dict[str, dict[str, Any]]
    # (campaign, mailbox) pairs with a maxSendsPerMailboxPerDay of their own.
    limited_pairs: set[tuple[str, str]] = field(default_factory=set)


def run_tick(
    now: datetime,
    *,
    batch_size: int = 2000,
    max_batches: int = 20,
    rng: random.Random | None = None,
    queue: bool = True,
) -> TickReport:
    """One scheduler pass. Send jobs for the mailboxes that got work are queued after commit."""
    rng = rng or random.Random()
    report = TickReport()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [TICK_LOCK])
            if not cursor.fetchone()[0]:
                report.skipped = True
                return report
        from warmysender.sequences import services

        services.start_due_scheduled_campaigns(now)
        state = load_state(now)
        if not state.campaigns:
            return report
        report.deferred = defer_blocked(state, now)
        for _ in range(max_batches):
            due = claim(state, now, batch_size)
            if not due:
                break
            report.claimed += len(due)
            decisions = plan_batch(
                due, state.campaigns, state.mailboxes, state.quota_left, now, rng
            )
            apply(decisions, due, state, now, rng, report)
            if len(due) < batch_size:
                break
        if report.mailboxes and queue:
            mailbox_ids = sorted(report.mailboxes)
            transaction.on_commit(lambda: _queue_senders(mailbox_ids))
    return report


def _queue_senders(mailbox_ids: list[str]) -> None:
    from warmysender.sequences.tasks import queue_senders

    queue_senders(mailbox_ids)


# --- loading ---------------------------------------------------------------------------------


def load_state(now: datetime) -> TickState:
    campaigns: dict[str, CampaignPlan] = {}
    meta: dict[str, dict[str, Any]] = {}
    rows = Campaign.objects.filter(status=CampaignStatus.RUNNING).values(
        "id",
        "workspace_id",
        "timezone",
        "schedule_days",
        "window_start_hour",
        "window_end_hour",
        "daily_send_limit",
        "randomize_within_window",
        "min_minutes_between_sends",
    )
    for row in rows:
        cid = str(row["id"])
        zone = ZoneInfo(row["timezone"])
        window = Window(
            zone, frozenset(row["schedule_days"]), row["window_start_hour"], row["window_end_hour"]
        )
        campaigns[cid] = CampaignPlan(
            id=cid,
            window=window,
            remaining=row["daily_send_limit"],
            zone=zone,
            randomize=row["randomize_within_window"],
            steps={},
            pool=[],
            workspace_id=str(row["workspace_id"]),
        )
        meta[cid] = row
    if not campaigns:
        return TickState({}, {}, {}, {}, {})
    ids = list(campaigns)
    variants: dict[int, list[VariantChoice]] = defaultdict(list)
    for v in Variant.objects.filter(step__campaign_id__in=ids).values("id", "step_id", "weight"):
        variants[v["step_id"]].append(VariantChoice(v["id"], v["weight"]))
    for s in Step.objects.filter(campaign_id__in=ids).values(
        "id", "campaign_id", "step_index", "delay_days", "delay_hours", "winner_variant_id"
    ):
        campaigns[str(s["campaign_id"])].steps[s["step_index"]] = StepPlan(
            id=s["id"],
            step_index=s["step_index"],
            delay=timedelta(days=s["delay_days"], hours=s["delay_hours"]),
            variants=tuple(variants[s["id"]]),
            winner_variant_id=s["winner_variant_id"],
        )

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT cm.campaign_id, cm.mailbox_id, cm.max_sends_per_day,
                   m.email, m.timezone, m.status, m.sending_enabled, m.daily_limit,
                   t.next_send_at, t.backoff_until, t.last_assigned_at,
                   t.count_day, t.day_count, t.domain_counts
            FROM sequences_campaignmailbox cm
            JOIN mailboxes_mailbox m ON m.id = cm.mailbox_id
            LEFT JOIN sequences_mailboxthrottle t ON t.mailbox_id = m.id
            WHERE cm.campaign_id = ANY(%s::uuid[]) AND cm.is_active
            ORDER BY t.last_assigned_at NULLS FIRST, cm.position, cm.id
            """,
            [ids],
        )
        pool_rows = cursor.fetchall()

    mailboxes: dict[str, MailboxSlot] = {}
    pool_limits: dict[tuple[str, str], int | None] = {}
    pacer_floor: dict[str, int] = defaultdict(int)
    for (
        cid,
        mid,
        max_per_day,
        email,
        tz,
        status,
        enabled,
        limit,
        next_send,
        backoff,
        _,
        count_day,
        day_count,
        domain_counts,
    ) in pool_rows:
        cid, mid = str(cid), str(mid)
        pool_limits[(cid, mid)] = max_per_day
        pacer_floor[mid] = max(pacer_floor[mid], meta[cid]["min_minutes_between_sends"])
        if mid in mailboxes:
            continue
        usable = status == "connected" and enabled
        why = ""
        if status != "connected":
            why = f"mailbox {email} is {status}"
        elif not enabled:
            why = f"sending is switched off on {email}"
        ready = max((t for t in (next_send, backoff) if t is not None), default=None)
        zone = ZoneInfo(tz)
        today = count_day == caps.local_day(now, zone)
        mailboxes[mid] = MailboxSlot(
            id=mid,
            email=email,
            zone=zone,
            usable=usable,
            remaining=min(limit, caps.HARD_DAILY_CAP) - (day_count if today else 0),
            ready_at=ready,
            domain_limit=settings.RECIPIENT_DOMAIN_DAILY_LIMIT,
            domain_counts=_json_object(domain_counts) if today else {},
            why_unusable=why,
        )

    counts = _today_counts(now, campaigns, mailboxes)
    for (cid, mid), max_per_day in pool_limits.items():
        slot = mailboxes[mid]
        plan = campaigns[cid]
        day = caps.local_day(now, slot.zone)
        used = counts.get(("campaign_mailbox", f"{cid}:{mid}", day), 0)
        # No per-campaign limit on this mailbox: the other caps bound it anyway.
        remaining = (max_per_day - used) if max_per_day is not None else caps.HARD_DAILY_CAP
        plan.pool.append(PoolEntry(mid, remaining))
    for cid, plan in campaigns.items():
        plan.remaining -= counts.get(("campaign", cid, caps.local_day(now, plan.zone)), 0)

    quota_left = _quota_left(now, {p.workspace_id for p in campaigns.values()})
    limited = {pair for pair, limit in pool_limits.items() if limit is not None}
    return TickState(campaigns, mailboxes, quota_left, dict(pacer_floor), meta, limited)


def _json_object(value: Any) -> dict[str, int]:
    # Django's cursor hands jsonb over as text.
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


def _today_counts(
    now: datetime, campaigns: dict[str, CampaignPlan], mailboxes: dict[str, MailboxSlot]
) -> dict[tuple[str, str, date], int]:
    # "Today" differs per zone; at most a few distinct local dates exist at any instant.
    days = {caps.local_day(now, p.zone) for p in campaigns.values()}
    days |= {caps.local_day(now, m.zone) for m in mailboxes.values()}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT scope, key, day, count FROM sequences_sendcounter "
            "WHERE day = ANY(%s::date[]) AND scope IN ('campaign', 'campaign_mailbox')",
            [sorted(days)],
        )
        return {(scope, key, day): n for scope, key, day, n in cursor.fetchall()}


def _quota_left(now: datetime, workspace_ids: set[str]) -> dict[str, int | None]:
    """Remaining plan sends today and this month per workspace; None when the plan has no limit."""
    left: dict[str, int | None] = {}
    if not settings.BILLING_ENABLED:
        return dict.fromkeys(workspace_ids)
    day = now.astimezone(UTC).date()
    month = day.replace(day=1)
    for workspace in Workspace.objects.filter(id__in=workspace_ids).select_related("owner"):
        plan = plan_state(workspace, now).plan
        wid = str(workspace.id)
        limits = []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT scope, count FROM sequences_sendcounter WHERE workspace_id = %s AND "
                "((scope = 'workspace_day' AND day = %s) OR (scope = 'workspace_month' AND day = %s))",
                [wid, day, month],
            )
            used = dict(cursor.fetchall())
        if plan.daily_emails is not None:
            limits.append(plan.daily_emails - used.get("workspace_day", 0))
        if plan.monthly_emails is not None:
            limits.append(plan.monthly_emails - used.get("workspace_month", 0))
        left[wid] = min(limits) if limits else None
    return left


# --- deferring what cannot go now ------------------------------------------------------------


def _mailbox_blocker(slot: MailboxSlot, now: datetime) -> tuple[datetime, str] | None:
    if not slot.usable:
        return now + RETRY_WITHOUT_MAILBOX, slot.why_unusable
    if slot.remaining <= 0:
        return caps.next_local_midnight(now, slot.zone), f"daily cap reached on {slot.email}"
    if slot.ready_at is not None and slot.ready_at > now:
        return slot.ready_at, f"pacing sends of {slot.email}"
    return None


def defer_blocked(state: TickState, now: datetime) -> int:
    """Push due work that cannot go now to when it can, before any LIMIT sees it."""
    by_campaign: list[tuple[str, datetime, str, bool]] = []
    open_campaigns = []
    for cid, plan in state.campaigns.items():
        if not is_inside(plan.window, now):
            opening = clamp_to_window(now, plan.window)
            if opening is None:
                by_campaign.append(
                    (cid, now + timedelta(days=1), "the campaign has no sending days", False)
                )
            else:
                by_campaign.append((cid, opening, describe_next(plan.window, opening), False))
            continue
        if plan.remaining <= 0:
            until = clamp_to_window(caps.next_local_midnight(now, plan.zone), plan.window)
            by_campaign.append(
                (cid, until or now + timedelta(days=1), "campaign daily send limit reached", False)
            )
            continue
        left = state.quota_left.get(plan.workspace_id)
        if left is not None and left <= 0:
            until = clamp_to_window(caps.next_local_midnight(now, UTC), plan.window)
            by_campaign.append(
                (cid, until or now + timedelta(days=1), "plan email quota reached", False)
            )
            continue
        open_campaigns.append(cid)
        blockers = []
        for entry in plan.pool:
            slot = state.mailboxes[entry.mailbox_id]
            blocker = _mailbox_blocker(slot, now)
            if blocker is None and entry.remaining <= 0:
                blocker = (
                    caps.next_local_midnight(now, slot.zone),
                    f"campaign limit per mailbox reached on {slot.email}",
                )
            if blocker is None:
                break
            blockers.append(blocker)
        else:
            # No mailbox of the pool can take new prospects now: the unassigned wait.
            until, reason = (
                min(blockers)
                if blockers
                else (
                    now + RETRY_WITHOUT_MAILBOX,
                    "no active mailbox in the campaign",
                )
            )
            by_campaign.append((cid, until, reason, True))
    # A block of a few minutes (the pacer, a short backoff, a window about to open) is cheaper
    # to filter at the claim than to write; only long ones are stored with their reason.
    horizon = now + DEFER_AFTER
    by_campaign = [entry for entry in by_campaign if entry[1] > horizon]
    deferred = 0
    with hot_cursor() as cursor:
        if by_campaign:
            cursor.execute(
                _sql("defer_by_campaign"),
                {
                    "now": now,
                    "campaign_ids": [c for c, _, _, _ in by_campaign],
                    "untils": [u for _, u, _, _ in by_campaign],
                    "reasons": [r[:255] for _, _, r, _ in by_campaign],
                    "unassigned_only": [o for _, _, _, o in by_campaign],
                },
            )
            deferred += cursor.rowcount
        by_mailbox = [
            (mid, *blocker)
            for mid, slot in state.mailboxes.items()
            if (blocker := _mailbox_blocker(slot, now)) is not None and blocker[0] > horizon
        ]
        if by_mailbox and open_campaigns:
            cursor.execute(
                _sql("defer_by_mailbox"),
                {
                    "now": now,
                    "mailbox_ids": [m for m, _, _ in by_mailbox],
                    "untils": [u for _, u, _ in by_mailbox],
                    "reasons": [r[:255] for _, _, r in by_mailbox],
                    "open_campaigns": open_campaigns,
                },
            )
            deferred += cursor.rowcount
    state.campaign_meta["__open__"] = {"ids": open_campaigns}
    return deferred


# --- claiming and applying -------------------------------------------------------------------


def claim(state: TickState, now: datetime, limit: int) -> list[Due]:
    open_campaigns: list[str] = state.campaign_meta.get("__open__", {}).get("ids", [])
    if not open_campaigns:
        return []
    ready = {
        mid
        for mid, slot in state.mailboxes.items()
        if _mailbox_blocker(slot, now) is None and not slot.used_this_tick
    }
    if not ready:
        return []
    with_ready: list[str] = []
    ready_counts: list[int] = []
    for cid in open_campaigns:
        plan = state.campaigns[cid]
        if plan.remaining <= 0:
            continue
        n = sum(1 for e in plan.pool if e.mailbox_id in ready and e.remaining > 0)
        if n:
            with_ready.append(cid)
            ready_counts.append(n)
    with hot_cursor() as cursor:
        cursor.execute(
            _sql("claim_due"),
            {
                "now": now,
                "open_campaigns": open_campaigns,
                "ready_mailboxes": sorted(ready),
                "campaigns_with_ready": with_ready,
                "ready_counts": ready_counts,
                "scan_limit": limit * 4,
                "limit": limit,
            },
        )
        return [
            Due(
                id=str(eid),
                campaign_id=str(cid),
                mailbox_id=str(mid) if mid else None,
                step_index=step,
                domain=domain or "",
                due_at=due_at,
            )
            for eid, cid, mid, step, domain, due_at in cursor.fetchall()
        ]


def _counters_for(
    send: Send, plan: CampaignPlan, slot: MailboxSlot, domain: str, now: datetime, state: TickState
) -> list[list[str]]:
    """The counters one reservation takes a slot from. Per-campaign-mailbox and plan counters
    are kept only where such a limit exists, so an unlimited setting costs nothing."""
    mday = caps.local_day(now, slot.zone).isoformat()
    counters = [
        ["mailbox", send.mailbox_id, mday],
        ["campaign", send.campaign_id, caps.local_day(now, plan.zone).isoformat()],
        ["recipient_domain", f"{send.mailbox_id}:{domain}", mday],
    ]
    if (send.campaign_id, send.mailbox_id) in state.limited_pairs:
        counters.append(["campaign_mailbox", f"{send.campaign_id}:{send.mailbox_id}", mday])
    if state.quota_left.get(plan.workspace_id) is not None:
        utc_day = now.astimezone(UTC).date()
        counters.append(["workspace_day", plan.workspace_id, utc_day.isoformat()])
        counters.append(["workspace_month", plan.workspace_id, utc_day.replace(day=1).isoformat()])
    return counters


def apply(
    decisions: list[Send | Wait | Finish],
    due: list[Due],
    state: TickState,
    now: datetime,
    rng: random.Random,
    report: TickReport,
) -> None:
    from warmysender.sequences import services

    domains = {d.id: d.domain for d in due}
    steps_of = {d.id: d.step_index for d in due}
    sends = [d for d in decisions if isinstance(d, Send)]
    waits = [d for d in decisions if isinstance(d, Wait)]
    finishes = [d for d in decisions if isinstance(d, Finish)]
    with hot_cursor() as cursor:
        if sends:
            counters = {
                s.enrollment_id: _counters_for(
                    s,
                    state.campaigns[s.campaign_id],
                    state.mailboxes[s.mailbox_id],
                    domains[s.enrollment_id],
                    now,
                    state,
                )
                for s in sends
            }
            cursor.execute(
                _sql("reserve_actions"),
                {
                    "now": now,
                    "enrollment_ids": [s.enrollment_id for s in sends],
                    "step_ids": [s.step.id for s in sends],
                    "variant_ids": [s.variant_id for s in sends],
                    "mailbox_ids": [s.mailbox_id for s in sends],
                    "counters": [json.dumps(counters[s.enrollment_id]) for s in sends],
                },
            )
            reserved = {str(row[0]) for row in cursor.fetchall()}
            granted = [s for s in sends if s.enrollment_id in reserved]
            refused = [s for s in sends if s.enrollment_id not in reserved]
            bump_counters(
                cursor,
                [
                    (state.campaigns[s.campaign_id].workspace_id, *c)
                    for s in granted
                    for c in counters[s.enrollment_id]
                ],
                sign=1,
            )
            cursor.execute(
                """
                UPDATE sequences_enrollment e
                SET status = 'sending', mailbox_id = v.mailbox_id, wait_reason = '',
                    variants = CASE WHEN v.variant_id IS NULL THEN e.variants
                               ELSE e.variants || jsonb_build_object(v.step_index::text, v.variant_id) END,
                    updated_at = %(now)s
                FROM unnest(%(ids)s::uuid[], %(mailbox_ids)s::uuid[], %(variant_ids)s::bigint[],
                            %(step_indexes)s::int[]) AS v(id, mailbox_id, variant_id, step_index)
                WHERE e.id = v.id
                """,
                {
                    "now": now,
                    "ids": [s.enrollment_id for s in granted],
                    "mailbox_ids": [s.mailbox_id for s in granted],
                    "variant_ids": [s.variant_id for s in granted],
                    "step_indexes": [s.step.step_index for s in granted],
                },
            )
            _advance_pacers(cursor, granted, state, now, rng, domains)
            report.reserved += len(granted)
            report.mailboxes.update(s.mailbox_id for s in granted)
            for s in refused:
                # The step's action already exists beyond `planned`: it was sent, failed or is
                # unknown. Never reserve it again; a person looks at it.
                services.flag_existing_action(s.enrollment_id, steps_of[s.enrollment_id], now=now)
        if waits:
            cursor.execute(
                """
                UPDATE sequences_enrollment e
                SET next_action_at = greatest(e.next_action_at, v.until), wait_reason = v.reason,
                    updated_at = %(now)s
                FROM unnest(%(ids)s::uuid[], %(untils)s::timestamptz[], %(reasons)s::text[])
                     AS v(id, until, reason)
                WHERE e.id = v.id
                """,
                {
                    "now": now,
                    "ids": [w.enrollment_id for w in waits],
                    "untils": [w.until for w in waits],
                    "reasons": [w.reason[:255] for w in waits],
                },
            )
            report.waited += len(waits)
    for f in finishes:
        services.finish_enrollment(f.enrollment_id, now=now)
    report.finished += len(finishes)


# Scopes counted on the mailbox's throttle row rather than in SendCounter.
MAILBOX_SCOPES = ("mailbox", "recipient_domain")


def bump_counters(cursor: Any, rows: Iterable[Sequence[str]], *, sign: int) -> None:
    """Add (sign=1) or give back (sign=-1) one send on each (workspace, scope, key, day).

    The mailbox and recipient-domain scopes are taken by `_advance_pacers` with the pacer; here
    they are only given back."""
    totals: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for workspace_id, scope, key, day in rows:
        if scope in MAILBOX_SCOPES:
            if sign < 0 and scope == "recipient_domain":
                mailbox_id, _, domain = key.partition(":")
                cursor.execute(
                    _sql("release_mailbox_slot"),
                    {"mailbox_id": mailbox_id, "domain": domain, "day": day},
                )
            continue
        totals[(str(workspace_id), scope, key, day)] += 1
    if not totals:
        return
    keys = list(totals)
    if sign > 0:
        cursor.execute(
            _sql("bump_counters"),
            {
                "workspace_ids": [k[0] for k in keys],
                "scopes": [k[1] for k in keys],
                "keys": [k[2] for k in keys],
                "days": [k[3] for k in keys],
                "ns": [totals[k] for k in keys],
            },
        )
    else:
        cursor.execute(
            _sql("release_counters"),
            {
                "scopes": [k[1] for k in keys],
                "keys": [k[2] for k in keys],
                "days": [k[3] for k in keys],
                "ns": [totals[k] for k in keys],
            },
        )


def _advance_pacers(
    cursor: Any,
    granted: list[Send],
    state: TickState,
    now: datetime,
    rng: random.Random,
    domains: dict[str, str],
) -> None:
    """Take the slot of each granted send on its mailbox: pacer, day count, domain count."""
    if not granted:
        return
    ids, nexts, workspaces, days, send_domains = [], [], [], [], []
    for s in granted:
        slot = state.mailboxes[s.mailbox_id]
        ids.append(s.mailbox_id)
        nexts.append(now + caps.spacing(state.pacer_floor.get(s.mailbox_id, 0), rng))
        workspaces.append(state.campaigns[s.campaign_id].workspace_id)
        days.append(caps.local_day(now, slot.zone))
        send_domains.append(domains[s.enrollment_id])
        slot.ready_at = nexts[-1]
    cursor.execute(
        _sql("take_mailbox_slots"),
        {
            "now": now,
            "ids": ids,
            "workspaces": workspaces,
            "nexts": nexts,
            "days": days,
            "domains": send_domains,
        },
    )
