"""Connecting, the status check, the 3-strike guard, reconnect, the sweeps and deletion, over
real HTTP against the bundled Unipile simulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant
from warmysender.linkedin import connection, services
from warmysender.linkedin.models import (
    AccountStatus,
    AdminAlert,
    LinkedInAccount,
    LinkedInAccountAudit,
)
from warmysender.linkedin.proxies import parse_proxy
from warmysender.linkedin.simulator import SimulatorServer
from warmysender.linkedin.tests.factories import connected_account

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _linked(tenant: Tenant, sim: SimulatorServer, **fields: Any) -> LinkedInAccount:
    remote = sim.add_account(**fields)
    return connected_account(tenant.workspace, unipile_id=remote["id"])


def test_connect_with_credentials_through_a_2fa_checkpoint_passes_the_proxy(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    client = unipile_sim.client()
    account = services.create_account(
        tenant.workspace,
        proxy=parse_proxy("custom", "socks5://bob:pw@proxy.example.com:1080"),
        actor=SYSTEM,
        now=NOW,
    )
    step = connection.connect_with_credentials(
        account, client, username="ada+2fa+sales@example.com", password="secret", now=NOW
    )
    assert (step.connected, step.checkpoint) == (False, "2FA")
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTING
    remote = unipile_sim.state.accounts[account.unipile_account_id]
    assert remote.proxy and remote.proxy["host"] == "proxy.example.com"
    with pytest.raises(services.LinkedInError, match="not right"):
        connection.solve_checkpoint(account, client, code="000000", now=NOW)
    code = remote.checkpoint.code  # what the person reads on their phone
    step = connection.solve_checkpoint(account, client, code=code, now=NOW)
    assert step.connected
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert account.account_type == "sales_navigator"
    assert account.first_connected_at == NOW


def test_a_wrong_password_is_a_clear_error_and_leaves_the_row_connecting(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    account = services.create_account(
        tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW
    )
    with pytest.raises(services.LinkedInError, match="did not accept the login"):
        connection.connect_with_credentials(
            account,
            unipile_sim.client(),
            username="ada@example.com",
            password="wrong-password",
            now=NOW,
        )
    account.refresh_from_db()
    assert (account.status, account.unipile_account_id) == (AccountStatus.CONNECTING, "")


def test_an_expired_session_is_detected_by_one_status_check(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    accounts = [_linked(tenant, unipile_sim) for _ in range(4)]
    unipile_sim.expire_session(accounts[0].unipile_account_id)
    later = NOW + timedelta(minutes=4)
    report = connection.check_statuses(unipile_sim.client(), now=later)
    assert report.flipped == 1
    accounts[0].refresh_from_db()
    assert accounts[0].status == AccountStatus.NEEDS_VERIFICATION
    assert accounts[0].needs_reconnect
    assert accounts[0].disconnected_at == later
    assert accounts[0].disconnected_by == "status_check"
    assert LinkedInAccount.objects.filter(status=AccountStatus.CONNECTED).count() == 3


def test_two_404s_keep_connected_with_the_soft_copy_and_the_third_disconnects(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    accounts = [_linked(tenant, unipile_sim) for _ in range(4)]
    account = accounts[0]
    unipile_sim.not_found(account.unipile_account_id)
    client = unipile_sim.client()
    for n in (1, 2):
        connection.check_statuses(client, now=NOW + timedelta(minutes=5 * n))
        account.refresh_from_db()
        assert account.status == AccountStatus.CONNECTED
        assert account.strikes == n
        assert account.last_error == services.SOFT_STRIKE_COPY.format(n=n)
    connection.check_statuses(client, now=NOW + timedelta(minutes=15))
    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED
    assert account.last_error == services.TERMINAL_404_COPY


def test_a_success_resets_the_strikes(tenant: Tenant, unipile_sim: SimulatorServer) -> None:
    account = _linked(tenant, unipile_sim)
    client = unipile_sim.client()
    unipile_sim.not_found(account.unipile_account_id, times=2)
    connection.check_statuses(client, now=NOW)
    connection.check_statuses(client, now=NOW + timedelta(minutes=5))
    account.refresh_from_db()
    assert account.strikes == 2
    connection.check_statuses(client, now=NOW + timedelta(minutes=10))
    account.refresh_from_db()
    assert (account.strikes, account.last_error, account.status) == (0, "", "connected")


def test_a_status_check_that_would_flip_too_many_aborts_and_alerts(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    accounts = [_linked(tenant, unipile_sim) for _ in range(8)]
    for account in accounts[:6]:
        unipile_sim.expire_session(account.unipile_account_id)
    report = connection.check_statuses(unipile_sim.client(), now=NOW)
    assert report.aborted and report.flipped == 0
    assert LinkedInAccount.objects.filter(status=AccountStatus.CONNECTED).count() == 8
    alert = AdminAlert.objects.get(kind="mass_disconnect_aborted")
    assert "would flip 6 of 8" in alert.message


def test_a_person_disconnected_account_is_not_reconnected_by_the_check(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    account = _linked(tenant, unipile_sim)
    services.disconnect_by_user(account, actor=Actor.person(tenant.owner), now=NOW)
    connection.check_statuses(unipile_sim.client(), now=NOW + timedelta(minutes=5))
    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED


def test_reconnect_link_is_cached_for_90_seconds(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    account = _linked(tenant, unipile_sim)
    client = unipile_sim.client()
    unipile_sim.clear_requests()
    first = connection.reconnect_link(account, client, now=NOW)
    second = connection.reconnect_link(account, client, now=NOW + timedelta(seconds=89))
    assert first == second
    links = [r for r in unipile_sim.requests() if r["path"].endswith("/hosted/accounts/link")]
    assert len(links) == 1
    third = connection.reconnect_link(account, client, now=NOW + timedelta(seconds=91))
    assert third != first


def test_the_orphan_watcher_links_stuck_rows_without_calling_unipile(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    remote = unipile_sim.add_account()
    stuck = services.create_account(
        tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW
    )
    fresh = services.create_account(
        tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW + timedelta(minutes=4)
    )
    # The handshake reached us (Unipile id and an OK status recorded) but never linked the row.
    services.link_unipile_account(stuck, remote["id"], unipile_status="OK", now=NOW)
    services.link_unipile_account(
        fresh, unipile_sim.add_account()["id"], unipile_status="OK", now=NOW
    )
    unipile_sim.clear_requests()
    linked = services.link_orphans(NOW + timedelta(minutes=6))
    assert linked == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == AccountStatus.CONNECTED
    assert fresh.status == AccountStatus.CONNECTING
    assert LinkedInAccountAudit.objects.filter(account=stuck, cause="orphan_watcher").exists()
    assert unipile_sim.requests() == []


def test_one_reconnect_email_after_24_hours_with_a_working_one_click_link(
    tenant: Tenant,
    unipile_sim: SimulatorServer,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.UNIPILE_DSN = unipile_sim.base_url
    settings.UNIPILE_API_KEY = unipile_sim.api_key
    account = _linked(tenant, unipile_sim)
    services.flip_account_status(
        account, AccountStatus.DISCONNECTED, cause="webhook", actor=SYSTEM, now=NOW, error="x"
    )
    unipile_sim.clear_requests()
    assert services.send_reconnect_emails(NOW + timedelta(hours=23)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_reconnect_emails(NOW + timedelta(hours=25)) == 1
    assert services.send_reconnect_emails(NOW + timedelta(hours=26)) == 0
    assert unipile_sim.requests() == []  # the sweep calls nothing
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == f"Your LinkedIn account {account.name} needs to be reconnected"
    assert message.to == [tenant.owner.email]
    link = next(w for w in message.body.split() if "/linkedin/reconnect/" in w)
    path = link.split("://", 1)[1].split("/", 1)[1]
    anonymous = Client()
    with time_machine.travel(NOW + timedelta(hours=25)):
        page = anonymous.get("/" + path)
        assert page.status_code == 200
        assert b"Reconnect Account" in page.content
        started = anonymous.post("/" + path)
    assert started.status_code == 302
    assert "/hosted/" in started["Location"]
    assert anonymous.get("/linkedin/reconnect/forged-token/").status_code == 404


def test_deletion_passes_all_six_layers_or_is_refused(
    tenant: Tenant, unipile_sim: SimulatorServer, settings: Any, caplog: Any
) -> None:
    client = unipile_sim.client()
    owner = Actor.person(tenant.owner)
    account = _linked(tenant, unipile_sim)

    def refused(layer: str) -> None:
        with pytest.raises(connection.DeleteRefused) as info:
            connection.delete_at_unipile(account, client, actor=owner, now=now)
        assert info.value.layer == layer

    now = NOW
    refused("kill_switch")  # 1: off by default
    settings.LINKEDIN_DELETE_ENABLED = True
    refused("confirmation_polls")  # 3: no 404 polls yet
    unipile_sim.not_found(account.unipile_account_id)
    for seconds in (0, 30, 90):  # 30 s is too soon after the first
        assert connection.poll_gone(account, client, now=NOW + timedelta(seconds=seconds))
    now = NOW + timedelta(seconds=90)
    refused("confirmation_polls")
    assert connection.poll_gone(account, client, now=NOW + timedelta(seconds=150))
    now = NOW + timedelta(seconds=150)
    refused("deletion_flag")  # 4
    connection.arm_deletion(account, actor=owner, now=NOW - timedelta(hours=5))
    refused("deletion_flag")  # expired after 4 h
    connection.arm_deletion(account, actor=owner, now=now)
    # 2: a run that is mass refuses deletes too.
    others = [_linked(tenant, unipile_sim) for _ in range(6)]
    run = services.DisconnectRun(cause="cleanup", planned=6, fleet_size=7)
    with pytest.raises(connection.DeleteRefused, match="would flip 6"):
        connection.delete_at_unipile(account, client, actor=owner, now=now, run=run)
    with caplog.at_level("WARNING"):
        connection.delete_at_unipile(account, client, actor=owner, now=now)
    assert "[SENSITIVE-OP]" in caplog.text
    account.refresh_from_db()
    assert account.deleted_at == now and account.status == AccountStatus.DISCONNECTED
    assert AdminAlert.objects.filter(kind="sensitive_op").count() == 1
    assert AdminAlert.objects.filter(kind="delete_refused").count() == 6
    # 5: at most 3 deletes in 24 hours, counted from the audit log.
    for other in others[:2]:
        _delete_ready(other, client, unipile_sim, owner, now)
    last = others[2]
    unipile_sim.not_found(last.unipile_account_id)
    for seconds in (0, 60, 120):
        connection.poll_gone(last, client, now=now + timedelta(seconds=seconds))
    connection.arm_deletion(last, actor=owner, now=now)
    with pytest.raises(connection.DeleteRefused) as info:
        connection.delete_at_unipile(last, client, actor=owner, now=now + timedelta(minutes=3))
    assert info.value.layer == "daily_cap"
    assert connection.deletes_in_last_day(now + timedelta(hours=25)) == 0


def _delete_ready(
    account: LinkedInAccount,
    client: Any,
    sim: SimulatorServer,
    actor: Actor,
    now: Any,
) -> None:
    sim.not_found(account.unipile_account_id)
    for seconds in (0, 60, 120):
        connection.poll_gone(account, client, now=now + timedelta(seconds=seconds))
    connection.arm_deletion(account, actor=actor, now=now)
    connection.delete_at_unipile(account, client, actor=actor, now=now + timedelta(minutes=3))


def test_a_live_answer_resets_the_404_confirmation(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    account = _linked(tenant, unipile_sim)
    client = unipile_sim.client()
    unipile_sim.not_found(account.unipile_account_id, times=2)
    assert connection.poll_gone(account, client, now=NOW)
    assert connection.poll_gone(account, client, now=NOW + timedelta(minutes=1))
    assert not connection.poll_gone(account, client, now=NOW + timedelta(minutes=2))
    account.refresh_from_db()
    assert account.gone_polls == []


def test_sync_status_finishes_a_handshake_that_unipile_completed(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    remote = unipile_sim.add_account(username="grace+recruiter@example.com")
    account = services.create_account(
        tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW
    )
    services.link_unipile_account(account, remote["id"], unipile_status="CONNECTING", now=NOW)
    connection.sync_status(account, unipile_sim.client(), now=NOW + timedelta(minutes=7))
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert account.account_type == "recruiter"


def test_a_second_card_for_the_same_unipile_account_is_refused(
    tenant: Tenant, unipile_sim: SimulatorServer
) -> None:
    first = _linked(tenant, unipile_sim)
    second = services.create_account(
        tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW
    )
    with pytest.raises(services.LinkedInError, match="already connected as another card"):
        services.link_unipile_account(
            second, first.unipile_account_id, unipile_status="OK", now=NOW
        )
