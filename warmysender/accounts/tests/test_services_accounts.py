"""The account services behind the pages: lock-out, invitations, roles, keys, workspaces."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from warmysender.accounts import services
from warmysender.accounts.models import (
    ApiKey,
    Invitation,
    LoginThrottle,
    Membership,
    Plan,
    Role,
    Subscription,
    SubscriptionStatus,
    User,
)
from warmysender.accounts.quotas import QuotaExceeded
from warmysender.accounts.services import AccountError
from warmysender.conftest import NOW, PASSWORD, Tenant

pytestmark = pytest.mark.django_db

IP = "192.0.2.7"


# --- log-in throttling -----------------------------------------------------------------------


def test_the_fifth_failure_locks_for_fifteen_minutes() -> None:
    for i in range(settings.LOGIN_LOCKOUT_FAILURES - 1):
        assert (
            services.register_login_failure("a@example.com", IP, NOW + timedelta(seconds=i)) is None
        )
    assert services.login_locked_until("a@example.com", IP, NOW) is None
    locked = services.register_login_failure("a@example.com", IP, NOW + timedelta(seconds=10))
    assert locked == NOW + timedelta(seconds=10, minutes=settings.LOGIN_LOCKOUT_MINUTES)
    assert services.login_locked_until("A@Example.com ", IP, NOW + timedelta(minutes=5)) == locked
    assert services.login_locked_until("a@example.com", "192.0.2.8", NOW) is None
    assert services.login_locked_until("a@example.com", IP, locked) is None


def test_failures_further_apart_than_the_window_do_not_add_up() -> None:
    for i in range(settings.LOGIN_LOCKOUT_FAILURES - 1):
        services.register_login_failure("b@example.com", IP, NOW + timedelta(minutes=i))
    later = NOW + timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES + 1)
    assert services.register_login_failure("b@example.com", IP, later) is None
    assert LoginThrottle.objects.get(email="b@example.com").failures == 1


def test_a_failure_during_the_lock_does_not_extend_it() -> None:
    for _ in range(settings.LOGIN_LOCKOUT_FAILURES):
        locked = services.register_login_failure("c@example.com", IP, NOW)
    assert locked is not None
    again = services.register_login_failure("c@example.com", IP, NOW + timedelta(minutes=10))
    assert again == locked


def test_the_lock_is_a_row_any_connection_can_read() -> None:
    for _ in range(settings.LOGIN_LOCKOUT_FAILURES):
        services.register_login_failure("d@example.com", IP, NOW)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT failures, locked_until FROM accounts_loginthrottle WHERE email = %s AND ip = %s",
            ["d@example.com", IP],
        )
        failures, locked_until = cursor.fetchone()
    assert failures == settings.LOGIN_LOCKOUT_FAILURES
    assert locked_until == NOW + timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    services.clear_login_failures("D@example.com", IP)
    assert not LoginThrottle.objects.exists()


# --- sign-up and workspaces ------------------------------------------------------------------


def test_sign_up_with_billing_starts_a_pro_trial(settings: Any) -> None:
    settings.BILLING_ENABLED = True
    user = services.sign_up(email="t@example.com", password=PASSWORD, workspace_name="T", now=NOW)
    sub = Subscription.objects.get(user=user)
    assert sub.plan.code == "pro"
    assert sub.status == SubscriptionStatus.TRIALING
    assert sub.trial_ends_at == NOW + timedelta(days=7)


def test_sign_up_refuses_a_taken_email(tenant: Tenant) -> None:
    with pytest.raises(AccountError) as exc:
        services.sign_up(
            email=" ACME-owner@example.com", password=PASSWORD, workspace_name="X", now=NOW
        )
    assert exc.value.field == "email"


def test_switch_workspace_needs_a_membership(tenant: Tenant, outsider: Tenant) -> None:
    with pytest.raises(AccountError):
        services.switch_workspace(user=tenant.member, workspace=outsider.workspace)
    tenant.member.refresh_from_db()
    assert tenant.member.current_workspace_id == tenant.workspace.pk


def test_create_workspace_honours_the_plan(tenant: Tenant, settings: Any) -> None:
    settings.BILLING_ENABLED = True
    Subscription.objects.create(
        user=tenant.owner, plan=Plan.objects.get(code="business"), status=SubscriptionStatus.ACTIVE
    )
    services.create_workspace(user=tenant.owner, name="Two", now=NOW)
    services.create_workspace(user=tenant.owner, name="Three", now=NOW)
    with pytest.raises(QuotaExceeded):
        services.create_workspace(user=tenant.owner, name="Four", now=NOW)


# --- invitations and roles -------------------------------------------------------------------


def test_an_invitation_token_resolves_until_it_expires(tenant: Tenant) -> None:
    issued = services.invite(
        workspace=tenant.workspace,
        email="Inv@Example.com",
        role=Role.ADMIN,
        actor=tenant.owner,
        now=NOW,
    )
    assert issued.invitation.email == "inv@example.com"
    assert (
        services.invitation_from_token(issued.token, NOW + timedelta(days=6)) == issued.invitation
    )
    with pytest.raises(AccountError) as exc:
        services.invitation_from_token(issued.token, NOW + timedelta(days=7))
    assert exc.value.code == "expired"


def test_accepting_checks_the_email_and_works_once(tenant: Tenant) -> None:
    issued = services.invite(
        workspace=tenant.workspace,
        email="inv@example.com",
        role=Role.MEMBER,
        actor=tenant.owner,
        now=NOW,
    )
    stranger = User.objects.create_user(email="stranger@example.com", password=PASSWORD)
    with pytest.raises(AccountError) as exc:
        services.accept_invitation(invitation=issued.invitation, user=stranger, now=NOW)
    assert exc.value.code == "forbidden"
    invitee = User.objects.create_user(email="INV@example.com", password=PASSWORD)
    membership = services.accept_invitation(invitation=issued.invitation, user=invitee, now=NOW)
    assert membership.role == Role.MEMBER
    with pytest.raises(AccountError) as used:
        services.invitation_from_token(issued.token, NOW)
    assert used.value.code == "used"


def test_a_second_pending_invitation_for_the_same_address_is_refused(tenant: Tenant) -> None:
    services.invite(
        workspace=tenant.workspace,
        email="dup@example.com",
        role=Role.MEMBER,
        actor=tenant.owner,
        now=NOW,
    )
    with pytest.raises(AccountError) as exc:
        services.invite(
            workspace=tenant.workspace,
            email="DUP@example.com",
            role=Role.ADMIN,
            actor=tenant.owner,
            now=NOW,
        )
    assert exc.value.code == "conflict"
    # Once the first one has expired, a new one may be sent.
    later = NOW + timedelta(days=8)
    services.invite(
        workspace=tenant.workspace,
        email="dup@example.com",
        role=Role.ADMIN,
        actor=tenant.owner,
        now=later,
    )
    assert Invitation.objects.filter(email="dup@example.com", revoked_at__isnull=True).count() == 1


def test_pending_invitations_use_up_member_seats(tenant: Tenant, settings: Any) -> None:
    settings.BILLING_ENABLED = True
    Subscription.objects.create(
        user=tenant.owner, plan=Plan.objects.get(code="business"), status=SubscriptionStatus.ACTIVE
    )
    services.invite(
        workspace=tenant.workspace,
        email="four@example.com",
        role=Role.MEMBER,
        actor=tenant.owner,
        now=NOW,
    )
    with pytest.raises(QuotaExceeded) as exc:
        services.invite(
            workspace=tenant.workspace,
            email="five@example.com",
            role=Role.MEMBER,
            actor=tenant.owner,
            now=NOW,
        )
    assert exc.value.limit == 4 and exc.value.current == 4


def test_the_owner_role_is_fixed(tenant: Tenant) -> None:
    owner = Membership.objects.get(workspace=tenant.workspace, user=tenant.owner)
    with pytest.raises(AccountError):
        services.change_role(membership=owner, role=Role.MEMBER, actor=tenant.admin, now=NOW)
    with pytest.raises(AccountError):
        services.remove_member(membership=owner, actor=tenant.admin, now=NOW)
    member = Membership.objects.get(workspace=tenant.workspace, user=tenant.member)
    with pytest.raises(AccountError):
        services.change_role(membership=member, role=Role.OWNER, actor=tenant.owner, now=NOW)
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


# --- API keys --------------------------------------------------------------------------------


def test_an_api_key_is_stored_as_a_hash_and_prefix(tenant: Tenant) -> None:
    issued = services.create_api_key(
        workspace=tenant.workspace,
        name="K",
        scopes=["jobs:read", "jobs:read"],
        actor=tenant.owner,
        now=NOW,
    )
    key = ApiKey.objects.get(pk=issued.key.pk)
    assert issued.raw.startswith("ws_") and len(issued.raw) > 40
    assert key.key_hash == services.hash_api_key(issued.raw)
    assert issued.raw not in (key.prefix, key.key_hash, key.name)
    assert key.scopes == ["jobs:read"]


@pytest.mark.parametrize(
    ("name", "scopes", "field"),
    [("", ["jobs:read"], "name"), ("K", [], "scopes"), ("K", ["root:all"], "scopes")],
)
def test_api_key_input_is_checked(tenant: Tenant, name: str, scopes: list[str], field: str) -> None:
    with pytest.raises(AccountError) as exc:
        services.create_api_key(
            workspace=tenant.workspace, name=name, scopes=scopes, actor=tenant.owner, now=NOW
        )
    assert exc.value.field == field
    assert not ApiKey.objects.exists()
