"""The scheduler tick: push what cannot go to when it can, then claim due work in batches and
reserve it — all in one transaction.

The decisions are those of the pure engine (engine.py, windows.py, caps.py: the property tests
hold those to the rules); the hot path states them over sets in two named statements,
sql/tick_claim.sql (choose) and sql/tick_reserve.sql (lock and write), so a tick costs two
round trips per batch whatever the batch holds. Python decides only per campaign: which are open
now, and — for those that are not — until when their due work waits and why.

One tick runs at a time fleet-wide (a transaction-level advisory lock; a second scheduler skips
its turn rather than queueing behind the first). The claim still uses SKIP LOCKED so it never
waits on rows a reply or a person is changing at the same moment.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import plan_state
from warmysender.lib.sql import hot_cursor, load
from warmysender.sequences import caps
from warmysender.sequences.engine import is_inside
from warmysender.sequences.windows import Window, clamp_to_window, describe_next

# Blocks shorter than this are filtered at the claim instead of written to the enrollments.
DEFER_AFTER = timedelta(minutes=10)
SENDER_SWEEP_MINUTES = 5
TICK_LOCK = 0x5753_5449  # "WSTI": the advisory lock key of the scheduler tick
UTC = ZoneInfo("UTC")
# The claim's scan looks this many times the batch ahead in the due index: enough to find one
# prospect for every ready mailbox when many due rows share a mailbox.
SCAN_FACTOR = 4


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


@dataclass(frozen=True)
class RunningCampaign:
    id: str
    workspace_id: str
    window: Window
    room: int  # dailySendLimit minus today's sends, in the campaign's zone
    day: date  # the campaign's local day


@dataclass
class TickPlan:
    """What the tick decided per campaign and per workspace before claiming anything."""

    open: list[RunningCampaign]
    closed: list[RunningCampaign]
    # Plan quotas (only when billing is on): sends left today/this month per limited workspace.
    quota_left: dict[str, int]
    # Whether any running campaign sets "minutes between sends": when none does (the usual case)
    # the pacer's per-mailbox lookup is skipped.
    any_pacer_floor: bool = False


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
        plan = plan_campaigns(now)
        if not plan.open and not plan.closed:
            return report
        report.deferred = defer_blocked(plan, now)
        for _ in range(max_batches):
            claimed = claim_and_reserve(plan, now, batch_size, rng, report)
            if claimed < batch_size:
                break
        if report.mailboxes and queue:
            mailbox_ids = sorted(report.mailboxes)
            transaction.on_commit(lambda: _queue_senders(mailbox_ids))
    return report


def _queue_senders(mailbox_ids: list[str]) -> None:
    from warmysender.sequences.tasks import queue_senders

    queue_senders(mailbox_ids)


# --- deciding per campaign -------------------------------------------------------------------

# A campaign is inside its window when its zone's weekday is a sending day and its zone's hour
# is in [start, end): windows.is_open, as SQL (tests hold the two to the same answers).
_RUNNING_CAMPAIGNS = """
SELECT c.id::text, c.workspace_id::text, c.timezone, c.schedule_days, c.window_start_hour,
       c.window_end_hour, c.daily_send_limit - coalesce(cc.count, 0) AS room,
       (%(now)s AT TIME ZONE c.timezone)::date AS day,
       c.min_minutes_between_sends > 0 AS paced,
       (extract(isodow FROM %(now)s AT TIME ZONE c.timezone)::int - 1) = ANY(c.schedule_days)
         AND extract(hour FROM %(now)s AT TIME ZONE c.timezone) >= c.window_start_hour
         AND extract(hour FROM %(now)s AT TIME ZONE c.timezone) < c.window_end_hour AS inside
FROM sequences_campaign c
LEFT JOIN sequences_sendcounter cc
       ON cc.scope = 'campaign' AND cc.key = c.id::text
      AND cc.day = (%(now)s AT TIME ZONE c.timezone)::date
