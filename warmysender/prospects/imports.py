"""CSV import: check an upload up front, let a person confirm the column mapping, then create the
prospects in a background job that commits batch by batch and resumes where it stopped.

Row numbers are the ones a spreadsheet shows for the file: the header is row 1, the first data row
is row 2, and a quoted value that spans several lines is still one row. Rows whose cells are all
blank are skipped and not counted, but keep their number so every message matches the sheet.

The stored upload is parsed again by the job (parsing is pure and deterministic), so the job needs
nothing but the `ImportJob` row and can run on any worker.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import islice
from typing import Any
from urllib.parse import unquote
from uuid import UUID

import charset_normalizer
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, JSONField, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Lower

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import QuotaExceeded, check_prospect_capacity
from warmysender.audit.services import Actor, record_audit
from warmysender.prospects import services
from warmysender.prospects.models import (
    ImportJob,
    ImportStatus,
    ListMembership,
    Prospect,
    ProspectList,
)

# Rows per transaction: big enough for bulk inserts to pay off, small enough that the progress bar
# moves and a crash loses at most a few seconds of work.
BATCH_SIZE = 500
MAX_COLUMNS = 200
MAX_HEADER_LENGTH = 200
DELIMITERS = (",", ";", "\t")
# Records read per candidate delimiter when sniffing.
SNIFF_RECORDS = 50
# Share of sampled values that must look like emails (or LinkedIn URLs) for a column with an
# unrecognised header to be mapped to email (or linkedinUrl) automatically.
DETECT_SAMPLE = 50
DETECT_SHARE = 0.8

CUSTOM_PREFIX = "custom:"
CREATED = "created"
DUPLICATE = "duplicate"
SUPPRESSED = "suppressed"
INVALID = "invalid"

FIELD_LABELS: dict[str, str] = {
    "email": "Email",
    "firstName": "First name",
    "lastName": "Last name",
    "company": "Company",
    "role": "Job title",
    "phone": "Phone",
    "linkedinUrl": "LinkedIn URL",
    "website": "Website",
    "country": "Country",
    "city": "City",
    "industry": "Industry",
}
assert set(FIELD_LABELS) == set(services.BUILTIN_FIELDS)

# The targets a column can be mapped to; custom fields are "custom:<name>" in addition to these.
MAPPING_CHOICES: list[tuple[str, str]] = [
    ("", "Skip this column"),
    *((name, FIELD_LABELS[name]) for name in services.BUILTIN_FIELDS),
]

# Header spellings (lower-cased, with spaces, underscores and hyphens removed) → builtin field.
# The seed's aliases plus the field names themselves and a few equally unambiguous spellings.
HEADER_ALIASES: dict[str, str] = {
    "email": "email",
    "emailaddress": "email",
    "contactemail": "email",
    "workemail": "email",
    "firstname": "firstName",
    "givenname": "firstName",
    "lastname": "lastName",
    "surname": "lastName",
    "familyname": "lastName",
    "company": "company",
    "companyname": "company",
    "organization": "company",
    "organisation": "company",
    "title": "role",
    "jobtitle": "role",
    "position": "role",
    "role": "role",
    "phone": "phone",
    "phonenumber": "phone",
    "telephone": "phone",
    "mobile": "phone",
    "linkedin": "linkedinUrl",
    "linkedinurl": "linkedinUrl",
    "linkedinprofile": "linkedinUrl",
    "linkedinprofileurl": "linkedinUrl",
    "website": "website",
    "companywebsite": "website",
    "country": "country",
    "city": "city",
    "industry": "industry",
}


class ImportRejected(Exception):
    """An upload or a mapping that cannot be imported. `message` is a sentence for the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- reading the file -----------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedCsv:
    delimiter: str
    headers: list[str]
    # Indexes of columns that had no name in the file (named "Column N" here, skipped by default).
    unnamed_columns: frozenset[int]
    # (row number, stripped cells, exactly one per header) for each data row that is not blank.
    rows: list[tuple[int, list[str]]]


