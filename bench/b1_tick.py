"""B1 — one scheduler tick over 1,000,000 enrollments and 10,000 mailboxes, against a bare-SQL
tick (BASELINE_TICK: one statement over three narrow tables) on the same data, in the same
database.

    python -m bench.b1_tick [--enrollments 1000000] [--mailboxes 10000] [--rounds 8] [--batch 2000]

Data: one workspace, 1,000 running campaigns of 10 mailboxes each (mixed time zones; one in five
with its window closed at the measured instant), mailbox daily limits 30–50, 5 % of enrollments
due, half of them already assigned to a mailbox. The baseline gets the same enrollments,
mailboxes and caps in its own three tables. Rounds alternate ours / baseline / paced baseline;
each of ours is a full `run_tick` (open campaigns, deferral, claim, reservation) with the clock
moved on six minutes so the pacer lets every mailbox send again. The paced baseline
(PACED_BASELINE_TICK) is the baseline with one send per mailbox a tick, printed to help read the
ratio. After the timed rounds ticks run until nothing more can be reserved, and the run checks
that no cap was exceeded and that no mailbox with due work was left with a free slot
(starvation). Prints `ratio=` (median ms per tick, ours / baseline) last.
"""

from __future__ import annotations

import argparse
import random
import statistics
from datetime import UTC, datetime, timedelta

from bench.common import environment, setup_django, summary, timed

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

BASELINE_TICK = """
WITH due AS (
  SELECT e.id, e.mailbox_id FROM enr e
  WHERE e.state='active' AND e.next_due_at <= %(now)s
  ORDER BY e.next_due_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED
), ranked AS (
  SELECT d.id, d.mailbox_id, row_number() OVER (PARTITION BY d.mailbox_id ORDER BY d.id) rn FROM due d
), cap AS (
  SELECT r.id, r.mailbox_id FROM ranked r JOIN mbx m ON m.id=r.mailbox_id
  WHERE r.rn <= m.daily_cap - m.sent_today
), bump AS (
  UPDATE mbx m SET sent_today = m.sent_today + x.n
  FROM (SELECT mailbox_id, count(*) n FROM cap GROUP BY mailbox_id) x WHERE m.id=x.mailbox_id
), ins AS (
  INSERT INTO sendq(enr_id, mailbox_id) SELECT id, mailbox_id FROM cap RETURNING enr_id
)
UPDATE enr e SET step=step+1, next_due_at = %(now)s + interval '2 days', updated_at=%(now)s
FROM ins WHERE e.id = ins.enr_id
"""

# The baseline with the one rule that most changes the shape of the work: a mailbox takes one
# send a tick and then waits for its pacer (the baseline takes up to the whole day's cap of a
# mailbox in one tick, from neighbouring rows). Run on its own copy of the baseline's tables; it
# is printed for reading the ratio, not part of it.
PACED_BASELINE_TICK = """
WITH scan AS (
  SELECT e.id, e.mailbox_id, e.next_due_at FROM enr_paced e
  WHERE e.state='active' AND e.next_due_at <= %(now)s
  ORDER BY e.next_due_at LIMIT %(scan)s
), one AS (
  SELECT DISTINCT ON (mailbox_id) id, mailbox_id, next_due_at FROM scan
  ORDER BY mailbox_id, next_due_at, id
), cap AS (
  SELECT o.id, o.mailbox_id FROM one o JOIN mbx_paced m ON m.id = o.mailbox_id
  WHERE m.sent_today < m.daily_cap AND m.next_send_at <= %(now)s
  ORDER BY o.next_due_at LIMIT %(batch)s
), locked AS MATERIALIZED (
  SELECT x.id, x.mailbox_id FROM cap c CROSS JOIN LATERAL (
    SELECT e.id, e.mailbox_id FROM enr_paced e
    WHERE e.id = c.id AND e.state='active' AND e.next_due_at <= %(now)s
    FOR UPDATE SKIP LOCKED) x
), bump AS (
  UPDATE mbx_paced m SET sent_today = m.sent_today + 1, next_send_at = %(now)s + interval '3 minutes'
  FROM locked l WHERE m.id = l.mailbox_id
), ins AS (
  INSERT INTO sendq_paced(enr_id, mailbox_id) SELECT id, mailbox_id FROM locked RETURNING enr_id
)
UPDATE enr_paced e SET step=step+1, next_due_at = %(now)s + interval '2 days', updated_at=%(now)s
FROM ins WHERE e.id = ins.enr_id
"""


