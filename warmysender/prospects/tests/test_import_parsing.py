"""The pure parts of CSV import: reading the file, mapping columns, the row rules, the report."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmysender.prospects import services
from warmysender.prospects.imports import (
    MAPPING_CHOICES,
    ImportRejected,
    ParsedCsv,
    auto_mapping,
    clean_mapping,
    custom_field_name,
    decode_upload,
    first_rows,
    mapping_warning,
    parse_csv,
    placeholder_email,
    plan_row,
    plan_rows,
    report_csv,
    sniff_delimiter,
)
from warmysender.prospects.models import ImportJob

DOMAIN = "warmysender.com"
NAME_RE = re.compile(r"^[a-z0-9_]{1,30}$")


def parse(data: bytes) -> ParsedCsv:
    return parse_csv(decode_upload(data))


def rejected(data: bytes) -> str:
    with pytest.raises(ImportRejected) as info:
        parse(data)
    return info.value.message


# --- reading the file -----------------------------------------------------------------------


def test_a_utf8_bom_is_dropped_from_the_first_header() -> None:
    parsed = parse(b"\xef\xbb\xbfEmail,First Name\r\nann@example.com,Ann\r\n")
    assert parsed.headers == ["Email", "First Name"]
    assert parsed.rows == [(2, ["ann@example.com", "Ann"])]


def test_semicolons_are_detected_even_with_commas_inside_values() -> None:
    parsed = parse(b'email;company;notes\nann@example.com;"Acme, Inc";1,5\nbob@example.com;B;2\n')
    assert parsed.delimiter == ";"
    assert parsed.rows[0] == (2, ["ann@example.com", "Acme, Inc", "1,5"])


def test_tabs_are_detected() -> None:
    assert parse(b"email\tname\nann@example.com\tAnn Lee\n").delimiter == "\t"


def test_a_single_column_file_is_read_with_commas() -> None:
    assert sniff_delimiter("email\nann@example.com\nbob@example.com\n") == ","


def test_quoted_values_may_span_lines_and_keep_spreadsheet_row_numbers() -> None:
    parsed = parse(b'email,notes\nann@example.com,"line one\nline two"\nbob@example.com,x\n')
    assert parsed.rows == [
        (2, ["ann@example.com", "line one\nline two"]),
        (3, ["bob@example.com", "x"]),
    ]


def test_blank_rows_are_skipped_but_keep_their_numbers() -> None:
    parsed = parse(b"email,name\n\nann@example.com,Ann\n,\nbob@example.com,Bob\n\n")
    assert [row for row, _ in parsed.rows] == [3, 5]


def test_trailing_empty_cells_beyond_the_header_are_tolerated() -> None:
    parsed = parse(b"email,name,,\nann@example.com,Ann,,\nbob@example.com,Bob\n")
    assert parsed.headers == ["email", "name"]
    assert parsed.rows[1] == (3, ["bob@example.com", "Bob"])


def test_repeated_and_blank_header_names_are_made_unique() -> None:
    parsed = parse(b"Email,,Email,Notes\nann@example.com,x,ann@work.com,n\n")
    assert parsed.headers == ["Email", "Column 2", "Email (2)", "Notes"]
    assert parsed.unnamed_columns == frozenset({1})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"  \r\n\n", "The file is empty."),
        (b"\xef\xbb\xbf", "The file is empty."),
        (b"email,name\n", "The file has a header row but no data rows"),
        (b"email,name\n\n,\n", "The file has a header row but no data rows"),
        (
            b"email,a,b,c\nann@example.com,1,2,3\nbob@example.com,1,2,3,4\n",
            "Row 3 has 5 columns but the header has 4.",
        ),
        (b"email,a,b,c\nann@example.com,1,2\n", "Row 2 has 3 columns but the header has 4."),
        (b"email,a\nann@example.com\n", "Row 2 has 1 column but the header has 2."),
        (
            b'email,a\nann@example.com,1\n"bob@example.com,2\n',
            "Row 3 opens a quote that is never closed.",
        ),
        (b'email,a\nann@example.com,"x"y\n', "Row 2 has a quote in the middle of a value"),
        (b"ann@example.com,Ann\nbob@example.com,Bob\n", "The first row looks like data"),
        (b"https://www.linkedin.com/in/ann,Ann\n", "The first row looks like data"),
    ],
)
def test_bad_files_are_rejected_with_a_sentence_naming_the_problem(
    data: bytes, message: str
) -> None:
    assert rejected(data).startswith(message)


def test_ten_thousand_rows_pass_and_one_more_does_not() -> None:
    body = "".join(f"p{i}@example.com\n" for i in range(10_000))
    assert len(parse(("email\n" + body).encode()).rows) == 10_000
    message = rejected(("email\n" + body + "last@example.com\n").encode())
    assert message.startswith("The file has 10,001 data rows; the limit is 10,000 per import.")


def test_too_many_columns_are_rejected() -> None:
    header = ",".join(f"c{i}" for i in range(201))
    assert rejected(f"{header}\n".encode() + b"x\n").startswith("The file has 201 columns")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This is a PNG image, not a CSV file."),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "This is a PDF document, not a CSV file."),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "This is an Excel 97–2003 workbook (.xls)"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "This is a web page (HTML)"),
        (b"\x00\x01\x02\x03binary\x00", "This is a binary file, not CSV text."),
        ("email\nrené@example.com\n".encode("utf-16"), "This file is UTF-16 text"),
        ("email,name\nann@example.com,Ann\n".encode("utf-16-le"), "This file is UTF-16 text"),
        ("email,name\nrene@example.com,René Müller\n".encode("latin-1"), "This is not UTF-8 text"),
    ],
)
def test_files_that_are_not_utf8_csv_are_named(data: bytes, message: str) -> None:
    assert rejected(data).startswith(message)


def test_an_xlsx_workbook_is_recognised() -> None:
    buffer = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    message = rejected(buffer.getvalue())
    assert message.startswith("This is an Excel workbook (.xlsx), not a CSV file.")
    assert "CSV UTF-8" in message


def test_a_latin1_file_names_the_line_and_how_to_fix_it() -> None:
    message = rejected("email,name\nann@example.com,Ann\nrene@example.com,René\n".encode("cp1252"))
    assert "save it as CSV UTF-8" in message
    assert "line 3" in message


# --- mapping --------------------------------------------------------------------------------

ALIASES = [
    ("email", "email"),
    ("Email", "email"),
    ("e-mail", "email"),
    ("E_mail", "email"),
    ("email address", "email"),
    ("Email_Address", "email"),
    ("first name", "firstName"),
    ("first_name", "firstName"),
    ("FirstName", "firstName"),
    ("last name", "lastName"),
    ("last_name", "lastName"),
    ("lastname", "lastName"),
    ("company name", "company"),
    ("company_name", "company"),
    ("Company", "company"),
    ("title", "role"),
    ("job_title", "role"),
    ("Position", "role"),
    ("role", "role"),
    ("telephone", "phone"),
    ("mobile", "phone"),
    ("Phone", "phone"),
    ("linkedin", "linkedinUrl"),
    ("linkedin_url", "linkedinUrl"),
    ("LinkedIn Profile", "linkedinUrl"),
    ("linkedinUrl", "linkedinUrl"),
    ("website", "website"),
    ("Country", "country"),
    ("city", "city"),
    ("Industry", "industry"),
]


@pytest.mark.parametrize(("header", "target"), ALIASES)
def test_every_alias_maps_to_its_builtin_field(header: str, target: str) -> None:
    assert auto_mapping([header]) == {header: target}


def test_only_the_first_column_for_a_field_gets_it_and_the_next_one_becomes_custom() -> None:
    assert auto_mapping(["Phone", "Mobile", "E-mail", "Email (2)"]) == {
        "Phone": "phone",
        "Mobile": "custom:mobile",
        "E-mail": "email",
        "Email (2)": "custom:email__2_",
    }


def test_custom_prefixed_and_unknown_columns_become_sanitised_custom_fields() -> None:
    long_header = "Favourite Conference Talk Of The Year 2025"  # 42 characters
    mapping = auto_mapping(
        [
            "Email",
            "custom:Segment",
            "Custom: first_line",
            "custom:email",
            "Lead Score (%)",
            long_header,
            "Notes",
            "notes!",
            "名前",
            "custom:",
        ]
    )
    assert mapping == {
        "Email": "email",
        "custom:Segment": "custom:segment",
        "Custom: first_line": "custom:first_line",
        # An explicit custom: prefix wins over a builtin name.
        "custom:email": "custom:email",
        "Lead Score (%)": "custom:lead_score____",
        long_header: "custom:favourite_conference_talk_of_t",
        "Notes": "custom:notes",
        "notes!": "custom:notes_",
        "名前": "custom:column_9",
        "custom:": "custom:column_10",
    }
    assert len(mapping[long_header].removeprefix("custom:")) == 30


def test_custom_names_that_collide_after_sanitising_get_a_counter() -> None:
    a, b = "x" * 40, "x" * 40 + "!"
    mapping = auto_mapping([a, b, "X" * 30])
    assert mapping == {
        a: "custom:" + "x" * 30,
        b: "custom:" + "x" * 28 + "_2",
        "X" * 30: "custom:" + "x" * 28 + "_3",
    }


@given(st.text(max_size=200))
def test_sanitised_custom_names_are_short_and_plain(header: str) -> None:
    name = services.sanitize_custom_field_name(header)
    assert len(name) <= 30
    assert re.fullmatch(r"[a-z0-9_]*", name)
    assert NAME_RE.match(custom_field_name(header, 7))


@given(st.lists(st.text(max_size=80), max_size=40, unique=True))
def test_auto_mapping_targets_are_known_fields_or_plain_unique_custom_names(
    headers: list[str],
) -> None:
    mapping = auto_mapping(headers)
    assert list(mapping) == headers
    builtins = {value for value, _ in MAPPING_CHOICES if value}
    targets = [t for t in mapping.values() if t]
    assert len(targets) == len(set(targets))
    for target in targets:
        if target.startswith("custom:"):
            assert NAME_RE.match(target.removeprefix("custom:")), target
        else:
            assert target in builtins
    # What auto_mapping proposes passes the confirm step's checks unchanged when it has an email.
    if "email" in targets and len(targets) <= 100:
        assert clean_mapping(headers, mapping) == mapping


def test_mapping_choices_list_skip_and_every_builtin_field() -> None:
    assert MAPPING_CHOICES[0] == ("", "Skip this column")
    assert [value for value, _ in MAPPING_CHOICES[1:]] == list(services.BUILTIN_FIELDS)
    assert ("email", "Email") in MAPPING_CHOICES
    assert ("firstName", "First name") in MAPPING_CHOICES


def test_mapping_warning_only_without_email_or_linkedin() -> None:
    assert mapping_warning({"a": "custom:a"}).startswith("No column looks like an email")
    assert mapping_warning({"a": "linkedinUrl"}) == ""


def test_clean_mapping_normalises_custom_names_and_fills_missing_headers_with_skip() -> None:
    assert clean_mapping(["E", "Score", "Other"], {"E": "email", "Score": "custom:Lead Score"}) == {
        "E": "email",
        "Score": "custom:lead_score",
        "Other": "",
    }


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"A": "firstName"}, "No column is mapped to Email or LinkedIn URL"),
        ({"A": "email", "B": "email"}, "Columns 'A' and 'B' are both mapped to Email"),
        (
            {"A": "email", "B": "custom:x", "C": "custom:X"},
            "Columns 'B' and 'C' are both mapped to the custom field 'x'",
        ),
        (
            {"A": "email", "B": "nickname"},
            "Column 'B' is mapped to 'nickname', which is not a field",
        ),
        ({"A": "email", "B": "custom:!!"}, "Column 'B': a custom field name needs"),
        ({"A": "email", "Z": "city"}, "The mapping names a column that is not in the file: 'Z'"),
    ],
)
def test_clean_mapping_rejects(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(ImportRejected) as info:
        clean_mapping(["A", "B", "C"], mapping)
    assert info.value.message.startswith(message)


def test_clean_mapping_allows_at_most_one_hundred_custom_fields() -> None:
    headers = ["email", *(f"c{i}" for i in range(101))]
    mapping = auto_mapping(headers)
    with pytest.raises(ImportRejected, match="101 columns are mapped to custom fields"):
        clean_mapping(headers, mapping)


# --- row rules ------------------------------------------------------------------------------

COLUMNS = [(0, "email"), (1, "firstName"), (2, "linkedinUrl"), (3, "custom:segment")]


@pytest.mark.parametrize(
    ("cells", "valid", "email", "reason"),
    [
        (["  Ann@Example.COM ", "Ann", "", "smb"], True, "ann@example.com", ""),
        (
            ["", "Li", "linkedin.com/in/Li-Wei", ""],
            True,
            "li.li-wei@noemail.warmysender.com",
            "No email address. Placeholder email made from the LinkedIn URL.",
        ),
        (
            ["not-an-email", "Li", "https://www.linkedin.com/in/li-wei/", ""],
            True,
            "li.li-wei@noemail.warmysender.com",
            "Placeholder email made from the LinkedIn URL.",
        ),
        (["not-an-email", "X", "", ""], False, "not-an-email", "is not a valid email address"),
        (["", "X", "", "smb"], False, "", "No email address and no LinkedIn URL."),
        (
            ["", "X", "https://example.com/in/x", ""],
            False,
            "",
            "No email address. 'https://example.com/in/x' is not a LinkedIn profile URL",
        ),
        (["nope", "X", "", ""], False, "nope", "No LinkedIn URL to fall back on."),
        (
            ["ann@example.com", "Ann", "https://example.com/x", ""],
            True,
            "ann@example.com",
            "LinkedIn URL left out:",
        ),
        (
            ["ann@example.com", "A" * 101, "", ""],
            False,
            "ann@example.com",
            "First name is longer than 100 characters.",
        ),
        (
            ["ann@example.com", "Ann", "", "s" * 1001],
            False,
            "ann@example.com",
            "Custom field 'segment' is longer than 1,000 characters.",
        ),
    ],
)
def test_row_rules(cells: list[str], valid: bool, email: str, reason: str) -> None:
    plan = plan_row(9, cells, COLUMNS, DOMAIN)
    assert (plan.row, plan.valid, plan.email) == (9, valid, email)
    assert reason in plan.reason
    if not reason:
        assert plan.reason == ""


def test_a_valid_row_carries_builtin_and_non_empty_custom_fields() -> None:
    plan = plan_row(2, ["ann@example.com", "Ann", "linkedin.com/in/ann", ""], COLUMNS, DOMAIN)
    assert plan.fields == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "linkedin_url": "https://linkedin.com/in/ann",
    }
    assert plan.custom == {}


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("john-doe", "li.john-doe@noemail.warmysender.com"),
        ("John-Doe", "li.john-doe@noemail.warmysender.com"),
        ("jos%C3%A9-garc%C3%ADa", "li.jose-garcia-70124fb3@noemail.warmysender.com"),
    ],
)
def test_placeholder_emails(username: str, expected: str) -> None:
    assert placeholder_email(username, DOMAIN) == expected


@given(st.text(min_size=1, max_size=120))
def test_placeholder_emails_are_valid_addresses(username: str) -> None:
    address = placeholder_email(username, DOMAIN)
    assert services.normalize_email(address) == address
    assert address.startswith("li.")
    assert address.endswith("@noemail.warmysender.com")


def test_different_non_ascii_usernames_get_different_placeholders() -> None:
    assert placeholder_email("josé", DOMAIN) != placeholder_email("jose", DOMAIN)
    assert placeholder_email("李伟", DOMAIN) != placeholder_email("王芳", DOMAIN)


def test_the_first_valid_occurrence_of_an_email_is_remembered() -> None:
    parsed = ParsedCsv(
        delimiter=",",
        headers=["email"],
        unnamed_columns=frozenset(),
        rows=[(2, ["bad"]), (3, ["a@example.com"]), (4, ["A@example.com"]), (5, ["b@example.com"])],
    )
    plans = plan_rows(parsed, {"email": "email"}, DOMAIN)
    assert first_rows(plans) == {"a@example.com": 3, "b@example.com": 5}


# --- the report -----------------------------------------------------------------------------


def test_report_csv_has_a_header_and_neutralises_formulas() -> None:
    job = ImportJob(
        report=[
            [2, "ann@example.com", "created", ""],
            [3, '=HYPERLINK("http://x")', "invalid", "'=...' is not valid"],
            [4, "+1@example.com", "created", "-note"],
            [5, "@sum", "invalid", "tab"],
            [6, "", "invalid", "No email address and no LinkedIn URL."],
        ]
    )
    text = report_csv(job)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["row", "email", "outcome", "reason"],
        ["2", "ann@example.com", "created", ""],
        ["3", '\'=HYPERLINK("http://x")', "invalid", "'=...' is not valid"],
        ["4", "'+1@example.com", "created", "'-note"],
        ["5", "'@sum", "invalid", "tab"],
        ["6", "", "invalid", "No email address and no LinkedIn URL."],
    ]
