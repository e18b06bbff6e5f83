"""Switching and creating workspaces, and the shared guard `workspace_required`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from warmysender.accounts.decorators import workspace_required
from warmysender.accounts.models import (
    Membership,
    Plan,
    Role,
    Subscription,
    SubscriptionStatus,
    User,
    Workspace,
)
from warmysender.conftest import NOW, PASSWORD, Tenant, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def test_anonymous_people_are_sent_to_log_in() -> None:
    assert Client().get("/workspaces/new/")["Location"] == "/login/?next=/workspaces/new/"
    assert Client().post("/workspaces/switch/")["Location"].startswith("/login/")


def test_switching_to_a_workspace_the_user_belongs_to(tenant: Tenant, outsider: Tenant) -> None:
    Membership.objects.create(workspace=outsider.workspace, user=tenant.member, role=Role.MEMBER)
    client = client_for(tenant.member)
    response = client.post("/workspaces/switch/", {"workspace": str(outsider.workspace.pk)})
    assert response["Location"] == "/"
    tenant.member.refresh_from_db()
    assert tenant.member.current_workspace_id == outsider.workspace.pk
    page = client.get("/settings/team/").content.decode()
    assert outsider.owner.email in page
    assert "Switched to other Inc" in page


def test_switching_to_someone_elses_workspace_is_404(tenant: Tenant, outsider: Tenant) -> None:
    client = client_for(outsider.owner)
    for value in (str(tenant.workspace.pk), "not-a-uuid", ""):
        assert client.post("/workspaces/switch/", {"workspace": value}).status_code == 404
    outsider.owner.refresh_from_db()
    assert outsider.owner.current_workspace_id == outsider.workspace.pk


def test_switch_needs_a_post(tenant: Tenant) -> None:
    assert client_for(tenant.owner).get("/workspaces/switch/").status_code == 405


def test_creating_a_workspace_makes_the_user_its_owner_and_switches(tenant: Tenant) -> None:
    client = client_for(tenant.member)
    response = client.post("/workspaces/new/", {"name": "Side project"})
    assert response["Location"] == "/"
    workspace = Workspace.objects.get(name="Side project")
    assert workspace.owner == tenant.member
    assert Membership.objects.get(workspace=workspace, user=tenant.member).role == Role.OWNER
    tenant.member.refresh_from_db()
    assert tenant.member.current_workspace_id == workspace.pk


def test_creating_a_workspace_needs_a_name(tenant: Tenant) -> None:
    response = client_for(tenant.owner).post("/workspaces/new/", {"name": "  "})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()


def test_the_plans_workspace_limit_is_shown_and_enforced(tenant: Tenant, settings: Any) -> None:
    settings.BILLING_ENABLED = True
    Subscription.objects.create(
        user=tenant.owner, plan=Plan.objects.get(code="pro"), status=SubscriptionStatus.ACTIVE
    )
    client = client_for(tenant.owner)
    page = client.get("/workspaces/new/").content.decode()
    assert "Your plan allows 1 workspace; upgrade to Business for more." in page
    assert '<button type="submit" disabled>' in page
    response = client.post("/workspaces/new/", {"name": "Second"})
    assert response.status_code == 200
    assert "Your plan allows 1 workspace" in response.content.decode()
    assert not Workspace.objects.filter(name="Second").exists()


def test_a_user_without_workspace_is_sent_to_create_one() -> None:
    user = User.objects.create_user(email="lonely@example.com", password=PASSWORD)
    client = client_for(user)
    response = client.get("/settings/team/")
    assert response["Location"] == "/workspaces/new/"
    page = client.get("/workspaces/new/").content.decode()
    assert "You are not a member of any workspace yet" in page
    assert client.post("/workspaces/new/", {"name": "Mine"})["Location"] == "/"
    assert client.get("/settings/team/").status_code == 200


# --- the guard other apps use ----------------------------------------------------------------


def _request(user: Any, membership: Membership | None) -> HttpRequest:
    request = RequestFactory().get("/somewhere/?x=1")
    request.user = user
    request.workspace = membership.workspace if membership else None  # type: ignore[attr-defined]
    request.membership = membership  # type: ignore[attr-defined]
    request.session = {}  # type: ignore[assignment]
    request._messages = []  # type: ignore[attr-defined]
    return request


def test_workspace_required_in_both_forms(tenant: Tenant) -> None:
    @workspace_required
    def any_member(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    @workspace_required(min_role=Role.ADMIN)
    def admins_only(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")

    from django.contrib.auth.models import AnonymousUser

    anonymous = any_member(_request(AnonymousUser(), None))
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/login/?next=/somewhere/%3Fx%3D1"

    member = Membership.objects.get(user=tenant.member, workspace=tenant.workspace)
    admin = Membership.objects.get(user=tenant.admin, workspace=tenant.workspace)
    assert any_member(_request(tenant.member, member)).status_code == 200
    assert admins_only(_request(tenant.admin, admin)).status_code == 200
    refused = admins_only(_request(tenant.member, member))
    assert refused.status_code == 403
    assert "This needs the admin role or higher" in refused.content.decode()
    no_workspace = any_member(_request(tenant.member, None))
    assert no_workspace["Location"] == "/workspaces/new/"