def seed(n_enrollments: int, n_mailboxes: int) -> None:
    from django.db import DatabaseError, connection, transaction

    from warmysender.accounts import services as accounts
    from warmysender.mailboxes.models import Mailbox
    from warmysender.sequences.models import Campaign, CampaignMailbox, Step, Variant

    rng = random.Random(42)
    owner = accounts.sign_up(
        email="bench@example.com", password="bench-password-1", workspace_name="Bench", now=NOW
    )
    ws = owner.current_workspace
    assert ws is not None
    n_campaigns = n_mailboxes // 10
    with transaction.atomic():
        boxes = Mailbox.objects.bulk_create(
            [
                Mailbox(
                    workspace=ws,
                    email=f"m{i}@sender{i % 100}.com",
                    kind="sandbox",
                    provider="sandbox",
                    status="connected",
                    daily_limit=rng.randint(30, 50),
                    timezone=ZONES[i % len(ZONES)],
                    created_at=NOW,
                    updated_at=NOW,
                )
                for i in range(n_mailboxes)
            ],
            batch_size=5000,
        )
        campaigns = Campaign.objects.bulk_create(
            [
                Campaign(
                    workspace=ws,
                    name=f"Campaign {i}",
                    status="running",
                    daily_send_limit=10_000,
                    timezone=ZONES[i % len(ZONES)],
                    schedule_days=list(range(7)),
                    # One in five is outside its window at NOW (12:00 UTC): 1–2 local.
                    window_start_hour=1 if i % 5 == 0 and ZONES[i % len(ZONES)] == "UTC" else 0,
                    window_end_hour=2 if i % 5 == 0 and ZONES[i % len(ZONES)] == "UTC" else 24,
                    created_at=NOW,
                    updated_at=NOW,
                    started_at=NOW,
                )
                for i in range(n_campaigns)
            ]
        )
        steps = Step.objects.bulk_create(
            [Step(workspace=ws, campaign=c, step_index=1) for c in campaigns]
        )
        Variant.objects.bulk_create(
            [
                Variant(workspace=ws, step=s, label="A", subject="Hi", body_html="<p>Hi</p>")
                for s in steps
            ]
        )
        CampaignMailbox.objects.bulk_create(
            [
                CampaignMailbox(
                    workspace=ws, campaign=campaigns[i // 10], mailbox=b, position=i % 10
                )
                for i, b in enumerate(boxes)
            ],
            batch_size=5000,
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE cidx AS SELECT row_number() OVER (ORDER BY created_at, name) - 1 AS i, id FROM sequences_campaign"
        )
        cursor.execute(
            "UPDATE cidx SET i = split_part(c.name, ' ', 2)::int FROM sequences_campaign c WHERE c.id = cidx.id"
        )
        cursor.execute(
            "CREATE TEMP TABLE midx AS SELECT split_part(split_part(email, '@', 1), 'm', 2)::int AS i, id, daily_limit FROM mailboxes_mailbox"
        )
        cursor.execute("CREATE INDEX ON cidx (i)")
        cursor.execute("CREATE INDEX ON midx (i)")
        cursor.execute(
            """
            INSERT INTO prospects_prospect (id, workspace_id, email, first_name, last_name, company, role,
                phone, linkedin_url, website, country, city, industry, custom_fields, global_status,
                created_at, updated_at)
            SELECT gen_random_uuid(), %(ws)s, 'p' || g || '@d' || (g %% 20000) || '.com', '', '', '', '',
                   '', '', '', '', '', '', '{}', 'active', %(now)s, %(now)s
            FROM generate_series(1, %(n)s) g
            """,
            {"ws": ws.id, "now": NOW, "n": n_enrollments},
        )
        cursor.execute(
            "CREATE TEMP TABLE pidx AS SELECT split_part(split_part(email, '@', 1), 'p', 2)::int AS g, id FROM prospects_prospect"
        )
        cursor.execute("CREATE INDEX ON pidx (g)")
        # Enrollment g: campaign g % C; due (5 %) or in three days; every other one already
        # assigned to one of its campaign's mailboxes.
        cursor.execute(
            """
            INSERT INTO sequences_enrollment (id, workspace_id, campaign_id, prospect_id, status,
                next_step_index, next_action_at, wait_reason, mailbox_id, variants, last_message_id,
                thread_subject, recovery_count, failure_reason, enrolled_at, updated_at)
            SELECT gen_random_uuid(), %(ws)s, c.id, p.id, 'pending', 1,
                   CASE WHEN (hashint4(p.g + 7) & 2147483647) %% 20 = 0
                        THEN %(now)s - interval '1 minute' ELSE %(now)s + interval '3 days' END,
                   '', CASE WHEN p.g %% 2 = 0 THEN m.id END, '{}', '', '', 0, '', %(now)s, %(now)s
            FROM pidx p
            JOIN cidx c ON c.i = p.g %% %(campaigns)s
            JOIN midx m ON m.i = c.i * 10 + (p.g / %(campaigns)s) %% 10
            """,
            {"ws": ws.id, "now": NOW, "campaigns": n_campaigns},
        )
        # The baseline's tables, holding the same enrollments, mailboxes and caps.
        cursor.execute("DROP TABLE IF EXISTS enr, mbx, sendq")
        cursor.execute(
            """
            CREATE TABLE mbx(id int primary key, daily_cap int, sent_today int default 0);
            CREATE TABLE enr(id bigserial primary key, mailbox_id int, step int default 0,
                             state text default 'active', next_due_at timestamptz,
                             updated_at timestamptz default now());
            CREATE TABLE sendq(id bigserial primary key, enr_id bigint, mailbox_id int,
                               status text default 'queued', created_at timestamptz default now(),
                               unique(enr_id, status));
            INSERT INTO mbx(id, daily_cap) SELECT i, daily_limit FROM midx;
            """
        )
        cursor.execute(
            """
            INSERT INTO enr(mailbox_id, next_due_at)
            SELECT c.i * 10 + (p.g / %(campaigns)s) %% 10,
                   CASE WHEN (hashint4(p.g + 7) & 2147483647) %% 20 = 0
                        THEN %(now)s - interval '1 minute' ELSE %(now)s + interval '3 days' END
            FROM pidx p JOIN cidx c ON c.i = p.g %% %(campaigns)s
            """,
            {"now": NOW, "campaigns": n_campaigns},
        )
        cursor.execute("CREATE INDEX enr_due ON enr(next_due_at) WHERE state='active'")
        cursor.execute(
            """
            DROP TABLE IF EXISTS enr_paced, mbx_paced, sendq_paced;
            CREATE TABLE mbx_paced AS SELECT *, timestamptz '2000-01-01' AS next_send_at FROM mbx;
            ALTER TABLE mbx_paced ADD PRIMARY KEY (id);
            CREATE TABLE enr_paced (LIKE enr INCLUDING ALL);
            INSERT INTO enr_paced SELECT * FROM enr ORDER BY id;
            CREATE INDEX ON enr_paced(next_due_at) WHERE state='active';
            CREATE TABLE sendq_paced (LIKE sendq INCLUDING ALL);
            """
        )
        for table in (
            "enr",
            "mbx",
            "enr_paced",
            "mbx_paced",
            "sequences_enrollment",
            "prospects_prospect",
            "mailboxes_mailbox",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
        # Seeding wrote the tables at different moments of the log: without a checkpoint here,
        # whichever was written after the last one would change its pages without full-page
        # images for a while and the other would not. Both start equal.
        try:
            cursor.execute("CHECKPOINT")
        except DatabaseError as error:  # not allowed to this database user
            print(f"no checkpoint after seeding ({error}); the rounds may favour one side")


def baseline_tick(now: datetime, batch: int, sql: str = BASELINE_TICK) -> int:
    from django.db import connection, transaction

    from warmysender.sequences.scheduler import SCAN_FACTOR

    with transaction.atomic(), connection.cursor() as cursor:
        # The paced baseline looks as far ahead in the due rows as our claim does.
        cursor.execute(sql, {"now": now, "batch": batch, "scan": batch * SCAN_FACTOR})
        return cursor.rowcount


def check_caps_and_starvation(now: datetime) -> tuple[int, int, int]:
    """(mailboxes over their cap, mailboxes left with a free slot and due work, reserved)."""
    from django.db import connection

    from warmysender.sequences import caps

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT m.id, m.daily_limit, m.timezone, coalesce(sum(c.count), 0)
            FROM mailboxes_mailbox m
            LEFT JOIN sequences_sendcounter c ON c.scope = 'mailbox' AND c.key = m.id::text
            GROUP BY m.id
            """
        )
        counts = {str(mid): (limit, n) for mid, limit, _, n in cursor.fetchall()}
        over = sum(1 for limit, n in counts.values() if n > min(limit, caps.HARD_DAILY_CAP))
        # Due work that an open campaign could still send through a mailbox with room left.
        cursor.execute(
            """
            SELECT DISTINCT cm.mailbox_id
            FROM sequences_enrollment e
            JOIN sequences_campaign c ON c.id = e.campaign_id
            JOIN sequences_campaignmailbox cm ON cm.campaign_id = e.campaign_id
                 AND (e.mailbox_id IS NULL OR e.mailbox_id = cm.mailbox_id)
            WHERE e.status = 'pending' AND e.next_action_at <= %s AND c.window_end_hour = 24
            """,
            [now],
        )
        starving = sum(
            1 for (mid,) in cursor.fetchall() if counts[str(mid)][1] < counts[str(mid)][0]
        )
        cursor.execute("SELECT count(*) FROM sequences_action WHERE state = 'reserved'")
        reserved = cursor.fetchone()[0]
    return over, starving, reserved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--mailboxes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    cleanup = setup_django()
    try:
        from warmysender.sequences import scheduler

        print(environment())
        elapsed, _ = timed(lambda: seed(args.enrollments, args.mailboxes))
        print(
            f"seeded {args.enrollments:,} enrollments, {args.mailboxes:,} mailboxes in {elapsed:.0f} s"
        )
        ours: list[float] = []
        base: list[float] = []
        paced: list[float] = []
        reserved_total = baseline_total = 0
        rng = random.Random(1)
        for r in range(args.rounds):
            now = NOW + timedelta(minutes=6 * r)
            t_ours, report = timed(
                lambda now=now: scheduler.run_tick(
                    now, batch_size=args.batch, max_batches=1, rng=rng, queue=False
                )
            )
            t_base, n_base = timed(lambda now=now: baseline_tick(now, args.batch))
            t_paced, n_paced = timed(
                lambda now=now: baseline_tick(now, args.batch, PACED_BASELINE_TICK)
            )
            ours.append(t_ours)
            base.append(t_base)
            paced.append(t_paced)
            reserved_total += report.reserved
            baseline_total += n_base
            print(
                f"round {r + 1}: ours {t_ours * 1000:.0f} ms (claimed {report.claimed}, reserved "
                f"{report.reserved}, deferred {report.deferred}); baseline {t_base * 1000:.0f} ms "
                f"({n_base}); paced baseline {t_paced * 1000:.0f} ms ({n_paced})"
            )
        # Drain: tick until nothing more can be reserved at this instant's pacing.
        now = NOW + timedelta(minutes=6 * args.rounds)
        for _ in range(200):
            report = scheduler.run_tick(
                now, batch_size=args.batch, max_batches=50, rng=rng, queue=False
            )
            now += timedelta(minutes=6)
            if report.reserved == 0:
                break
        over, starving, reserved = check_caps_and_starvation(now)
        print(summary("ours", ours))
        print(summary("baseline", base))
        print(
            summary("paced baseline", paced)
            + f" — {statistics.median(paced) / statistics.median(base):.2f}x the baseline,"
            " for reading the ratio only"
        )
        print(
            f"ours {reserved_total / sum(ours):,.0f} reservations/s; baseline {baseline_total / sum(base):,.0f} enqueued/s"
        )
        print(
            f"after draining: {reserved:,} reserved, mailboxes over cap: {over}, mailboxes starved: {starving}"
        )
        print(f"ratio={statistics.median(ours) / statistics.median(base):.2f}")
    finally:
        cleanup()


if __name__ == "__main__":
    main()
