"""Accounts in a given state, made through the services (the database refuses any other way)."""

from __future__ import annotations

from datetime import datetime

from warmysender.accounts.models import Workspace
from warmysender.audit.services import Actor
from warmysender.conftest import NOW
from warmysender.linkedin import services
from warmysender.linkedin.models import AccountType, LinkedInAccount
from warmysender.linkedin.proxies import parse_proxy

_counter = iter(range(1, 1_000_000))


def connected_account(
    workspace: Workspace,
    *,
    now: datetime = NOW,
    account_type: str = AccountType.PREMIUM,
    strategy: str = "new_account",
    name: str = "",
    unipile_id: str | None = None,
) -> LinkedInAccount:
    n = next(_counter)
    account = services.create_account(
        workspace,
        proxy=parse_proxy("auto"),
        strategy=strategy,
        name=name or f"Ada {n}",
        actor=Actor.system("test"),
        now=now,
    )
    services.link_unipile_account(
        account, unipile_id or f"unipile-{workspace.pk}-{n}", unipile_status="OK", now=now
    )
    services.mark_connected(
        account,
        profile=services.Profile(name=account.name, account_type=account_type),
        cause="test",
        actor=Actor.system("test"),
        now=now,
    )
    return account
