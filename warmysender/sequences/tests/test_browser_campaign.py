"""End to end in Debian's Chromium: sign up, add a sandbox mailbox and a prospect, build a
two-step campaign with spintax and a fallback merge tag, preview it, enroll the prospect and
start it; then run the engine in this process and find the email on the campaign page and among
the sandbox mailbox's captured messages."""

from __future__ import annotations

import os

# Sync Playwright runs an event loop in this thread; Django's ORM must still be usable here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import importlib
import re
from collections.abc import Iterator

import pytest
from django.apps import apps as django_apps
from django.utils import timezone
from playwright.sync_api import Page, expect

from warmysender.mailboxes.models import SandboxMessage
from warmysender.sequences.models import (
    Action,
    ActionState,
    Campaign,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
)
from warmysender.sequences.tests.flow import drive
from warmysender.testing.jobs import clear_queue

SUBJECT = "{Hi|Hello} {{firstName | default: 'there'}}"
BODY = "<p>{Quick|Short} question about {{company | default: 'your team'}}.</p>"
FOLLOW_UP = "<p>Any thoughts, {{firstName | default: 'there'}}?</p>"
GREETINGS = re.compile(r"^(Hi|Hello) Ada$")


@pytest.fixture
def clean_slate(transactional_db: None) -> Iterator[None]:
    """What the flush between transactional tests leaves wrong: the plans (rows of a data
    migration) are gone and procrastinate's unmanaged tables still hold other tests' jobs."""
    migration = importlib.import_module("warmysender.accounts.migrations.0002_plans")
    migration.add_plans(django_apps, None)
    clear_queue()
    yield
    clear_queue()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_build_preview_start_and_send_a_campaign_in_the_browser(
    live_server: object, page: Page, clean_slate: None
) -> None:
    base = str(live_server)
    page.set_default_timeout(15_000)
    nav = page.locator("aside.sidebar nav")

    page.goto(base + "/signup/")
    page.fill("input[name=email]", "founder@example.com")
    page.fill("input[name=password]", "a-long-unusual-passphrase")
    page.fill("input[name=workspace_name]", "Analytical Engines")
    page.locator("form button[type=submit]").click()
    page.wait_for_load_state()

    # A sandbox mailbox, through its own page.
    nav.get_by_role("link", name="Mailboxes").click()
    page.get_by_role("link", name="Add mailbox").first.click()
    page.get_by_label("Provider").select_option("sandbox")
    page.get_by_label("Email address").fill("outreach@engines.example")
    page.get_by_role("button", name="Save mailbox").click()
    expect(page.get_by_role("heading", name="outreach@engines.example")).to_be_visible()

    # A prospect.
    nav.get_by_role("link", name="Prospects").click()
    page.get_by_role("link", name="Add prospect").first.click()
    page.get_by_label("Email").fill("ada@lovelace.dev")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Company").fill("Engines Ltd")
    page.get_by_role("button", name="Add prospect").click()
    expect(page.get_by_role("heading", name="Ada")).to_be_visible()

    # The builder.
    nav.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_text("No campaigns yet.")).to_be_visible()
    page.get_by_role("link", name="New campaign").first.click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    page.get_by_label("Campaign name").fill("Engines outreach")

    step1 = page.locator("fieldset.step").nth(0)
    status1 = page.get_by_test_id("status-steps-0")
    expect(status1).to_contain_text("1 variation")
    step1.get_by_label("Subject", exact=True).fill(SUBJECT)
    # A syntax error is reported live with its line and column, then fixed.
    step1.get_by_label("Body (HTML)", exact=True).fill("<p>Hello</p>\n<p>{{company}</p>")
    expect(status1).to_contain_text(re.compile(r"Body line 2, column \d+"))
    step1.get_by_label("Body (HTML)", exact=True).fill(BODY)
    expect(status1).to_contain_text("4 variations")
    expect(status1).to_contain_text("(subject 2 × body 2)")

    # Mark this document: adding a step must swap the steps in place, not reload the page.
    page.evaluate("window.__stillTheSamePage = true")
    page.get_by_role("button", name="+ Add step").click()
    expect(page.locator("fieldset.step")).to_have_count(2)
    assert page.evaluate("window.__stillTheSamePage") is True
    expect(step1.get_by_label("Subject", exact=True)).to_have_value(SUBJECT)  # kept as typed
    step2 = page.locator("fieldset.step").nth(1)
    expect(step2.get_by_label("Wait after step 1 (days)")).to_have_value("3")
    step2.get_by_label("Wait after step 1 (days)").fill("2")
    step2.get_by_label("Body (HTML)", exact=True).fill(FOLLOW_UP)
    expect(page.get_by_test_id("status-steps-1")).to_contain_text("1 variation")

    page.get_by_role("checkbox", name="outreach@engines.example").check()
    page.get_by_label("Sat").check()
    page.get_by_label("Sun").check()
    page.get_by_label("Window start").select_option("0")
    page.get_by_label("Window end").select_option("24")
    page.get_by_role("button", name="Save as draft").first.click()

    expect(page.get_by_text("Saved Engines outreach as a draft.")).to_be_visible()
    expect(page.get_by_role("heading", name="Engines outreach")).to_be_visible()
    expect(page.locator("h1 .pill")).to_have_text("draft")
    expect(page.get_by_text("Mon Tue Wed Thu Fri Sat Sun 0-24 UTC")).to_be_visible()
    campaign = Campaign.objects.get()
    assert campaign.steps.count() == 2

    # Preview as the prospect (not enrolled yet: any prospect of the workspace).
    page.get_by_role("link", name="Preview").click()
    expect(page.get_by_role("heading", name="Preview for Ada")).to_be_visible()
    subjects = page.get_by_test_id("preview-subject")
    expect(subjects.nth(0)).to_have_text(GREETINGS)
    first_subject = subjects.nth(0).inner_text()
    expect(subjects.nth(1)).to_have_text(f"Re: {first_subject}")
    frame = page.frame_locator("iframe.preview-frame").first
    expect(frame.locator("p")).to_have_text(
        re.compile(r"^(Quick|Short) question about Engines Ltd\.$")
    )
    page.get_by_role("link", name="Engines outreach").click()

    # Enroll the prospect by email, then start.
    page.get_by_label("Paste email addresses").fill("ada@lovelace.dev")
    page.get_by_role("button", name="Enroll").click()
    expect(page.get_by_text("Enrolled 1 prospect.")).to_be_visible()
    row = page.locator('tr[data-prospect="ada@lovelace.dev"]')
    expect(row).to_contain_text("pending")
    page.get_by_role("button", name="Start campaign").click()
    expect(page.get_by_text("Started Engines outreach.")).to_be_visible()
    expect(page.locator("h1 .pill")).to_have_text("running")
    expect(page.get_by_test_id("stat-sent")).to_have_text("0")

    # The engine, in this process: one tick and the sender for the mailbox that got work.
    report = drive(timezone.now())
    assert report.reserved == 1
    action = Action.objects.get(campaign=campaign)
    assert action.state == ActionState.SENT
    captured = SandboxMessage.objects.get()
    assert GREETINGS.match(captured.subject)
    assert captured.to_email == "ada@lovelace.dev"
    assert "about Engines Ltd." in captured.text
    enrollment = Enrollment.objects.get(campaign=campaign)
    assert (enrollment.status, enrollment.next_step_index) == (EnrollmentStatus.PENDING, 2)
    assert Campaign.objects.get().status == CampaignStatus.RUNNING

    page.reload()
    expect(page.get_by_test_id("stat-sent")).to_have_text("1")
    expect(row).to_contain_text("pending")
    expect(row.locator("td").nth(2)).to_have_text("2 of 2")
    expect(row).to_contain_text("outreach@engines.example")

    # What the sandbox captured, on the mailbox's page.
    nav.get_by_role("link", name="Mailboxes").click()
    page.get_by_role("link", name="outreach@engines.example").first.click()
    page.get_by_role("link", name=re.compile(r"Captured messages \(1\)")).click()
    expect(page.get_by_role("heading", name="Captured messages")).to_be_visible()
    table = page.locator("table")
    expect(table).to_contain_text("ada@lovelace.dev")
    expect(table.get_by_role("link", name=captured.subject)).to_be_visible()
