"""Forms of the campaign pages. They parse and check what a person can fix in place (ranges, the
window's order, template syntax with its line and column); `services.py` validates and decides,
and its messages are put back on the form with `add_service_error`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from django import forms
from django.db.models import Count
from django.http import QueryDict

from warmysender.email import rendering
from warmysender.mailboxes.models import HARD_DAILY_CAP, Mailbox
from warmysender.mailboxes.services import valid_timezones
from warmysender.prospects.models import ProspectList
from warmysender.sequences.models import Campaign, Step
from warmysender.sequences.services import MAX_STEPS, SETTABLE, CampaignError, StepInput
from warmysender.sequences.windows import WEEKDAY_NAMES

# The services' field names (the API's) → the form field that shows their message.
FORM_NAME = {
    "name": "name",
    "dailySendLimit": "daily_send_limit",
    "timezone": "timezone",
    "scheduleDays": "schedule_days",
    "sendingWindowStart": "window_start_hour",
    "sendingWindowEnd": "window_end_hour",
    "startDate": "start_date",
    "endDate": "end_date",
}
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
MAX_PASTED_EMAILS = 1000
STEP_PREFIX = "steps"


def add_service_error(form: forms.Form, steps: BaseStepFormSet, error: CampaignError) -> None:
    """Show a service's message next to the field (or step) it names, or at the top."""
    field = error.field or ""
    if field.startswith("steps."):
        index = int(field.removeprefix("steps.")) - 1 if field[6:].isdigit() else -1
        if 0 <= index < len(steps.forms):
            steps.forms[index].add_error(None, error.message)
            return
    if field == "mailboxIds":
        form.add_error(None, f"Mailboxes: {error.message}")
        return
    name = FORM_NAME.get(field)
    form.add_error(name if name in form.fields else None, error.message)


# --- the editor status line ---------------------------------------------------------------


@dataclass(frozen=True)
class EditorStatus:
    """What the status line under a subject and body says: spintax variations, or the first
    template problem of each part with its line and column."""

    subject_variations: int
    body_variations: int
    problems: list[str]

    @property
    def total(self) -> int:
        return self.subject_variations * self.body_variations


def describe_problem(problem: rendering.TemplateProblem) -> str:
    where = f"line {problem.line}, column {problem.column}: " if problem.line else ""
    return f"{problem.part.capitalize()} {where}{problem.message}"


def editor_status(subject: str, body_html: str) -> EditorStatus:
    return EditorStatus(
        subject_variations=rendering.variation_count(subject),
        body_variations=rendering.variation_count(body_html),
        problems=[describe_problem(p) for p in rendering.check_template(subject, body_html)],
    )


# --- steps --------------------------------------------------------------------------------


