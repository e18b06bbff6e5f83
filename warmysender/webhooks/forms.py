from __future__ import annotations

from django import forms

from warmysender.webhooks.formatters import EVENT_TYPES
from warmysender.webhooks.models import ALL_EVENTS
from warmysender.webhooks.services import DESCRIPTION_MAX, URL_MAX

EVENT_CHOICES = [(ALL_EVENTS, "All events (*)"), *[(e, e) for e in EVENT_TYPES]]


class WebhookForm(forms.Form):
    # A CharField, not a URLField: the service explains what is wrong with a URL in words.
    url = forms.CharField(
        label="Endpoint URL",
        max_length=URL_MAX,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/warmysender-hook"}),
        help_text="Slack (hooks.slack.com) and Discord webhook URLs get their own message format.",
    )
    description = forms.CharField(max_length=DESCRIPTION_MAX, required=False)
    events = forms.MultipleChoiceField(
        choices=EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event, or all events."},
    )


class WebhookEditForm(WebhookForm):
    active = forms.BooleanField(
        required=False, label="Active", help_text="Paused webhooks get no new deliveries."
    )
