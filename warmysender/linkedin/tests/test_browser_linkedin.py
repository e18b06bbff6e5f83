"""The whole LinkedIn account journey in Debian's Chromium against the bundled simulator:
connect on the hosted page through a 2FA checkpoint, see it connected with its caps, expire the
session, one status check later see "Reconnect needed", reconnect, green again with caps and
ramp kept."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from warmysender.conftest import PASSWORD as USER_PASSWORD
from warmysender.conftest import Tenant
from warmysender.linkedin import connection, services
from warmysender.linkedin.models import AccountStatus, LinkedInAccount
from warmysender.linkedin.simulator import SimulatorServer

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser
USERNAME = "ada.lovelace+2fa+sales@example.com"


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/prospects/"))


def sign_in_on_hosted_page(page: Page) -> None:
    page.get_by_label("Email or phone").fill(USERNAME)
    page.get_by_label("Password").fill("any password")
    page.get_by_role("button", name="Sign in").click()
    code = page.locator("#sim-code").inner_text()
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Verify").click()


def wait_for_pill(page: Page, text: str) -> None:
    # The handshake callback arrives from the simulator a moment after the redirect.
    for _ in range(50):
        if page.get_by_test_id("status").filter(has_text=text).count():
            return
        page.wait_for_timeout(100)
        page.reload()
    expect(page.get_by_test_id("status").first).to_have_text(text)


def test_connect_expire_and_reconnect_in_the_browser(
    live_server: Any, page: Page, tenant: Tenant, unipile_sim: SimulatorServer, settings: Any
) -> None:
    settings.UNIPILE_DSN = unipile_sim.base_url
    settings.UNIPILE_API_KEY = unipile_sim.api_key
    settings.SITE_URL = live_server.url
    base = live_server.url
    log_in(page, base, tenant.admin.email)

    page.get_by_role("link", name="LinkedIn", exact=True).click()
    page.get_by_role("link", name="Connect Account").first.click()
    page.get_by_label("Strategy (sets the ramp)").select_option("new_account")
    page.get_by_label("Automatic (near your location)").check()
    page.get_by_label(re.compile("On Unipile's secure page")).check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Connect LinkedIn")).to_be_visible()
    sign_in_on_hosted_page(page)

    page.wait_for_url(re.compile(r"/linkedin/accounts/$"))
    wait_for_pill(page, "Connected")
    account = LinkedInAccount.objects.get(workspace=tenant.workspace)
    assert account.status == AccountStatus.CONNECTED
    assert account.account_type == "sales_navigator"
    expect(page.get_by_test_id("first-connected")).to_contain_text("First connected on")
    expect(page.get_by_test_id("reconnect-banner")).to_have_count(0)
    services.reserve(account, "invite", timezone.now())

    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_test_id("ramp-week")).to_have_text("Week 1 of 6")
    caps_before = page.get_by_test_id("caps").inner_text()
    assert "Invites this week: 1/50" in caps_before
    assert "InMails today: 0/25" in caps_before

    # The session expires at Unipile; the next periodic check (4 minutes on) notices it.
    unipile_sim.expire_session(account.unipile_account_id)
    connection.check_statuses(unipile_sim.client(), now=timezone.now() + timedelta(minutes=4))
    page.goto(f"{base}/linkedin/accounts/")
    expect(page.get_by_test_id("status")).to_have_text("Reconnect needed")
    expect(page.get_by_test_id("reconnect-banner")).to_contain_text(
        "1 LinkedIn account requires re-authentication"
    )

    page.get_by_role("button", name="Reconnect Account").click()
    expect(page.get_by_role("heading", name="Reconnect your LinkedIn account")).to_be_visible()
    sign_in_on_hosted_page(page)
    page.wait_for_url(re.compile(r"/linkedin/accounts/$"))
    wait_for_pill(page, "Connected")
    expect(page.get_by_test_id("reconnect-banner")).to_have_count(0)

    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_test_id("ramp-week")).to_have_text("Week 1 of 6")
    assert page.get_by_test_id("caps").inner_text() == caps_before
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert account.disconnected_at is None and account.strikes == 0
