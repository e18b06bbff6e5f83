"""CSV import against PostgreSQL: upload, mapping, the job's row rules, resume and limits."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError
from django.test import override_settings

from warmysender.accounts.models import Plan, Subscription, SubscriptionStatus
from warmysender.audit.models import AuditEntry
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant
from warmysender.prospects import imports, services
from warmysender.prospects.imports import (
    ImportRejected,
    confirm_import,
    preview_rows,
    report_csv,
    run_import,
    start_import,
)
from warmysender.prospects.models import (
    ImportJob,
    ImportStatus,
    ListMembership,
    Prospect,
    ProspectList,
)

pytestmark = pytest.mark.django_db

SAMPLE = (
    "Email,First Name,Last Name,Company Name,Job Title,LinkedIn,custom:Segment,Lead Source\n"
    "ann@example.com,Ann,Lee,Acme,CEO,,smb,webinar\n"
    ",Li,Wei,Globex,CTO,https://www.linkedin.com/in/li-wei/,,\n"
    "not-an-email,Bob,,Initech,,,,\n"
    "ANN@example.com,Ann,Again,,,,,\n"
    "blocked@example.com,Blocked,,,,,,\n"
    "someone@spammy.io,Spam,,,,,,\n"
    "kept@example.com,Kept,,,,,,\n"
    "dora@example.com,Dora,,,,,ent,\n"
)


def actor(tenant: Tenant) -> Actor:
    return Actor.person(tenant.owner)


def upload(tenant: Tenant, data: str | bytes, name: str = "prospects.csv") -> ImportJob:
    raw = data.encode() if isinstance(data, str) else data
    return start_import(
        workspace=tenant.workspace, actor=actor(tenant), file_name=name, data=raw, now=NOW
    )


def confirm(
    tenant: Tenant, job: ImportJob, mapping: dict[str, str] | None = None, **kwargs: Any
) -> ImportJob:
    return confirm_import(
        job=job,
        mapping=job.mapping if mapping is None else mapping,
        actor=actor(tenant),
        now=NOW,
        **kwargs,
    )


def import_file(tenant: Tenant, data: str | bytes, **kwargs: Any) -> ImportJob:
    job = confirm(tenant, upload(tenant, data), **kwargs)
    return run_import(job.pk, now=NOW)


def add_prospect(tenant: Tenant, email: str, **data: str) -> Prospect:
    return services.create_prospect(
        workspace=tenant.workspace, data={"email": email, **data}, actor=actor(tenant), now=NOW
    ).prospect


def suppress(tenant: Tenant, value: str) -> None:
    services.add_suppression(workspace=tenant.workspace, value=value, actor=actor(tenant), now=NOW)


def outcomes(job: ImportJob) -> list[tuple[int, str, str]]:
    return [(row, email, outcome) for row, email, outcome, _ in job.report]


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(imports, "BATCH_SIZE", 3)
    yield 3


# --- upload -----------------------------------------------------------------------------------


def test_an_upload_is_stored_with_headers_automatic_mapping_and_row_count(tenant: Tenant) -> None:
    job = upload(tenant, b"\xef\xbb\xbf" + SAMPLE.encode(), name="C:\\Users\\ann\\leads.csv")
    job.refresh_from_db()
    assert job.status == ImportStatus.MAPPING
    assert job.file_name == "leads.csv"
    assert job.workspace == tenant.workspace
    assert job.created_by == tenant.owner
    assert job.content == SAMPLE
    assert job.total_rows == 8
    assert job.headers == [
        "Email",
        "First Name",
        "Last Name",
        "Company Name",
        "Job Title",
        "LinkedIn",
        "custom:Segment",
        "Lead Source",
    ]
    assert job.mapping == {
        "Email": "email",
        "First Name": "firstName",
        "Last Name": "lastName",
        "Company Name": "company",
        "Job Title": "role",
        "LinkedIn": "linkedinUrl",
        "custom:Segment": "custom:segment",
        "Lead Source": "custom:lead_source",
    }
    assert AuditEntry.objects.filter(
        workspace=tenant.workspace, action="import.uploaded", object_id=str(job.pk)
    ).exists()


def test_columns_without_a_name_are_skipped_by_default(tenant: Tenant) -> None:
    job = upload(tenant, "email,,notes\nann@example.com,stray,hello\n")
    assert job.headers == ["email", "Column 2", "notes"]
    assert job.mapping == {"email": "email", "Column 2": "", "notes": "custom:notes"}


def test_an_email_column_with_an_unusual_header_is_found_by_its_values(tenant: Tenant) -> None:
    job = upload(
        tenant,
        "Contact,Who,Profile\nann@example.com,Ann,linkedin.com/in/ann\n"
        "bob@example.com,Bob,linkedin.com/in/bob\n",
    )
    assert job.mapping == {"Contact": "email", "Who": "custom:who", "Profile": "linkedinUrl"}


def test_preview_shows_the_first_rows_aligned_with_the_headers(tenant: Tenant) -> None:
    job = upload(tenant, "email;name;;\n\nann@example.com;Ann;;\nbob@example.com;Bob\nc@x.com;C\n")
    assert preview_rows(job, limit=2) == [["ann@example.com", "Ann"], ["bob@example.com", "Bob"]]
    assert len(preview_rows(job)) == 3


def _xlsx() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


BAD_UPLOADS = [
    pytest.param(_xlsx(), "This is an Excel workbook (.xlsx), not a CSV file.", id="xlsx"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "This is a PNG image", id="png"),
    pytest.param(
        "email,name\nrene@example.com,René\n".encode("latin-1"),
        "This is not UTF-8 text",
        id="latin-1",
    ),
    pytest.param(
        "email,name\nrene@example.com,René\n".encode("utf-16"),
        "This file is UTF-16 text",
        id="utf-16",
    ),
    pytest.param(
        ("email\n" + "a@example.com\n" * 10_001).encode(),
        "The file has 10,001 data rows; the limit is 10,000 per import.",
        id="10001-rows",
    ),
    pytest.param(
        b"email,name,company\nann@example.com,Ann,Acme\nbob@example.com,Bob\n",
        "Row 3 has 2 columns but the header has 3.",
        id="ragged",
    ),
    pytest.param(b"", "The file is empty.", id="empty"),
    pytest.param(
        b"email,first_name\r\n", "The file has a header row but no data rows", id="header-only"
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_UPLOADS)
def test_bad_uploads_are_rejected_and_leave_nothing_behind(
    tenant: Tenant, data: bytes, message: str
) -> None:
    with pytest.raises(ImportRejected) as info:
        upload(tenant, data)
    assert info.value.message.startswith(message)
    assert not ImportJob.objects.exists()
    assert not Prospect.objects.exists()


@override_settings(IMPORT_MAX_BYTES=2048)
def test_an_oversized_file_is_rejected_before_it_is_read(tenant: Tenant) -> None:
    data = ("email\n" + "someone@example.com\n" * 200).encode()
    with pytest.raises(ImportRejected) as info:
        upload(tenant, data)
    assert info.value.message == "The file is 3.9 KB; the limit is 2 KB per import."
    assert not ImportJob.objects.exists()


# --- confirm ----------------------------------------------------------------------------------


def test_confirm_needs_an_email_or_linkedin_column_and_leaves_the_job_waiting(
    tenant: Tenant,
) -> None:
    job = upload(tenant, "Name,Company\nAnn,Acme\n")
    assert imports.mapping_warning(job.mapping).startswith("No column looks like an email")
    with pytest.raises(ImportRejected) as info:
        confirm(tenant, job, new_list_name="Fresh")
    assert info.value.message.startswith("No column is mapped to Email or LinkedIn URL")
    job.refresh_from_db()
    assert job.status == ImportStatus.MAPPING
    assert not ProspectList.objects.exists()
    assert not Prospect.objects.exists()


def test_confirm_a_linkedin_only_mapping_is_enough(tenant: Tenant) -> None:
    job = upload(tenant, "Name,Profile\nAnn,https://linkedin.com/in/ann\n")
    job = confirm(tenant, job, mapping={"Name": "firstName", "Profile": "linkedinUrl"})
    assert job.status == ImportStatus.QUEUED


def test_confirm_into_a_new_list(tenant: Tenant) -> None:
    job = confirm(tenant, upload(tenant, SAMPLE), new_list_name="  Webinar leads ")
    assert job.status == ImportStatus.QUEUED
    assert job.target_list is not None
    assert job.target_list.name == "Webinar leads"
    assert job.target_list.workspace == tenant.workspace
    assert AuditEntry.objects.filter(action="import.confirmed", object_id=str(job.pk)).exists()


def test_confirm_into_a_new_list_whose_name_is_taken_is_refused(tenant: Tenant) -> None:
    services.create_list(workspace=tenant.workspace, name="Leads", actor=actor(tenant), now=NOW)
    job = upload(tenant, SAMPLE)
    with pytest.raises(ImportRejected, match="already exists"):
        confirm(tenant, job, new_list_name="leads")
    job.refresh_from_db()
    assert job.status == ImportStatus.MAPPING


def test_confirm_into_an_existing_list(tenant: Tenant) -> None:
    existing = services.create_list(
        workspace=tenant.workspace, name="Leads", actor=actor(tenant), now=NOW
    )
    job = confirm(tenant, upload(tenant, SAMPLE), target_list_id=str(existing.pk))
    assert job.target_list == existing


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_confirm_refuses_an_unknown_list(tenant: Tenant, bad_id: str) -> None:
    job = upload(tenant, SAMPLE)
    with pytest.raises(ImportRejected, match="That list does not exist in this workspace"):
        confirm(tenant, job, target_list_id=bad_id)


def test_confirm_refuses_another_workspaces_list(tenant: Tenant, outsider: Tenant) -> None:
    theirs = services.create_list(
        workspace=outsider.workspace, name="Theirs", actor=actor(outsider), now=NOW
    )
    job = upload(tenant, SAMPLE)
    with pytest.raises(ImportRejected, match="That list does not exist in this workspace"):
        confirm(tenant, job, target_list_id=theirs.pk)
    job.refresh_from_db()
    assert (job.status, job.target_list_id) == (ImportStatus.MAPPING, None)


def test_confirm_refuses_both_an_existing_and_a_new_list(tenant: Tenant) -> None:
    existing = services.create_list(
        workspace=tenant.workspace, name="Leads", actor=actor(tenant), now=NOW
    )
    with pytest.raises(ImportRejected, match="not both"):
        confirm(tenant, upload(tenant, SAMPLE), target_list_id=existing.pk, new_list_name="New")


def test_a_job_is_confirmed_only_once(tenant: Tenant) -> None:
    job = confirm(tenant, upload(tenant, SAMPLE))
    with pytest.raises(ImportRejected, match="already been confirmed"):
        confirm(tenant, job)


def test_confirm_rejects_a_target_used_twice(tenant: Tenant) -> None:
    job = upload(tenant, SAMPLE)
    mapping = {**job.mapping, "Lead Source": "firstName"}
    with pytest.raises(ImportRejected) as info:
        confirm(tenant, job, mapping=mapping)
    assert info.value.message == (
        "Columns 'First Name' and 'Lead Source' are both mapped to First name; "
        "map each field from one column only."
    )


# --- the job ----------------------------------------------------------------------------------


def test_an_import_applies_every_row_rule_and_counts_and_reports_them(tenant: Tenant) -> None:
    add_prospect(tenant, "kept@example.com", firstName="Original")
    suppress(tenant, "blocked@example.com")
    suppress(tenant, "spammy.io")

    job = import_file(tenant, SAMPLE, new_list_name="Webinar")

    assert job.status == ImportStatus.COMPLETED
    assert (job.total_rows, job.processed_rows) == (8, 8)
    assert (job.created_count, job.duplicate_count, job.suppressed_count, job.invalid_count) == (
        3,
        2,
        2,
        1,
    )
    assert (job.started_at, job.finished_at, job.error) == (NOW, NOW, "")
    assert outcomes(job) == [
        (2, "ann@example.com", "created"),
        (3, "li.li-wei@noemail.warmysender.com", "created"),
        (4, "not-an-email", "invalid"),
        (5, "ann@example.com", "duplicate"),
        (6, "blocked@example.com", "suppressed"),
        (7, "someone@spammy.io", "suppressed"),
        (8, "kept@example.com", "duplicate"),
        (9, "dora@example.com", "created"),
    ]
    reasons = {row: reason for row, _, _, reason in job.report}
    assert reasons[2] == ""
    assert reasons[3] == "No email address. Placeholder email made from the LinkedIn URL."
    assert "is not a valid email address" in reasons[4]
    assert reasons[5] == "Same email as row 2."
    assert reasons[6] == "The address or its domain is on the suppression list."
    assert reasons[8] == "Already in this workspace; added to the list 'Webinar'."

    ann = Prospect.objects.get(workspace=tenant.workspace, email="ann@example.com")
    assert (ann.first_name, ann.last_name, ann.company, ann.role) == ("Ann", "Lee", "Acme", "CEO")
    assert ann.custom_fields == {"segment": "smb", "lead_source": "webinar"}
    assert ann.created_at == NOW
    li = Prospect.objects.get(workspace=tenant.workspace, email__startswith="li.")
    assert li.linkedin_url == "https://www.linkedin.com/in/li-wei/"
    assert li.custom_fields == {}
    assert li.is_placeholder_email
    kept = Prospect.objects.get(workspace=tenant.workspace, email="kept@example.com")
    assert kept.first_name == "Original"  # a duplicate is never overwritten
    assert not Prospect.objects.filter(email__in=["blocked@example.com", "someone@spammy.io"])

    # Created prospects and the duplicate that already existed are in the target list.
    members = set(
        ListMembership.objects.filter(prospect_list=job.target_list).values_list(
            "prospect__email", flat=True
        )
    )
    assert members == {
        "ann@example.com",
        "li.li-wei@noemail.warmysender.com",
        "kept@example.com",
        "dora@example.com",
    }

    audit = AuditEntry.objects.get(action="import.completed", object_id=str(job.pk))
    assert audit.data == {
        "total": 8,
        "processed": 8,
        "created": 3,
        "duplicate": 2,
        "suppressed": 2,
        "invalid": 1,
        "listId": str(job.target_list_id),
    }
    assert (audit.from_state, audit.to_state) == ("running", "completed")


def test_the_report_csv_lists_every_data_row(tenant: Tenant) -> None:
    job = import_file(tenant, "email,name\nann@example.com,Ann\n=cmd|' /C calc'!A0,Evil\n")
    rows = list(csv.reader(io.StringIO(report_csv(job))))
    assert rows[0] == ["row", "email", "outcome", "reason"]
    assert rows[1] == ["2", "ann@example.com", "created", ""]
    assert rows[2][:3] == ["3", "'=cmd|' /C calc'!A0", "invalid"]
    assert "is not a valid email address" in rows[2][3]
    assert not rows[2][3].startswith(("=", "+", "-", "@"))
    assert len(rows) == 3


def test_importing_the_same_file_again_creates_nothing_new(tenant: Tenant) -> None:
    first = import_file(tenant, SAMPLE)
    before = set(Prospect.objects.values_list("pk", flat=True))
    second = import_file(tenant, SAMPLE)
    assert set(Prospect.objects.values_list("pk", flat=True)) == before
    assert second.created_count == 0
    assert second.duplicate_count == first.created_count + first.duplicate_count
    assert second.invalid_count == first.invalid_count


def test_reimporting_into_a_list_adds_the_existing_prospects_to_it(tenant: Tenant) -> None:
    import_file(tenant, "email\nann@example.com\nbob@example.com\n")
    job = import_file(tenant, "email\nann@example.com\nbob@example.com\n", new_list_name="Again")
    assert (job.created_count, job.duplicate_count) == (0, 2)
    assert ListMembership.objects.filter(prospect_list=job.target_list).count() == 2


def test_another_workspaces_prospects_and_suppressions_do_not_count(
    tenant: Tenant, outsider: Tenant
) -> None:
    add_prospect(outsider, "ann@example.com")
    suppress(outsider, "bob@example.com")
    job = import_file(tenant, "email\nann@example.com\nbob@example.com\n")
    assert (job.created_count, job.duplicate_count, job.suppressed_count) == (2, 0, 0)
    assert Prospect.objects.filter(email="ann@example.com").count() == 2
    assert Prospect.objects.filter(workspace=outsider.workspace).count() == 1


def test_only_mapped_columns_are_imported(tenant: Tenant) -> None:
    job = upload(tenant, "email,first_name,notes\nann@example.com,Ann,secret\n")
    job = confirm(tenant, job, mapping={"email": "email", "notes": "custom:Private Note"})
    run_import(job.pk, now=NOW)
    ann = Prospect.objects.get(email="ann@example.com")
    assert (ann.first_name, ann.custom_fields) == ("", {"private_note": "secret"})


def test_a_prospect_created_meanwhile_is_reported_as_a_duplicate(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = confirm(
        tenant, upload(tenant, "email\nann@example.com\nbob@example.com\n"), new_list_name="L"
    )
    add_prospect(tenant, "ann@example.com")
    real = imports._existing_ids
    calls: list[int] = []

    def stale_first_lookup(workspace: Any, emails: Any) -> dict[str, Any]:
        # The first lookup misses ann, as if the API created her right after it ran.
        calls.append(1)
        return {} if len(calls) == 1 else real(workspace, emails)

    monkeypatch.setattr(imports, "_existing_ids", stale_first_lookup)
    job = run_import(job.pk, now=NOW)
    assert (job.created_count, job.duplicate_count) == (1, 1)
    assert outcomes(job) == [(2, "ann@example.com", "duplicate"), (3, "bob@example.com", "created")]
    assert ListMembership.objects.filter(prospect_list=job.target_list).count() == 2


def test_progress_is_committed_batch_by_batch(
    tenant: Tenant, small_batches: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = "".join(f"p{i}@example.com\n" for i in range(7))
    job = confirm(tenant, upload(tenant, "email\n" + rows))
    seen: list[tuple[int, int, int]] = []
    real = imports._write_batch

    def spy(job: ImportJob, batch: Any, first: Any, now: Any) -> Any:
        current = ImportJob.objects.get(pk=job.pk)
        seen.append((current.processed_rows, current.created_count, len(current.report)))
        return real(job, batch, first, now)

    monkeypatch.setattr(imports, "_write_batch", spy)
    job = run_import(job.pk, now=NOW)
    assert seen == [(0, 0, 0), (3, 3, 3), (6, 6, 6)]
    assert (job.processed_rows, job.created_count, job.percent) == (7, 7, 100)


def test_a_crashed_import_resumes_exactly_where_it_stopped(
    tenant: Tenant, small_batches: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_prospect(tenant, "p4@example.com")
    suppress(tenant, "p7@example.com")
    lines = [f"p{i}@example.com" for i in range(10)] + ["p1@example.com", "bad"]
    job = confirm(tenant, upload(tenant, "email\n" + "\n".join(lines) + "\n"), new_list_name="R")

    real = imports._write_batch
    calls: list[int] = []

    def crash_on_second_batch(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args)

    monkeypatch.setattr(imports, "_write_batch", crash_on_second_batch)
    with pytest.raises(OperationalError):
        run_import(job.pk, now=NOW)
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count) == (ImportStatus.RUNNING, 3, 3)
    assert len(job.report) == 3

    monkeypatch.setattr(imports, "_write_batch", real)
    job = run_import(job.pk, now=NOW)
    assert job.status == ImportStatus.COMPLETED
    assert (
        job.processed_rows,
        job.created_count,
        job.duplicate_count,
        job.suppressed_count,
        job.invalid_count,
    ) == (12, 8, 2, 1, 1)
    assert [entry[0] for entry in job.report] == list(range(2, 14))
    assert Prospect.objects.filter(workspace=tenant.workspace).count() == 9
    assert ListMembership.objects.filter(prospect_list=job.target_list).count() == 9
    assert AuditEntry.objects.filter(action="import.completed", object_id=str(job.pk)).count() == 1


def test_running_a_finished_or_unconfirmed_import_changes_nothing(tenant: Tenant) -> None:
    waiting = upload(tenant, "email\nann@example.com\n")
    assert run_import(waiting.pk, now=NOW).status == ImportStatus.MAPPING
    done = import_file(tenant, "email\nbob@example.com\n")
    again = run_import(done.pk, now=NOW)
    assert (again.status, again.created_count, len(again.report)) == (ImportStatus.COMPLETED, 1, 1)
    assert not Prospect.objects.filter(email="ann@example.com").exists()


@pytest.fixture
def tiny_plan(tenant: Tenant) -> Iterator[Plan]:
    plan = Plan.objects.create(code="tiny", name="Tiny", max_prospects=4)
    Subscription.objects.create(user=tenant.owner, plan=plan, status=SubscriptionStatus.ACTIVE)
    with override_settings(BILLING_ENABLED=True):
        yield plan


def test_the_plan_limit_fails_the_import_without_writing_half_a_batch(
    tenant: Tenant, tiny_plan: Plan, small_batches: int
) -> None:
    rows = "".join(f"p{i}@example.com\n" for i in range(6))
    job = import_file(tenant, "email\n" + rows, new_list_name="Big")
    assert job.status == ImportStatus.FAILED
    assert job.error.startswith("Your plan stores at most 4 prospects; this workspace has 3")
    assert job.error.endswith(
        "The import stopped after 3 of 6 rows; the prospects created before that are kept."
    )
    assert (job.processed_rows, job.created_count, len(job.report)) == (3, 3, 3)
    assert Prospect.objects.filter(workspace=tenant.workspace).count() == 3
    assert ListMembership.objects.filter(prospect_list=job.target_list).count() == 3
    audit = AuditEntry.objects.get(action="import.failed", object_id=str(job.pk))
    assert (audit.from_state, audit.to_state) == ("running", "failed")


def test_a_full_plan_fails_the_first_batch_and_creates_nothing(
    tenant: Tenant, tiny_plan: Plan
) -> None:
    for i in range(4):
        add_prospect(tenant, f"old{i}@example.com")
    job = import_file(tenant, "email\nold0@example.com\nnew@example.com\n")
    assert job.status == ImportStatus.FAILED
    assert job.error.endswith("No prospects were created.")
    assert (job.processed_rows, job.created_count, job.report) == (0, 0, [])
    assert Prospect.objects.filter(workspace=tenant.workspace).count() == 4


def test_duplicates_alone_do_not_need_plan_room(tenant: Tenant, tiny_plan: Plan) -> None:
    for i in range(4):
        add_prospect(tenant, f"old{i}@example.com")
    job = import_file(tenant, "email\nold0@example.com\nold1@example.com\n")
    assert (job.status, job.duplicate_count) == (ImportStatus.COMPLETED, 2)


def test_fail_import_keeps_finished_jobs_as_they_are(tenant: Tenant) -> None:
    job = import_file(tenant, "email\nann@example.com\n")
    assert imports.fail_import(job.pk, error="late", now=NOW).status == ImportStatus.COMPLETED
    queued = confirm(tenant, upload(tenant, "email\nbob@example.com\n"))
    failed = imports.fail_import(queued.pk, error="The worker gave up.", now=NOW)
    assert (failed.status, failed.error, failed.finished_at) == (
        ImportStatus.FAILED,
        "The worker gave up.",
        NOW,
    )


def test_preview_of_a_job_without_a_file_is_empty(tenant: Tenant) -> None:
    job = ImportJob(workspace=tenant.workspace, content="", headers=["email"], created_at=NOW)
    assert preview_rows(job) == []
