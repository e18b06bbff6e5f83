"""Forms of the prospects pages. They only parse; the services in `services.py` and `imports.py`
validate and decide, and their messages are put back on the form with `add_service_error`."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.http import QueryDict

from warmysender.prospects import imports
from warmysender.prospects.models import GlobalStatus, ImportJob, Prospect, ProspectList
from warmysender.prospects.services import BUILTIN_FIELDS, ProspectError

# Model field → the name the services speak (camelCase, as in the API and CSV mapping).
API_NAME: dict[str, str] = {model: api for api, model in BUILTIN_FIELDS.items()}
BLANK_CUSTOM_ROWS = 3


def add_service_error(form: forms.Form, error: ProspectError) -> None:
    """Show a service's message next to the field it names, or at the top of the form."""
    field = BUILTIN_FIELDS.get(error.field or "", error.field)
    form.add_error(field if field in form.fields else None, error.message)


class UUIDListField(forms.Field):
    """Repeated `name=<uuid>` values (checkboxes) as a list of UUIDs."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[uuid.UUID]:
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        ids = []
        for raw in value:
            try:
                ids.append(uuid.UUID(str(raw)))
            except ValueError as exc:
                raise forms.ValidationError("A selected prospect id is not valid.") from exc
        return ids


# --- prospects ------------------------------------------------------------------------------


class ProspectForm(forms.Form):
    """Every built-in field plus free key/value rows for custom fields.

    Custom fields arrive as parallel `custom_key` / `custom_value` lists, so a page can offer as
    many rows as it likes without numbering them.
    """

    email = forms.CharField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    first_name = forms.CharField(label="First name", max_length=100, required=False)
    last_name = forms.CharField(label="Last name", max_length=100, required=False)
    company = forms.CharField(label="Company", max_length=200, required=False)
    role = forms.CharField(label="Role", max_length=200, required=False)
    phone = forms.CharField(label="Phone", max_length=50, required=False)
    linkedin_url = forms.CharField(
        label="LinkedIn URL",
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "https://www.linkedin.com/in/…"}),
    )
    website = forms.CharField(label="Website", max_length=300, required=False)
    country = forms.CharField(label="Country", max_length=100, required=False)
    city = forms.CharField(label="City", max_length=100, required=False)
    industry = forms.CharField(label="Industry", max_length=200, required=False)

    def __init__(self, *args: Any, existing_custom: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.existing_custom = existing_custom or {}

    @classmethod
    def for_prospect(cls, prospect: Prospect) -> ProspectForm:
        initial = {name: getattr(prospect, name) for name in API_NAME}
        return cls(initial=initial, existing_custom=dict(prospect.custom_fields))

    def submitted_custom(self) -> dict[str, str]:
        """The key/value rows as typed; rows without a key are ignored."""
        if not isinstance(self.data, QueryDict):
            return {}
        keys = self.data.getlist("custom_key")
        values = self.data.getlist("custom_value")
        pairs: dict[str, str] = {}
        for index, key in enumerate(keys):
            if key.strip():
                pairs[key.strip()] = values[index] if index < len(values) else ""
        return pairs

    def custom_rows(self) -> list[tuple[str, str]]:
        """What the page shows: the submitted rows (or the stored ones), then a few blank rows."""
        rows = list((self.submitted_custom() if self.is_bound else self.existing_custom).items())
        return rows + [("", "")] * BLANK_CUSTOM_ROWS

    def service_data(self) -> dict[str, Any]:
        """The cleaned form in the services' vocabulary. On edit, a stored custom field whose row
        was cleared is sent as "" (the service's way to remove one)."""
        data: dict[str, Any] = {API_NAME[name]: value for name, value in self.cleaned_data.items()}
        removed = {key: "" for key in self.existing_custom}
        data["customFields"] = {**removed, **self.submitted_custom()}
        return data


class StatusFilter(forms.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            choices=[("", "Any status"), *GlobalStatus.choices], required=False, **kwargs
        )


class ProspectFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Search name, email, company"}
        ),
    )
    list = forms.ModelChoiceField(
        queryset=ProspectList.objects.none(),
        required=False,
        empty_label="All lists",
        to_field_name="pk",
    )
    status = StatusFilter()

    def __init__(self, *args: Any, lists: QuerySet[ProspectList], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["list"].queryset = lists  # type: ignore[attr-defined]
        self.fields["list"].error_messages["invalid_choice"] = "There is no such list."


class BulkAddForm(forms.Form):
    prospect = UUIDListField(required=False)
    list = forms.UUIDField(error_messages={"required": "Choose a list to add the prospects to."})
    next = forms.CharField(required=False)


class SelectionForm(forms.Form):
    prospect = UUIDListField(required=False)


# --- lists ----------------------------------------------------------------------------------


class ListForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    color = forms.CharField(
        label="Color",
        max_length=20,
        initial="#4f46e5",
        widget=forms.TextInput(attrs={"type": "color"}),
    )


# --- suppression ----------------------------------------------------------------------------


class SuppressionForm(forms.Form):
    value = forms.CharField(
        label="Email or domain",
        max_length=254,
        widget=forms.TextInput(attrs={"placeholder": "jane@example.com or example.com"}),
    )
    reason = forms.CharField(
        label="Reason (optional)",
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. asked not to be contacted"}),
    )


class BlocklistSearchForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=254,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Search address, domain, reason"}
        ),
    )


