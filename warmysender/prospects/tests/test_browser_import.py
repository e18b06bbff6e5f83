"""End to end in Debian's Chromium: sign up, import a CSV through the wizard while a real worker
process runs the job, watch the progress page finish by itself, then find the prospects."""

from __future__ import annotations

import os

# Sync Playwright runs an event loop in this thread; Django's ORM must still be usable here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import importlib
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.apps import apps as django_apps
from django.db import connection
from playwright.sync_api import Page, expect

from warmysender.prospects.models import ImportJob, ImportStatus, Prospect
from warmysender.testing.jobs import clear_queue

CSV = (
    b"Email,First Name,Last Name,Company,Title,Favourite Colour\n"
    b"ada@lovelace.dev,Ada,Lovelace,Engines Ltd,Countess,green\n"
    b"grace@hopper.dev,Grace,Hopper,US Navy,Rear Admiral,blue\n"
    b"alan@turing.dev,Alan,Turing,Bletchley Park,Cryptanalyst,red\n"
    b"not-an-email,Nobody,Atall,Nowhere,,\n"
)


@pytest.fixture
def clean_slate(transactional_db: None) -> Iterator[None]:
    """What the flush between transactional tests leaves wrong: the plans (rows of a data
    migration) are gone and procrastinate's unmanaged tables still hold other tests' jobs."""
    migration = importlib.import_module("warmysender.accounts.migrations.0002_plans")
    migration.add_plans(django_apps, None)
    clear_queue()
    yield
    clear_queue()


def database_url() -> str:
    """The URL of the database this test runs against (pytest-django's `test_…` database)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or ""
    port = str(db["PORT"] or "")
    name = quote(db["NAME"], safe="")
    if host.startswith("/"):  # a unix-socket directory
        query = f"?host={quote(host, safe='')}" + (f"&port={port}" if port else "")
        return f"postgresql://{credentials}@/{name}{query}"
    return f"postgresql://{credentials}@{host}{':' + port if port else ''}/{name}"


@pytest.fixture
def worker(clean_slate: None) -> Iterator[subprocess.Popen[bytes]]:
    """`warmysender worker` against the test database, stopped (and waited for) afterwards so
    the database can be flushed and dropped."""
    log = tempfile.TemporaryFile()
    env = {**os.environ, "DATABASE_URL": database_url()}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "warmysender.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[3],
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
        if output.strip():
            print("worker output:\n" + output)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_import_a_csv_in_the_browser(
    live_server: object, page: Page, worker: subprocess.Popen[bytes]
) -> None:
    base = str(live_server)
    page.set_default_timeout(15_000)

    page.goto(base + "/signup/")
    page.fill("input[name=email]", "founder@example.com")
    page.fill("input[name=password]", "a-long-unusual-passphrase")
    page.fill("input[name=workspace_name]", "Analytical Engines")
    page.locator("form button[type=submit]").click()
    page.wait_for_load_state()

    page.locator("aside.sidebar nav").get_by_role("link", name="Import CSV").click()
    expect(page.get_by_role("heading", name="Import CSV")).to_be_visible()
    page.set_input_files(
        "input[type=file]", files=[{"name": "pioneers.csv", "mimeType": "text/csv", "buffer": CSV}]
    )
    page.get_by_role("button", name="Upload and map columns").click()

    expect(page.get_by_role("heading", name="Map columns")).to_be_visible()
    title = page.get_by_label("Import Title as")
    expect(title).to_have_value("role")
    title.select_option("custom:title")
    expect(page.get_by_label("Import Favourite Colour as")).to_have_value("custom:favourite_colour")
    expect(page.locator("table.mapping")).to_contain_text("grace@hopper.dev")
    page.get_by_label("…or create a new list").fill("Pioneers")
    page.get_by_role("button", name="Start import").click()

    expect(page.get_by_role("heading", name="Import of pioneers.csv")).to_be_visible()
    # Mark this document: if the page were reloaded instead of polled, the mark would be gone.
    page.evaluate("window.__stillTheSamePage = true")
    progress = page.locator("#import-progress")
    expect(progress).to_have_attribute("data-status", "completed", timeout=60_000)
    assert page.evaluate("window.__stillTheSamePage") is True
    assert worker.poll() is None, "the worker process died"
    expect(progress).to_contain_text("3created")
    expect(progress).to_contain_text("1invalid")
    expect(progress.locator(".progress > div")).to_have_attribute("style", "width: 100%")
    # Polling stopped: the finished fragment carries no trigger.
    assert progress.get_attribute("hx-trigger") is None

    job = ImportJob.objects.get()
    assert job.status == ImportStatus.COMPLETED
    assert Prospect.objects.count() == 3

    page.get_by_role("link", name="View prospects").click()
    table = page.locator("#prospect-table table")
    for email in ("ada@lovelace.dev", "grace@hopper.dev", "alan@turing.dev"):
        expect(table).to_contain_text(email)
    expect(table).to_contain_text("Pioneers")

    # Live search narrows the table in place.
    page.get_by_placeholder("Search name, email, company").fill("hopper")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("grace@hopper.dev")

    table.get_by_role("link", name="grace@hopper.dev").click()
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()
    custom = page.locator("dl.fields.custom")
    expect(custom).to_contain_text("title")
    expect(custom).to_contain_text("Rear Admiral")
    expect(custom).to_contain_text("favourite_colour")
    expect(custom).to_contain_text("blue")