def decode_upload(data: bytes) -> str:
    """The text of an upload that is UTF-8 (a BOM is allowed), or ImportRejected naming what the
    file is instead."""
    if not data.strip():
        raise ImportRejected("The file is empty.")
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise ImportRejected(_encoding_message("UTF-32"))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRejected(_encoding_message("UTF-16", " (Excel's “Unicode Text”)"))
    kind = _binary_kind(data)
    if kind is not None:
        raise ImportRejected(
            f"This is {kind}, not a CSV file. In Excel, Numbers or Google Sheets use "
            "File → Save As (or Download) → CSV UTF-8, then upload that file."
        )
    if b"\x00" in data:
        guess = _guess_encoding(data)
        if guess is not None and guess.startswith("UTF-"):
            raise ImportRejected(_encoding_message(guess))
        raise ImportRejected(
            "This is a binary file, not CSV text. Upload a .csv file saved as CSV UTF-8."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        guess = _guess_encoding(data)
        looks = f" (it looks like {guess})" if guess else ""
        raise ImportRejected(
            f"This is not UTF-8 text{looks}: save it as CSV UTF-8 and upload again. "
            f"The first character that is not UTF-8 is on line {line:,}."
        ) from None
    if not text.strip():
        raise ImportRejected("The file is empty.")
    return text


def _encoding_message(name: str, aside: str = "") -> str:
    return (
        f"This file is {name} text{aside}, not UTF-8: save it as CSV UTF-8 "
        "(in Excel: File → Save As → CSV UTF-8) and upload again."
    )


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an Excel 97–2003 workbook (.xls) or another Office file",
    ),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"{\\rtf", "a rich-text (RTF) document"),
)


def _binary_kind(data: bytes) -> str | None:
    """What a non-CSV upload is, for the message; None when it may be text."""
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "a web page (HTML)"
    if head.startswith(b"<?xml"):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in head:
            return "an Excel XML spreadsheet"
        return "an XML document"
    return None


def _zip_kind(data: bytes) -> str:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a ZIP archive"
    if any(name.startswith("xl/") for name in names):
        return "an Excel workbook (.xlsx)"
    if "content.xml" in names and b"opendocument.spreadsheet" in data[:200]:
        return "an OpenDocument spreadsheet (.ods)"
    if any(name.startswith("word/") for name in names):
        return "a Word document (.docx)"
    return "a ZIP archive"


_ENCODING_NAMES: dict[str, str] = {
    "cp1252": "Windows-1252 (Western European)",
    "latin_1": "ISO-8859-1 (Latin-1)",
    "iso8859_15": "ISO-8859-15 (Latin-9)",
    "cp1250": "Windows-1250 (Central European)",
    "iso8859_2": "ISO-8859-2 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "koi8_r": "KOI8-R (Cyrillic)",
    "mac_roman": "Mac Roman",
    "cp437": "DOS (code page 437)",
    "cp850": "DOS (code page 850)",
    "shift_jis": "Shift JIS (Japanese)",
    "cp932": "Shift JIS (Japanese)",
    "euc_jp": "EUC-JP (Japanese)",
    "gb2312": "GB2312 (Chinese)",
    "gbk": "GBK (Chinese)",
    "gb18030": "GB18030 (Chinese)",
    "big5": "Big5 (Chinese)",
    "euc_kr": "EUC-KR (Korean)",
    "cp949": "EUC-KR (Korean)",
    "utf_16": "UTF-16",
    "utf_16_le": "UTF-16",
    "utf_16_be": "UTF-16",
    "utf_32": "UTF-32",
    "utf_32_le": "UTF-32",
    "utf_32_be": "UTF-32",
}


def _guess_encoding(data: bytes) -> str | None:
    """A person-readable name of the likely encoding, only to word the rejection."""
    # A prefix is plenty to name the encoding and keeps a 10 MB upload from being scanned whole.
    best = charset_normalizer.from_bytes(data[:65536]).best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        return None
    return _ENCODING_NAMES.get(best.encoding, best.encoding.replace("_", "-").upper())


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for each record; quoting errors become ImportRejected naming the row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    number = 0
    try:
        for cells in reader:
            number += 1
            yield number, cells
    except csv.Error as exc:
        raise ImportRejected(_csv_error_message(number + 1, str(exc))) from None


def _csv_error_message(row: int, error: str) -> str:
    if "expected after" in error:
        return (
            f"Row {row:,} has a quote in the middle of a value: a value with quotes must be "
            'wrapped in double quotes, with each quote inside it doubled ("").'
        )
    if "unexpected end of data" in error or "EOF" in error:
        return f"Row {row:,} opens a quote that is never closed."
    if "field larger than field limit" in error:
        return f"Row {row:,} has a value longer than {csv.field_size_limit():,} characters."
    return f"Row {row:,} cannot be read as CSV ({error})."


