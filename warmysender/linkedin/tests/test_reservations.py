"""The reservation API: caps hold, including across two real processes reserving at once."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from warmysender.audit.models import AuditEntry
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, make_tenant
from warmysender.linkedin import services
from warmysender.linkedin.limits import Denied, Granted
from warmysender.linkedin.models import AccountStatus, ActionUsage
from warmysender.linkedin.tests.factories import connected_account
from warmysender.testing.processes import manage, process_env

SYSTEM = Actor.system("test")


@pytest.mark.django_db
def test_reservations_stop_at_the_cap_and_name_the_reset(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace, account_type="premium")
    cap = services.effective_caps(account, NOW)["profile_view"]
    assert cap == 10  # new account, week 1
    for i in range(cap):
        assert isinstance(
            services.reserve(account, "profile_view", NOW + timedelta(minutes=i)), Granted
        )
    denied = services.reserve(account, "profile_view", NOW + timedelta(minutes=cap))
    assert isinstance(denied, Denied)
    assert denied.reason == "daily profile views cap reached (10/10)"
    assert denied.retry_at == NOW.replace(hour=0) + timedelta(days=1)
    assert services.usage(account, NOW + timedelta(minutes=cap))["profile_view"] == cap
    # The next UTC day starts afresh.
    assert isinstance(services.reserve(account, "profile_view", denied.retry_at), Granted)


@pytest.mark.django_db
def test_a_rolled_back_action_gives_its_capacity_back(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert isinstance(services.reserve(account, "message", NOW), Granted)
        raise RuntimeError("the action's event row could not be written")
    assert ActionUsage.objects.count() == 0


@pytest.mark.django_db
def test_a_disconnected_account_reserves_nothing(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    services.flip_account_status(
        account, AccountStatus.DISCONNECTED, cause="t", actor=SYSTEM, now=NOW, error="gone"
    )
    assert services.reserve(account, "invite", NOW) == Denied("account not connected", None)


@pytest.mark.django_db
def test_cannot_resend_yet_sets_a_cooldown_that_is_never_shortened(tenant: Tenant) -> None:
    import random

    account = connected_account(tenant.workspace)
    first = services.apply_cannot_resend_yet(account, now=NOW, rng=random.Random(1))
    assert NOW + timedelta(hours=4) <= first <= NOW + timedelta(hours=8)
    # A second answer soon after, whose random draw ends earlier, keeps the later deadline.
    second = services.apply_cannot_resend_yet(
        account, now=NOW + timedelta(minutes=1), rng=random.Random(2)
    )
    assert second >= first
    account.refresh_from_db()
    assert account.cooldown_until == second
    denied = services.reserve(account, "invite", NOW + timedelta(hours=1))
    assert isinstance(denied, Denied) and denied.retry_at == second
    assert AuditEntry.objects.filter(action="linkedin_account.cooldown").count() == 2


@pytest.mark.django_db
def test_overrides_need_an_acknowledgement_and_stay_under_the_ceiling(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace, account_type="recruiter")
    owner = Actor.person(tenant.owner)
    with pytest.raises(services.LinkedInError, match="confirm"):
        services.set_cap_overrides(
            account, {"inmail": 40}, acknowledged=False, actor=owner, now=NOW
        )
    with pytest.raises(services.LinkedInError, match="between 0 and 50"):
        services.set_cap_overrides(account, {"inmail": 80}, acknowledged=True, actor=owner, now=NOW)
    account.refresh_from_db()
    assert account.cap_overrides == {}
    services.set_cap_overrides(account, {"inmail": 50}, acknowledged=True, actor=owner, now=NOW)
    assert services.effective_caps(account, NOW)["inmail"] == 50
    assert account.overrides_acknowledged_by == tenant.owner


@pytest.mark.django_db(transaction=True)
def test_two_processes_reserving_in_parallel_never_exceed_the_cap(tmp_path: Path) -> None:
    tenant = make_tenant("race")
    account = connected_account(tenant.workspace, account_type="premium")
    cap = services.effective_caps(account, NOW)["invite"]
    assert cap == 50
    env = process_env(tmp_path)
    # Both processes walk the same minutes, so they collide on every reservation; the rate
    # limit lets two through a minute, the weekly cap stops them at 50.
    args = (
        "linkedin_reserve",
        str(account.pk),
        "invite",
        "--attempts",
        "60",
        "--step",
        "60",
        "--now",
        NOW.isoformat(),
        "--hold-ms",
        "20",
    )
    workers = [manage(env, *args) for _ in range(2)]
    granted = 0
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
        match = re.search(r"granted=(\d+) denied=(\d+)", out)
        assert match, out
        granted += int(match.group(1))
    assert granted == cap
    assert ActionUsage.objects.filter(account=account, kind="invite").count() == cap


@pytest.mark.django_db
def test_seats_come_from_the_plan_and_are_unlimited_with_billing_off(
    tenant: Tenant, settings: Any
) -> None:
    from warmysender.accounts.models import Plan, Subscription, SubscriptionStatus
    from warmysender.accounts.quotas import QuotaExceeded
    from warmysender.linkedin.proxies import parse_proxy

    for _ in range(3):  # billing off: the self-hosted plan has no seat limit
        services.create_account(tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW)
    settings.BILLING_ENABLED = True
    sub = Subscription.objects.create(
        user=tenant.owner,
        plan=Plan.objects.get(code="pro"),
        status=SubscriptionStatus.ACTIVE,
        linkedin_seats=4,
    )
    services.create_account(tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW)
    with pytest.raises(QuotaExceeded, match="4 LinkedIn seats and 4 accounts") as info:
        services.create_account(tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW)
    assert info.value.code == "linkedin_seat_limit_reached"
    sub.linkedin_seats = 0
    sub.save()
    with pytest.raises(QuotaExceeded, match="0 LinkedIn seats"):
        services.create_account(tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW)
