"""The CSV import wizard through the Django test client: upload → map → confirm → progress →
report, with the background job run through the real procrastinate queue."""

from __future__ import annotations

import csv
import importlib
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, client_for
from warmysender.prospects import services
from warmysender.prospects.models import ImportJob, ImportStatus, Prospect, ProspectList
from warmysender.testing.jobs import clear_queue, run_queued_jobs

SYSTEM = Actor.system("test")


@pytest.fixture
def clean_slate(transactional_db: None) -> Iterator[None]:
    """What the flush between transactional tests leaves wrong: the plans (rows of a data
    migration) are gone and procrastinate's unmanaged tables still hold other tests' jobs."""
    migration = importlib.import_module("warmysender.accounts.migrations.0002_plans")
    migration.add_plans(django_apps, None)
    clear_queue()
    yield
    clear_queue()


LEADS = (
    "Email,First Name,Company,Title,Favourite Colour\n"
    "ada@lovelace.dev,Ada,Engines Ltd,Countess,green\n"
    "grace@hopper.dev,Grace,US Navy,Rear Admiral,blue\n"
    "ADA@lovelace.dev,Ada again,Engines Ltd,Countess,red\n"
    "jo@blocked.example,Jo,Blocked Inc,CEO,grey\n"
    "not-an-email,Nobody,Nowhere,,\n"
    "existing@example.com,Eve,Old Co,CTO,black\n"
)


def upload(client: Client, data: bytes, name: str = "leads.csv") -> Any:
    return client.post(
        reverse("import-new"), {"file": SimpleUploadedFile(name, data, content_type="text/csv")}
    )


def text(response: Any) -> str:
    return response.content.decode()


def uploaded_job(tenant: Tenant, client: Client, data: str = LEADS) -> ImportJob:
    response = upload(client, data.encode())
    job = ImportJob.objects.get(workspace=tenant.workspace)
    assert response.status_code == 302
    assert response["Location"] == reverse("import-map", args=[job.pk])
    return job


def mapping_post(job: ImportJob, **overrides: str) -> dict[str, str]:
    """The mapping form as the page would submit it, with `header=target` overrides."""
    data = {f"map_{index}": job.mapping[header] for index, header in enumerate(job.headers)}
    for header, target in overrides.items():
        data[f"map_{job.headers.index(header.replace('_', ' '))}"] = target
    return data


# --- upload ---------------------------------------------------------------------------------


def test_import_page_shows_the_rules_and_an_upload_form(tenant: Tenant) -> None:
    body = text(client_for(tenant.member).get(reverse("import-new")))
    assert 'enctype="multipart/form-data"' in body
    assert 'accept=".csv,text/csv"' in body
    assert "UTF-8" in body and "first row holds the column headers" in body
    assert "10,000 rows" in body
    assert "No imports yet." in body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "This is a PNG image, not a CSV file."),
        ("email,name\njosé@example.com,José Müller\n".encode("latin-1"), "This is not UTF-8 text"),
        (b"", "The submitted file is empty."),
        (b"email,name\n", "The file has a header row but no data rows"),
        (
            ("email\n" + "".join(f"p{i}@example.com\n" for i in range(10_001))).encode(),
            "The file has 10,001 data rows; the limit is 10,000 per import.",
        ),
    ],
    ids=["png", "latin-1", "empty", "header-only", "10001-rows"],
)
def test_bad_uploads_show_the_reason_and_create_nothing(
    tenant: Tenant, data: bytes, message: str
) -> None:
    response = upload(client_for(tenant.owner), data)
    assert response.status_code == 400
    assert message in text(response)
    assert not ImportJob.objects.exists()
    assert not Prospect.objects.exists()


def test_upload_without_a_file_asks_for_one(tenant: Tenant) -> None:
    response = client_for(tenant.owner).post(reverse("import-new"), {})
    assert response.status_code == 400
    assert "Choose a CSV file to upload." in text(response)
    assert not ImportJob.objects.exists()


