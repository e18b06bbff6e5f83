"""Helpers for tests that drive the engine end to end: build a campaign through the services,
then run ticks and sender runs at chosen instants (time is a parameter, never slept for)."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from warmysender.audit.services import Actor
from warmysender.conftest import Tenant
from warmysender.mailboxes import services as mailbox_services
from warmysender.mailboxes.models import Mailbox
from warmysender.sequences import scheduler, sending, services
from warmysender.sequences.models import Campaign
from warmysender.sequences.services import StepInput
from warmysender.testing.smtp import SmtpServer

ACTOR = Actor.system("test")
ALL_DAY = {"schedule_days": [0, 1, 2, 3, 4, 5, 6], "window_start_hour": 0, "window_end_hour": 24}


def smtp_mailbox(
    tenant: Tenant, server: SmtpServer, email: str, now: datetime, **extra: Any
) -> Mailbox:
    server.users.setdefault(email, "mailbox-password")
    data = {
        "email": email,
        "provider": "custom",
        "smtpHost": server.host,
        "smtpPort": server.port,
        "smtpSecurity": "none",
        "smtpPassword": server.users[email],
        "imapHost": "127.0.0.1",
        "imapPort": 1,
        "imapSecurity": "none",
        "imapPassword": "unused",
        **extra,
    }
    mailbox = mailbox_services.create_mailbox(tenant.workspace, data, actor=ACTOR, now=now)
    mailbox_services.set_status(mailbox, "connected", actor=ACTOR, now=now)
    mailbox.refresh_from_db()
    return mailbox


def sandbox_mailbox(tenant: Tenant, email: str, now: datetime) -> Mailbox:
    return mailbox_services.create_mailbox(
        tenant.workspace, {"email": email, "kind": "sandbox"}, actor=ACTOR, now=now
    )


def make_campaign(
    tenant: Tenant, mailboxes: list[Mailbox], steps: list[StepInput], now: datetime, **settings: Any
) -> Campaign:
    return services.create_campaign(
        workspace=tenant.workspace,
        name="Outreach",
        steps=steps,
        mailbox_ids=[m.id for m in mailboxes],
        settings={**ALL_DAY, **settings},
        actor=ACTOR,
        now=now,
    )


def drive(now: datetime, *, seed: int = 1) -> scheduler.TickReport:
    """One tick at `now`, then a sender run for every mailbox that got work."""
    rng = random.Random(seed)
    report = scheduler.run_tick(now, rng=rng)
    for mailbox_id in sorted(report.mailboxes):
        sending.send_for_mailbox(mailbox_id, clock=lambda: now, rng=rng)
    return report
