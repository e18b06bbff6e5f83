"""Pages for prospects, lists and the blocklist, through the Django test client."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, client_for
from warmysender.prospects import services
from warmysender.prospects.models import (
    GlobalStatus,
    ImportJob,
    ListMembership,
    Prospect,
    ProspectList,
    Suppression,
)

SYSTEM = Actor.system("test")


def make_prospect(tenant: Tenant, email: str, **fields: Any) -> Prospect:
    data = {"email": email, **fields}
    return services.create_prospect(
        workspace=tenant.workspace, data=data, actor=SYSTEM, now=NOW
    ).prospect


def make_list(tenant: Tenant, name: str, color: str = "#10b981") -> ProspectList:
    return services.create_list(
        workspace=tenant.workspace, name=name, color=color, actor=SYSTEM, now=NOW
    )


def make_suppression(tenant: Tenant, value: str, reason: str = "") -> Suppression:
    entry, _ = services.add_suppression(
        workspace=tenant.workspace, value=value, reason=reason, actor=SYSTEM, now=NOW
    )
    return entry


def make_job(tenant: Tenant) -> ImportJob:
    return ImportJob.objects.create(
        workspace=tenant.workspace,
        file_name="secret-leads.csv",
        content="email\na@b.com\n",
        headers=["email"],
        mapping={"email": "email"},
        total_rows=1,
        created_at=NOW,
    )


def text(response: Any) -> str:
    return response.content.decode()


@pytest.fixture
def world(tenant: Tenant) -> dict[str, Any]:
    """A tenant with one of everything, so guards can be checked against real ids."""
    prospect = make_prospect(
        tenant,
        "ada@lovelace.dev",
        firstName="Ada",
        lastName="Lovelace",
        company="Engines Ltd",
        customFields={"favourite_number": "42"},
    )
    prospect_list = make_list(tenant, "Mathematicians")
    services.add_to_list(
        prospect_list=prospect_list, prospect_ids=[prospect.pk], actor=SYSTEM, now=NOW
    )
    return {
        "prospect": prospect,
        "list": prospect_list,
        "suppression": make_suppression(tenant, "blocked.example", "competitor"),
        "job": make_job(tenant),
    }


def state(tenant: Tenant) -> tuple[Any, ...]:
    """Everything an action could change, to prove that a refused one changed nothing."""
    ws = tenant.workspace
    return (
        sorted(Prospect.objects.filter(workspace=ws).values_list("email", "company", "first_name")),
        sorted(ProspectList.objects.filter(workspace=ws).values_list("name", "color")),
        sorted(
            ListMembership.objects.filter(workspace=ws).values_list(
                "prospect_list__name", "prospect__email"
            )
        ),
        sorted(Suppression.objects.filter(workspace=ws).values_list("kind", "value")),
        sorted(ImportJob.objects.filter(workspace=ws).values_list("file_name", "status")),
    )


# Every page and action with the data it needs; `{p}`, `{l}`, `{s}`, `{j}` are tenant ids.
GET_PAGES = [
    ("prospect-list", None),
    ("prospect-create", None),
    ("prospect-detail", "p"),
    ("prospect-edit", "p"),
    ("list-index", None),
    ("list-detail", "l"),
    ("import-new", None),
    ("import-map", "j"),
    ("import-detail", "j"),
    ("import-progress", "j"),
    ("import-report", "j"),
    ("blocklist", None),
]


def post_actions(world: dict[str, Any]) -> list[tuple[str, str | None, dict[str, Any]]]:
    p, lst = world["prospect"], world["list"]
    return [
        ("prospect-create", None, {"email": "new@example.com"}),
        ("prospect-edit", "p", {"email": p.email, "company": "Changed"}),
        ("prospect-delete", "p", {}),
        ("prospect-bulk-add", None, {"list": str(lst.pk), "prospect": [str(p.pk)]}),
        ("list-create", None, {"name": "New", "color": "#000000"}),
        ("list-edit", "l", {"name": "Renamed", "color": "#123456"}),
        ("list-delete", "l", {}),
        ("list-remove-prospects", "l", {"prospect": [str(p.pk)]}),
        ("import-new", None, {}),
        ("import-map", "j", {"map_0": "email"}),
        ("blocklist-add", None, {"value": "x@y.com"}),
        ("blocklist-remove", "s", {}),
    ]


def url(name: str, key: str | None, world: dict[str, Any]) -> str:
    objects = {
        "p": world["prospect"],
        "l": world["list"],
        "s": world["suppression"],
        "j": world["job"],
    }
    return reverse(name, args=[objects[key].pk]) if key else reverse(name)


# --- guards ---------------------------------------------------------------------------------


def test_pages_send_anonymous_visitors_to_login(world: dict[str, Any], tenant: Tenant) -> None:
    anonymous = Client()
    before = state(tenant)
    for name, key in GET_PAGES:
        target = url(name, key, world)
        response = anonymous.get(target)
        assert response.status_code == 302, name
        assert response["Location"].startswith(f"{reverse('login')}?next="), name
    for name, key, data in post_actions(world):
        response = anonymous.post(url(name, key, world), data)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name
    assert state(tenant) == before


def test_pages_answer_404_for_another_workspaces_ids(
    world: dict[str, Any], tenant: Tenant, outsider: Tenant
) -> None:
    client = client_for(outsider.owner)
    before = state(tenant)
    for name, key in GET_PAGES:
        if key:
            assert client.get(url(name, key, world)).status_code == 404, name
    for name, key, data in post_actions(world):
        if key:
            assert client.post(url(name, key, world), data).status_code == 404, name
    # Adding to the tenant's list from outside is a 404 too.
    mine = make_prospect(outsider, "mine@outsider.dev")
    response = client.post(
        reverse("prospect-bulk-add"), {"list": str(world["list"].pk), "prospect": [str(mine.pk)]}
    )
    assert response.status_code == 404
    assert state(tenant) == before


def test_pages_ignore_another_workspaces_prospects_in_bulk_add(
    world: dict[str, Any], outsider: Tenant
) -> None:
    own_list = make_list(outsider, "Mine")
    client = client_for(outsider.owner)
    response = client.post(
        reverse("prospect-bulk-add"),
        {"list": str(own_list.pk), "prospect": [str(world["prospect"].pk)]},
    )
    assert response.status_code == 302
    assert not ListMembership.objects.filter(prospect_list=own_list).exists()


def test_pages_of_an_outsider_never_show_tenant_rows(
    world: dict[str, Any], outsider: Tenant
) -> None:
    make_prospect(outsider, "someone@outsider.dev")
    client = client_for(outsider.owner)
    pages = [
        reverse("prospect-list"),
        reverse("prospect-list") + "?q=ada",
        reverse("prospect-list") + f"?list={world['list'].pk}",
        reverse("list-index"),
        reverse("import-new"),
        reverse("blocklist"),
        reverse("blocklist") + "?q=blocked",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        body = text(response)
        for secret in ("ada@lovelace.dev", "Mathematicians", "blocked.example", "secret-leads.csv"):
            assert secret not in body, (page, secret)
    body = text(client.get(reverse("prospect-list") + f"?list={world['list'].pk}"))
    assert "There is no such list." in body
    assert "someone@outsider.dev" not in body


def test_pages_refuse_owner_admin_actions_to_a_plain_member(
    world: dict[str, Any], tenant: Tenant
) -> None:
    client = client_for(tenant.member)
    before = state(tenant)
    refused = [
        reverse("prospect-delete", args=[world["prospect"].pk]),
        reverse("list-delete", args=[world["list"].pk]),
        reverse("blocklist-remove", args=[world["suppression"].pk]),
    ]
    for target in refused:
        assert client.post(target).status_code == 403, target
    response = client.post(reverse("blocklist-add"), {"value": "x@y.com", "reason": "no"})
    assert response.status_code == 403
    assert state(tenant) == before


def test_pages_hide_owner_admin_controls_from_a_member(
    world: dict[str, Any], tenant: Tenant
) -> None:
    client = client_for(tenant.member)
    blocklist = text(client.get(reverse("blocklist")))
    assert "blocked.example" in blocklist
    assert "Only owners and admins can add or remove blocklist entries." in blocklist
    assert reverse("blocklist-add") not in blocklist
    assert reverse("blocklist-remove", args=[world["suppression"].pk]) not in blocklist
    detail = text(client.get(reverse("prospect-detail", args=[world["prospect"].pk])))
    assert reverse("prospect-delete", args=[world["prospect"].pk]) not in detail
    list_page = text(client.get(reverse("list-detail", args=[world["list"].pk])))
    assert reverse("list-delete", args=[world["list"].pk]) not in list_page


def test_pages_let_a_member_edit_prospects_and_lists(world: dict[str, Any], tenant: Tenant) -> None:
    client = client_for(tenant.member)
    prospect, lst = world["prospect"], world["list"]
    response = client.post(
        reverse("prospect-edit", args=[prospect.pk]), {"email": prospect.email, "company": "X"}
    )
    assert response.status_code == 302
    response = client.post(reverse("list-edit", args=[lst.pk]), {"name": "M2", "color": "#111111"})
    assert response.status_code == 302
    prospect.refresh_from_db()
    lst.refresh_from_db()
    assert (prospect.company, lst.name, lst.color) == ("X", "M2", "#111111")


def test_pages_reject_get_on_post_only_actions(world: dict[str, Any], tenant: Tenant) -> None:
    client = client_for(tenant.owner)
    before = state(tenant)
    for target in (
        reverse("prospect-delete", args=[world["prospect"].pk]),
        reverse("list-delete", args=[world["list"].pk]),
        reverse("blocklist-remove", args=[world["suppression"].pk]),
    ):
        assert client.get(target).status_code == 405
    assert state(tenant) == before


def test_post_forms_carry_csrf_tokens(world: dict[str, Any], tenant: Tenant) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant.owner)
    for target in (
        reverse("prospect-list"),
        reverse("prospect-create"),
        reverse("prospect-detail", args=[world["prospect"].pk]),
        reverse("list-index"),
        reverse("list-detail", args=[world["list"].pk]),
        reverse("import-new"),
        reverse("blocklist"),
    ):
        body = text(client.get(target))
        forms = re.findall(r"<form[^>]*method=\"post\".*?</form>", body, flags=re.S)
        assert forms, target
        for form in forms:
            assert "csrfmiddlewaretoken" in form, (target, form[:120])
    response = client.post(reverse("list-create"), {"name": "No token", "color": "#000000"})
    assert response.status_code == 403
    assert not ProspectList.objects.filter(name="No token").exists()


# --- prospects ------------------------------------------------------------------------------


def test_prospect_list_shows_rows_with_list_pills_and_status(
    world: dict[str, Any], tenant: Tenant
) -> None:
    body = text(client_for(tenant.owner).get(reverse("prospect-list")))
    assert "ada@lovelace.dev" in body
    assert "Ada Lovelace" in body
    assert "Engines Ltd" in body
    assert 'class="pill list-pill"' in body and "Mathematicians" in body
    assert "background: #10b981" in body
    assert ">active<" in body
    assert 'hx-trigger="input changed delay:300ms"' in body


def test_prospect_list_empty_state_points_to_import_and_add(tenant: Tenant) -> None:
    body = text(client_for(tenant.owner).get(reverse("prospect-list")))
    assert "No prospects yet." in body
    assert f'href="{reverse("import-new")}"' in body
    assert f'href="{reverse("prospect-create")}"' in body


def test_prospect_search_and_filters_filter(tenant: Tenant) -> None:
    in_list = make_prospect(tenant, "grace@hopper.dev", firstName="Grace", company="Navy")
    make_prospect(tenant, "alan@turing.dev", firstName="Alan", company="Bletchley")
    bounced = make_prospect(tenant, "linus@kernel.dev", firstName="Linus")
    Prospect.objects.filter(pk=bounced.pk).update(global_status=GlobalStatus.BOUNCED)
    lst = make_list(tenant, "Pioneers")
    services.add_to_list(prospect_list=lst, prospect_ids=[in_list.pk], actor=SYSTEM, now=NOW)
    client = client_for(tenant.owner)
    everyone = {"grace@hopper.dev", "alan@turing.dev", "linus@kernel.dev"}

    def shown(query: str) -> set[str]:
        body = text(client.get(reverse("prospect-list") + query))
        return {email for email in everyone if email in body}

    assert shown("") == everyone
    assert shown("?q=bletch") == {"alan@turing.dev"}
    assert shown("?q=GRACE") == {"grace@hopper.dev"}
    assert shown(f"?list={lst.pk}") == {"grace@hopper.dev"}
    assert shown("?status=bounced") == {"linus@kernel.dev"}
    assert shown(f"?status=active&list={lst.pk}") == {"grace@hopper.dev"}
    assert shown("?q=nobody") == set()
    assert "No prospects match these filters." in text(
        client.get(reverse("prospect-list") + "?q=nobody")
    )
    assert shown("?list=not-a-uuid") == set()


def test_prospect_live_search_swaps_only_the_table(tenant: Tenant) -> None:
    make_prospect(tenant, "grace@hopper.dev")
    make_prospect(tenant, "alan@turing.dev")
    response = client_for(tenant.owner).get(
        reverse("prospect-list") + "?q=grace",
        headers={"HX-Request": "true", "HX-Target": "prospect-table"},
    )
    body = text(response)
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="prospect-table">')
    assert "<html" not in body and "sidebar" not in body
    assert "grace@hopper.dev" in body and "alan@turing.dev" not in body
    assert "HX-Request" in response["Vary"]


def test_prospect_pagination_shows_each_prospect_once(tenant: Tenant) -> None:
    # Same created_at for many rows: the id breaks ties, so no row is skipped or repeated.
    for index in range(120):
        services.create_prospect(
            workspace=tenant.workspace,
            data={"email": f"p{index:03d}@example.com"},
            actor=SYSTEM,
            now=NOW + timedelta(seconds=index // 7),
        )
    client = client_for(tenant.owner)
    pattern = re.compile(r"p\d{3}@example\.com")
    seen: list[str] = []
    pages: list[list[str]] = []
    target = reverse("prospect-list")
    while True:
        body = text(client.get(target))
        rows = list(dict.fromkeys(pattern.findall(body)))
        pages.append(rows)
        seen += rows
        match = re.search(r'rel="next" href="([^"]+)"', body)
        if not match:
            break
        target = reverse("prospect-list") + match.group(1).replace("&amp;", "&")
    assert [len(p) for p in pages] == [50, 50, 20]
    assert len(seen) == len(set(seen)) == 120
    # Newest first.
    assert seen[0] == "p119@example.com"
    # Going back from the last page gives the middle page again, in the same order.
    body = text(client.get(target))
    previous = re.search(r'rel="prev" href="([^"]+)"', body)
    assert previous is not None
    back = text(client.get(reverse("prospect-list") + previous.group(1).replace("&amp;", "&")))
    assert list(dict.fromkeys(pattern.findall(back))) == pages[1]


def test_prospect_pagination_keeps_filters(tenant: Tenant) -> None:
    for index in range(60):
        make_prospect(tenant, f"keep{index:02d}@example.com", company="Keep")
    make_prospect(tenant, "other@example.com", company="Other")
    body = text(client_for(tenant.owner).get(reverse("prospect-list") + "?q=keep"))
    link = re.search(r'rel="next" href="([^"]+)"', body)
    assert link is not None
    query = parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query)
    assert query["q"] == ["keep"] and "after" in query


def test_prospect_pagination_ignores_a_malformed_cursor(tenant: Tenant) -> None:
    make_prospect(tenant, "one@example.com")
    response = client_for(tenant.owner).get(reverse("prospect-list") + "?after=garbage&before=%%")
    assert response.status_code == 200
    assert "one@example.com" in text(response)


def test_add_prospect_with_custom_fields(tenant: Tenant) -> None:
    client = client_for(tenant.member)
    assert client.get(reverse("prospect-create")).status_code == 200
    response = client.post(
        reverse("prospect-create"),
        {
            "email": "  Grace@Hopper.dev ",
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "US Navy",
            "role": "Rear Admiral",
            "phone": "+1 555",
            "city": "Arlington",
            "linkedin_url": "linkedin.com/in/gracehopper",
            "website": "navy.mil",
            "country": "US",
            "industry": "Defense",
            "custom_key": ["Favourite Language", "", "team"],
            "custom_value": ["COBOL", "ignored", "Mark I"],
        },
    )
    prospect = Prospect.objects.get(workspace=tenant.workspace)
    assert response.status_code == 302
    assert response["Location"] == reverse("prospect-detail", args=[prospect.pk])
    assert prospect.email == "grace@hopper.dev"
    assert prospect.role == "Rear Admiral"
    assert prospect.linkedin_url == "https://linkedin.com/in/gracehopper"
    assert prospect.custom_fields == {"favourite_language": "COBOL", "team": "Mark I"}
    body = text(client.get(response["Location"]))
    assert "favourite_language" in body and "COBOL" in body
    assert "Arlington" in body and "Rear Admiral" in body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-email"}, "is not a valid email address"),
        ({"email": ""}, "This field is required."),
        (
            {"email": "x@y.com", "linkedin_url": "https://example.com/x"},
            "is not a LinkedIn profile URL",
        ),
        (
            {"email": "x@y.com", "custom_key": "!!!", "custom_value": "v"},
            "has no letters or digits",
        ),
    ],
)
def test_add_prospect_shows_the_services_message(
    tenant: Tenant, data: dict[str, Any], message: str
) -> None:
    response = client_for(tenant.owner).post(reverse("prospect-create"), data)
    assert response.status_code == 400
    assert message in text(response)
    assert not Prospect.objects.filter(workspace=tenant.workspace).exists()


def test_add_prospect_refuses_a_suppressed_email(tenant: Tenant) -> None:
    make_suppression(tenant, "blocked.example")
    response = client_for(tenant.owner).post(
        reverse("prospect-create"), {"email": "jo@blocked.example", "first_name": "Jo"}
    )
    assert response.status_code == 400
    body = text(response)
    assert "jo@blocked.example is on the suppression list (domain blocked.example)." in body
    assert 'value="Jo"' in body  # the rest of the form is kept
    assert not Prospect.objects.filter(workspace=tenant.workspace).exists()


def test_add_prospect_with_an_existing_email_opens_that_prospect(
    world: dict[str, Any], tenant: Tenant
) -> None:
    client = client_for(tenant.owner)
    response = client.post(reverse("prospect-create"), {"email": "ADA@lovelace.dev"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("prospect-detail", args=[world["prospect"].pk])
    assert "was already a prospect" in text(response)
    assert Prospect.objects.filter(workspace=tenant.workspace).count() == 1


def test_prospect_detail_shows_fields_custom_fields_and_lists(
    world: dict[str, Any], tenant: Tenant
) -> None:
    body = text(
        client_for(tenant.owner).get(reverse("prospect-detail", args=[world["prospect"].pk]))
    )
    for expected in (
        "ada@lovelace.dev",
        "Ada",
        "Lovelace",
        "Engines Ltd",
        "favourite_number",
        "42",
        "Mathematicians",
        reverse("prospect-edit", args=[world["prospect"].pk]),
        reverse("prospect-thread", args=[world["prospect"].pk]),
    ):
        assert expected in body


def test_edit_prospect_changes_fields_and_custom_fields(
    world: dict[str, Any], tenant: Tenant
) -> None:
    prospect = world["prospect"]
    client = client_for(tenant.owner)
    form = text(client.get(reverse("prospect-edit", args=[prospect.pk])))
    assert 'value="favourite_number"' in form and 'value="42"' in form
    response = client.post(
        reverse("prospect-edit", args=[prospect.pk]),
        {
            "email": "ada@lovelace.dev",
            "first_name": "Augusta Ada",
            "company": "",
            "custom_key": ["favourite_number", "title"],
            "custom_value": ["", "Countess"],
        },
    )
    assert response.status_code == 302
    prospect.refresh_from_db()
    assert prospect.first_name == "Augusta Ada"
    assert prospect.company == ""
    assert prospect.custom_fields == {"title": "Countess"}


def test_edit_prospect_removes_a_custom_field_whose_row_was_cleared(
    world: dict[str, Any], tenant: Tenant
) -> None:
    prospect = world["prospect"]
    client_for(tenant.owner).post(
        reverse("prospect-edit", args=[prospect.pk]),
        {"email": prospect.email, "custom_key": [""], "custom_value": [""]},
    )
    prospect.refresh_from_db()
    assert prospect.custom_fields == {}


def test_edit_prospect_to_a_taken_email_shows_the_conflict(
    world: dict[str, Any], tenant: Tenant
) -> None:
    make_prospect(tenant, "taken@example.com")
    response = client_for(tenant.owner).post(
        reverse("prospect-edit", args=[world["prospect"].pk]), {"email": "taken@example.com"}
    )
    assert response.status_code == 400
    assert "Another prospect already has the email taken@example.com." in text(response)
    world["prospect"].refresh_from_db()
    assert world["prospect"].email == "ada@lovelace.dev"


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_delete_a_prospect(
    world: dict[str, Any], tenant: Tenant, role: str
) -> None:
    client = client_for(getattr(tenant, role))
    response = client.post(reverse("prospect-delete", args=[world["prospect"].pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("prospect-list")
    assert not Prospect.objects.filter(pk=world["prospect"].pk).exists()
    assert ProspectList.objects.filter(pk=world["list"].pk).exists()


def test_bulk_add_selected_prospects_to_a_list(tenant: Tenant) -> None:
    a = make_prospect(tenant, "a@example.com")
    b = make_prospect(tenant, "b@example.com")
    c = make_prospect(tenant, "c@example.com")
    lst = make_list(tenant, "Chosen")
    services.add_to_list(prospect_list=lst, prospect_ids=[a.pk], actor=SYSTEM, now=NOW)
    client = client_for(tenant.member)
    page = text(client.get(reverse("prospect-list") + "?q=example"))
    assert 'form="bulk-form"' in page and "Add selected to list" in page
    response = client.post(
        reverse("prospect-bulk-add"),
        {
            "list": str(lst.pk),
            "prospect": [str(a.pk), str(b.pk)],
            "next": reverse("prospect-list") + "?q=example",
        },
        follow=True,
    )
    assert response.redirect_chain[0][0] == reverse("prospect-list") + "?q=example"
    assert "Added 1 prospect to Chosen (1 already in it)." in text(response)
    members = set(
        ListMembership.objects.filter(prospect_list=lst).values_list("prospect_id", flat=True)
    )
    assert members == {a.pk, b.pk}
    assert c.pk not in members


def test_bulk_add_without_selection_or_list_explains_and_changes_nothing(tenant: Tenant) -> None:
    lst = make_list(tenant, "Chosen")
    make_prospect(tenant, "a@example.com")
    client = client_for(tenant.owner)
    response = client.post(reverse("prospect-bulk-add"), {"list": str(lst.pk)}, follow=True)
    assert "Select at least one prospect first." in text(response)
    response = client.post(reverse("prospect-bulk-add"), {"prospect": []}, follow=True)
    assert "Choose a list to add the prospects to." in text(response)
    assert not ListMembership.objects.exists()


def test_bulk_add_never_redirects_off_site(tenant: Tenant) -> None:
    lst = make_list(tenant, "Chosen")
    p = make_prospect(tenant, "a@example.com")
    response = client_for(tenant.owner).post(
        reverse("prospect-bulk-add"),
        {
            "list": str(lst.pk),
            "prospect": [str(p.pk)],
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == reverse("prospect-list")


# --- lists ----------------------------------------------------------------------------------


def test_list_index_shows_swatch_count_and_created(world: dict[str, Any], tenant: Tenant) -> None:
    make_list(tenant, "Empty one", "#ff0000")
    body = text(client_for(tenant.owner).get(reverse("list-index")))
    assert "Mathematicians" in body and "Empty one" in body
    assert "background: #10b981" in body and "background: #ff0000" in body
    assert re.search(r'class="num"><a href="[^"]+">1</a>', body)
    assert re.search(r'class="num"><a href="[^"]+">0</a>', body)
    assert NOW.strftime("%b %-d, %Y") in body
    assert 'type="color"' in body


def test_create_list(tenant: Tenant) -> None:
    response = client_for(tenant.member).post(
        reverse("list-create"), {"name": "  Leads Q4 ", "color": "#AB12cd"}
    )
    created = ProspectList.objects.get(workspace=tenant.workspace)
    assert response.status_code == 302
    assert response["Location"] == reverse("list-detail", args=[created.pk])
    assert (created.name, created.color) == ("Leads Q4", "#AB12cd")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "mathematicians", "color": "#000000"},
            "A list named &#x27;mathematicians&#x27; already exists.",
        ),
        ({"name": "Bad color", "color": "red"}, "The color must look like #4f46e5."),
        ({"name": "   ", "color": "#000000"}, "This field is required."),
        ({"name": "x" * 150, "color": "#000000"}, "A list name has at most 100 characters."),
    ],
)
def test_create_list_shows_the_services_message(
    world: dict[str, Any], tenant: Tenant, data: dict[str, str], message: str
) -> None:
    before = state(tenant)
    response = client_for(tenant.owner).post(reverse("list-create"), data)
    assert response.status_code == 400
    assert message in text(response)
    assert state(tenant) == before


def test_rename_and_recolor_a_list(world: dict[str, Any], tenant: Tenant) -> None:
    lst = world["list"]
    response = client_for(tenant.owner).post(
        reverse("list-edit", args=[lst.pk]), {"name": "Analysts", "color": "#222222"}
    )
    assert response.status_code == 302
    lst.refresh_from_db()
    assert (lst.name, lst.color) == ("Analysts", "#222222")


def test_rename_a_list_to_a_taken_name_shows_the_message(
    world: dict[str, Any], tenant: Tenant
) -> None:
    make_list(tenant, "Physicists")
    response = client_for(tenant.owner).post(
        reverse("list-edit", args=[world["list"].pk]), {"name": "Physicists", "color": "#222222"}
    )
    assert response.status_code == 400
    assert "A list named &#x27;Physicists&#x27; already exists." in text(response)
    world["list"].refresh_from_db()
    assert world["list"].name == "Mathematicians"


def test_list_detail_shows_only_its_prospects_and_removes_some(
    world: dict[str, Any], tenant: Tenant
) -> None:
    lst = world["list"]
    other = make_prospect(tenant, "bob@example.com")
    kept = make_prospect(tenant, "carol@example.com")
    services.add_to_list(prospect_list=lst, prospect_ids=[kept.pk], actor=SYSTEM, now=NOW)
    client = client_for(tenant.member)
    body = text(client.get(reverse("list-detail", args=[lst.pk])))
    assert "ada@lovelace.dev" in body and "carol@example.com" in body
    assert other.email not in body
    assert "2 prospects" in body
    response = client.post(
        reverse("list-remove-prospects", args=[lst.pk]),
        {"prospect": [str(world["prospect"].pk)]},
        follow=True,
    )
    assert "Removed 1 prospect from Mathematicians." in text(response)
    assert list(lst.prospects.values_list("email", flat=True)) == ["carol@example.com"]
    assert Prospect.objects.filter(pk=world["prospect"].pk).exists()


def test_delete_list_keeps_its_prospects(world: dict[str, Any], tenant: Tenant) -> None:
    client = client_for(tenant.admin)
    detail = text(client.get(reverse("list-detail", args=[world["list"].pk])))
    assert "prospect are kept" in detail or "prospects are kept" in detail
    response = client.post(reverse("list-delete", args=[world["list"].pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("list-index")
    assert "its prospects are kept" in text(response)
    assert not ProspectList.objects.filter(pk=world["list"].pk).exists()
    assert Prospect.objects.filter(pk=world["prospect"].pk).exists()


# --- blocklist ------------------------------------------------------------------------------


def test_blocklist_lists_entries_with_type_reason_and_author(tenant: Tenant) -> None:
    services.add_suppression(
        workspace=tenant.workspace,
        value="jane@example.com",
        reason="asked us",
        actor=Actor.person(tenant.admin),
        now=NOW,
    )
    make_suppression(tenant, "spam.example")
    body = text(client_for(tenant.owner).get(reverse("blocklist")))
    assert "jane@example.com" in body and "asked us" in body and "acme-admin@example.com" in body
    assert ">email<" in body and ">domain<" in body
    assert "spam.example" in body and "automatically" in body
    assert NOW.strftime("%b %-d, %Y") in body


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owner_and_admin_add_emails_and_domains(tenant: Tenant, role: str) -> None:
    client = client_for(getattr(tenant, role))
    response = client.post(
        reverse("blocklist-add"), {"value": "Jane@Example.com", "reason": "GDPR"}
    )
    assert response.status_code == 302
    client.post(reverse("blocklist-add"), {"value": "@spam.example"})
    entries = set(
        Suppression.objects.filter(workspace=tenant.workspace).values_list(
            "kind", "value", "reason", "created_by__email"
        )
    )
    assert entries == {
        ("email", "jane@example.com", "GDPR", getattr(tenant, role).email),
        ("domain", "spam.example", "", getattr(tenant, role).email),
    }
    again = client.post(reverse("blocklist-add"), {"value": "spam.example"}, follow=True)
    assert "was already blocked" in text(again)
    assert Suppression.objects.filter(workspace=tenant.workspace).count() == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not a thing", "is neither an email address nor a domain."),
        ("a@@b", "is not a valid email address"),
        ("", "This field is required."),
    ],
)
def test_blocklist_add_shows_the_services_message(tenant: Tenant, value: str, message: str) -> None:
    response = client_for(tenant.owner).post(reverse("blocklist-add"), {"value": value})
    assert response.status_code == 400
    assert message in text(response)
    assert not Suppression.objects.filter(workspace=tenant.workspace).exists()


def test_blocklist_search(tenant: Tenant) -> None:
    make_suppression(tenant, "jane@example.com", "asked us")
    make_suppression(tenant, "spam.example", "competitor")
    client = client_for(tenant.member)
    body = text(client.get(reverse("blocklist") + "?q=spam"))
    assert "spam.example" in body and "jane@example.com" not in body
    body = text(client.get(reverse("blocklist") + "?q=ASKED"))
    assert "jane@example.com" in body and "spam.example" not in body
    assert "Nothing on the blocklist matches" in text(client.get(reverse("blocklist") + "?q=zzz"))


def test_blocklist_remove(world: dict[str, Any], tenant: Tenant) -> None:
    response = client_for(tenant.admin).post(
        reverse("blocklist-remove", args=[world["suppression"].pk]), follow=True
    )
    assert "Removed blocked.example from the blocklist." in text(response)
    assert not Suppression.objects.filter(workspace=tenant.workspace).exists()


def test_pages_mark_the_active_navigation_entry(world: dict[str, Any], tenant: Tenant) -> None:
    client = client_for(tenant.owner)
    expectations = {
        reverse("prospect-list"): "prospect-list",
        reverse("prospect-detail", args=[world["prospect"].pk]): "prospect-list",
        reverse("list-index"): "list-index",
        reverse("list-detail", args=[world["list"].pk]): "list-index",
        reverse("import-new"): "import-new",
        reverse("blocklist"): "blocklist",
    }
    for target, nav in expectations.items():
        body = text(client.get(target))
        assert f'href="{reverse(nav)}" class="active"' in body, target
