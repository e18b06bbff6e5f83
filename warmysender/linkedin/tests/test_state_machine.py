"""The account state machine: the one door, and the database refusing every other one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError

from warmysender.audit.models import AuditEntry, DomainEvent
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, make_tenant
from warmysender.linkedin import services
from warmysender.linkedin.models import (
    AccountStatus,
    AdminAlert,
    LinkedInAccount,
    LinkedInAccountAudit,
    Strategy,
)
from warmysender.linkedin.tests.factories import connected_account

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _raw(sql: str, params: list[object]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_new_account_is_connecting_and_not_connected_since_creation(tenant: Tenant) -> None:
    account = services.create_account(
        tenant.workspace, proxy=services.parse_proxy("auto"), actor=SYSTEM, now=NOW
    )
    assert account.status == AccountStatus.CONNECTING
    assert account.disconnected_at == NOW
    assert account.first_connected_at is None


def test_flip_writes_the_paired_audit_row_event_and_markers(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    assert account.first_connected_at == NOW
    later = NOW + timedelta(hours=1)
    assert services.flip_account_status(
        account,
        AccountStatus.DISCONNECTED,
        cause="webhook",
        actor=SYSTEM,
        now=later,
        error="Session expired. Please reconnect.",
    )
    account.refresh_from_db()
    assert account.status == AccountStatus.DISCONNECTED
    assert account.disconnected_at == later
    assert account.disconnected_by == "webhook"
    assert account.last_error == "Session expired. Please reconnect."
    audit = LinkedInAccountAudit.objects.filter(account=account).order_by("id").last()
    assert audit is not None
    assert (audit.from_status, audit.to_status, audit.cause) == (
        "connected",
        "disconnected",
        "webhook",
    )
    assert AuditEntry.objects.filter(
        action="linkedin_account.status_changed", object_id=str(account.pk), to_state="disconnected"
    ).exists()
    assert DomainEvent.objects.filter(type="linkedin.account_status_changed").count() == 2


def test_a_flip_to_the_same_status_writes_nothing(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    before = LinkedInAccountAudit.objects.count()
    assert not services.flip_account_status(
        account, AccountStatus.CONNECTED, cause="x", actor=SYSTEM, now=NOW
    )
    assert LinkedInAccountAudit.objects.count() == before


def test_a_raw_status_update_without_the_service_is_rejected(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    with pytest.raises(DatabaseError, match="no paired audit row"):
        _raw(
            "UPDATE linkedin_linkedinaccount SET status = 'disconnected', disconnected_at = %s "
            "WHERE id = %s",
            [NOW, account.pk],
        )
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED


def test_an_audit_row_for_another_transition_does_not_pair(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    with pytest.raises(DatabaseError, match="no paired audit row"), transaction.atomic():
        LinkedInAccountAudit.objects.create(
            workspace=tenant.workspace,
            account=account,
            from_status="connected",
            to_status="error",
            cause="forged",
            actor_label="x",
            created_at=NOW,
        )
        _raw(
            "UPDATE linkedin_linkedinaccount SET status = 'disconnected', disconnected_at = %s "
            "WHERE id = %s",
            [NOW, account.pk],
        )


@pytest.mark.django_db(transaction=True)
def test_an_audit_row_from_an_earlier_transaction_does_not_pair() -> None:
    tenant = make_tenant("acme")
    account = connected_account(tenant.workspace)
    with transaction.atomic():
        LinkedInAccountAudit.objects.create(
            workspace=tenant.workspace,
            account=account,
            from_status="connected",
            to_status="disconnected",
            cause="earlier",
            actor_label="x",
            created_at=NOW,
            txid=1,  # the database stamps its own transaction id over this
        )
    with pytest.raises(DatabaseError, match="no paired audit row"):
        _raw(
            "UPDATE linkedin_linkedinaccount SET status = 'disconnected', disconnected_at = %s "
            "WHERE id = %s",
            [NOW, account.pk],
        )


def test_the_audit_log_cannot_be_rewritten(tenant: Tenant) -> None:
    connected_account(tenant.workspace)
    with pytest.raises(DatabaseError, match="append-only"):
        _raw("UPDATE linkedin_linkedinaccountaudit SET cause = 'rewritten'", [])


def test_inserting_a_connected_row_directly_is_rejected(tenant: Tenant) -> None:
    with pytest.raises(DatabaseError, match="no paired audit row"):
        _raw(
            "INSERT INTO linkedin_linkedinaccount (id, workspace_id, unipile_account_id, name, "
            "public_identifier, provider_member_id, account_type, strategy, ramp_started_at, "
            "status, status_changed_at, last_error, disconnected_by, unipile_status, strikes, "
            "proxy_mode, proxy_country, proxy_secret, proxy_display, cap_overrides, "
            "reconnect_link, deletion_armed_by, gone_polls, created_at, updated_at) VALUES "
            "(gen_random_uuid(), %s, '', '', '', '', 'premium', 'new_account', %s, 'connected', "
            "%s, '', '', '', 0, 'auto', '', '', '', '{}', '', '', '[]', %s, %s)",
            [tenant.workspace.pk, NOW, NOW, NOW, NOW],
        )


@pytest.mark.parametrize(
    "error",
    [
        "Account no longer registered with Unipile. Please reconnect.",
        "LinkedIn session expired, please reconnect",
        "Account not found at Unipile - reconnect it",
        "ACCOUNT NOT FOUND; RECONNECT",
    ],
)
def test_a_connected_row_with_a_terminal_error_is_rejected(tenant: Tenant, error: str) -> None:
    account = connected_account(tenant.workspace)
    with pytest.raises(IntegrityError, match="no_split_state"):
        _raw(
            "UPDATE linkedin_linkedinaccount SET last_error = %s WHERE id = %s", [error, account.pk]
        )


def test_a_connected_row_accepts_the_soft_strike_copy(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    for n in (1, 2):
        _raw(
            "UPDATE linkedin_linkedinaccount SET last_error = %s WHERE id = %s",
            [services.SOFT_STRIKE_COPY.format(n=n), account.pk],
        )
    account.refresh_from_db()
    assert "strike 2/3" in account.last_error


def test_connected_requires_no_disconnect_timestamp_and_the_reverse(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    with pytest.raises(IntegrityError, match="connected_iff_no_disconnect"):
        _raw(
            "UPDATE linkedin_linkedinaccount SET disconnected_at = %s WHERE id = %s",
            [NOW, account.pk],
        )
    services.flip_account_status(
        account, AccountStatus.ERROR, cause="x", actor=SYSTEM, now=NOW, error="e"
    )
    with pytest.raises(IntegrityError, match="connected_iff_no_disconnect"):
        _raw(
            "UPDATE linkedin_linkedinaccount SET disconnected_at = NULL WHERE id = %s",
            [account.pk],
        )


def test_a_flip_inside_a_savepoint_still_pairs(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    with transaction.atomic(), transaction.atomic():
        services.flip_account_status(
            account, AccountStatus.ERROR, cause="nested", actor=SYSTEM, now=NOW, error="x"
        )
    account.refresh_from_db()
    assert account.status == AccountStatus.ERROR


def test_restriction_switches_to_recovery_at_week_one(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace, strategy=Strategy.VETERAN)
    later = NOW + timedelta(days=30)
    services.flip_account_status(
        account, AccountStatus.RESTRICTED, cause="unipile", actor=SYSTEM, now=later, error="r"
    )
    account.refresh_from_db()
    assert account.strategy == Strategy.RECOVERY
    assert account.ramp_started_at == later


def test_reconnect_clears_markers_but_keeps_caps_and_ramp(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace, strategy=Strategy.ESTABLISHED)
    ramp = account.ramp_started_at
    later = NOW + timedelta(days=10)
    services.reserve(account, "invite", later)
    services.flip_account_status(
        account, AccountStatus.DISCONNECTED, cause="webhook", actor=SYSTEM, now=later, error="x"
    )
    services.mark_connected(account, profile=None, cause="reconnect", actor=SYSTEM, now=later)
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert (account.disconnected_at, account.disconnected_by, account.last_error) == (None, "", "")
    assert account.strikes == 0
    assert account.failure_window_started_at == later
    assert account.ramp_started_at == ramp
    assert account.strategy == Strategy.ESTABLISHED
    assert account.first_connected_at == NOW
    assert services.usage(account, later)["invite"] == 1


# --- the mass-disconnect guard -----------------------------------------------------------------


def test_a_run_flipping_more_than_five_accounts_aborts_and_alerts(tenant: Tenant) -> None:
    accounts = [connected_account(tenant.workspace) for _ in range(30)]
    with pytest.raises(services.MassDisconnectAborted):
        services.DisconnectRun.start("sweep", accounts[:6], now=NOW)
    assert AdminAlert.objects.filter(kind="mass_disconnect_aborted").count() == 1
    assert LinkedInAccount.objects.filter(status=AccountStatus.CONNECTED).count() == 30
    # Five of thirty is within both limits.
    run = services.DisconnectRun.start("sweep", accounts[:5], now=NOW)
    for account in accounts[:5]:
        services.flip_account_status(
            account, AccountStatus.ERROR, cause="sweep", actor=SYSTEM, now=NOW, error="e", run=run
        )
    assert LinkedInAccount.objects.filter(status=AccountStatus.ERROR).count() == 5


def test_a_run_flipping_more_than_a_quarter_of_the_fleet_aborts(tenant: Tenant) -> None:
    accounts = [connected_account(tenant.workspace) for _ in range(7)]
    with pytest.raises(services.MassDisconnectAborted):
        services.DisconnectRun.start("sweep", accounts[:2], now=NOW)
    # One flip is never "mass", whatever the fleet.
    services.DisconnectRun.start("sweep", accounts[:1], now=NOW)


def test_a_run_cannot_flip_more_than_it_declared(tenant: Tenant) -> None:
    accounts = [connected_account(tenant.workspace) for _ in range(10)]
    run = services.DisconnectRun.start("sweep", accounts[:1], now=NOW)
    services.flip_account_status(
        accounts[0], AccountStatus.ERROR, cause="sweep", actor=SYSTEM, now=NOW, error="e", run=run
    )
    with pytest.raises(services.MassDisconnectAborted):
        services.flip_account_status(
            accounts[1],
            AccountStatus.ERROR,
            cause="sweep",
            actor=SYSTEM,
            now=NOW,
            error="e",
            run=run,
        )
    accounts[1].refresh_from_db()
    assert accounts[1].status == AccountStatus.CONNECTED


def test_a_person_disconnecting_is_not_guarded(tenant: Tenant) -> None:
    accounts = [connected_account(tenant.workspace) for _ in range(2)]
    for account in accounts:
        services.disconnect_by_user(account, actor=Actor.person(tenant.owner), now=NOW)
    assert LinkedInAccount.objects.filter(status=AccountStatus.DISCONNECTED).count() == 2
