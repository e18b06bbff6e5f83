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
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import plan_state
from warmysender.lib.sql import hot_cursor, load
from warmysender.sequences import caps
from warmysender.sequences.engine import (
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
from warmysender.sequences.windows import Window, clamp_to_window, describe_next

# Blocks shorter than this are filtered at the claim instead of written to the enrollments.
DEFER_AFTER = timedelta(minutes=10)
SENDER_SWEEP_MINUTES = 5
TICK_LOCK = 0x5753_5449  # "WSTI": the advisory lock key of the scheduler tick
UTC = ZoneInfo("UTC")


def _sql(name: str) -> str:
    """A named statement; `%(sender_state)s` in it is the shared sender-state query."""
    text = load("warmysender.sequences", name)
    if "%(sender_state)s" in text:
        text = text.replace("%(sender_state)s", load("warmysender.sequences", "sender_state"))
    return text


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
    """What the tick knows: every running campaign; and, per claimed batch, only the mailboxes
    that batch can use — so a tick costs what its batch costs, not what the fleet holds."""

    campaigns: dict[str, CampaignPlan]
    open_campaigns: list[str]
    quota_left: dict[str, int | None]
    mailboxes: dict[str, MailboxSlot] = field(default_factory=dict)
    # Per mailbox: the longest "minutes between sends" of the running campaigns sharing it.
    pacer_floor: dict[str, int] = field(default_factory=dict)
    # (campaign, mailbox) pairs with a maxSendsPerMailboxPerDay of their own.
    limited_pairs: set[tuple[str, str]] = field(default_factory=set)
    # Whether any running campaign sets "minutes between sends" / any pool entry its own daily
    # limit: when none does (the usual case) the per-mailbox lookups are skipped.
    any_pacer_floor: bool = False
    any_limited_pair: bool = False


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
            # The tick's commit need not wait for the disk. Were it lost in a database crash,
            # its reservations would vanish before anything was sent on them: a sender commits
            # `sending` durably before each hand-over, and that flush carries every earlier
            # commit in the log — the reservation included. Work lost unsent is claimed again.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        from warmysender.sequences import services

        services.start_due_scheduled_campaigns(now)
        state = load_campaigns(now)
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


def load_campaigns(now: datetime) -> TickState:
    """The running campaigns with their steps, today's sends and which of them may send now."""
    campaigns: dict[str, CampaignPlan] = {}
    with hot_cursor() as cursor:
        cursor.execute(
            """
            SELECT id, workspace_id, timezone, schedule_days, window_start_hour, window_end_hour,
                   daily_send_limit, randomize_within_window, min_minutes_between_sends
            FROM sequences_campaign WHERE status = 'running'
            """
        )
        any_pacer_floor = False
        for cid, wid, tz, days, start, end, limit, randomize, floor in cursor.fetchall():
            any_pacer_floor = any_pacer_floor or floor > 0
            zone = ZoneInfo(tz)
            campaigns[str(cid)] = CampaignPlan(
                id=str(cid),
                window=Window(zone, frozenset(days), start, end),
                remaining=limit,
                zone=zone,
                randomize=randomize,
                steps={},
                pool=[],
                workspace_id=str(wid),
            )
        if not campaigns:
            return TickState({}, [], {})
        ids = list(campaigns)
        cursor.execute(
            """
            SELECT s.id, s.campaign_id, s.step_index, s.delay_days, s.delay_hours,
                   s.winner_variant_id,
                   coalesce(array_agg(v.id ORDER BY v.label) FILTER (WHERE v.id IS NOT NULL), '{}'),
                   coalesce(array_agg(v.weight ORDER BY v.label) FILTER (WHERE v.id IS NOT NULL), '{}')
            FROM sequences_step s LEFT JOIN sequences_variant v ON v.step_id = s.id
            WHERE s.campaign_id IN (SELECT unnest(%(ids)s::uuid[]))
            GROUP BY s.id
            """,
            {"ids": ids},
        )
        for sid, cid, index, days, hours, winner, variant_ids, weights in cursor.fetchall():
            campaigns[str(cid)].steps[index] = StepPlan(
                id=sid,
                step_index=index,
                delay=timedelta(days=days, hours=hours),
                variants=tuple(
                    VariantChoice(v, w) for v, w in zip(variant_ids, weights, strict=True)
                ),
                winner_variant_id=winner,
            )
        # "Today" differs per zone; at most a few distinct local dates exist at any instant.
        days = sorted({caps.local_day(now, p.zone) for p in campaigns.values()})
        cursor.execute(
            "SELECT key, day, count FROM sequences_sendcounter "
            "WHERE scope = 'campaign' AND day = ANY(%(days)s) AND key = ANY(%(keys)s)",
            {"days": days, "keys": ids},
        )
        for key, day, count in cursor.fetchall():
            plan = campaigns[key]
            if day == caps.local_day(now, plan.zone):
                plan.remaining -= count
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM sequences_campaignmailbox WHERE max_sends_per_day IS "
            "NOT NULL AND campaign_id IN (SELECT unnest(%(ids)s::uuid[])))",
            {"ids": ids},
        )
        row = cursor.fetchone()
        any_limited = bool(row and row[0])
    quota_left = _quota_left(now, {p.workspace_id for p in campaigns.values()})
    open_campaigns = [
        cid
        for cid, plan in campaigns.items()
        if is_inside(plan.window, now)
        and plan.remaining > 0
        and (quota_left.get(plan.workspace_id) is None or (quota_left[plan.workspace_id] or 0) > 0)
    ]
    return TickState(
        campaigns,
        open_campaigns,
        quota_left,
        any_pacer_floor=any_pacer_floor,
        any_limited_pair=any_limited,
    )