class StepForm(forms.Form):
    """One step: its delay, threading, variant A, and an optional variant B."""

    delay_days = forms.IntegerField(label="Wait (days)", min_value=0, max_value=365, initial=0)
    delay_hours = forms.IntegerField(label="and hours", min_value=0, max_value=23, initial=0)
    same_thread = forms.BooleanField(label="Reply in the same thread", required=False, initial=True)
    subject = forms.CharField(
        label="Subject",
        required=False,
        strip=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "true"}),
    )
    body_html = forms.CharField(
        label="Body (HTML)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 7, "spellcheck": "true"}),
        error_messages={"required": "Write the email body."},
    )
    ab = forms.BooleanField(label="A/B test this step with a variant B", required=False)
    b_label = forms.CharField(label="Variant B label", max_length=8, required=False, initial="B")
    b_weight = forms.IntegerField(
        label="Variant B weight",
        min_value=0,
        max_value=100,
        required=False,
        initial=100,
        help_text="Relative to variant A's 100: 100 sends B to half the prospects, 50 to a third.",
    )
    b_subject = forms.CharField(
        label="Variant B subject",
        required=False,
        strip=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    b_body_html = forms.CharField(
        label="Variant B body (HTML)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 7}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self._check_templates("subject", "body_html")
        if data.get("ab"):
            label = (data.get("b_label") or "").strip()
            if not label:
                self.add_error("b_label", "Give variant B a label.")
            elif label.upper() == "A":
                self.add_error("b_label", "Variant A is the first variant; choose another label.")
            data["b_label"] = label
            if data.get("b_weight") is None and "b_weight" not in self.errors:
                self.add_error("b_weight", "Give variant B a weight from 0 to 100.")
            if not (data.get("b_body_html") or "").strip():
                self.add_error("b_body_html", "Write variant B's body, or untick the A/B test.")
            self._check_templates("b_subject", "b_body_html")
        return data

    def _check_templates(self, subject_field: str, body_field: str) -> None:
        subject = self.cleaned_data.get(subject_field) or ""
        body = self.cleaned_data.get(body_field) or ""
        for problem in rendering.check_template(subject, body):
            field = subject_field if problem.part == "subject" else body_field
            if field not in self.errors:
                self.add_error(field, describe_problem(problem))

    def status(self, variant: str = "a") -> EditorStatus:
        """The status line as the page first shows it (later ones come from the endpoint)."""
        prefix = "b_" if variant == "b" else ""
        subject = self[f"{prefix}subject"].value() or ""
        body = self[f"{prefix}body_html"].value() or ""
        return editor_status(str(subject), str(body))

    def status_b(self) -> EditorStatus:
        return self.status("b")

    def step_input(self, index: int) -> StepInput:
        data = self.cleaned_data
        variants: list[tuple[str, str, str, int]] = []
        if data.get("ab"):
            variants.append(
                (data["b_label"], data["b_subject"], data["b_body_html"], data["b_weight"])
            )
        return StepInput(
            step_index=index,
            subject=data["subject"],
            body_html=data["body_html"],
            delay_days=data["delay_days"],
            delay_hours=data["delay_hours"],
            same_thread=data["same_thread"],
            variants=variants,
        )


if TYPE_CHECKING:
    _FormSet = forms.BaseFormSet[StepForm]
else:  # BaseFormSet is generic for the type checker only
    _FormSet = forms.BaseFormSet


class BaseStepFormSet(_FormSet):
    default_error_messages = {
        "too_few_forms": "A campaign needs at least one step.",
        "too_many_forms": f"A campaign has at most {MAX_STEPS} steps.",
        "missing_management_form": "The steps of the form are missing; reload the page.",
    }

    def clean(self) -> None:
        super().clean()
        for index, form in enumerate(self.forms):
            if not hasattr(form, "cleaned_data") or "subject" in form.errors:
                continue
            if form.cleaned_data.get("subject", "").strip():
                continue
            if index == 0:
                form.add_error("subject", "The first step needs a subject.")
            elif not form.cleaned_data.get("same_thread"):
                form.add_error(
                    "subject", "A step that starts a new thread needs a subject of its own."
                )

    def step_inputs(self) -> list[StepInput]:
        return [form.step_input(index) for index, form in enumerate(self.forms, start=1)]


StepFormSet = cast(
    type[BaseStepFormSet],
    forms.formset_factory(
        StepForm,
        formset=BaseStepFormSet,
        extra=0,
        min_num=1,
        max_num=MAX_STEPS,
        absolute_max=MAX_STEPS,
        validate_min=True,
        validate_max=True,
    ),
)

NEW_STEP: dict[str, Any] = {
    "delay_days": 3,
    "delay_hours": 0,
    "same_thread": True,
    "subject": "",
    "body_html": "",
    "ab": False,
    "b_label": "B",
    "b_weight": 100,
    "b_subject": "",
    "b_body_html": "",
}
FIRST_STEP = {**NEW_STEP, "delay_days": 0}


def steps_initial(campaign: Campaign) -> list[dict[str, Any]]:
    """The saved steps as the builder's initial data: variant A and the first other variant."""
    rows = []
    steps = campaign.steps.prefetch_related("variants").order_by("step_index")
    for step in steps:
        variants = list(step.variants.all())
        a = next((v for v in variants if v.label == "A"), variants[0] if variants else None)
        b = next((v for v in variants if v is not a), None)
        rows.append(
            {
                "delay_days": step.delay_days,
                "delay_hours": step.delay_hours,
                "same_thread": step.same_thread,
                "subject": a.subject if a else "",
                "body_html": a.body_html if a else "",
                "ab": b is not None,
                "b_label": b.label if b else "B",
                "b_weight": b.weight if b else 100,
                "b_subject": b.subject if b else "",
                "b_body_html": b.body_html if b else "",
            }
        )
    return rows or [dict(FIRST_STEP)]


def has_more_than_two_variants(campaign: Campaign) -> bool:
    """The builder edits variants A and B; a step with more (made through the API) is not
    editable here, or saving would drop them."""
    return (
        Step.objects.filter(campaign=campaign)
        .annotate(variant_count=Count("variants"))
        .filter(variant_count__gt=2)
        .exists()
    )


def _raw(form: forms.Form, data: QueryDict) -> dict[str, Any]:
    """A form's submitted values as initial data, so it can be shown again unvalidated."""
    initial: dict[str, Any] = {}
    for name, field in form.fields.items():
        key = form.add_prefix(name)
        if isinstance(field, forms.MultipleChoiceField):
            initial[name] = data.getlist(key)
        elif isinstance(field, forms.BooleanField):
            initial[name] = data.get(key, "") not in ("", "false", "0", "off")
        else:
            initial[name] = data.get(key, "")
    return initial


def steps_from_data(data: QueryDict) -> list[dict[str, Any]]:
    """The submitted steps as initial data (for adding or removing one without saving)."""
    try:
        total = int(data.get(f"{STEP_PREFIX}-TOTAL_FORMS", "1"))
    except ValueError:
        total = 1
    total = max(1, min(total, MAX_STEPS))
    return [_raw(StepForm(prefix=f"{STEP_PREFIX}-{i}"), data) for i in range(total)]


def change_steps(rows: list[dict[str, Any]], op: str) -> list[dict[str, Any]]:
    """`add` appends a step; `remove-<n>` removes the n-th (1-based), never the last one left."""
    if op == "add" and len(rows) < MAX_STEPS:
        return [*rows, dict(NEW_STEP)]
    match = re.fullmatch(r"remove-(\d+)", op)
    if match and len(rows) > 1:
        index = int(match.group(1)) - 1
        if 0 <= index < len(rows):
            return rows[:index] + rows[index + 1 :]
    return rows


# --- the campaign's settings --------------------------------------------------------------


DAY_CHOICES = [(str(i), name) for i, name in enumerate(WEEKDAY_NAMES)]
START_HOURS = [(str(h), f"{h:02d}:00") for h in range(24)]
END_HOURS = [(str(h), f"{h:02d}:00") for h in range(1, 25)]


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(valid_timezones())]


def _local_datetime_field(label: str) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=False,
        input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT),
        help_text="In the campaign's time zone.",
    )


