"""Every state change for prospects, lists and the suppression list.

Callers (API handlers, pages, the CSV import job) parse input, then call one function here; each
function owns its transaction, checks the plan quota and the suppression list, and writes the
audit row and domain events in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from email_validator import EmailNotValidError, validate_email

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import check_prospect_capacity
from warmysender.audit.services import Actor, emit_event, record_audit
from warmysender.prospects.models import (
    ListMembership,
    Prospect,
    ProspectList,
    Suppression,
    SuppressionKind,
)

# API / form name → model field. The API and CSV speak camelCase, the model snake_case.
BUILTIN_FIELDS: dict[str, str] = {
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "company": "company",
    "role": "role",
    "phone": "phone",
    "linkedinUrl": "linkedin_url",
    "website": "website",
    "country": "country",
    "city": "city",
    "industry": "industry",
}
FIELD_MAX_LENGTH: dict[str, int] = {
    name: Prospect._meta.get_field(field).max_length or 0  # type: ignore[union-attr]
    for name, field in BUILTIN_FIELDS.items()
}
CUSTOM_FIELD_MAX_NAME = 30
CUSTOM_FIELD_MAX_VALUE = 1000
MAX_CUSTOM_FIELDS = 100
LIST_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
LINKEDIN_PROFILE_RE = re.compile(r"^/(in|pub|sales/lead|sales/people|talent/profile)/([^/?#]+)/?")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class ProspectError(Exception):
    """Input that cannot be accepted. `field` names the offending field for forms and the API."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "validation_error"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


# --- normalising input ----------------------------------------------------------------------


def normalize_email(raw: str) -> str:
    """A syntactically valid address, lower-cased, or ProspectError. No DNS lookups here: the send
    path and the verifier decide deliverability."""
    value = (raw or "").strip()
    if not value:
        raise ProspectError("An email address is required.", field="email")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ProspectError(
            f"{value!r} is not a valid email address: {exc}", field="email"
        ) from exc
    return result.normalized.lower()


def sanitize_custom_field_name(raw: str) -> str:
    """Lower-case, non-alphanumerics to `_`, at most 30 characters (seed §3.4)."""
    name = re.sub(r"[^a-z0-9]", "_", raw.strip().lower())[:CUSTOM_FIELD_MAX_NAME]
    return name


def linkedin_username(url: str) -> str | None:
    """The public identifier of a LinkedIn profile URL, or None when it is not one."""
    value = url.strip()
    if not value:
        return None
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    host = (parts.hostname or "").lower()
    if not (host == "linkedin.com" or host.endswith(".linkedin.com")):
        return None
    match = LINKEDIN_PROFILE_RE.match(parts.path)
    if not match:
        return None
    return match.group(2)


def normalize_linkedin_url(raw: str) -> str:
    username = linkedin_username(raw)
    if username is None:
        raise ProspectError(
            f"{raw.strip()!r} is not a LinkedIn profile URL (expected linkedin.com/in/<name>).",
            field="linkedinUrl",
        )
    return raw.strip() if raw.strip().startswith("http") else "https://" + raw.strip()