def _json_object(value: Any) -> dict[str, int]:
    # Django's cursor hands jsonb over as text.
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


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


# --- deferring what cannot go now ------------------------------------------------------------


def defer_blocked(state: TickState, now: datetime) -> int:
    """Push due work that cannot go for a while to when it can, with the reason, before any
    LIMIT sees it: campaigns outside their window or at a daily limit, and (in SQL, over every
    pool mailbox) senders at their cap, broken, switched off or in a long backoff. A block of a
    few minutes (the pacer) is cheaper to filter at the claim than to write."""
    horizon = now + DEFER_AFTER
    by_campaign: list[tuple[str, datetime, str]] = []
    open_set = set(state.open_campaigns)
    for cid, plan in state.campaigns.items():
        if cid in open_set:
            continue
        if not is_inside(plan.window, now):
            opening = clamp_to_window(now, plan.window)
            if opening is None:
                by_campaign.append(
                    (cid, now + timedelta(days=1), "the campaign has no sending days")
                )
            else:
                by_campaign.append((cid, opening, describe_next(plan.window, opening)))
        elif plan.remaining <= 0:
            until = clamp_to_window(caps.next_local_midnight(now, plan.zone), plan.window)
            by_campaign.append(
                (cid, until or now + timedelta(days=1), "campaign daily send limit reached")
            )
        else:
            until = clamp_to_window(caps.next_local_midnight(now, UTC), plan.window)
            by_campaign.append((cid, until or now + timedelta(days=1), "plan email quota reached"))
    by_campaign = [entry for entry in by_campaign if entry[1] > horizon]
    deferred = 0
    with hot_cursor() as cursor:
        if by_campaign:
            cursor.execute(
                _sql("defer_by_campaign"),
                {
                    "now": now,
                    "campaign_ids": [c for c, _, _ in by_campaign],
                    "untils": [u for _, u, _ in by_campaign],
                    "reasons": [r[:255] for _, _, r in by_campaign],
                    "unassigned_only": [False] * len(by_campaign),
                },
            )
            deferred += cursor.rowcount
        # Judging every pool mailbox costs the same whether anything is blocked or not, so the
        # sender sweep runs every few minutes; in between the claim filters blocked senders
        # anyway, the sweep only stores the reasons and keeps the due index short.
        if state.open_campaigns and now.minute % SENDER_SWEEP_MINUTES == 0:
            cursor.execute(
                _sql("defer_blocked_senders"),
                {
                    "now": now,
                    "horizon": horizon,
                    "hard_cap": caps.HARD_DAILY_CAP,
                    "open_campaigns": state.open_campaigns,
                },
            )
            row = cursor.fetchone()
            deferred += int(row[0]) if row else 0
    return deferred