class CampaignForm(forms.Form):
    """Name and settings, plus one checkbox and one optional cap per mailbox
    (`mailbox_<id>`, `cap_<id>`)."""

    name = forms.CharField(label="Campaign name", max_length=200)
    daily_send_limit = forms.IntegerField(
        label="Daily send limit",
        min_value=1,
        max_value=10_000,
        initial=50,
        help_text="Emails a day from this campaign across all its mailboxes (1–10,000).",
    )
    timezone = forms.ChoiceField(
        label="Time zone",
        choices=timezone_choices,
        initial="UTC",
        error_messages={
            "invalid_choice": "Unknown time zone %(value)s: choose an IANA name such as "
            "Europe/Berlin or America/New_York."
        },
    )
    schedule_days = forms.TypedMultipleChoiceField(
        label="Active days",
        choices=DAY_CHOICES,
        coerce=int,
        initial=["0", "1", "2", "3", "4"],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one active day."},
    )
    window_start_hour = forms.TypedChoiceField(
        label="Window start", choices=START_HOURS, coerce=int, initial="9"
    )
    window_end_hour = forms.TypedChoiceField(
        label="Window end", choices=END_HOURS, coerce=int, initial="17"
    )
    randomize_within_window = forms.BooleanField(
        label="Spread the first sends of a day over the window", required=False, initial=True
    )
    min_minutes_between_sends = forms.IntegerField(
        label="Minutes between sends",
        min_value=0,
        max_value=1440,
        initial=0,
        help_text="At least this long between two sends of this campaign from one mailbox.",
    )
    stop_on_reply = forms.BooleanField(label="Stop on reply", required=False, initial=True)
    stop_on_bounce = forms.BooleanField(label="Stop on bounce", required=False, initial=True)
    track_opens = forms.BooleanField(label="Track opens", required=False, initial=True)
    track_clicks = forms.BooleanField(label="Track clicks", required=False, initial=True)
    start_date = _local_datetime_field("Start date (optional)")
    end_date = _local_datetime_field("End date (optional)")

    def __init__(self, *args: Any, mailboxes: Iterable[Mailbox], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mailboxes = list(mailboxes)
        for mailbox in self.mailboxes:
            self.fields[f"mailbox_{mailbox.pk}"] = forms.BooleanField(
                label=mailbox.email, required=False
            )
            self.fields[f"cap_{mailbox.pk}"] = forms.IntegerField(
                label=f"Max sends per day from {mailbox.email}",
                min_value=1,
                max_value=HARD_DAILY_CAP,
                required=False,
            )

    @classmethod
    def initial_for(cls, campaign: Campaign) -> dict[str, Any]:
        zone = ZoneInfo(campaign.timezone)
        initial: dict[str, Any] = {
            "name": campaign.name,
            "daily_send_limit": campaign.daily_send_limit,
            "timezone": campaign.timezone,
            "schedule_days": [str(d) for d in campaign.schedule_days],
            "window_start_hour": str(campaign.window_start_hour),
            "window_end_hour": str(campaign.window_end_hour),
            "randomize_within_window": campaign.randomize_within_window,
            "min_minutes_between_sends": campaign.min_minutes_between_sends,
            "stop_on_reply": campaign.stop_on_reply,
            "stop_on_bounce": campaign.stop_on_bounce,
            "track_opens": campaign.track_opens,
            "track_clicks": campaign.track_clicks,
            "start_date": _local(campaign.start_date, zone),
            "end_date": _local(campaign.end_date, zone),
        }
        for entry in campaign.pool.all():
            initial[f"mailbox_{entry.mailbox_id}"] = True
            initial[f"cap_{entry.mailbox_id}"] = entry.max_sends_per_day
        return initial

    @classmethod
    def shown_again(cls, data: QueryDict, *, mailboxes: Iterable[Mailbox]) -> CampaignForm:
        """The submitted settings, unvalidated (the page is shown again after adding a step)."""
        form = cls(mailboxes=mailboxes)
        form.initial = _raw(form, data)
        return form

    def mailbox_rows(self) -> list[tuple[Mailbox, forms.BoundField, forms.BoundField]]:
        return [(m, self[f"mailbox_{m.pk}"], self[f"cap_{m.pk}"]) for m in self.mailboxes]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("window_start_hour"), data.get("window_end_hour")
        if start is not None and end is not None and end <= start:
            self.add_error(
                "window_end_hour",
                f"The window must end after it starts ({start:02d}:00); choose a later end.",
            )
        zone_name = data.get("timezone")
        if zone_name:
            zone = ZoneInfo(zone_name)
            for name in ("start_date", "end_date"):
                value = data.get(name)
                if isinstance(value, datetime):
                    data[name] = value.replace(tzinfo=None).replace(tzinfo=zone)
        if (
            data.get("start_date")
            and data.get("end_date")
            and data["end_date"] <= data["start_date"]
        ):
            self.add_error("end_date", "The end date must be after the start date.")
        return data

    def settings(self) -> dict[str, Any]:
        """The cleaned settings in the services' vocabulary (model field names)."""
        keys = sorted(SETTABLE - {"name"})
        return {key: self.cleaned_data[key] for key in keys}

    def pool(self) -> list[tuple[uuid.UUID, int | None]]:
        return [
            (m.pk, self.cleaned_data.get(f"cap_{m.pk}"))
            for m in self.mailboxes
            if self.cleaned_data.get(f"mailbox_{m.pk}")
        ]


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime(LOCAL_FORMAT) if value else ""


# --- enrolling, preview, review -----------------------------------------------------------


_EMAIL_SPLIT = re.compile(r"[\s,;]+")


class EnrollForm(forms.Form):
    prospect_list = forms.ModelChoiceField(
        label="From a list",
        queryset=ProspectList.objects.none(),
        required=False,
        empty_label="Choose a list…",
        error_messages={"invalid_choice": "There is no such list."},
    )
    emails = forms.CharField(
        label="…or paste email addresses",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "ada@example.com, grace@example.org"}
        ),
        help_text="One or more addresses of existing prospects, separated by commas or lines.",
    )

    def __init__(self, *args: Any, lists: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prospect_list"].queryset = lists  # type: ignore[attr-defined]

    def clean_emails(self) -> list[str]:
        raw = self.cleaned_data.get("emails") or ""
        emails = [e.lower() for e in _EMAIL_SPLIT.split(raw) if e]
        emails = list(dict.fromkeys(emails))
        if len(emails) > MAX_PASTED_EMAILS:
            raise forms.ValidationError(
                f"Paste at most {MAX_PASTED_EMAILS:,} addresses at once, or enroll a list."
            )
        wrong = [e for e in emails if "@" not in e.strip("@")]
        if wrong:
            raise forms.ValidationError(f"Not an email address: {', '.join(wrong[:5])}.")
        return emails

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not data.get("prospect_list") and not data.get("emails"):
            raise forms.ValidationError("Choose a list or paste at least one email address.")
        return data


class PreviewForm(forms.Form):
    prospect = forms.UUIDField(required=False)
    email = forms.CharField(required=False, max_length=254)
    seed = forms.IntegerField(required=False, min_value=0, max_value=1_000_000)


class ResolveForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("mark_sent", "Mark as sent"), ("send_again", "Send again")],
        error_messages={"invalid_choice": "Choose “Mark as sent” or “Send again”."},
    )
