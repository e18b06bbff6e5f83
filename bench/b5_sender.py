"""B5 — the sender with all its bookkeeping against a raw smtplib loop, into the same SMTP sink.

    python -m bench.b5_sender [--messages 400] [--rounds 5]

The sink is the test suite's aiosmtpd server (`python -m warmysender.testing.smtp`) in a process
of its own, with AUTH. Ours: `sending.send_for_mailbox` over reserved actions of one mailbox —
render (Liquid, spintax, HTML), suppression check, `sending` committed before the hand-over, the
outcome, the next step, the audit row and the `email.sent` event, one SMTP connection for the
run. Baseline: one smtplib connection, the same login, and for each message an EmailMessage with
the same headers and parts built directly and `send_message`. Rounds alternate; prints
`ratio=` (our messages per second / the raw loop's) last — 1.0 would be no overhead at all.
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from bench.common import environment, setup_django, summary, timed

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LOGIN, PASSWORD = "bench@sender.com", "bench-pass"
BODY = "<p>Hi {{firstName | default: 'there'}}, {a quick|one} question about {{company}}.</p>"


def start_sink() -> tuple[subprocess.Popen[str], int]:
    sink = subprocess.Popen(
        [sys.executable, "-m", "warmysender.testing.smtp", "--auth", f"{LOGIN}:{PASSWORD}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    ready = sink.stdout.readline().split()
    assert ready and ready[0] == "READY", ready
    return sink, int(ready[2])


def seed(port: int, n: int, rounds: int) -> tuple[str, list[list[str]]]:
    """One SMTP mailbox and a campaign with `n * rounds` enrollments; returns the mailbox id and,
    per round, the enrollment ids to reserve."""
    from django.db import connection

    from warmysender.accounts import services as accounts
    from warmysender.audit.services import Actor
    from warmysender.mailboxes import services as mailboxes
    from warmysender.sequences import services
    from warmysender.sequences.models import Enrollment
    from warmysender.sequences.services import StepInput

    actor = Actor.system("bench")
    owner = accounts.sign_up(
        email="b5@example.com", password="bench-password-1", workspace_name="B5", now=NOW
    )
    ws = owner.current_workspace
    assert ws is not None
    mailbox = mailboxes.create_mailbox(
        ws,
        {
            "email": LOGIN,
            "provider": "custom",
            "smtpHost": "127.0.0.1",
            "smtpPort": port,
            "smtpSecurity": "none",
            "smtpPassword": PASSWORD,
            "imapHost": "127.0.0.1",
            "imapPort": 1,
            "imapSecurity": "none",
            "imapPassword": "unused",
            "dailyLimit": 500,
        },
        actor=actor,
        now=NOW,
    )
    mailboxes.set_status(mailbox, "connected", actor=actor, now=NOW)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO prospects_prospect (id, workspace_id, email, first_name, last_name, company,
                role, phone, linkedin_url, website, country, city, industry, custom_fields,
                global_status, created_at, updated_at)
            SELECT gen_random_uuid(), %s, 'lead' || g || '@example.com', 'Ada', '', 'Engines', '',
                   '', '', '', '', '', '', '{}', 'active', %s, %s
            FROM generate_series(1, %s) g
            """,
            [ws.id, NOW, NOW, n * rounds],
        )
    campaign = services.create_campaign(
        workspace=ws,
        name="B5",
        steps=[
            StepInput(step_index=1, subject="{Hi|Hello} {{firstName}}", body_html=BODY),
            StepInput(step_index=2, subject="", body_html="<p>Following up</p>", delay_days=3),
        ],
        mailbox_ids=[mailbox.id],
        settings={"schedule_days": list(range(7)), "window_start_hour": 0, "window_end_hour": 24},
        actor=actor,
        now=NOW,
    )
    from warmysender.prospects.models import Prospect

    services.enroll(
        campaign=campaign,
        prospect_ids=list(Prospect.objects.values_list("id", flat=True)),
        actor=actor,
        now=NOW,
    )
    services.start_campaign(campaign=campaign, actor=actor, now=NOW)
    ids = [
        str(e)
        for e in Enrollment.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list("id", flat=True)
    ]
    return str(mailbox.id), [ids[r * n : (r + 1) * n] for r in range(rounds)]