WHERE c.status = 'running'
"""

# Whether a campaign that cannot send has due work: one probe of its range of the due rows.
_HAS_DUE = """
SELECT DISTINCT campaign_id::text FROM sequences_enrollment
WHERE campaign_id = ANY(%(ids)s::uuid[]) AND status = 'pending' AND next_action_at <= %(now)s
"""


def plan_campaigns(now: datetime) -> TickPlan:
    """The running campaigns, split into those that can send now and those that cannot."""
    with hot_cursor() as cursor:
        cursor.execute(_RUNNING_CAMPAIGNS, {"now": now})
        rows = cursor.fetchall()
    quota_left = _quota_left(now, {row[1] for row in rows})
    open_rows: list[tuple[Any, ...]] = []
    closed_rows: list[tuple[Any, ...]] = []
    any_pacer_floor = False
    for cid, wid, tz, days, start, end, room, day, paced, inside in rows:
        any_pacer_floor = any_pacer_floor or paced
        quota = quota_left.get(wid)
        can_send = inside and room > 0 and (quota is None or quota > 0)
        (open_rows if can_send else closed_rows).append((cid, wid, tz, days, start, end, room, day))
    due: set[str] = set()
    if closed_rows:
        with hot_cursor() as cursor:
            cursor.execute(_HAS_DUE, {"ids": [r[0] for r in closed_rows], "now": now})
            due = {cid for (cid,) in cursor.fetchall()}

    def campaign(row: tuple[Any, ...]) -> RunningCampaign:
        cid, wid, tz, days, start, end, room, day = row
        return RunningCampaign(cid, wid, Window.of(tz, days, start, end), room, day)

    return TickPlan(
        open=[campaign(r) for r in open_rows],
        # Only those with due work matter to the deferral; the others cost nothing more.
        closed=[campaign(r) for r in closed_rows if r[0] in due],
        quota_left={w: n for w, n in quota_left.items() if n is not None},
        any_pacer_floor=any_pacer_floor,
    )


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


def defer_blocked(plan: TickPlan, now: datetime) -> int:
    """Push due work that cannot go for a while to when it can, with the reason, before any
    LIMIT sees it: campaigns outside their window or at a daily limit, and (in SQL, over every
    pool mailbox) senders at their cap, broken, switched off or in a long backoff. A block of a
    few minutes (the pacer) is cheaper to filter at the claim than to write."""
    horizon = now + DEFER_AFTER
    by_campaign: list[tuple[str, datetime, str]] = []
    for campaign in plan.closed:
        window = campaign.window
        if not is_inside(window, now):
            opening = clamp_to_window(now, window)
            if opening is None:
                by_campaign.append(
                    (campaign.id, now + timedelta(days=1), "the campaign has no sending days")
                )
            else:
                by_campaign.append((campaign.id, opening, describe_next(window, opening)))
        elif campaign.room <= 0:
            until = clamp_to_window(caps.next_local_midnight(now, window.zone), window)
            by_campaign.append(
                (campaign.id, until or now + timedelta(days=1), "campaign daily send limit reached")
            )
        else:
            until = clamp_to_window(caps.next_local_midnight(now, UTC), window)
            by_campaign.append(
                (campaign.id, until or now + timedelta(days=1), "plan email quota reached")
            )
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
        if plan.open and now.minute % SENDER_SWEEP_MINUTES == 0:
            cursor.execute(
                _sql("defer_blocked_senders"),
                {
                    "now": now,
                    "horizon": horizon,
                    "hard_cap": caps.HARD_DAILY_CAP,
                    "open_campaigns": [c.id for c in plan.open],
                },
            )
            row = cursor.fetchone()
            deferred += int(row[0]) if row else 0
    return deferred


# --- claiming and reserving ------------------------------------------------------------------

# What tick_claim.sql returns (one row of arrays), in order: the names tick_reserve.sql takes.
_CHOICE = (
    "ids", "campaign_ids", "mailbox_ids", "workspace_ids", "campaign_days", "from_emails",
    "zones", "days", "useds", "caps", "pair_limiteds",
)  # fmt: skip


def claim_and_reserve(
    plan: TickPlan, now: datetime, limit: int, rng: random.Random, report: TickReport
) -> int:
    """Claim one batch and reserve it (sql/tick_claim.sql, then sql/tick_reserve.sql). Returns
    how many enrollments the claim chose."""
    if not plan.open:
        return 0
    utc_day = now.astimezone(UTC).date()
    quota = {
        "quota_workspaces": list(plan.quota_left),
        "quota_left": list(plan.quota_left.values()),
    }
    with hot_cursor() as cursor:
        # The claim joins only small tables and its CTEs' sizes are unknown to the planner:
        # without this it plans nested loops over thousands of rows it took for a handful.
        cursor.execute("SET LOCAL enable_nestloop TO off")
        cursor.execute(
            _sql("tick_claim"),
            {
                "now": now,
                "hard_cap": caps.HARD_DAILY_CAP,
                "open_ids": [c.id for c in plan.open],
                "open_campaigns": [c.id for c in plan.open],
                "open_workspaces": [c.workspace_id for c in plan.open],
                "open_rooms": [c.room for c in plan.open],
                "open_days": [c.day for c in plan.open],
                "scan_limit": limit * SCAN_FACTOR,
                "limit": limit,
                **quota,
            },
        )
        arrays = cursor.fetchone()
        assert arrays is not None  # an aggregate: always one row
        choice = dict(zip(_CHOICE, arrays, strict=True))
        cursor.execute("SET LOCAL enable_nestloop TO on")
        chosen = len(choice["ids"])
        if not chosen:
            return 0
        report.claimed += chosen
        # The variant draws and the pacer's spacing come from the tick's random source.
        cursor.execute("SELECT setseed(%s)", [rng.uniform(-1, 1)])
        cursor.execute(
            _sql("tick_reserve"),
            {
                **choice,
                **quota,
                "now": now,
                "domain_limit": settings.RECIPIENT_DOMAIN_DAILY_LIMIT,
                "any_floor": plan.any_pacer_floor,
                "spacing_min": caps.SPACING_MIN.total_seconds(),
                "spacing_max": caps.SPACING_MAX.total_seconds(),
                "utc_day": utc_day,
                "utc_month": utc_day.replace(day=1),
            },
        )
        rows = cursor.fetchall()
    _settle(rows, plan, now, report)
    # For the next batch (same transaction): campaigns' and plans' sends left.
    taken_by_campaign: dict[str, int] = defaultdict(int)
    for kind, _, _, cid, *_ in rows:
        if kind == "reserved":
            taken_by_campaign[cid] += 1
    if taken_by_campaign:
        by_id = {c.id: c for c in plan.open}
        plan.open = [
            replace(c, room=c.room - taken_by_campaign.get(c.id, 0))
            for c in plan.open
            if c.room - taken_by_campaign.get(c.id, 0) > 0
        ]
        for cid, n in taken_by_campaign.items():
            wid = by_id[cid].workspace_id
            if wid in plan.quota_left:
                plan.quota_left[wid] -= n
    return chosen


def _settle(rows: list[tuple[Any, ...]], plan: TickPlan, now: datetime, report: TickReport) -> None:
    """What the reservation statement reports: reservations (and the limits they reached),
    steps already attempted, sequences that are over, prospects waiting for a domain's day."""
    from warmysender.sequences import services

    workspace_of = {c.id: c.workspace_id for c in plan.open}
    for (
        kind,
        enrollment_id,
        mailbox_id,
        campaign_id,
        step_index,
        count,
        cap,
        domain_count,
        domain,
    ) in rows:
        if kind == "reserved":
            report.reserved += 1
            report.mailboxes.add(mailbox_id)
            if count >= cap or domain_count >= settings.RECIPIENT_DOMAIN_DAILY_LIMIT:
                _record_limits_hit(
                    workspace_of[campaign_id], campaign_id, mailbox_id, count, cap,
                    domain, domain_count, now,
                )  # fmt: skip
        elif kind == "refused":
            # The step's action already exists beyond `planned`: it was sent, failed or is
            # unknown. Never reserve it again; a person looks at it.
            services.flag_existing_action(enrollment_id, step_index, now=now)
        elif kind == "finished":
            services.finish_enrollment(enrollment_id, now=now)
            report.finished += 1
        else:
            report.waited += 1


