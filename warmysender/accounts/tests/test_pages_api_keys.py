"""Settings → API keys: owner/admin only, the key shown once, revocation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import time_machine
from django.test import Client

from warmysender.accounts.models import ApiKey, ApiScope
from warmysender.accounts.services import hash_api_key
from warmysender.conftest import NOW, Tenant, api_client, client_for

pytestmark = pytest.mark.django_db

SECRET = re.compile(r'data-testid="secret">(ws_[A-Za-z0-9_\-]+)<')


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def _authenticates(raw: str) -> bool:
    """Whether the REST API accepts the key (it holds prospects:read in these tests)."""
    response = api_client(raw).get("/api/v1/prospects")
    assert response.status_code in (200, 401), response.content
    return response.status_code == 200


def _create(
    client: Client,
    name: str = "CRM sync",
    scopes: tuple[str, ...] = ("prospects:read", "prospects:write"),
) -> str:
    response = client.post("/settings/api-keys/", {"name": name, "scopes": list(scopes)})
    assert response.status_code == 201, response.content.decode()[-2000:]
    match = SECRET.search(response.content.decode())
    assert match
    return match.group(1)


def test_anonymous_people_are_sent_to_log_in(tenant: Tenant) -> None:
    key = ApiKey.objects.get(key_hash=hash_api_key(tenant.key("prospects:read")))
    assert Client().get("/settings/api-keys/")["Location"] == "/login/?next=/settings/api-keys/"
    response = Client().post(f"/settings/api-keys/{key.pk}/revoke/")
    assert response["Location"].startswith("/login/?next=")
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_form_offers_all_sixteen_scopes_grouped(tenant: Tenant) -> None:
    body = client_for(tenant.admin).get("/settings/api-keys/").content.decode()
    offered = re.findall(r'name="scopes" value="([a-z]+:[a-z]+)"', body)
    assert sorted(offered) == sorted(ApiScope.values)
    assert len(offered) == 16
    for group in (
        "Prospects",
        "Mailboxes",
        "Warmup",
        "Campaigns",
        "Enrollments",
        "Suppressions",
        "Webhooks",
        "Jobs",
        "LinkedIn",
    ):
        assert f"<b>{group}</b>" in body


def test_a_created_key_is_shown_once_and_works(tenant: Tenant) -> None:
    client = client_for(tenant.owner)
    response = client.post(
        "/settings/api-keys/", {"name": "CRM sync", "scopes": ["prospects:read", "campaigns:write"]}
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    match = SECRET.search(body)
    assert match
    raw = match.group(1)
    assert "it is shown only this once" in body

    key = ApiKey.objects.get(workspace=tenant.workspace, name="CRM sync")
    assert key.key_hash == hash_api_key(raw)
    assert key.scopes == ["campaigns:write", "prospects:read"]
    assert key.created_by == tenant.owner
    assert raw.startswith(key.prefix)

    # Afterwards the list shows the prefix, never the key.
    listing = client.get("/settings/api-keys/").content.decode()
    assert raw not in listing
    assert f"{key.prefix}…" in listing
    assert "campaigns:write" in listing and "never" in listing

    assert _authenticates(raw)
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert "never" not in client.get("/settings/api-keys/").content.decode().split("<tbody>")[1]


def test_a_revoked_key_no_longer_authenticates(tenant: Tenant) -> None:
    client = client_for(tenant.admin)
    raw = _create(client)
    key = ApiKey.objects.get(key_hash=hash_api_key(raw))
    assert _authenticates(raw)
    response = client.post(f"/settings/api-keys/{key.pk}/revoke/")
    assert response["Location"] == "/settings/api-keys/"
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert not _authenticates(raw)
    listing = client.get("/settings/api-keys/").content.decode()
    assert "was revoked" in listing
    assert "Revoked Nov 23, 2026" in listing


def test_htmx_creation_swaps_only_the_section(tenant: Tenant) -> None:
    response = client_for(tenant.owner).post(
        "/settings/api-keys/", {"name": "Zap", "scopes": ["jobs:read"]}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 201
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="api-keys-main">')
    assert "<html" not in body
    assert SECRET.search(body)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "No scopes"}, "Choose at least one scope."),
        ({"name": "", "scopes": ["jobs:read"]}, "This field is required."),
        ({"name": "Bad", "scopes": ["admin:everything"]}, "Select a valid choice."),
    ],
)
def test_invalid_input_is_explained_and_creates_nothing(
    tenant: Tenant, data: dict, error: str
) -> None:
    response = client_for(tenant.owner).post("/settings/api-keys/", data)
    assert response.status_code == 200
    body = response.content.decode()
    assert error in body
    assert not SECRET.search(body)
    assert not ApiKey.objects.exists()


def test_a_plain_member_gets_403_and_nothing_changes(tenant: Tenant) -> None:
    raw = tenant.key("prospects:read")
    key = ApiKey.objects.get(key_hash=hash_api_key(raw))
    client = client_for(tenant.member)
    assert client.get("/settings/api-keys/").status_code == 403
    refused = client.post("/settings/api-keys/", {"name": "Mine", "scopes": ["jobs:read"]})
    assert refused.status_code == 403
    assert "needs the admin role" in refused.content.decode()
    assert client.post(f"/settings/api-keys/{key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None
    assert _authenticates(raw)


def test_an_outsider_cannot_see_or_revoke_another_workspaces_keys(
    tenant: Tenant, outsider: Tenant
) -> None:
    raw = tenant.key("prospects:read")
    key = ApiKey.objects.get(key_hash=hash_api_key(raw))
    client = client_for(outsider.owner)
    assert key.prefix not in client.get("/settings/api-keys/").content.decode()
    response = client.post(f"/settings/api-keys/{key.pk}/revoke/")
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    assert _authenticates(raw)


def test_a_malformed_key_id_is_404(tenant: Tenant) -> None:
    assert client_for(tenant.owner).post("/settings/api-keys/not-a-uuid/revoke/").status_code == 404