def clean_fields(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Validate API-named fields; return model-named values. Unknown keys are errors."""
    cleaned: dict[str, Any] = {}
    for key, value in data.items():
        if key == "customFields":
            cleaned["custom_fields"] = clean_custom_fields(value)
            continue
        if key not in BUILTIN_FIELDS:
            raise ProspectError(f"Unknown field {key!r}.", field=key)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ProspectError(f"{key} must be a string.", field=key)
        value = value.strip()
        if key == "email":
            value = normalize_email(value)
        elif key == "linkedinUrl" and value:
            value = normalize_linkedin_url(value)
        if len(value) > FIELD_MAX_LENGTH[key]:
            raise ProspectError(f"{key} has at most {FIELD_MAX_LENGTH[key]} characters.", field=key)
        cleaned[BUILTIN_FIELDS[key]] = value
    if not partial and "email" not in cleaned:
        raise ProspectError("An email address is required.", field="email")
    return cleaned


def clean_custom_fields(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ProspectError(
            "customFields must be an object of names to values.", field="customFields"
        )
    if len(value) > MAX_CUSTOM_FIELDS:
        raise ProspectError(
            f"At most {MAX_CUSTOM_FIELDS} custom fields per prospect.", field="customFields"
        )
    cleaned: dict[str, str] = {}
    for raw_name, raw_value in value.items():
        name = sanitize_custom_field_name(str(raw_name))
        if not name.strip("_"):
            raise ProspectError(
                f"Custom field name {raw_name!r} has no letters or digits.", field="customFields"
            )
        if raw_value is None:
            raw_value = ""
        if isinstance(raw_value, bool) or not isinstance(raw_value, str | int | float):
            raise ProspectError(
                f"Custom field {name!r} must be a string or a number.", field="customFields"
            )
        text = str(raw_value).strip()
        if len(text) > CUSTOM_FIELD_MAX_VALUE:
            raise ProspectError(
                f"Custom field {name!r} has at most {CUSTOM_FIELD_MAX_VALUE} characters.",
                field="customFields",
            )
        cleaned[name] = text
    return cleaned


# --- suppression checks ---------------------------------------------------------------------


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()


def is_suppressed(workspace: Workspace, email: str) -> Suppression | None:
    """The entry that blocks `email` (by address or by domain), if any. The send path uses this
    same check."""
    email = email.strip().lower()
    return (
        Suppression.objects.filter(workspace=workspace)
        .filter(
            Q(kind=SuppressionKind.EMAIL, value=email)
            | Q(kind=SuppressionKind.DOMAIN, value=email_domain(email))
        )
        .order_by("kind")
        .first()
    )


def suppressed_among(workspace: Workspace, emails: Iterable[str]) -> set[str]:
    """Which of `emails` (lower-cased) are suppressed; one query for a whole import batch."""
    emails = {e.lower() for e in emails}
    if not emails:
        return set()
    domains = {email_domain(e) for e in emails}
    rows = Suppression.objects.filter(workspace=workspace).filter(
        Q(kind=SuppressionKind.EMAIL, value__in=emails)
        | Q(kind=SuppressionKind.DOMAIN, value__in=domains)
    )
    blocked_emails = {r.value for r in rows if r.kind == SuppressionKind.EMAIL}
    blocked_domains = {r.value for r in rows if r.kind == SuppressionKind.DOMAIN}
    return {e for e in emails if e in blocked_emails or email_domain(e) in blocked_domains}


# --- prospects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upserted:
    prospect: Prospect
    created: bool


def create_prospect(
    *, workspace: Workspace, data: Mapping[str, Any], actor: Actor, now: datetime
) -> Upserted:
    """Create a prospect, or return the existing one with the same email (seed: POST dedups).

    Suppressed addresses are refused: adding them would only queue mail that may never be sent.
    """
    fields = clean_fields(data)
    email = fields["email"]
    existing = Prospect.objects.filter(workspace=workspace, email=email).first()
    if existing is not None:
        return Upserted(existing, created=False)
    entry = is_suppressed(workspace, email)
    if entry is not None:
        raise ProspectError(
            f"{email} is on the suppression list ({entry.kind} {entry.value}).",
            field="email",
            code="suppressed",
        )
    try:
        with transaction.atomic():
            # Serialise creators in this workspace so the storage limit holds under concurrency.
            _lock_workspace_for_quota(workspace)
            check_prospect_capacity(workspace, 1, now)
            prospect = Prospect.objects.create(
                workspace=workspace, created_at=now, updated_at=now, **fields
            )
            record_audit(
                workspace=workspace,
                actor=actor,
                action="prospect.created",
                obj=prospect,
                to_state="active",
                data={"email": email},
                now=now,
            )
    except IntegrityError:
        # A concurrent request created the same email first; the dedup contract still holds.
        existing = Prospect.objects.filter(workspace=workspace, email=email).first()
        if existing is None:
            raise
        return Upserted(existing, created=False)
    return Upserted(prospect, created=True)


def update_prospect(
    *, prospect: Prospect, data: Mapping[str, Any], actor: Actor, now: datetime
) -> Prospect:
    fields = clean_fields(data, partial=True)
    if "custom_fields" in fields:
        # PATCH merges custom fields; an empty string removes one.
        merged = {**prospect.custom_fields, **fields["custom_fields"]}
        fields["custom_fields"] = {k: v for k, v in merged.items() if v != ""}
    if "email" in fields and fields["email"] != prospect.email:
        if Prospect.objects.filter(
            workspace_id=prospect.workspace_id, email=fields["email"]
        ).exists():
            raise ProspectError(
                f"Another prospect already has the email {fields['email']}.",
                field="email",
                code="conflict",
            )
    changed = {k: v for k, v in fields.items() if getattr(prospect, k) != v}
    if not changed:
        return prospect
    with transaction.atomic():
        before = {k: getattr(prospect, k) for k in changed}
        for key, value in changed.items():
            setattr(prospect, key, value)
        prospect.updated_at = now
        try:
            with transaction.atomic():
                prospect.save(update_fields=[*changed, "updated_at"])
        except IntegrityError as exc:
            raise ProspectError(
                "Another prospect already has this email.", field="email", code="conflict"
            ) from exc
        record_audit(
            workspace=prospect.workspace,
            actor=actor,
            action="prospect.updated",
            obj=prospect,
            data={"changed": sorted(changed), "before": before},
            now=now,
        )
    return prospect


def delete_prospect(*, prospect: Prospect, actor: Actor, now: datetime) -> None:
    with transaction.atomic():
        record_audit(
            workspace=prospect.workspace,
            actor=actor,
            action="prospect.deleted",
            obj=prospect,
            from_state=prospect.global_status,
            data={"email": prospect.email},
            now=now,
        )
        prospect.delete()


def _lock_workspace_for_quota(workspace: Workspace) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('prospect-quota:' || %s))", [str(workspace.pk)]
        )


def search_prospects(
    workspace: Workspace,
    *,
    query: str = "",
    list_id: Any = None,
    status: str = "",
    company: str = "",
) -> Any:
    """The workspace's prospects filtered as the list page and the API allow."""
    qs = Prospect.objects.filter(workspace=workspace)
    query = query.strip()
    if query:
        qs = qs.filter(
            Q(email__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
            | Q(company__icontains=query)
        )
    if list_id:
        qs = qs.filter(listmembership__prospect_list_id=list_id)
    if status:
        qs = qs.filter(global_status=status)
    if company.strip():
        qs = qs.filter(company__iexact=company.strip())
    return qs


# --- lists ----------------------------------------------------------------------------------


def _clean_list(name: str, color: str | None) -> tuple[str, str | None]:
    name = (name or "").strip()
    if not name:
        raise ProspectError("A list needs a name.", field="name")
    if len(name) > 100:
        raise ProspectError("A list name has at most 100 characters.", field="name")
    if color is not None:
        color = color.strip()
        if not LIST_COLOR_RE.match(color):
            raise ProspectError("The color must look like #4f46e5.", field="color")
    return name, color


def create_list(
    *, workspace: Workspace, name: str, color: str | None = None, actor: Actor, now: datetime
) -> ProspectList:
    name, color = _clean_list(name, color)
    try:
        with transaction.atomic():
            prospect_list = ProspectList.objects.create(
                workspace=workspace,
                name=name,
                created_at=now,
                **({"color": color} if color else {}),
            )
            record_audit(
                workspace=workspace,
                actor=actor,
                action="list.created",
                obj=prospect_list,
                data={"name": name},
                now=now,
            )
    except IntegrityError as exc:
        raise ProspectError(
            f"A list named {name!r} already exists.", field="name", code="conflict"
        ) from exc
    return prospect_list


def update_list(
    *,
    prospect_list: ProspectList,
    name: str | None,
    color: str | None,
    actor: Actor,
    now: datetime,
) -> ProspectList:
    new_name, new_color = _clean_list(name if name is not None else prospect_list.name, color)
    try:
        with transaction.atomic():
            prospect_list.name = new_name
            if new_color:
                prospect_list.color = new_color
            prospect_list.save(update_fields=["name", "color"])
            record_audit(
                workspace=prospect_list.workspace,
                actor=actor,
                action="list.updated",
                obj=prospect_list,
                data={"name": new_name, "color": prospect_list.color},
                now=now,
            )
    except IntegrityError as exc:
        raise ProspectError(
            f"A list named {new_name!r} already exists.", field="name", code="conflict"
        ) from exc
    return prospect_list


def delete_list(*, prospect_list: ProspectList, actor: Actor, now: datetime) -> None:
    """Deleting a list keeps its prospects."""
    with transaction.atomic():
        record_audit(
            workspace=prospect_list.workspace,
            actor=actor,
            action="list.deleted",
            obj=prospect_list,
            data={"name": prospect_list.name},
            now=now,
        )
        prospect_list.delete()


def add_to_list(
    *, prospect_list: ProspectList, prospect_ids: Iterable[Any], actor: Actor, now: datetime
) -> int:
    """Add prospects of the list's workspace; ids from elsewhere are ignored. Returns how many
    were newly added."""
    ids = list(
        Prospect.objects.filter(
            workspace_id=prospect_list.workspace_id, pk__in=list(prospect_ids)
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        created = ListMembership.objects.bulk_create(
            [
                ListMembership(
                    workspace_id=prospect_list.workspace_id,
                    prospect_list=prospect_list,
                    prospect_id=pk,
                    added_at=now,
                )
                for pk in ids
            ],
            ignore_conflicts=True,
        )
        added = _count_added(prospect_list, ids, now) if created else 0
        if added:
            record_audit(
                workspace=prospect_list.workspace,
                actor=actor,
                action="list.prospects_added",
                obj=prospect_list,
                data={"count": added},
                now=now,
            )
    return added


def _count_added(prospect_list: ProspectList, ids: list[Any], now: datetime) -> int:
    # bulk_create(ignore_conflicts=True) cannot tell which rows were inserted; the rows stamped
    # with this transaction's `now` are the new ones.
    return ListMembership.objects.filter(
        prospect_list=prospect_list, prospect_id__in=ids, added_at=now
    ).count()


def remove_from_list(
    *, prospect_list: ProspectList, prospect_ids: Iterable[Any], actor: Actor, now: datetime
) -> int:
    with transaction.atomic():
        removed, _ = ListMembership.objects.filter(
            prospect_list=prospect_list, prospect_id__in=list(prospect_ids)
        ).delete()
        if removed:
            record_audit(
                workspace=prospect_list.workspace,
                actor=actor,
                action="list.prospects_removed",
                obj=prospect_list,
                data={"count": removed},
                now=now,
            )
    return removed


# --- suppression list -----------------------------------------------------------------------


def parse_suppression(value: str) -> tuple[str, str]:
    """`a@b.com` → ("email", "a@b.com"); `b.com` or `@b.com` → ("domain", "b.com")."""
    raw = (value or "").strip().lower()
    if not raw:
        raise ProspectError("Enter an email address or a domain.", field="value")
    if raw.startswith("@"):
        raw = raw[1:]
    if "@" in raw:
        return SuppressionKind.EMAIL, normalize_email(raw)
    if not DOMAIN_RE.match(raw):
        raise ProspectError(
            f"{value.strip()!r} is neither an email address nor a domain.", field="value"
        )
    return SuppressionKind.DOMAIN, raw


def add_suppression(
    *,
    workspace: Workspace,
    value: str,
    reason: str = "",
    actor: Actor,
    now: datetime,
    kind: str | None = None,
) -> tuple[Suppression, bool]:
    """Add an email or domain entry. Returns (entry, created); adding an existing entry is a
    no-op. Emits `prospect.suppressed` once per email per day for each prospect it blocks."""
    parsed_kind, normalized = parse_suppression(value)
    if kind is not None and kind != parsed_kind:
        raise ProspectError(f"{value.strip()!r} is not a valid {kind}.", field="value")
    reason = (reason or "").strip()
    if len(reason) > 200:
        raise ProspectError("A reason has at most 200 characters.", field="reason")
    with transaction.atomic():
        entry = Suppression.objects.filter(
            workspace=workspace, kind=parsed_kind, value=normalized
        ).first()
        if entry is not None:
            return entry, False
        entry = Suppression.objects.create(
            workspace=workspace,
            kind=parsed_kind,
            value=normalized,
            reason=reason,
            created_by=actor.user,
            created_at=now,
        )
        record_audit(
            workspace=workspace,
            actor=actor,
            action="suppression.added",
            obj=entry,
            to_state="suppressed",
            reason=reason,
            data={"kind": parsed_kind, "value": normalized},
            now=now,
        )
        if parsed_kind == SuppressionKind.EMAIL:
            blocked = Prospect.objects.filter(workspace=workspace, email=normalized)
        else:
            blocked = Prospect.objects.filter(workspace=workspace, email__endswith="@" + normalized)
        for prospect in blocked.only("id", "email"):
            emit_event(
                workspace=workspace,
                type="prospect.suppressed",
                data={
                    "prospectId": str(prospect.pk),
                    "email": prospect.email,
                    "reason": reason or "manual",
                    "source": parsed_kind,
                    "suppressedAt": now.isoformat().replace("+00:00", "Z"),
                },
                now=now,
                dedup_key=f"prospect.suppressed:{prospect.email}:{now.date().isoformat()}",
            )
    return entry, True


def remove_suppression(*, entry: Suppression, actor: Actor, now: datetime) -> None:
    with transaction.atomic():
        record_audit(
            workspace=entry.workspace,
            actor=actor,
            action="suppression.removed",
            obj=entry,
            from_state="suppressed",
            data={"kind": entry.kind, "value": entry.value},
            now=now,
        )
        entry.delete()
