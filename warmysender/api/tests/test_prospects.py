"""/api/v1/prospects."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from warmysender.accounts.models import Plan, Subscription, SubscriptionStatus
from warmysender.api.tests.conftest import block_subscription, error_code, make_prospect, send
from warmysender.audit.models import AuditEntry
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, api_client
from warmysender.prospects import services
from warmysender.prospects.models import Prospect

URL = "/api/v1/prospects"
SYSTEM = Actor.system("test")


# --- create -----------------------------------------------------------------------------------


def test_post_creates_a_prospect_with_201_and_every_field(client: Client, tenant: Tenant) -> None:
    body = {
        "email": "Ada@Example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "company": "Analytical Engines",
        "role": "CTO",
        "phone": "+44 20 7946 0000",
        "linkedinUrl": "https://www.linkedin.com/in/ada-lovelace",
        "website": "https://engines.example.com",
        "country": "UK",
        "city": "London",
        "industry": "Computing",
        "customFields": {"Favourite Number": 42, "note": "hello"},
    }
    response = send(client, "POST", URL, body)
    assert response.status_code == 201
    data = response.json()["data"]
    prospect = Prospect.objects.get(workspace=tenant.workspace)
    assert data["id"] == str(prospect.pk)
    assert data["email"] == "ada@example.com"
    assert data["linkedinUrl"] == "https://www.linkedin.com/in/ada-lovelace"
    assert data["customFields"] == {"favourite_number": "42", "note": "hello"}
    assert data["globalStatus"] == "active"
    assert data["lists"] == []
    for name in ("firstName", "lastName", "company", "role", "phone", "website", "country"):
        assert data[name] == body[name]
    assert data["createdAt"] == data["updatedAt"]
    audit = AuditEntry.objects.get(action="prospect.created")
    assert audit.actor_label.startswith("api_key:")


def test_post_with_an_existing_email_in_another_case_returns_it_with_200(
    client: Client, tenant: Tenant
) -> None:
    existing = make_prospect(tenant, "ada@example.com", firstName="Ada")
    response = send(client, "POST", URL, {"email": "ADA@example.COM", "firstName": "Other"})
    assert response.status_code == 200
    assert response.json()["data"]["id"] == str(existing.pk)
    assert response.json()["data"]["firstName"] == "Ada"
    assert Prospect.objects.filter(workspace=tenant.workspace).count() == 1


def test_post_dedups_per_workspace_only(client: Client, outsider: Tenant, tenant: Tenant) -> None:
    make_prospect(outsider, "ada@example.com")
    response = send(client, "POST", URL, {"email": "ada@example.com"})
    assert response.status_code == 201
    assert Prospect.objects.filter(workspace=tenant.workspace).count() == 1


def test_post_refuses_a_suppressed_address_saying_why(client: Client, tenant: Tenant) -> None:
    services.add_suppression(
        workspace=tenant.workspace,
        value="blocked.com",
        actor=SYSTEM,
        now=NOW,
    )
    response = send(client, "POST", URL, {"email": "someone@blocked.com"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "email"
    assert error["details"][0]["reason"] == "suppressed"
    assert "suppression list" in error["message"]
    assert not Prospect.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "a@b.test"}, "email"),
        ({}, "email"),
        ({"email": 42}, "email"),
        ({"email": "a@example.com", "nickname": "x"}, "nickname"),
        ({"email": "a@example.com", "firstName": "x" * 101}, "firstName"),
        ({"email": "a@example.com", "company": "nul\x00byte"}, "company"),
        ({"email": "a@example.com", "linkedinUrl": "https://example.com/in/ada"}, "linkedinUrl"),
        ({"email": "a@example.com", "customFields": {"!!!": "x"}}, "customFields.!!!"),
        ({"email": "a@example.com", "customFields": {"ok": True}}, "customFields.ok"),
        ({"email": "a@example.com", "customFields": ["x"]}, "customFields"),
    ],
)
def test_post_rejects_invalid_input_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = send(client, "POST", URL, body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    fields = [d["field"] for d in error["details"]]
    assert field in fields
    assert not Prospect.objects.exists()


def test_post_names_an_unknown_field_in_the_message(client: Client) -> None:
    response = send(client, "POST", URL, {"email": "a@example.com", "nickname": "x"})
    assert "nickname" in response.json()["error"]["message"]


@pytest.mark.parametrize("raw", ["{bad json", "", "[1, 2]", '"just a string"', "null"])
def test_post_rejects_a_body_that_is_not_a_json_object(client: Client, raw: str) -> None:
    response = client.post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


def test_post_rejects_an_oversized_body(client: Client) -> None:
    raw = '{"email": "a@example.com", "city": "' + "x" * 3_000_000 + '"}'
    response = client.post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert "larger than" in response.json()["error"]["message"]


def test_post_rejects_lone_surrogates_that_no_database_can_store(client: Client) -> None:
    raw = '{"email": "a@example.com", "city": "\\ud800"}'
    response = client.post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "city"


def test_post_over_the_plan_limit_is_quota_exceeded(
    client: Client, tenant: Tenant, settings: Any
) -> None:
    settings.BILLING_ENABLED = True
    tiny = Plan.objects.create(code="tiny", name="Tiny", max_prospects=2)
    Subscription.objects.create(user=tenant.owner, plan=tiny, status=SubscriptionStatus.ACTIVE)
    assert send(client, "POST", URL, {"email": "one@example.com"}).status_code == 201
    assert send(client, "POST", URL, {"email": "two@example.com"}).status_code == 201
    response = send(client, "POST", URL, {"email": "three@example.com"})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"] == {"quota": "prospect_limit_reached", "limit": 2, "current": 2}
    # Returning an existing prospect adds nothing, so it stays possible at the limit.
    assert send(client, "POST", URL, {"email": "one@example.com"}).status_code == 200


def test_writes_are_subscription_blocked_when_the_trial_expired(
    client: Client, tenant: Tenant, settings: Any
) -> None:
    prospect = make_prospect(tenant, "ada@example.com")
    block_subscription(tenant, settings)
    for method, path, body in [
        ("POST", URL, {"email": "new@example.com"}),
        ("PATCH", f"{URL}/{prospect.pk}", {"firstName": "Ada"}),
        ("DELETE", f"{URL}/{prospect.pk}", None),
    ]:
        response = send(client, method, path, body)
        assert response.status_code == 403, (method, response.json())
        error = response.json()["error"]
        assert error["code"] == "subscription_blocked"
        assert error["details"] == {"status": "expired"}
    # Reading stays possible, so a lapsed customer can still take their data out.
    assert send(client, "GET", f"{URL}/{prospect.pk}").status_code == 200
    assert send(client, "GET", URL).status_code == 200
    assert Prospect.objects.filter(workspace=tenant.workspace).count() == 1


# --- read -------------------------------------------------------------------------------------


def test_get_returns_the_prospect_with_its_lists(client: Client, tenant: Tenant) -> None:
    prospect = make_prospect(tenant, "ada@example.com", company="Engines")
    first = services.create_list(workspace=tenant.workspace, name="First", actor=SYSTEM, now=NOW)
    services.add_to_list(
        prospect_list=first,
        prospect_ids=[prospect.pk],
        actor=SYSTEM,
        now=NOW,
    )
    response = send(client, "GET", f"{URL}/{prospect.pk}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["email"] == "ada@example.com"
    assert data["company"] == "Engines"
    assert data["lists"] == [str(first.pk)]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_an_outsiders_key_gets_404_for_the_tenants_prospect(
    outsider_client: Client, tenant: Tenant, method: str
) -> None:
    prospect = make_prospect(tenant, "ada@example.com", firstName="Ada")
    body = {"firstName": "Mallory"} if method == "PATCH" else None
    response = send(outsider_client, method, f"{URL}/{prospect.pk}", body)
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    prospect.refresh_from_db()
    assert prospect.first_name == "Ada"


@pytest.mark.parametrize("bad_id", ["nope", "123", str(uuid.uuid4()), "a" * 300])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_missing_or_malformed_ids_are_404(client: Client, bad_id: str, method: str) -> None:
    body = {"firstName": "x"} if method == "PATCH" else None
    response = send(client, method, f"{URL}/{bad_id}", body)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_list_never_shows_another_workspaces_prospects(
    outsider_client: Client, client: Client, tenant: Tenant
) -> None:
    make_prospect(tenant, "ada@example.com")
    assert send(outsider_client, "GET", URL).json() == {"data": [], "nextCursor": None}
    assert send(outsider_client, "GET", f"{URL}?q=ada").json()["data"] == []
    assert len(send(client, "GET", URL).json()["data"]) == 1


def test_list_filters_by_search_status_company_and_list(client: Client, tenant: Tenant) -> None:
    ada = make_prospect(tenant, "ada@engines.com", firstName="Ada", company="Engines")
    grace = make_prospect(tenant, "grace@navy.mil", firstName="Grace", company="Navy")
    alan = make_prospect(tenant, "alan@bletchley.uk", firstName="Alan", company="engines")
    Prospect.objects.filter(pk=alan.pk).update(global_status="bounced")
    vip = services.create_list(workspace=tenant.workspace, name="VIP", actor=SYSTEM, now=NOW)
    services.add_to_list(
        prospect_list=vip,
        prospect_ids=[grace.pk],
        actor=SYSTEM,
        now=NOW,
    )

    def emails(query: str) -> set[str]:
        response = send(client, "GET", f"{URL}?{query}")
        assert response.status_code == 200, response.json()
        return {p["email"] for p in response.json()["data"]}

    assert emails("q=GRACE") == {grace.email}
    assert emails("q=engines") == {ada.email, alan.email}
    assert emails("status=bounced") == {alan.email}
    assert emails("company=ENGINES") == {ada.email, alan.email}
    assert emails(f"listId={vip.pk}") == {grace.email}
    assert emails(f"listId={vip.pk}&q=ada") == set()
    assert emails("") == {ada.email, grace.email, alan.email}


def test_list_filter_by_another_workspaces_list_is_404(
    client: Client, outsider: Tenant, tenant: Tenant
) -> None:
    make_prospect(tenant, "ada@example.com")
    theirs = services.create_list(
        workspace=outsider.workspace,
        name="Theirs",
        actor=SYSTEM,
        now=NOW,
    )
    response = send(client, "GET", f"{URL}?listId={theirs.pk}")
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    missing = send(client, "GET", f"{URL}?listId={uuid.uuid4()}")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=99999999999999999.zzzz", "cursor"),
        ("status=happy", "status"),
        ("listId=not-a-uuid", "listId"),
        ("q=%00", "q"),
    ],
)
def test_list_rejects_bad_query_parameters(client: Client, query: str, field: str) -> None:
    response = send(client, "GET", f"{URL}?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field
    assert error["details"][0]["in"] == "query"


def test_walking_120_prospects_50_at_a_time_yields_each_exactly_once(
    client: Client, tenant: Tenant
) -> None:
    # Some share a creation time, so the id must break ties for the cursor to be exact.
    created = [
        Prospect.objects.create(
            workspace=tenant.workspace,
            email=f"p{i:03d}@example.com",
            created_at=NOW + timedelta(seconds=i // 3),
            updated_at=NOW,
        )
        for i in range(120)
    ]
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        query = "limit=50" + (f"&cursor={cursor}" if cursor else "")
        body = send(client, "GET", f"{URL}?{query}").json()
        pages += 1
        seen.extend(p["id"] for p in body["data"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == 120
    assert set(seen) == {str(p.pk) for p in created}
    # Newest first.
    times = [Prospect.objects.get(pk=pk).created_at for pk in seen]
    assert times == sorted(times, reverse=True)


def test_a_prospect_added_while_paging_does_not_shift_the_pages(
    client: Client, tenant: Tenant
) -> None:
    def add(email: str, minutes: int) -> None:
        at = NOW + timedelta(minutes=minutes)
        Prospect.objects.create(
            workspace=tenant.workspace, email=email, created_at=at, updated_at=at
        )

    for i in range(4):
        add(f"p{i}@example.com", i)
    first = send(client, "GET", f"{URL}?limit=2").json()
    add("late@example.com", 60)
    second = send(client, "GET", f"{URL}?limit=2&cursor={first['nextCursor']}").json()
    emails = [p["email"] for p in first["data"] + second["data"]]
    assert emails == ["p3@example.com", "p2@example.com", "p1@example.com", "p0@example.com"]


# --- update -----------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent_and_merges_custom_fields(
    client: Client, tenant: Tenant
) -> None:
    prospect = make_prospect(
        tenant,
        "ada@example.com",
        firstName="Ada",
        company="Engines",
        customFields={"tier": "gold", "source": "fair"},
    )
    response = send(
        client,
        "PATCH",
        f"{URL}/{prospect.pk}",
        {"lastName": "Lovelace", "company": None, "customFields": {"tier": "", "score": 7}},
    )
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["firstName"] == "Ada"
    assert data["lastName"] == "Lovelace"
    assert data["company"] == ""
    assert data["customFields"] == {"source": "fair", "score": "7"}
    prospect.refresh_from_db()
    assert prospect.custom_fields == {"source": "fair", "score": "7"}
    assert data["updatedAt"] != data["createdAt"]


def test_patch_to_an_email_another_prospect_has_is_409(client: Client, tenant: Tenant) -> None:
    make_prospect(tenant, "taken@example.com")
    prospect = make_prospect(tenant, "ada@example.com")
    response = send(client, "PATCH", f"{URL}/{prospect.pk}", {"email": "TAKEN@example.com"})
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    prospect.refresh_from_db()
    assert prospect.email == "ada@example.com"


@pytest.mark.parametrize(
    "body",
    [{"email": None}, {"email": "nope"}, {"unknown": 1}, {"customFields": "x"}],
)
def test_patch_rejects_invalid_input(client: Client, tenant: Tenant, body: Any) -> None:
    prospect = make_prospect(tenant, "ada@example.com")
    response = send(client, "PATCH", f"{URL}/{prospect.pk}", body)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    prospect.refresh_from_db()
    assert prospect.email == "ada@example.com"


# --- delete -----------------------------------------------------------------------------------


def test_delete_removes_the_prospect_with_204(client: Client, tenant: Tenant) -> None:
    prospect = make_prospect(tenant, "ada@example.com")
    response = send(client, "DELETE", f"{URL}/{prospect.pk}")
    assert response.status_code == 204
    assert response.content == b""
    assert not Prospect.objects.filter(pk=prospect.pk).exists()
    assert send(client, "DELETE", f"{URL}/{prospect.pk}").status_code == 404
    assert AuditEntry.objects.filter(action="prospect.deleted").count() == 1


# --- scopes -----------------------------------------------------------------------------------


def test_a_read_only_key_can_read_but_not_write(tenant: Tenant) -> None:
    reader = api_client(tenant.key("prospects:read"))
    prospect = make_prospect(tenant, "ada@example.com")
    assert send(reader, "GET", URL).status_code == 200
    assert send(reader, "GET", f"{URL}/{prospect.pk}").status_code == 200
    for method, path, body in [
        ("POST", URL, {"email": "new@example.com"}),
        ("PATCH", f"{URL}/{prospect.pk}", {"firstName": "x"}),
        ("DELETE", f"{URL}/{prospect.pk}", None),
    ]:
        response = send(reader, method, path, body)
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "insufficient_scope"
        assert error["details"]["required"] == "prospects:write"
    assert Prospect.objects.count() == 1


def test_a_write_only_key_cannot_read(tenant: Tenant) -> None:
    writer = api_client(tenant.key("prospects:write"))
    prospect = make_prospect(tenant, "ada@example.com")
    for path in (URL, f"{URL}/{prospect.pk}"):
        response = send(writer, "GET", path)
        assert response.status_code == 403
        assert error_code(response) == "insufficient_scope"
