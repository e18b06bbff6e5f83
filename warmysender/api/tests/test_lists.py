"""/api/v1/lists and their members."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from warmysender.api.tests.conftest import block_subscription, error_code, make_prospect, send
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, api_client
from warmysender.prospects import services
from warmysender.prospects.models import ListMembership, Prospect, ProspectList

URL = "/api/v1/lists"
SYSTEM = Actor.system("test")


def make_list(tenant: Tenant, name: str, *members: Prospect) -> ProspectList:
    created = services.create_list(workspace=tenant.workspace, name=name, actor=SYSTEM, now=NOW)
    if members:
        services.add_to_list(
            prospect_list=created, prospect_ids=[p.pk for p in members], actor=SYSTEM, now=NOW
        )
    return created


def test_post_creates_a_list_with_201(client: Client, tenant: Tenant) -> None:
    response = send(client, "POST", URL, {"name": "Founders", "color": "#10B981"})
    assert response.status_code == 201
    data = response.json()["data"]
    created = ProspectList.objects.get(workspace=tenant.workspace)
    assert data == {
        "id": str(created.pk),
        "name": "Founders",
        "color": "#10B981",
        "prospectCount": 0,
        "createdAt": data["createdAt"],
    }


def test_post_without_a_color_gets_the_default(client: Client) -> None:
    response = send(client, "POST", URL, {"name": "Plain"})
    assert response.json()["data"]["color"] == "#4f46e5"


def test_a_duplicate_name_in_any_case_is_409(client: Client, tenant: Tenant) -> None:
    make_list(tenant, "Founders")
    response = send(client, "POST", URL, {"name": "FOUNDERS"})
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert response.json()["error"]["details"][0]["field"] == "name"
    assert ProspectList.objects.count() == 1


def test_the_same_name_in_another_workspace_is_fine(client: Client, outsider: Tenant) -> None:
    make_list(outsider, "Founders")
    assert send(client, "POST", URL, {"name": "Founders"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "Ok", "color": "red"}, "color"),
        ({"name": "Ok", "color": "#12345"}, "color"),
        ({"name": "Ok", "owner": "me"}, "owner"),
    ],
)
def test_post_rejects_invalid_lists(client: Client, body: dict[str, Any], field: str) -> None:
    response = send(client, "POST", URL, body)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert response.json()["error"]["details"][0]["field"] == field
    assert not ProspectList.objects.exists()


def test_get_lists_counts_members_and_pages(client: Client, tenant: Tenant) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    grace = make_prospect(tenant, "grace@example.com")
    make_list(tenant, "Both", ada, grace)
    make_list(tenant, "Empty")
    first = send(client, "GET", f"{URL}?limit=1").json()
    second = send(client, "GET", f"{URL}?limit=1&cursor={first['nextCursor']}").json()
    assert second["nextCursor"] is None
    counts = {row["name"]: row["prospectCount"] for row in first["data"] + second["data"]}
    assert counts == {"Both": 2, "Empty": 0}


def test_get_one_list(client: Client, tenant: Tenant) -> None:
    made = make_list(tenant, "Founders", make_prospect(tenant, "ada@example.com"))
    response = send(client, "GET", f"{URL}/{made.pk}")
    assert response.status_code == 200
    assert response.json()["data"]["prospectCount"] == 1


def test_an_outsider_never_sees_or_touches_the_tenants_lists(
    outsider_client: Client, tenant: Tenant
) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    made = make_list(tenant, "Founders", ada)
    assert send(outsider_client, "GET", URL).json()["data"] == []
    for method, path, body in [
        ("GET", f"{URL}/{made.pk}", None),
        ("PATCH", f"{URL}/{made.pk}", {"name": "Mine"}),
        ("DELETE", f"{URL}/{made.pk}", None),
        ("POST", f"{URL}/{made.pk}/prospects", {"prospectIds": [str(ada.pk)]}),
        ("DELETE", f"{URL}/{made.pk}/prospects", {"prospectIds": [str(ada.pk)]}),
    ]:
        response = send(outsider_client, method, path, body)
        assert response.status_code == 404, (method, path)
        assert error_code(response) == "not_found"
    made.refresh_from_db()
    assert made.name == "Founders"
    assert ListMembership.objects.filter(prospect_list=made).count() == 1


@pytest.mark.parametrize("bad_id", ["x", str(uuid.uuid4())])
def test_missing_or_malformed_list_ids_are_404(client: Client, bad_id: str) -> None:
    assert send(client, "GET", f"{URL}/{bad_id}").status_code == 404
    response = send(
        client, "POST", f"{URL}/{bad_id}/prospects", {"prospectIds": [str(uuid.uuid4())]}
    )
    assert response.status_code == 404


def test_patch_renames_and_recolours(client: Client, tenant: Tenant) -> None:
    made = make_list(tenant, "Old")
    response = send(client, "PATCH", f"{URL}/{made.pk}", {"name": "New"})
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "New"
    assert response.json()["data"]["color"] == "#4f46e5"
    response = send(client, "PATCH", f"{URL}/{made.pk}", {"color": "#000000"})
    data = response.json()["data"]
    assert (data["name"], data["color"]) == ("New", "#000000")
    made.refresh_from_db()
    assert (made.name, made.color) == ("New", "#000000")


def test_patch_to_a_taken_name_is_409(client: Client, tenant: Tenant) -> None:
    make_list(tenant, "Taken")
    made = make_list(tenant, "Mine")
    response = send(client, "PATCH", f"{URL}/{made.pk}", {"name": "taken"})
    assert response.status_code == 409
    assert error_code(response) == "conflict"


def test_patch_refuses_null_name(client: Client, tenant: Tenant) -> None:
    made = make_list(tenant, "Mine")
    response = send(client, "PATCH", f"{URL}/{made.pk}", {"name": None})
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "name"


def test_delete_keeps_the_prospects(client: Client, tenant: Tenant) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    made = make_list(tenant, "Founders", ada)
    response = send(client, "DELETE", f"{URL}/{made.pk}")
    assert response.status_code == 204
    assert not ProspectList.objects.exists()
    assert Prospect.objects.filter(pk=ada.pk).exists()


def test_adding_members_counts_only_new_ones_and_ignores_foreign_ids(
    client: Client, tenant: Tenant, outsider: Tenant
) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    grace = make_prospect(tenant, "grace@example.com")
    theirs = make_prospect(outsider, "mallory@example.com")
    made = make_list(tenant, "Founders", ada)
    ids = [str(ada.pk), str(grace.pk), str(theirs.pk), str(uuid.uuid4())]
    response = send(client, "POST", f"{URL}/{made.pk}/prospects", {"prospectIds": ids})
    assert response.status_code == 200
    assert response.json() == {"data": {"added": 1}}
    members = set(
        ListMembership.objects.filter(prospect_list=made).values_list("prospect_id", flat=True)
    )
    assert members == {ada.pk, grace.pk}
    again = send(client, "POST", f"{URL}/{made.pk}/prospects", {"prospectIds": ids})
    assert again.json() == {"data": {"added": 0}}
    prospect = send(client, "GET", f"/api/v1/prospects/{grace.pk}").json()["data"]
    assert prospect["lists"] == [str(made.pk)]


def test_removing_members_counts_those_that_were_in(client: Client, tenant: Tenant) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    grace = make_prospect(tenant, "grace@example.com")
    made = make_list(tenant, "Founders", ada)
    body = {"prospectIds": [str(ada.pk), str(grace.pk)]}
    response = send(client, "DELETE", f"{URL}/{made.pk}/prospects", body)
    assert response.status_code == 200
    assert response.json() == {"data": {"removed": 1}}
    assert not ListMembership.objects.exists()
    assert Prospect.objects.count() == 2


@pytest.mark.parametrize(
    "body", [{}, {"prospectIds": []}, {"prospectIds": ["nope"]}, {"prospectIds": "x"}]
)
def test_membership_changes_need_a_list_of_ids(client: Client, tenant: Tenant, body: Any) -> None:
    made = make_list(tenant, "Founders")
    for method in ("POST", "DELETE"):
        response = send(client, method, f"{URL}/{made.pk}/prospects", body)
        assert response.status_code == 400
        assert error_code(response) == "validation_error"


def test_list_endpoints_need_the_prospect_scopes(tenant: Tenant) -> None:
    made = make_list(tenant, "Founders")
    reader = api_client(tenant.key("prospects:read"))
    unrelated = api_client(tenant.key("suppressions:read", "suppressions:write"))
    assert send(reader, "GET", URL).status_code == 200
    assert send(reader, "GET", f"{URL}/{made.pk}").status_code == 200
    writes = [
        ("POST", URL, {"name": "New"}),
        ("PATCH", f"{URL}/{made.pk}", {"name": "New"}),
        ("DELETE", f"{URL}/{made.pk}", None),
        ("POST", f"{URL}/{made.pk}/prospects", {"prospectIds": [str(uuid.uuid4())]}),
        ("DELETE", f"{URL}/{made.pk}/prospects", {"prospectIds": [str(uuid.uuid4())]}),
    ]
    for method, path, body in writes:
        response = send(reader, method, path, body)
        assert response.status_code == 403
        assert error_code(response) == "insufficient_scope"
    for method, path, body in [("GET", URL, None), ("GET", f"{URL}/{made.pk}", None), *writes]:
        assert error_code(send(unrelated, method, path, body)) == "insufficient_scope"
    assert ProspectList.objects.get().name == "Founders"


def test_list_writes_are_subscription_blocked(
    client: Client, tenant: Tenant, settings: Any
) -> None:
    made = make_list(tenant, "Founders")
    block_subscription(tenant, settings)
    for method, path, body in [
        ("POST", URL, {"name": "New"}),
        ("PATCH", f"{URL}/{made.pk}", {"name": "New"}),
        ("DELETE", f"{URL}/{made.pk}", None),
        ("POST", f"{URL}/{made.pk}/prospects", {"prospectIds": [str(uuid.uuid4())]}),
    ]:
        response = send(client, method, path, body)
        assert response.status_code == 403
        assert error_code(response) == "subscription_blocked"
    assert send(client, "GET", URL).status_code == 200
