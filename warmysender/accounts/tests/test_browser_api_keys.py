"""The API keys page in Debian's Chromium: create a key, see it once, revoke it."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from warmysender.accounts.models import ApiKey
from warmysender.accounts.services import hash_api_key
from warmysender.conftest import PASSWORD, Tenant, api_client

# Sync Playwright runs an event loop in this thread; the ORM calls in the test are still sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser


def test_owner_creates_sees_once_and_revokes_a_key(
    live_server: Any, page: Page, tenant: Tenant
) -> None:
    base = live_server.url
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(tenant.owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/prospects/"))

    page.goto(f"{base}/settings/api-keys/")
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    expect(page.get_by_text("No API keys yet")).to_be_visible()

    page.get_by_label("Name").fill("Zapier")
    page.locator('input[name="scopes"][value="prospects:read"]').check()
    page.locator('input[name="scopes"][value="webhooks:write"]').check()
    page.get_by_role("button", name="Create key").click()

    secret = page.get_by_test_id("secret")
    expect(secret).to_be_visible()
    raw = secret.inner_text().strip()
    assert raw.startswith("ws_")
    expect(page.get_by_text("it is shown only this once")).to_be_visible()
    key = ApiKey.objects.get(workspace=tenant.workspace, name="Zapier")
    assert key.key_hash == hash_api_key(raw)
    assert key.scopes == ["prospects:read", "webhooks:write"]
    assert api_client(raw).get("/api/v1/prospects").status_code == 200
    # htmx swapped the section in place: the address is still the list's GET.
    assert page.url == f"{base}/settings/api-keys/"

    page.reload()
    expect(page.get_by_test_id("secret")).to_have_count(0)
    row = page.locator(f"#key-{key.pk}")
    expect(row).to_contain_text(f"{key.prefix}…")
    expect(row).to_contain_text("prospects:read")
    expect(row).to_contain_text("Active")
    assert raw not in page.content()

    row.get_by_text("Revoke", exact=True).click()
    expect(row.get_by_text("Programs using it stop working at once")).to_be_visible()
    row.get_by_role("button", name="Revoke key").click()
    page.wait_for_load_state()
    expect(page.locator(f"#key-{key.pk}")).to_contain_text("Revoked")
    expect(page.get_by_text("was revoked; it no longer works")).to_be_visible()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_client(raw).get("/api/v1/prospects").status_code == 401