def _record_limits_hit(
    workspace_id: str,
    campaign_id: str,
    mailbox_id: str,
    count: int,
    cap: int,
    domain: str,
    domain_count: int,
    now: datetime,
) -> None:
    """`limit.hit` when a reservation took a mailbox's last slot of the day, or a recipient
    domain's last one on a mailbox: once per limit type per identifier per (the mailbox's local)
    day, by the event's dedup key."""
    from warmysender.audit.services import emit_event
    from warmysender.mailboxes.models import Mailbox

    zone = ZoneInfo(Mailbox.objects.values_list("timezone", flat=True).get(pk=mailbox_id))
    day = caps.local_day(now, zone).isoformat()
    domain_limit = settings.RECIPIENT_DOMAIN_DAILY_LIMIT
    hits: list[tuple[str, str, int, int, dict[str, str]]] = []
    if count >= cap:
        hits.append(("daily_mailbox", mailbox_id, count, cap, {}))
    if domain and domain_count >= domain_limit:
        hits.append(
            (
                "daily_domain",
                f"{mailbox_id}:{domain}",
                domain_count,
                domain_limit,
                {"domain": domain},
            )
        )
    workspace = Workspace.objects.get(pk=workspace_id)
    for limit_type, identifier, current, limit, extra in hits:
        emit_event(
            workspace=workspace,
            type="limit.hit",
            data={
                "limitType": limit_type,
                "mailboxId": mailbox_id,
                "campaignId": campaign_id,
                "currentValue": current,
                "limitValue": limit,
                "hitAt": now.isoformat().replace("+00:00", "Z"),
                **extra,
            },
            now=now,
            dedup_key=f"limit.hit:{limit_type}:{identifier}:{day}",
        )


def release_counters(cursor: Any, counters: Iterable[Sequence[str]]) -> None:
    """Give back one send on each [scope, key, day] a reservation took (its action's
    `counters`, as sql/tick_reserve.sql wrote them). The mailbox's own count and its recipient
    domain's live on its throttle row and come back together."""
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    for scope, key, day in counters:
        if scope == "recipient_domain":
            mailbox_id, _, domain = key.partition(":")
            cursor.execute(
                _sql("release_mailbox_slot"),
                {"mailbox_id": mailbox_id, "domain": domain, "day": day},
            )
        elif scope != "mailbox":
            totals[(scope, key, day)] += 1
    if totals:
        keys = list(totals)
        cursor.execute(
            _sql("release_counters"),
            {
                "scopes": [k[0] for k in keys],
                "keys": [k[1] for k in keys],
                "days": [k[2] for k in keys],
                "ns": [totals[k] for k in keys],
            },
        )