def test_an_oversized_upload_is_refused_without_reading_it_all(
    tenant: Tenant, settings: Any
) -> None:
    settings.IMPORT_MAX_BYTES = 2048
    data = ("email\n" + "".join(f"p{i}@example.com\n" for i in range(400))).encode()
    response = upload(client_for(tenant.owner), data)
    assert response.status_code == 400
    assert "the limit is 2 KB per import." in text(response)
    assert not ImportJob.objects.exists()


# --- mapping --------------------------------------------------------------------------------


def test_mapping_page_shows_headers_preselected_targets_and_preview(tenant: Tenant) -> None:
    client = client_for(tenant.owner)
    job = uploaded_job(tenant, client)
    body = text(client.get(reverse("import-map", args=[job.pk])))
    for header in job.headers:
        assert f"<strong>{header}</strong>" in body
    selects = {}
    for name, options in re.findall(r'<select name="(map_\d+)"[^>]*>(.*?)</select>', body, re.S):
        selected = re.search(r'<option value="([^"]*)" selected', options)
        selects[name] = selected.group(1) if selected else None
    assert selects == {
        "map_0": "email",
        "map_1": "firstName",
        "map_2": "company",
        "map_3": "role",
        "map_4": "custom:favourite_colour",
    }
    assert "Custom: favourite_colour" in body
    assert "Custom: title" in body  # any column can become a custom field
    assert "Skip this column" in body
    # The first five data rows, not the sixth.
    assert "grace@hopper.dev" in body and "not-an-email" in body
    assert "existing@example.com" not in body
    assert "6 rows" in body


def test_confirm_errors_are_shown_inline_and_keep_the_job_waiting(tenant: Tenant) -> None:
    services.create_list(workspace=tenant.workspace, name="Taken", actor=SYSTEM, now=NOW)
    client = client_for(tenant.owner)
    job = uploaded_job(tenant, client)
    target = reverse("import-map", args=[job.pk])
    cases = [
        (mapping_post(job, Email=""), "No column is mapped to Email or LinkedIn URL"),
        (
            mapping_post(job, First_Name="company"),
            "are both mapped to Company; map each field from one column only.",
        ),
        (
            {**mapping_post(job), "new_list_name": "taken"},
            "A list named &#x27;taken&#x27; already exists.",
        ),
        (
            {
                **mapping_post(job),
                "new_list_name": "Fresh",
                "target_list": str(ProspectList.objects.get().pk),
            },
            "Choose an existing list or name a new one, not both.",
        ),
        (
            {**mapping_post(job), "target_list": "00000000-0000-0000-0000-000000000000"},
            "There is no such list.",
        ),
    ]
    for data, message in cases:
        response = client.post(target, data)
        assert response.status_code == 400
        assert message in text(response), message
    job.refresh_from_db()
    assert job.status == ImportStatus.MAPPING
    assert list(ProspectList.objects.values_list("name", flat=True)) == ["Taken"]


def test_import_pages_redirect_to_the_step_the_job_is_at(tenant: Tenant) -> None:
    client = client_for(tenant.owner)
    job = uploaded_job(tenant, client)
    response = client.get(reverse("import-detail", args=[job.pk]))
    assert response["Location"] == reverse("import-map", args=[job.pk])
    assert client.post(reverse("import-map", args=[job.pk]), mapping_post(job)).status_code == 302
    response = client.get(reverse("import-map", args=[job.pk]))
    assert response["Location"] == reverse("import-detail", args=[job.pk])


def test_the_history_lists_recent_imports_with_status_and_counts(tenant: Tenant) -> None:
    client = client_for(tenant.member)
    uploaded_job(tenant, client)
    ImportJob.objects.create(
        workspace=tenant.workspace,
        file_name="done.csv",
        content="",
        headers=["email"],
        status=ImportStatus.COMPLETED,
        total_rows=9,
        processed_rows=9,
        created_count=7,
        duplicate_count=1,
        invalid_count=1,
        created_at=NOW,
    )
    body = text(client.get(reverse("import-new")))
    assert "done.csv" in body and ">completed<" in body and ">7<" in body
    assert "leads.csv" in body and "needs mapping" in body