def reserve(mailbox_id: str, enrollment_ids: list[str], now: datetime) -> None:
    """Reserve step 1 for these enrollments with the tick's own statement (sql/tick_reserve.sql),
    as if the tick had chosen them all for this mailbox. The recipient-domain limit is lifted:
    every prospect here is at example.com, and B5 measures the sender, not the tick's caps."""
    from django.db import transaction

    from warmysender.lib.sql import hot_cursor
    from warmysender.mailboxes.models import Mailbox
    from warmysender.sequences.models import Enrollment
    from warmysender.sequences.scheduler import _sql

    mailbox = Mailbox.objects.get(pk=mailbox_id)
    rows = list(Enrollment.objects.filter(id__in=enrollment_ids).values_list("id", "campaign_id"))
    n = len(rows)
    day = now.date()
    with transaction.atomic(), hot_cursor() as cursor:
        cursor.execute(
            _sql("tick_reserve"),
            {
                "ids": [e for e, _ in rows],
                "campaign_ids": [c for _, c in rows],
                "mailbox_ids": [mailbox.pk] * n,
                "workspace_ids": [mailbox.workspace_id] * n,
                "campaign_days": [day] * n,
                "from_emails": [mailbox.email] * n,
                "zones": ["UTC"] * n,
                "days": [day] * n,
                "useds": [0] * n,
                "caps": [n] * n,
                "pair_limiteds": [False] * n,
                "quota_workspaces": [],
                "now": now,
                "domain_limit": 10**9,
                "any_floor": False,
                "spacing_min": 60.0,
                "spacing_max": 300.0,
                "utc_day": day,
                "utc_month": day.replace(day=1),
            },
        )
        kinds = [row[0] for row in cursor.fetchall()]
    assert kinds.count("reserved") == n, kinds[:5]


def raw_loop(port: int, n: int, offset: int) -> int:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
    smtp.login(LOGIN, PASSWORD)
    try:
        for i in range(n):
            msg = EmailMessage()
            msg["From"] = LOGIN
            msg["To"] = f"raw{offset + i}@example.com"
            msg["Subject"] = "Hi Ada"
            msg["Message-ID"] = make_msgid(domain="sender.com")
            msg["List-Unsubscribe"] = "<http://127.0.0.1:8000/u/x/>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            msg.set_content(
                "Hi Ada, a quick question about Engines.\n\nUnsubscribe: http://127.0.0.1:8000/u/x/"
            )
            msg.add_alternative("<p>Hi Ada, a quick question about Engines.</p>", subtype="html")
            smtp.send_message(msg)
    finally:
        smtp.quit()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cleanup = setup_django()
    sink, port = start_sink()
    try:
        from warmysender.sequences import sending
        from warmysender.sequences.models import Action

        print(environment())
        mailbox_id, batches = seed(port, args.messages, args.rounds)
        ours: list[float] = []
        base: list[float] = []
        for r, batch in enumerate(batches):
            now = NOW + timedelta(minutes=r)
            reserve(mailbox_id, batch, now)
            t_ours, sent = timed(
                lambda now=now: sending.send_for_mailbox(mailbox_id, clock=lambda: now)
            )
            assert sent == len(batch), (sent, len(batch))
            t_base, _ = timed(lambda r=r: raw_loop(port, args.messages, r * args.messages))
            ours.append(t_ours)
            base.append(t_base)
            print(
                f"round {r + 1}: ours {args.messages / t_ours:,.0f} msg/s, raw {args.messages / t_base:,.0f} msg/s"
            )
        assert Action.objects.filter(state="sent").count() == args.messages * args.rounds
        print(summary(f"ours per {args.messages} messages", ours))
        print(summary(f"raw per {args.messages} messages", base))
        per_msg = statistics.median(ours) / args.messages * 1000
        print(
            f"ours {per_msg:.2f} ms/message, raw {statistics.median(base) / args.messages * 1000:.2f} ms/message"
        )
        print(f"ratio={statistics.median(base) / statistics.median(ours):.2f}")
    finally:
        sink.terminate()
        sink.wait(timeout=10)
        cleanup()


if __name__ == "__main__":
    main()