# --- claiming and applying -------------------------------------------------------------------


def claim(state: TickState, now: datetime, limit: int) -> list[Due]:
    """Claim one batch and load the mailboxes it can use (its assigned mailboxes and, for
    unassigned prospects, the ready mailboxes of their campaigns)."""
    if not state.open_campaigns:
        return []
    with hot_cursor() as cursor:
        cursor.execute(
            _sql("claim_due"),
            {
                "now": now,
                "hard_cap": caps.HARD_DAILY_CAP,
                "open_campaigns": state.open_campaigns,
                "scan_limit": limit * 4,
                "limit": limit,
            },
        )
        slots: dict[str, tuple[int, list[str]]] = {}
        chosen: list[str] = []
        for kind, key, ready, mailboxes in cursor.fetchall():
            if kind == "slot":
                slots[key] = (ready, mailboxes)
            else:
                chosen.append(key)
        if not chosen:
            return []
        cursor.execute(_sql("lock_claimed"), {"ids": chosen, "now": now})
        locked = cursor.fetchall()
    due: list[Due] = []
    pools: dict[str, list[str]] = defaultdict(list)
    for eid, cid, mid, step, domain, due_at, email in locked:
        due.append(
            Due(
                id=eid,
                campaign_id=cid,
                mailbox_id=mid,
                step_index=step,
                domain=domain or "",
                due_at=due_at,
                email=email,
            )
        )
        pool = pools[cid]
        for m in [mid] if mid else slots[cid][1]:
            if m not in pool:
                pool.append(m)
    _load_slots(state, pools, now)
    return due


def _load_slots(state: TickState, pools: dict[str, list[str]], now: datetime) -> None:
    """Fill in the mailboxes this batch may use, and the campaigns' pools with them in
    round-robin order (least recently used first, as the claim returned them)."""
    wanted = sorted({m for ms in pools.values() for m in ms} - set(state.mailboxes))
    if not wanted:
        _extend_pools(state, pools)
        return
    with hot_cursor() as cursor:
        cursor.execute(
            """
            SELECT m.id, m.email, m.timezone, m.daily_limit, t.count_day, t.day_count, t.domain_counts
            FROM mailboxes_mailbox m
            LEFT JOIN sequences_mailboxthrottle t ON t.mailbox_id = m.id
            WHERE m.id IN (SELECT unnest(%(ids)s::uuid[]))
            """,
            {"ids": wanted},
        )
        for mid, email, tz, limit, count_day, day_count, domain_counts in cursor.fetchall():
            zone = ZoneInfo(tz)
            today = count_day == caps.local_day(now, zone)
            state.mailboxes[str(mid)] = MailboxSlot(
                id=str(mid),
                email=email,
                zone=zone,
                usable=True,  # the claim returned only mailboxes that can send now
                remaining=min(limit, caps.HARD_DAILY_CAP) - (day_count if today else 0),
                daily_limit=min(limit, caps.HARD_DAILY_CAP),
                ready_at=None,
                domain_limit=settings.RECIPIENT_DOMAIN_DAILY_LIMIT,
                domain_counts=_json_object(domain_counts) if today else {},
            )
        if state.any_pacer_floor:
            cursor.execute(
                """
                SELECT cm.mailbox_id, max(c.min_minutes_between_sends)
                FROM sequences_campaignmailbox cm JOIN sequences_campaign c ON c.id = cm.campaign_id
                WHERE c.status = 'running' AND cm.mailbox_id IN (SELECT unnest(%(ids)s::uuid[]))
                GROUP BY cm.mailbox_id
                """,
                {"ids": wanted},
            )
            state.pacer_floor.update((str(m), floor) for m, floor in cursor.fetchall())
        if state.any_limited_pair:
            cursor.execute(
                "SELECT campaign_id, mailbox_id FROM sequences_campaignmailbox WHERE "
                "max_sends_per_day IS NOT NULL AND mailbox_id IN (SELECT unnest(%(ids)s::uuid[]))",
                {"ids": wanted},
            )
            state.limited_pairs.update((str(c), str(m)) for c, m in cursor.fetchall())
    _extend_pools(state, pools)


