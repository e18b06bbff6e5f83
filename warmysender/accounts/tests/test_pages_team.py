"""Settings → Team: members, roles, invitations (sending, accepting, limits)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from warmysender.accounts import services
from warmysender.accounts.models import (
    Invitation,
    Membership,
    Plan,
    Role,
    Subscription,
    SubscriptionStatus,
    User,
)
from warmysender.conftest import NOW, PASSWORD, Tenant, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def _invite(tenant: Tenant, email: str, role: str = Role.MEMBER) -> services.IssuedInvitation:
    return services.invite(
        workspace=tenant.workspace, email=email, role=role, actor=tenant.owner, now=NOW
    )


def _membership(tenant: Tenant, user: User) -> Membership:
    return Membership.objects.get(workspace=tenant.workspace, user=user)


def _invite_link(body: str) -> str:
    match = re.search(r"https?://[^/\s]+(/invitations/[^\s]+/)", body)
    assert match, body
    return match.group(1)


# --- the page --------------------------------------------------------------------------------


def test_anonymous_people_are_sent_to_log_in() -> None:
    for url in ("/settings/team/",):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/login/?next={url}"
    for url in (
        "/settings/team/invite/",
        "/settings/team/members/1/role/",
        "/settings/team/members/1/remove/",
        "/settings/team/invitations/1/revoke/",
    ):
        response = Client().post(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_owner_sees_members_roles_pending_invitations_and_the_invite_form(tenant: Tenant) -> None:
    _invite(tenant, "pending@example.com", Role.ADMIN)
    body = client_for(tenant.owner).get("/settings/team/").content.decode()
    for email in (tenant.owner.email, tenant.admin.email, tenant.member.email):
        assert email in body
    assert "pending@example.com" in body
    assert "Nov 30, 2026 12:00 UTC" in body  # expiry shown
    assert 'action="/settings/team/invite/"' in body
    assert "Remove member" in body
    assert "Revoke invitation" in body
    assert 'name="csrfmiddlewaretoken"' in body


def test_a_plain_member_sees_the_team_read_only(tenant: Tenant) -> None:
    _invite(tenant, "pending@example.com")
    response = client_for(tenant.member).get("/settings/team/")
    assert response.status_code == 200
    body = response.content.decode()
    assert tenant.owner.email in body and "pending@example.com" in body
    assert "Only owners and admins can invite people" in body
    assert "/settings/team/invite/" not in body
    assert "/role/" not in body and "Remove member" not in body and "Revoke invitation" not in body


def test_the_team_page_lists_only_the_current_workspace(tenant: Tenant, outsider: Tenant) -> None:
    body = client_for(outsider.owner).get("/settings/team/").content.decode()
    assert outsider.member.email in body
    assert tenant.member.email not in body


# --- inviting and accepting -------------------------------------------------------------------


def test_invite_accept_end_to_end(tenant: Tenant, django_capture_on_commit_callbacks: Any) -> None:
    owner = client_for(tenant.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(
            "/settings/team/invite/", {"email": "New@Example.com", "role": "admin"}
        )
    assert response["Location"] == "/settings/team/"
    assert "Invitation sent to new@example.com" in owner.get("/settings/team/").content.decode()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@example.com"]
    link = _invite_link(mail.outbox[0].body)

    # Anonymous: the page names the workspace and role and offers log-in or sign-up, coming back.
    anonymous = Client()
    body = anonymous.get(link).content.decode()
    assert "acme Inc" in body and "Admin" in body
    assert f"/signup/?next={link.replace(':', '%3A')}" in body
    assert f"/login/?next={link.replace(':', '%3A')}" in body

    # Sign-up from the link pre-fills the address and returns to the invitation.
    signup_page = anonymous.get("/signup/", {"next": link}).content.decode()
    assert 'value="new@example.com"' in signup_page
    response = anonymous.post(
        "/signup/", {"email": "new@example.com", "password": PASSWORD, "next": link}
    )
    assert response["Location"] == link
    assert "Accept and join" in anonymous.get(link).content.decode()
    response = anonymous.post(link)
    assert response["Location"] == "/"

    user = User.objects.get(email="new@example.com")
    assert _membership(tenant, user).role == Role.ADMIN
    user.refresh_from_db()
    assert user.current_workspace_id == tenant.workspace.pk
    invitation = Invitation.objects.get(email="new@example.com")
    assert invitation.accepted_at is not None

    # Used once: the link now says so.
    again = anonymous.get(link)
    assert again.status_code == 410
    assert "already used" in again.content.decode()


def test_an_existing_user_logs_in_from_the_link_and_accepts(tenant: Tenant) -> None:
    User.objects.create_user(email="joiner@example.com", password=PASSWORD)
    link = f"/invitations/{_invite(tenant, 'joiner@example.com').token}/"
    client = Client()
    response = client.post(
        f"/login/?next={link}", {"email": "joiner@example.com", "password": PASSWORD, "next": link}
    )
    assert response["Location"] == link
    assert client.post(link).status_code == 302
    joiner = User.objects.get(email="joiner@example.com")
    assert _membership(tenant, joiner).role == Role.MEMBER


def test_the_wrong_user_cannot_accept(tenant: Tenant, outsider: Tenant) -> None:
    link = f"/invitations/{_invite(tenant, 'someone@example.com').token}/"
    client = client_for(outsider.member)
    page = client.get(link).content.decode()
    assert "This invitation is for <b>someone@example.com</b>" in page
    assert "Accept and join" not in page
    response = client.post(link)
    assert response.status_code == 403
    assert "log in with that address" in response.content.decode()
    assert not Membership.objects.filter(workspace=tenant.workspace, user=outsider.member).exists()
    # Logging out from there leads to the log-in page and back to the invitation.
    response = client.post("/logout/", {"next": link})
    assert response["Location"] == f"/login/?next={link.replace(':', '%3A')}"


def test_an_anonymous_post_to_accept_goes_to_log_in(tenant: Tenant) -> None:
    link = f"/invitations/{_invite(tenant, 'x@example.com').token}/"
    response = Client().post(link)
    assert response["Location"].startswith("/login/?next=")
    assert Invitation.objects.get(email="x@example.com").accepted_at is None


def test_an_expired_invitation_is_refused(tenant: Tenant) -> None:
    user = User.objects.create_user(email="late@example.com", password=PASSWORD)
    link = f"/invitations/{_invite(tenant, 'late@example.com').token}/"
    with time_machine.travel(NOW + timedelta(days=7, minutes=1), tick=False):
        client = client_for(user)
        page = client.get(link)
        assert page.status_code == 410
        assert "expired" in page.content.decode()
        assert client.post(link).status_code == 410
    assert not Membership.objects.filter(workspace=tenant.workspace, user=user).exists()


def test_a_revoked_or_forged_invitation_is_refused(tenant: Tenant) -> None:
    issued = _invite(tenant, "gone@example.com")
    client_for(tenant.admin).post(f"/settings/team/invitations/{issued.invitation.pk}/revoke/")
    page = Client().get(f"/invitations/{issued.token}/")
    assert page.status_code == 404
    assert "withdrawn" in page.content.decode()
    forged = Client().get(f"/invitations/{issued.token}x/")
    assert forged.status_code == 404
    assert "not valid" in forged.content.decode()


def test_inviting_an_existing_member_shows_the_error(tenant: Tenant) -> None:
    response = client_for(tenant.admin).post(
        "/settings/team/invite/", {"email": tenant.member.email, "role": "member"}
    )
    assert response.status_code == 200
    assert "is already a member" in response.content.decode()
    assert not Invitation.objects.exists()


def test_owner_role_cannot_be_invited(tenant: Tenant) -> None:
    response = client_for(tenant.owner).post(
        "/settings/team/invite/", {"email": "boss@example.com", "role": "owner"}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Invitation.objects.exists()


def test_revoking_an_invitation(tenant: Tenant) -> None:
    issued = _invite(tenant, "r@example.com")
    response = client_for(tenant.owner).post(
        f"/settings/team/invitations/{issued.invitation.pk}/revoke/"
    )
    assert response["Location"] == "/settings/team/"
    issued.invitation.refresh_from_db()
    assert issued.invitation.revoked_at is not None


# --- member limits ---------------------------------------------------------------------------


def test_pending_invitations_count_toward_the_member_limit(tenant: Tenant, settings: Any) -> None:
    settings.BILLING_ENABLED = True
    Subscription.objects.create(
        user=tenant.owner, plan=Plan.objects.get(code="business"), status=SubscriptionStatus.ACTIVE
    )
    owner = client_for(tenant.owner)
    page = owner.get("/settings/team/").content.decode()
    assert "plan limit 4" in page
    assert 'data-testid="invite-blocked"' not in page

    # Three members + one pending invitation = the Business limit of four.
    assert (
        owner.post(
            "/settings/team/invite/", {"email": "fourth@example.com", "role": "member"}
        ).status_code
        == 302
    )
    page = owner.get("/settings/team/").content.decode()
    assert 'data-testid="invite-blocked"' in page
    assert "pending invitations count" in page
    assert re.search(r'<fieldset class="plain invite-row"\s+disabled>', page)

    refused = owner.post("/settings/team/invite/", {"email": "fifth@example.com", "role": "member"})
    assert refused.status_code == 200
    assert "Your plan allows 4 members" in refused.content.decode()
    assert not Invitation.objects.filter(email="fifth@example.com").exists()

    # Revoking the pending invitation frees the seat again.
    pending = Invitation.objects.get(email="fourth@example.com")
    owner.post(f"/settings/team/invitations/{pending.pk}/revoke/")
    assert 'data-testid="invite-blocked"' not in owner.get("/settings/team/").content.decode()


# --- roles and removal -----------------------------------------------------------------------


def test_admin_changes_a_role_without_javascript(tenant: Tenant) -> None:
    membership = _membership(tenant, tenant.member)
    response = client_for(tenant.admin).post(
        f"/settings/team/members/{membership.pk}/role/", {"role": "admin"}
    )
    assert response["Location"] == "/settings/team/"
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


def test_role_change_over_htmx_returns_the_updated_row(tenant: Tenant) -> None:
    membership = _membership(tenant, tenant.admin)
    response = client_for(tenant.owner).post(
        f"/settings/team/members/{membership.pk}/role/", {"role": "member"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.strip().startswith(f'<tr id="member-{membership.pk}">')
    assert "Saved" in body
    assert '<option value="member" selected>' in body
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER


def test_the_owner_cannot_be_demoted_or_removed(tenant: Tenant) -> None:
    owner_membership = _membership(tenant, tenant.owner)
    admin = client_for(tenant.admin)
    response = admin.post(
        f"/settings/team/members/{owner_membership.pk}/role/", {"role": "member"}, follow=True
    )
    assert "The owner&#x27;s role cannot be changed." in response.content.decode()
    response = admin.post(f"/settings/team/members/{owner_membership.pk}/remove/", follow=True)
    assert "The owner cannot be removed" in response.content.decode()
    owner_membership.refresh_from_db()
    assert owner_membership.role == Role.OWNER


def test_admin_removes_a_member(tenant: Tenant) -> None:
    membership = _membership(tenant, tenant.member)
    response = client_for(tenant.admin).post(f"/settings/team/members/{membership.pk}/remove/")
    assert response["Location"] == "/settings/team/"
    assert not Membership.objects.filter(pk=membership.pk).exists()
    # The removed person loses access on their next request.
    assert client_for(tenant.member).get("/settings/team/")["Location"] == "/workspaces/new/"


def test_an_admin_who_removes_themselves_leaves(tenant: Tenant) -> None:
    membership = _membership(tenant, tenant.admin)
    response = client_for(tenant.admin).post(f"/settings/team/members/{membership.pk}/remove/")
    assert response["Location"] == "/"
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_a_plain_member_gets_403_on_every_team_action(tenant: Tenant) -> None:
    issued = _invite(tenant, "p@example.com")
    target = _membership(tenant, tenant.admin)
    client = client_for(tenant.member)
    for url, data in (
        ("/settings/team/invite/", {"email": "q@example.com", "role": "member"}),
        (f"/settings/team/members/{target.pk}/role/", {"role": "member"}),
        (f"/settings/team/members/{target.pk}/remove/", {}),
        (f"/settings/team/invitations/{issued.invitation.pk}/revoke/", {}),
    ):
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "needs the admin role" in response.content.decode()
    target.refresh_from_db()
    assert target.role == Role.ADMIN
    issued.invitation.refresh_from_db()
    assert issued.invitation.revoked_at is None
    assert not Invitation.objects.filter(email="q@example.com").exists()


def test_an_outsider_gets_404_for_another_workspaces_ids(tenant: Tenant, outsider: Tenant) -> None:
    issued = _invite(tenant, "p@example.com")
    target = _membership(tenant, tenant.member)
    client = client_for(outsider.owner)
    for url, data in (
        (f"/settings/team/members/{target.pk}/role/", {"role": "admin"}),
        (f"/settings/team/members/{target.pk}/remove/", {}),
        (f"/settings/team/invitations/{issued.invitation.pk}/revoke/", {}),
    ):
        response = client.post(url, data)
        assert response.status_code == 404, url
        assert "Page not found" in response.content.decode()
    target.refresh_from_db()
    assert target.role == Role.MEMBER
    issued.invitation.refresh_from_db()
    assert issued.invitation.revoked_at is None