def _is_blank(cells: Sequence[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def _fits(cells: Sequence[str], width: int) -> bool:
    # Spreadsheets often export trailing empty cells beyond the last named column; those are
    # harmless. Missing cells or values under no header are not.
    return len(cells) >= width and _is_blank(cells[width:])


def sniff_delimiter(text: str) -> str:
    """The one of , ; and tab that splits the first records into the most consistent columns.

    csv.Sniffer guesses from character frequencies and picks letters or spaces on real files; here
    only the three delimiters spreadsheets write are considered, and a candidate wins by giving
    more than one column, then by the share of records that fit the header, then by width.
    Ties go to the comma.
    """
    best, best_score = DELIMITERS[0], (False, 0.0, 0)
    for delimiter in DELIMITERS:
        score = _delimiter_score(text, delimiter)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _delimiter_score(text: str, delimiter: str) -> tuple[bool, float, int]:
    sample: list[list[str]] = []
    broken = 0  # a record this delimiter cannot read counts as one that does not fit
    try:
        for _, cells in _records(text, delimiter):
            if not _is_blank(cells):
                sample.append(cells)
                if len(sample) >= SNIFF_RECORDS:
                    break
    except ImportRejected:
        broken = 1
    if not sample:
        return (False, 0.0, 0)
    width = _header_width(sample[0])
    rows = sample[1:]
    fitting = sum(_fits(cells, width) for cells in rows)
    total = len(rows) + broken
    share = fitting / total if total else 1.0
    return (width > 1, share, width)


def _header_width(cells: Sequence[str]) -> int:
    width = len(cells)
    while width and not cells[width - 1].strip():
        width -= 1
    return width


def _header_and_rest(
    records: Iterator[tuple[int, list[str]]],
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The first record that is not blank, and the records after it. Leading blank lines are
    tolerated: a sheet whose first row is empty still has its names in the first filled row."""
    for _, cells in records:
        if not _is_blank(cells):
            return cells, records
    raise ImportRejected("The file is empty.")


def _data_rows(
    records: Iterator[tuple[int, list[str]]], width: int
) -> Iterator[tuple[int, list[str]]]:
    for number, cells in records:
        if _is_blank(cells):
            continue
        if not _fits(cells, width):
            count = len(cells) if len(cells) < width else _header_width(cells)
            raise ImportRejected(
                f"Row {number:,} has {_plural(count, 'column')} but the header has {width:,}."
            )
        yield number, [cell.strip() for cell in cells[:width]]


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _clean_headers(cells: Sequence[str]) -> tuple[list[str], frozenset[int]]:
    width = _header_width(cells)
    if width > MAX_COLUMNS:
        raise ImportRejected(
            f"The file has {width:,} columns; the limit is {MAX_COLUMNS:,}. "
            "Remove the columns you do not need and upload again."
        )
    raw = [cell.strip().lstrip("\ufeff").strip() for cell in cells[:width]]
    for index, name in enumerate(raw, start=1):
        if len(name) > MAX_HEADER_LENGTH:
            raise ImportRejected(
                f"The name of column {index} is {len(name):,} characters long; the first row "
                "must hold short column names such as email, first_name, company."
            )
        if _looks_like_data(name):
            raise ImportRejected(
                f"The first row looks like data, not column names (it holds {name!r}). "
                "Add a first row with column names such as email,first_name,company and "
                "upload again."
            )
    headers: list[str] = []
    unnamed: set[int] = set()
    used: set[str] = set()
    for index, name in enumerate(raw):
        if not name:
            unnamed.add(index)
            name = f"Column {index + 1}"
        # The mapping is keyed by header, so repeated names get a counter: "Email", "Email (2)".
        unique, counter = name, 2
        while unique in used:
            unique, counter = f"{name} ({counter})", counter + 1
        used.add(unique)
        headers.append(unique)
    return headers, frozenset(unnamed)


def _looks_like_data(value: str) -> bool:
    if _is_email(value):
        return True
    return "linkedin.com/" in value.lower() and services.linkedin_username(value) is not None


def parse_csv(text: str) -> ParsedCsv:
    """Split and check a decoded upload. Raises ImportRejected with the first problem found."""
    delimiter = sniff_delimiter(text)
    header_cells, rest = _header_and_rest(_records(text, delimiter))
    headers, unnamed = _clean_headers(header_cells)
    rows = list(_data_rows(rest, len(headers)))
    if not rows:
        raise ImportRejected(
            "The file has a header row but no data rows: add one prospect per row below it."
        )
    limit: int = settings.IMPORT_MAX_ROWS
    if len(rows) > limit:
        raise ImportRejected(
            f"The file has {len(rows):,} data rows; the limit is {limit:,} per import. "
            "Split it into several files."
        )
    return ParsedCsv(delimiter=delimiter, headers=headers, unnamed_columns=unnamed, rows=rows)


# --- column mapping -------------------------------------------------------------------------


def _alias_key(header: str) -> str:
    return re.sub(r"[\s_\-]+", "", header.strip().lower())


def _is_explicit_custom(header: str) -> bool:
    return header.strip().lower().startswith(CUSTOM_PREFIX)


def custom_field_name(header: str, position: int) -> str:
    """The custom field a column becomes: the header (without a `custom:` prefix) sanitised as
    seed §3.4 says; `column_<position>` when nothing of it survives (e.g. a header in Japanese)."""
    text = header.strip()
    if _is_explicit_custom(text):
        text = text[len(CUSTOM_PREFIX) :]
    name = services.sanitize_custom_field_name(text)
    if not re.search(r"[a-z0-9]", name):
        name = f"column_{position}"
    return name


def _unique_name(name: str, used: set[str]) -> str:
    unique, counter = name, 2
    while unique in used:
        suffix = f"_{counter}"
        unique = name[: services.CUSTOM_FIELD_MAX_NAME - len(suffix)] + suffix
        counter += 1
    return unique


def auto_mapping(headers: list[str]) -> dict[str, str]:
    """Header → target for headers as `start_import` stores them (unique names).

    A header spelled like a builtin field maps to it, but only the first such column does: a
    second "Mobile" after "Phone" becomes the custom field `mobile` rather than overwriting the
    phone. Everything else becomes a custom field with a sanitised, unique name.
    """
    mapping: dict[str, str] = {}
    used_builtins: set[str] = set()
    used_custom: set[str] = set()
    for position, header in enumerate(headers, start=1):
        builtin = None if _is_explicit_custom(header) else HEADER_ALIASES.get(_alias_key(header))
        if builtin is not None and builtin not in used_builtins:
            used_builtins.add(builtin)
            mapping[header] = builtin
            continue
        name = _unique_name(custom_field_name(header, position), used_custom)
        used_custom.add(name)
        mapping[header] = CUSTOM_PREFIX + name
    return mapping


def _share(values: Sequence[str], test: Any) -> float:
    return sum(1 for value in values if test(value)) / len(values) if values else 0.0


def _is_email(value: str) -> bool:
    if "@" not in value:
        return False
    try:
        services.normalize_email(value)
    except services.ProspectError:
        return False
    return True


def _detect_by_values(parsed: ParsedCsv, mapping: dict[str, str]) -> dict[str, str]:
    """When no header names an email (or LinkedIn) column, look at the values: a column such as
    "Contact" whose cells are nearly all addresses is the email column."""
    mapping = dict(mapping)
    detectors = (("email", _is_email), ("linkedinUrl", lambda v: services.linkedin_username(v)))
    for target, test in detectors:
        if target in mapping.values():
            continue
        for index, header in enumerate(parsed.headers):
            current = mapping[header]
            if not current.startswith(CUSTOM_PREFIX) or _is_explicit_custom(header):
                continue
            sample = [cells[index] for _, cells in parsed.rows[:DETECT_SAMPLE] if cells[index]]
            if sample and _share(sample, test) >= DETECT_SHARE:
                mapping[header] = target
                break
    return mapping


def mapping_warning(mapping: Mapping[str, str]) -> str:
    """A sentence for the mapping step when nothing identifies a prospect yet; "" otherwise."""
    if {"email", "linkedinUrl"} & set(mapping.values()):
        return ""
    return "No column looks like an email address or a LinkedIn URL; map one in the next step."


def clean_mapping(headers: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """A complete, valid mapping for `headers` (missing headers are skipped), or ImportRejected."""
    unknown = [key for key in mapping if key not in headers]
    if unknown:
        raise ImportRejected(f"The mapping names a column that is not in the file: {unknown[0]!r}.")
    cleaned: dict[str, str] = {}
    for header in headers:
        target = (mapping.get(header) or "").strip()
        if target.lower().startswith(CUSTOM_PREFIX):
            name = services.sanitize_custom_field_name(target[len(CUSTOM_PREFIX) :])
            if not re.search(r"[a-z0-9]", name):
                raise ImportRejected(
                    f"Column {header!r}: a custom field name needs at least one letter or digit."
                )
            target = CUSTOM_PREFIX + name
        elif target and target not in services.BUILTIN_FIELDS:
            raise ImportRejected(
                f"Column {header!r} is mapped to {target!r}, which is not a field."
            )
        cleaned[header] = target
    counts = Counter(target for target in cleaned.values() if target)
    for target, count in counts.items():
        if count > 1:
            columns = [h for h, t in cleaned.items() if t == target]
            raise ImportRejected(
                f"Columns {columns[0]!r} and {columns[1]!r} are both mapped to "
                f"{_target_label(target)}; map each field from one column only."
            )
    if not {"email", "linkedinUrl"} & set(counts):
        raise ImportRejected(
            "No column is mapped to Email or LinkedIn URL; map the column that holds email "
            "addresses or LinkedIn profile URLs."
        )
    customs = sum(1 for target in counts if target.startswith(CUSTOM_PREFIX))
    if customs > services.MAX_CUSTOM_FIELDS:
        raise ImportRejected(
            f"{customs} columns are mapped to custom fields; a prospect has at most "
            f"{services.MAX_CUSTOM_FIELDS}. Skip the columns you do not need."
        )
    return cleaned


def _target_label(target: str) -> str:
    if target.startswith(CUSTOM_PREFIX):
        return f"the custom field {target[len(CUSTOM_PREFIX) :]!r}"
    return FIELD_LABELS[target]


# --- the wizard's steps ---------------------------------------------------------------------


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return f"{size / 1024:.1f}".removesuffix(".0") + " KB"


def start_import(
    *, workspace: Workspace, actor: Actor, file_name: str, data: bytes, now: datetime
) -> ImportJob:
    """Check the whole upload and store it for the mapping step. Nothing is stored on rejection."""
    limit: int = settings.IMPORT_MAX_BYTES
    if len(data) > limit:
        raise ImportRejected(
            f"The file is {_human_size(len(data))}; the limit is {_human_size(limit)} per import."
        )
    text = decode_upload(data)
    parsed = parse_csv(text)
    mapping = auto_mapping(parsed.headers)
    for index in parsed.unnamed_columns:
        # A column without a name is usually stray cells; the person can still map it.
        mapping[parsed.headers[index]] = ""
    mapping = _detect_by_values(parsed, mapping)
    name = (file_name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:255] or "import.csv"
    with transaction.atomic():
        job = ImportJob.objects.create(
            workspace=workspace,
            created_by=actor.user,
            file_name=name,
            content=text,
            headers=parsed.headers,
            mapping=mapping,
            status=ImportStatus.MAPPING,
            total_rows=len(parsed.rows),
            created_at=now,
        )
        record_audit(
            workspace=workspace,
            actor=actor,
            action="import.uploaded",
            obj=job,
            to_state=ImportStatus.MAPPING,
            data={"fileName": name, "rows": len(parsed.rows)},
            now=now,
        )
    return job


def preview_rows(job: ImportJob, limit: int = 5) -> list[list[str]]:
    """The first data rows, one cell per header, for the mapping step ([] if there is no file)."""
    try:
        records = _records(job.content, sniff_delimiter(job.content))
        _, rest = _header_and_rest(records)
        return [cells for _, cells in islice(_data_rows(rest, len(job.headers)), limit)]
    except ImportRejected:
        return []


def confirm_import(
    *,
    job: ImportJob,
    mapping: dict[str, str],
    target_list_id: Any = None,
    new_list_name: str = "",
    actor: Actor,
    now: datetime,
) -> ImportJob:
    """Fix the mapping and the target list, and queue the job (deferred once the commit is done,
    so a worker never looks for a row it cannot see yet)."""
    new_list_name = (new_list_name or "").strip()
    if target_list_id and new_list_name:
        raise ImportRejected("Choose an existing list or name a new one, not both.")
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportStatus.MAPPING:
            raise ImportRejected("This import has already been confirmed.")
        cleaned = clean_mapping(locked.headers, mapping)
        target: ProspectList | None = None
        if target_list_id:
            target = _workspace_list(locked.workspace_id, target_list_id)
        elif new_list_name:
            try:
                target = services.create_list(
                    workspace=locked.workspace, name=new_list_name, actor=actor, now=now
                )
            except services.ProspectError as exc:
                raise ImportRejected(exc.message) from exc
        locked.mapping = cleaned
        locked.target_list = target
        locked.status = ImportStatus.QUEUED
        locked.save(update_fields=["mapping", "target_list", "status"])
        record_audit(
            workspace=locked.workspace,
            actor=actor,
            action="import.confirmed",
            obj=locked,
            from_state=ImportStatus.MAPPING,
            to_state=ImportStatus.QUEUED,
            data={"mapping": cleaned, "listId": str(target.pk) if target else None},
            now=now,
        )
        transaction.on_commit(partial(_enqueue, locked.pk))
    return locked


def _workspace_list(workspace_id: Any, list_id: Any) -> ProspectList:
    try:
        found = ProspectList.objects.filter(workspace_id=workspace_id, pk=list_id).first()
    except (ValidationError, ValueError):
        found = None
    if found is None:
        raise ImportRejected("That list does not exist in this workspace.")
    return found


def _enqueue(job_id: UUID) -> None:
    # Imported here: tasks.py imports this module.
    from warmysender.prospects.tasks import defer_import

    defer_import(job_id)


# --- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowPlan:
    """What one data row would become, decided without the database."""

    row: int
    # Normalised email (or LinkedIn placeholder); for an invalid row, the cell as written.
    email: str
    valid: bool
    reason: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # model field name → value
    custom: dict[str, str] = field(default_factory=dict)


def placeholder_email(username: str, domain: str) -> str:
    """`li.<username>@noemail.<domain>` for a LinkedIn-only prospect (seed §3.3).

    Usernames may be percent-encoded Unicode; the local part keeps to a-z, digits, `-` and `_`.
    When that loses anything (accents, other scripts), a short hash of the original is appended so
    two different profiles never share an address.
    """
    original = unquote(username).strip().lower()
    ascii_text = unicodedata.normalize("NFKD", original).encode("ascii", "ignore").decode()
    local = re.sub(r"[^a-z0-9_-]+", "-", ascii_text).strip("-_")
    if local != original or not local:
        digest = hashlib.sha256(original.encode()).hexdigest()[:8]
        local = f"{local[:52]}-{digest}" if local else digest
    return f"li.{local[:61]}@noemail.{domain}"


def plan_row(
    row: int, cells: Sequence[str], columns: Sequence[tuple[int, str]], placeholder_domain: str
) -> RowPlan:
    """Apply the row rules to one row's cells. `columns` is (cell index, target) per mapped column."""
    values: dict[str, str] = {}
    custom: dict[str, str] = {}
    for index, target in columns:
        value = cells[index].strip()
        if not value:
            continue
        if target.startswith(CUSTOM_PREFIX):
            custom[target[len(CUSTOM_PREFIX) :]] = value
        else:
            values[target] = value
    raw_email = values.pop("email", "")
    raw_linkedin = values.pop("linkedinUrl", "")
    notes: list[str] = []

    linkedin_url, linkedin_problem = "", ""
    if raw_linkedin:
        try:
            linkedin_url = services.normalize_linkedin_url(raw_linkedin)
        except services.ProspectError as exc:
            linkedin_problem = exc.message
        if len(linkedin_url) > services.FIELD_MAX_LENGTH["linkedinUrl"]:
            linkedin_url = ""
            linkedin_problem = "The LinkedIn URL is too long."

    email, email_problem = "", ""
    if raw_email:
        try:
            email = services.normalize_email(raw_email)
        except services.ProspectError as exc:
            email_problem = exc.message
    shown = raw_email[: services.FIELD_MAX_LENGTH["email"]]

    if not email:
        username = services.linkedin_username(linkedin_url) if linkedin_url else None
        if username is None:
            if not raw_email and not raw_linkedin:
                reason = "No email address and no LinkedIn URL."
            else:
                reason = email_problem or "No email address."
                reason += " " + (linkedin_problem or "No LinkedIn URL to fall back on.")
            return RowPlan(row=row, email=shown, valid=False, reason=reason)
        email = placeholder_email(username, placeholder_domain)
        notes.append(
            (f"{email_problem} " if email_problem else "No email address. ")
            + "Placeholder email made from the LinkedIn URL."
        )
    if linkedin_problem:
        notes.append(f"LinkedIn URL left out: {linkedin_problem}")

    fields = {"email": email, "linkedin_url": linkedin_url}
    for key, value in values.items():
        limit = services.FIELD_MAX_LENGTH[key]
        if len(value) > limit:
            return RowPlan(
                row=row,
                email=shown or email,
                valid=False,
                reason=f"{FIELD_LABELS[key]} is longer than {limit:,} characters.",
            )
        fields[services.BUILTIN_FIELDS[key]] = value
    for name, value in custom.items():
        if len(value) > services.CUSTOM_FIELD_MAX_VALUE:
            return RowPlan(
                row=row,
                email=shown or email,
                valid=False,
                reason=(
                    f"Custom field {name!r} is longer than "
                    f"{services.CUSTOM_FIELD_MAX_VALUE:,} characters."
                ),
            )
    return RowPlan(
        row=row, email=email, valid=True, reason=" ".join(notes), fields=fields, custom=custom
    )


def plan_rows(
    parsed: ParsedCsv, mapping: Mapping[str, str], placeholder_domain: str
) -> list[RowPlan]:
    columns = [
        (index, mapping[header])
        for index, header in enumerate(parsed.headers)
        if mapping.get(header)
    ]
    return [plan_row(row, cells, columns, placeholder_domain) for row, cells in parsed.rows]


def first_rows(plans: Iterable[RowPlan]) -> dict[str, int]:
    """Email → the row where it first appears validly. Computed over the whole file, so a resumed
    run reports a later repeat exactly as an uninterrupted run would."""
    first: dict[str, int] = {}
    for plan in plans:
        if plan.valid:
            first.setdefault(plan.email, plan.row)
    return first


# --- the job --------------------------------------------------------------------------------


@dataclass
class _BatchResult:
    created: int = 0
    duplicate: int = 0
    suppressed: int = 0
    invalid: int = 0
    report: list[list[Any]] = field(default_factory=list)


def run_import(job_id: UUID | str, *, now: datetime) -> ImportJob:
    """Do the import. Safe to call again at any time: it continues from `processed_rows`, and a job
    that is completed or failed is returned unchanged."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            return job
        if job.status == ImportStatus.QUEUED:
            job.status = ImportStatus.RUNNING
            job.started_at = now
            job.save(update_fields=["status", "started_at"])
    try:
        parsed = parse_csv(job.content)
    except ImportRejected as exc:
        # Only reachable if the rules changed since the upload was accepted.
        return fail_import(
            job.pk, error=f"The stored file can no longer be read: {exc.message}", now=now
        )
    if parsed.headers != job.headers:
        return fail_import(job.pk, error="The stored file no longer matches its columns.", now=now)
    domain: str = settings.IMPORT_PLACEHOLDER_DOMAIN
    plans = plan_rows(parsed, job.mapping, domain)
    first = first_rows(plans)
    while True:
        try:
            done = _run_batch(job.pk, plans, first, now)
        except QuotaExceeded as exc:
            return _fail_for_quota(job.pk, exc, now)
        if done:
            break
    return _complete(job.pk, now)


def _lock_job(job_id: Any) -> ImportJob:
    return (
        ImportJob.objects.select_for_update(of=("self",))
        .select_related("workspace", "target_list")
        .defer("content", "report")
        .get(pk=job_id)
    )


def _run_batch(
    job_id: Any, plans: Sequence[RowPlan], first: Mapping[str, int], now: datetime
) -> bool:
    """Process the next batch in one transaction. Returns True when no rows are left."""
    with transaction.atomic():
        # The row lock serialises two workers on the same job: each batch is done exactly once.
        job = _lock_job(job_id)
        start = job.processed_rows
        if job.status != ImportStatus.RUNNING or start >= len(plans):
            return True
        batch = plans[start : start + BATCH_SIZE]
        result = _write_batch(job, batch, first, now)
        ImportJob.objects.filter(pk=job.pk).update(
            processed_rows=start + len(batch),
            created_count=F("created_count") + result.created,
            duplicate_count=F("duplicate_count") + result.duplicate,
            suppressed_count=F("suppressed_count") + result.suppressed,
            invalid_count=F("invalid_count") + result.invalid,
            # jsonb `||` appends this batch's entries without reading the report back.
            report=CombinedExpression(
                F("report"), "||", Value(result.report, output_field=JSONField())
            ),
        )
    return start + len(batch) >= len(plans)


def _existing_ids(workspace: Workspace, emails: Iterable[str]) -> dict[str, Any]:
    # Compared through lower(email) so the query uses the (workspace, lower(email)) unique index.
    rows = (
        Prospect.objects.annotate(email_ci=Lower("email"))
        .filter(workspace=workspace, email_ci__in=list(emails))
        .values_list("email_ci", "pk")
    )
    return dict(rows)


def _write_batch(
    job: ImportJob, batch: Sequence[RowPlan], first: Mapping[str, int], now: datetime
) -> _BatchResult:
    workspace = job.workspace
    candidates = [p for p in batch if p.valid and first[p.email] == p.row]
    emails = [p.email for p in candidates]
    suppressed = services.suppressed_among(workspace, emails)
    existing = _existing_ids(workspace, (e for e in emails if e not in suppressed))
    new = [p for p in candidates if p.email not in suppressed and p.email not in existing]

    id_by_email: dict[str, Any] = dict(existing)
    if new:
        # The same lock as services.create_prospect, so the plan limit holds against concurrent
        # single creates too; QuotaExceeded rolls the whole batch back.
        services._lock_workspace_for_quota(workspace)
        check_prospect_capacity(workspace, len(new), now)
        objects = [
            Prospect(
                workspace=workspace,
                created_at=now,
                updated_at=now,
                custom_fields=p.custom,
                **p.fields,
            )
            for p in new
        ]
        # ignore_conflicts: a prospect created with the same email since the lookup above (API,
        # another import) is reported as a duplicate instead of failing the batch.
        Prospect.objects.bulk_create(objects, ignore_conflicts=True)
        inserted = set(
            Prospect.objects.filter(pk__in=[o.pk for o in objects]).values_list("pk", flat=True)
        )
        lost = [o.email for o in objects if o.pk not in inserted]
        if lost:
            existing.update(_existing_ids(workspace, lost))
        id_by_email = {**existing, **{o.email: o.pk for o in objects if o.pk in inserted}}

    target = job.target_list
    if target is not None:
        ListMembership.objects.bulk_create(
            [
                ListMembership(
                    workspace=workspace, prospect_list=target, prospect_id=pk, added_at=now
                )
                for pk in id_by_email.values()
            ],
            ignore_conflicts=True,
        )

    result = _BatchResult()
    in_list = f"; added to the list {target.name!r}" if target is not None else ""
    for plan in batch:
        if not plan.valid:
            result.invalid += 1
            result.report.append([plan.row, plan.email, INVALID, plan.reason])
        elif first[plan.email] != plan.row:
            result.duplicate += 1
            result.report.append(
                [plan.row, plan.email, DUPLICATE, f"Same email as row {first[plan.email]:,}."]
            )
        elif plan.email in suppressed:
            result.suppressed += 1
            result.report.append(
                [
                    plan.row,
                    plan.email,
                    SUPPRESSED,
                    "The address or its domain is on the suppression list.",
                ]
            )
        elif plan.email in existing:
            result.duplicate += 1
            result.report.append(
                [plan.row, plan.email, DUPLICATE, f"Already in this workspace{in_list}."]
            )
        else:
            result.created += 1
            result.report.append([plan.row, plan.email, CREATED, plan.reason])
    return result


def _complete(job_id: Any, now: datetime) -> ImportJob:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("workspace").get(pk=job_id)
        if job.status != ImportStatus.RUNNING:
            return job
        job.status = ImportStatus.COMPLETED
        job.finished_at = now
        job.save(update_fields=["status", "finished_at"])
        record_audit(
            workspace=job.workspace,
            actor=Actor.system("import"),
            action="import.completed",
            obj=job,
            from_state=ImportStatus.RUNNING,
            to_state=ImportStatus.COMPLETED,
            data=counts(job),
            now=now,
        )
    return job


def counts(job: ImportJob) -> dict[str, Any]:
    return {
        "total": job.total_rows,
        "processed": job.processed_rows,
        "created": job.created_count,
        "duplicate": job.duplicate_count,
        "suppressed": job.suppressed_count,
        "invalid": job.invalid_count,
        "listId": str(job.target_list_id) if job.target_list_id else None,
    }


def _fail_for_quota(job_id: Any, exc: QuotaExceeded, now: datetime) -> ImportJob:
    job = ImportJob.objects.only("processed_rows", "total_rows").get(pk=job_id)
    if job.processed_rows:
        where = (
            f" The import stopped after {job.processed_rows:,} of {job.total_rows:,} rows; "
            "the prospects created before that are kept."
        )
    else:
        where = " No prospects were created."
    return fail_import(job_id, error=exc.message + where, now=now)


def fail_import(job_id: Any, *, error: str, now: datetime) -> ImportJob:
    """Mark a queued or running job failed with a reason for the person; the rows processed so
    far stay as they are. A finished job is returned unchanged."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().select_related("workspace").get(pk=job_id)
        if job.status not in (ImportStatus.QUEUED, ImportStatus.RUNNING):
            return job
        from_state = job.status
        job.status = ImportStatus.FAILED
        job.error = error
        job.finished_at = now
        job.save(update_fields=["status", "error", "finished_at"])
        record_audit(
            workspace=job.workspace,
            actor=Actor.system("import"),
            action="import.failed",
            obj=job,
            from_state=from_state,
            to_state=ImportStatus.FAILED,
            reason=error[:200],
            data=counts(job),
            now=now,
        )
    return job


# --- the report -----------------------------------------------------------------------------

# A spreadsheet treats a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def report_csv(job: ImportJob) -> str:
    """The per-row outcome file: row,email,outcome,reason."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "email", "outcome", "reason"])
    for entry in job.report:
        writer.writerow([_safe_cell(cell) for cell in entry])
    return out.getvalue()