def _extend_pools(state: TickState, pools: dict[str, list[str]]) -> None:
    for cid, mailbox_ids in pools.items():
        plan = state.campaigns[cid]
        known = {e.mailbox_id for e in plan.pool}
        # Ready means at least one more send today for this campaign on this mailbox; one
        # mailbox takes at most one new send per tick, so that is all a batch can use.
        plan.pool.extend(PoolEntry(m, 1) for m in mailbox_ids if m not in known)


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
    emails = {d.id: d.email for d in due}
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
                    "workspace_ids": [state.campaigns[s.campaign_id].workspace_id for s in sends],
                    "enrollment_ids": [s.enrollment_id for s in sends],
                    "step_ids": [s.step.id for s in sends],
                    "campaign_ids": [s.campaign_id for s in sends],
                    "variant_ids": [s.variant_id for s in sends],
                    "mailbox_ids": [s.mailbox_id for s in sends],
                    "from_emails": [state.mailboxes[s.mailbox_id].email for s in sends],
                    "to_emails": [emails[s.enrollment_id] for s in sends],
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
                FROM unnest(%(ids)b::uuid[], %(mailbox_ids)b::uuid[], %(variant_ids)b::bigint[],
                            %(step_indexes)b::int[]) AS v(id, mailbox_id, variant_id, step_index)
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
            _record_limits_hit(granted, state, now, domains)
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


def _record_limits_hit(
    granted: list[Send], state: TickState, now: datetime, domains: dict[str, str]
) -> None:
    """`limit.hit` for each mailbox whose reservation took its last slot of the day, and for
    each recipient domain that reached its daily limit on a mailbox: once per limit type per
    identifier per (the mailbox's local) day, by the event's dedup key."""
    from warmysender.audit.services import emit_event

    workspaces: dict[str, Workspace] = {}
    for s in granted:
        slot = state.mailboxes[s.mailbox_id]
        domain = domains[s.enrollment_id]
        day = caps.local_day(now, slot.zone).isoformat()
        hits: list[tuple[str, str, int, int, dict[str, str]]] = []
        if slot.remaining <= 0:
            limit = slot.daily_limit
            hits.append(("daily_mailbox", s.mailbox_id, limit - slot.remaining, limit, {}))
        used = slot.domain_counts.get(domain, 0)
        if domain and used >= slot.domain_limit:
            hits.append(
                (
                    "daily_domain",
                    f"{s.mailbox_id}:{domain}",
                    used,
                    slot.domain_limit,
                    {"domain": domain},
                )
            )
        for limit_type, identifier, current, limit, extra in hits:
            wid = state.campaigns[s.campaign_id].workspace_id
            if wid not in workspaces:
                workspaces[wid] = Workspace.objects.get(pk=wid)
            emit_event(
                workspace=workspaces[wid],
                type="limit.hit",
                data={
                    "limitType": limit_type,
                    "mailboxId": s.mailbox_id,
                    "campaignId": s.campaign_id,
                    "currentValue": current,
                    "limitValue": limit,
                    "hitAt": now.isoformat().replace("+00:00", "Z"),
                    **extra,
                },
                now=now,
                dedup_key=f"limit.hit:{limit_type}:{identifier}:{day}",
            )


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