# --- the whole wizard, with the background job ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_import_wizard_end_to_end(clean_slate: None, tenant: Tenant) -> None:
    services.add_suppression(
        workspace=tenant.workspace, value="blocked.example", actor=SYSTEM, now=NOW
    )
    services.create_prospect(
        workspace=tenant.workspace, data={"email": "existing@example.com"}, actor=SYSTEM, now=NOW
    )
    client = client_for(tenant.member)
    job = uploaded_job(tenant, client)

    # Change one mapping (Company is skipped), make Title a custom column, import into a new list.
    data = {**mapping_post(job, Company="", Title="custom:title"), "new_list_name": "Pioneers"}
    response = client.post(reverse("import-map", args=[job.pk]), data)
    assert response.status_code == 302
    assert response["Location"] == reverse("import-detail", args=[job.pk])
    job.refresh_from_db()
    assert job.status == ImportStatus.QUEUED

    progress = text(client.get(reverse("import-progress", args=[job.pk])))
    assert 'hx-trigger="every 1s"' in progress
    assert reverse("import-progress", args=[job.pk]) in progress
    assert "<html" not in progress
    detail = text(client.get(reverse("import-detail", args=[job.pk])))
    assert 'hx-trigger="every 1s"' in detail and "Waiting for a worker" in detail

    assert run_queued_jobs() == [("prospects.run_import", "succeeded")]

    progress = text(client.get(reverse("import-progress", args=[job.pk])))
    assert "hx-trigger" not in progress and "hx-get" not in progress
    assert 'data-status="completed"' in progress
    detail = text(client.get(reverse("import-detail", args=[job.pk])))
    assert "hx-trigger" not in detail
    counts = dict(
        (label, int(value))
        for value, label in re.findall(
            r"<b>(\d+)</b>(created|duplicates?|suppressed|invalid)", detail
        )
    )
    assert counts == {"created": 2, "duplicates": 2, "suppressed": 1, "invalid": 1}
    assert reverse("import-report", args=[job.pk]) in detail
    pioneers = ProspectList.objects.get(workspace=tenant.workspace, name="Pioneers")
    assert reverse("list-detail", args=[pioneers.pk]) in detail
    assert width_of(detail) == "100%"

    ada = Prospect.objects.get(workspace=tenant.workspace, email="ada@lovelace.dev")
    assert ada.company == ""
    assert ada.role == ""
    assert ada.custom_fields == {"title": "Countess", "favourite_colour": "green"}
    assert set(pioneers.prospects.values_list("email", flat=True)) == {
        "ada@lovelace.dev",
        "grace@hopper.dev",
        "existing@example.com",
    }
    page = text(client.get(reverse("prospect-detail", args=[ada.pk])))
    assert "Countess" in page and "favourite_colour" in page

    report = client.get(reverse("import-report", args=[job.pk]))
    assert report.status_code == 200
    assert report["Content-Type"].startswith("text/csv")
    assert report["Content-Disposition"] == 'attachment; filename="leads-report.csv"'
    rows = list(csv.reader(io.StringIO(report.content.decode())))
    assert rows[0] == ["row", "email", "outcome", "reason"]
    assert len(rows) - 1 == 6
    assert [r[2] for r in rows[1:]] == [
        "created",
        "created",
        "duplicate",
        "suppressed",
        "invalid",
        "duplicate",
    ]

    history = text(client.get(reverse("import-new")))
    assert "leads.csv" in history and ">completed<" in history and "Pioneers" in history


def width_of(body: str) -> str:
    match = re.search(r'class="progress"[^>]*><div style="width: ([^"]+)"', body)
    assert match is not None
    return match.group(1)


@pytest.mark.django_db(transaction=True)
def test_a_failed_import_shows_its_error_and_stops_polling(
    clean_slate: None, tenant: Tenant
) -> None:
    client = client_for(tenant.owner)
    job = uploaded_job(tenant, client)
    client.post(reverse("import-map", args=[job.pk]), mapping_post(job))
    ImportJob.objects.filter(pk=job.pk).update(content="not,the,same\nfile,at,all\n")
    run_queued_jobs()
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    progress = text(client.get(reverse("import-progress", args=[job.pk])))
    assert "hx-trigger" not in progress
    assert "The import failed: The stored file no longer matches its columns." in progress