# --- CSV import -----------------------------------------------------------------------------


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
        error_messages={"required": "Choose a CSV file to upload."},
    )

    def read(self) -> bytes:
        """The upload's bytes, at most one byte past the size limit so the import service can
        refuse an oversized file without this process holding all of it in memory."""
        upload = self.cleaned_data["file"]
        return bytes(upload.read(settings.IMPORT_MAX_BYTES + 1))


def target_label(target: str, labels: dict[str, str]) -> str:
    if target.startswith("custom:"):
        return "Custom: " + target.removeprefix("custom:")
    return labels.get(target, target)


class MappingForm(forms.Form):
    """One select per CSV header (`map_<index>`), then where the imported prospects go."""

    target_list = forms.ModelChoiceField(
        queryset=ProspectList.objects.none(),
        required=False,
        empty_label="No list",
        label="Add to an existing list",
    )
    new_list_name = forms.CharField(
        required=False,
        max_length=200,
        label="…or create a new list",
        widget=forms.TextInput(attrs={"placeholder": "New list name"}),
    )

    def __init__(
        self,
        *args: Any,
        job: ImportJob,
        choices: list[tuple[str, str]],
        lists: QuerySet[ProspectList],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.job = job
        self.fields["target_list"].queryset = lists  # type: ignore[attr-defined]
        self.fields["target_list"].error_messages["invalid_choice"] = "There is no such list."
        labels = dict(choices)
        builtin = [(value, label) for value, label in choices if not value.startswith("custom:")]
        if not any(value == "" for value, _ in builtin):
            builtin.insert(0, ("", "Skip this column"))
        self.header_fields: list[tuple[str, str]] = []
        for index, header in enumerate(job.headers):
            name = f"map_{index}"
            # Each column may become a custom field named after it, whatever it is mapped to now.
            own = "custom:" + imports.custom_field_name(header, index + 1)
            current = job.mapping.get(header, "")
            options = list(builtin)
            extra = [t for t in dict.fromkeys([current, own]) if t.startswith("custom:")]
            options += [(t, target_label(t, labels)) for t in extra]
            self.fields[name] = forms.ChoiceField(
                choices=options, required=False, initial=current, label=header
            )
            self.header_fields.append((header, name))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("target_list") and (data.get("new_list_name") or "").strip():
            raise forms.ValidationError("Choose an existing list or name a new one, not both.")
        return data

    def rows(self, preview: list[list[str]]) -> list[tuple[str, forms.BoundField, list[str]]]:
        """Each column with its select and its values in the preview rows."""
        return [
            (header, self[name], [row[index] for row in preview if index < len(row)])
            for index, (header, name) in enumerate(self.header_fields)
        ]

    def mapping(self) -> dict[str, str]:
        return {header: self.cleaned_data.get(name) or "" for header, name in self.header_fields}
