"""Settings → Webhooks in Debian's Chromium: create (secret once), Test with htmx, and the
delivery log refreshing by itself once the delivery pass ran."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from warmysender.conftest import PASSWORD, Tenant
from warmysender.testing.jobs import clear_queue
from warmysender.webhooks import delivery, services
from warmysender.webhooks.models import WebhookEndpoint
from warmysender.webhooks.tests.receiver import Receiver, verify

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser


def test_admin_creates_tests_and_watches_the_delivery_log(
    live_server: Any, page: Page, tenant: Tenant, receiver: Receiver
) -> None:
    base = live_server.url
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(tenant.admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/prospects/"))

    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    page.get_by_label("Endpoint URL").fill(receiver.url())
    page.locator('input[name="events"][value="reply.received"]').check()
    page.get_by_role("button", name="Create webhook").click()

    secret = page.get_by_test_id("secret").inner_text().strip()
    assert secret.startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get(workspace=tenant.workspace)
    assert services.endpoint_secret(endpoint) == secret and endpoint.events == ["reply.received"]

    page.get_by_role("link", name="Open the webhook").click()
    assert secret not in page.content()
    page.get_by_test_id("test-button").click()
    expect(page.get_by_test_id("test-message")).to_contain_text("Test event queued")
    expect(page.get_by_test_id("delivery-table")).to_contain_text("Pending")

    delivery.deliver_due(lambda: datetime.now(UTC))
    clear_queue()  # the pass the button deferred; it would find nothing left to do

    # The log polls every few seconds: the result shows without a reload.
    table = page.get_by_test_id("delivery-table")
    expect(table).to_contain_text("Succeeded", timeout=15_000)
    expect(table).to_contain_text("200")
    [got] = receiver.requests
    assert got.headers["x-warmy-event-type"] == "webhook.test"
    assert verify(secret, got.headers["x-warmy-signature"], got.body)
