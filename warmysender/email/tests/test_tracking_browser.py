"""In Debian's Chromium: a sent campaign email is displayed, its pixel loads and one of its links
is followed through the click redirect; then the campaign page's stats box shows one open and
one click (100 %), while a scanner's hit on the same email is left out."""

from __future__ import annotations

import os

# Sync Playwright runs an event loop in this thread; Django's ORM must still be usable here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import importlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect

from warmysender.conftest import PASSWORD, make_tenant
from warmysender.email.models import TrackingHit
from warmysender.mailboxes.models import SandboxMessage
from warmysender.prospects import services as prospect_services
from warmysender.sequences import services
from warmysender.sequences.services import StepInput
from warmysender.sequences.tests.flow import ACTOR, drive, make_campaign, sandbox_mailbox
from warmysender.testing.jobs import clear_queue

# Headless Chromium says "HeadlessChrome", which tracking rightly takes for a robot: look like
# the desktop browser a person would use.
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "user_agent": DESKTOP}


@pytest.fixture
def clean_slate(transactional_db: None) -> Iterator[None]:
    migration = importlib.import_module("warmysender.accounts.migrations.0002_plans")
    migration.add_plans(django_apps, None)
    clear_queue()
    yield
    clear_queue()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_open_and_a_click_in_the_browser_show_in_the_stats_box(
    live_server: object, page: Page, clean_slate: None
) -> None:
    base = str(live_server)
    page.set_default_timeout(15_000)
    tenant = make_tenant("acme")
    sent_at = timezone.now() - timedelta(hours=1)  # well past the prefetch window
    mailbox = sandbox_mailbox(tenant, "sales@acme.com", sent_at)
    ada = prospect_services.create_prospect(
        workspace=tenant.workspace, data={"email": "ada@example.com"}, actor=ACTOR, now=sent_at
    ).prospect
    landing = f"{base}/healthz"
    campaign = make_campaign(
        tenant,
        [mailbox],
        [
            StepInput(
                step_index=1,
                subject="Hello",
                body_html=f'<p>See <a href="{landing}">our status page</a>.</p>',
            )
        ],
        sent_at,
    )
    services.enroll(campaign=campaign, prospect_ids=[ada.pk], actor=ACTOR, now=sent_at)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=sent_at)
    drive(sent_at)
    email_html = SandboxMessage.objects.get().html.replace(settings.SITE_URL, base)

    # The prospect reads the email (the pixel loads) and clicks the link.
    page.set_content(email_html)
    expect(page.get_by_role("link", name="our status page")).to_be_visible()
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    page.get_by_role("link", name="our status page").click()
    page.wait_for_url(landing)
    expect(page.locator("body")).to_contain_text("ok")
    # A security gateway fetches the same pixel: kept, but not counted.
    pixel = email_html.split('<img src="')[1].split('"')[0].replace("&amp;", "&")
    Client().get(pixel.removeprefix(base), HTTP_USER_AGENT="Mimecast URL Protect")
    assert TrackingHit.objects.filter(is_scanner=False).count() == 2
    assert TrackingHit.objects.filter(is_scanner=True).count() == 1

    # The owner looks at the campaign page.
    page.goto(base + "/login/")
    page.fill("input[name=email]", tenant.owner.email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_load_state()
    page.goto(f"{base}/campaigns/{campaign.pk}/")
    stats = page.locator("#campaign-stats")
    expect(stats.get_by_test_id("stat-sent")).to_have_text("1")
    expect(stats.get_by_test_id("stat-opens")).to_have_text("1")
    expect(stats.get_by_test_id("rate-open")).to_have_text("100.0% open rate")
    expect(stats.get_by_test_id("stat-clicks")).to_have_text("1")
    expect(stats.get_by_test_id("rate-click")).to_have_text("100.0% click rate")
    expect(stats.get_by_test_id("scanner-hits")).to_contain_text("1 hit from security scanners")
    expect(stats.locator('tr.step-row[data-step="1"]')).to_contain_text("100.0%")
