"""The mailbox pages in Debian's Chromium: presets fill the servers, the connection test shows
its hint without saving, the daily limit is edited in place."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from warmysender.conftest import PASSWORD as USER_PASSWORD
from warmysender.conftest import Tenant
from warmysender.mailboxes.models import Mailbox
from warmysender.mailboxes.tests.conftest import PASSWORD, SENDER
from warmysender.testing.smtp import SmtpServer

# Sync Playwright runs an event loop in this thread; the ORM calls in the test are still sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/prospects/"))


def test_an_admin_adds_a_mailbox_with_a_preset_and_a_test_first(
    live_server: Any, page: Page, tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    base = live_server.url
    log_in(page, base, tenant.admin.email)
    page.goto(f"{base}/mailboxes/")
    page.get_by_role("link", name="Add mailbox").first.click()

    provider = page.get_by_label("Provider")
    provider.select_option("outlook")
    expect(page.get_by_label("SMTP host")).to_have_value("smtp.office365.com")
    expect(page.get_by_label("SMTP port")).to_have_value("587")
    expect(page.get_by_label("IMAP host")).to_have_value("outlook.office365.com")
    expect(page.locator("#provider-help")).to_contain_text("App Password")
    provider.select_option("yahoo")
    expect(page.get_by_label("SMTP security")).to_have_value("ssl")
    expect(page.get_by_label("SMTP port")).to_have_value("465")
    # Switching the mode moves the default port along.
    page.get_by_label("SMTP security").select_option("starttls")
    expect(page.get_by_label("SMTP port")).to_have_value("587")
    provider.select_option("sandbox")
    expect(page.locator("#servers")).to_be_hidden()

    provider.select_option("custom")
    page.get_by_label("Email address").fill(SENDER)
    page.get_by_label("Password", exact=True).fill("wrong-password")
    page.get_by_label("SMTP host").fill(auth_server.host)
    page.get_by_label("SMTP port").fill(str(auth_server.port))
    page.get_by_label("SMTP security").select_option("starttls")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("SMTP failed.")
    expect(page.locator("#test-result")).to_contain_text("535 5.7.8")
    assert not Mailbox.objects.exists()

    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connected.")
    page.get_by_role("button", name="Save mailbox").click()

    expect(page.get_by_text(f"Connected {SENDER}.")).to_be_visible()
    mailbox = Mailbox.objects.get(workspace=tenant.workspace)
    assert mailbox.status == "connected"

    page.goto(f"{base}/mailboxes/")
    row = page.locator(f"#mailbox-{mailbox.pk}")
    row.get_by_label(f"Daily limit of {SENDER}").fill("45")
    with page.expect_response(lambda r: r.url.endswith(f"/mailboxes/{mailbox.pk}/limit/")):
        row.get_by_role("button", name="Save").click()
    expect(page.locator(f"#mailbox-{mailbox.pk} input[name=daily_limit]")).to_have_value("45")
    mailbox.refresh_from_db()
    assert mailbox.daily_limit == 45
    assert page.url == f"{base}/mailboxes/"  # swapped in place
