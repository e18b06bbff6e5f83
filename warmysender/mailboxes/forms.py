"""Forms of the mailbox pages. They only parse; `services.py` validates and decides, and its
messages are put back on the form with `add_service_error`."""

from __future__ import annotations

from typing import Any

from django import forms

from warmysender.mailboxes.models import HARD_DAILY_CAP, Mailbox, MailboxKind, Security
from warmysender.mailboxes.presets import CUSTOM, provider_choices
from warmysender.mailboxes.services import (
    FROM_NAME_MAX,
    HOST_MAX,
    PASSWORD_MAX,
    SIGNATURE_MAX,
    USERNAME_MAX,
    MailboxError,
    valid_timezones,
)

# Form field → the name the services speak (camelCase, as in the API).
API_NAME = {
    "email": "email",
    "provider": "provider",
    "from_name": "fromName",
    "smtp_host": "smtpHost",
    "smtp_port": "smtpPort",
    "smtp_security": "smtpSecurity",
    "smtp_username": "smtpUsername",
    "smtp_password": "smtpPassword",
    "imap_host": "imapHost",
    "imap_port": "imapPort",
    "imap_security": "imapSecurity",
    "imap_username": "imapUsername",
    "imap_password": "imapPassword",
    "daily_limit": "dailyLimit",
    "sending_enabled": "sendingEnabled",
    "signature": "signature",
    "signature_is_html": "signatureIsHtml",
    "timezone": "timezone",
}
FORM_NAME = {api: form for form, api in API_NAME.items()}
SERVER_FIELDS = (
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "smtp_password",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
    "imap_password",
)


def add_service_error(form: forms.Form, error: MailboxError) -> None:
    """Show a service's message next to the field it names, or at the top of the form."""
    name = FORM_NAME.get(error.field or "")
    form.add_error(name if name in form.fields else None, error.message)


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(valid_timezones())]


def _security_field(label: str) -> forms.ChoiceField:
    return forms.ChoiceField(label=label, choices=Security.choices, required=False)


def _password_field(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=PASSWORD_MAX,
        required=False,
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )


class _ServerFields(forms.Form):
    smtp_host = forms.CharField(label="SMTP host", max_length=HOST_MAX, required=False)
    smtp_port = forms.IntegerField(label="SMTP port", min_value=1, max_value=65535, required=False)
    smtp_security = _security_field("SMTP security")
    smtp_username = forms.CharField(
        label="SMTP username",
        max_length=USERNAME_MAX,
        required=False,
        help_text="Your full email address, unless your provider says otherwise.",
    )
    imap_host = forms.CharField(
        label="IMAP host",
        max_length=HOST_MAX,
        required=False,
        help_text="Needed to detect replies and bounces.",
    )
    imap_port = forms.IntegerField(label="IMAP port", min_value=1, max_value=65535, required=False)
    imap_security = _security_field("IMAP security")
    imap_username = forms.CharField(label="IMAP username", max_length=USERNAME_MAX, required=False)


class MailboxCreateForm(_ServerFields):
    provider = forms.ChoiceField(label="Provider", choices=provider_choices, initial="gmail")
    email = forms.CharField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    from_name = forms.CharField(label="From name", max_length=FROM_NAME_MAX, required=False)
    smtp_password = _password_field("Password")
    imap_password = _password_field("IMAP password", "Leave empty to use the same password.")
    daily_limit = forms.IntegerField(
        label="Daily limit",
        min_value=1,
        max_value=HARD_DAILY_CAP,
        initial=30,
        help_text="20–30 a day for the first two weeks of a new mailbox.",
    )
    timezone = forms.ChoiceField(
        label="Time zone",
        choices=timezone_choices,
        initial="UTC",
        help_text="The daily limit resets at midnight here.",
    )

    field_order = [
        "provider",
        "email",
        "from_name",
        "smtp_password",
        *SERVER_FIELDS,
        "daily_limit",
        "timezone",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            # What the page's script would fill in for the first provider, so the form is
            # right without JavaScript too.
            from warmysender.mailboxes.presets import get_preset

            preset = get_preset(str(self.fields["provider"].initial))
            for name in ("smtp_host", "smtp_port", "smtp_security"):
                self.initial.setdefault(name, getattr(preset, name))
            for name in ("imap_host", "imap_port", "imap_security"):
                self.initial.setdefault(name, getattr(preset, name))

    def service_data(self) -> dict[str, Any]:
        """The values typed, in the services' names. Empty server fields are left out so the
        provider's preset fills them."""
        data = self.cleaned_data
        result: dict[str, Any] = {
            "provider": data["provider"],
            "email": data["email"],
            "fromName": data["from_name"],
            "dailyLimit": data["daily_limit"],
            "timezone": data["timezone"],
        }
        if data["provider"] == "sandbox":
            return result
        for name in SERVER_FIELDS:
            value = data.get(name)
            if value not in (None, ""):
                result[API_NAME[name]] = value
        if not any(result.get(k) for k in ("imapHost", "imapPort", "imapUsername", "imapPassword")):
            # The security select always sends a value; alone it does not ask for IMAP.
            result.pop("imapSecurity", None)
        return result

    def unsaved_mailbox(self) -> Mailbox:
        """A Mailbox built from the form (not saved), for "Test connection" before saving."""
        from warmysender.mailboxes.presets import default_port, get_preset

        data = self.cleaned_data
        preset = get_preset(data["provider"])
        smtp_security = data.get("smtp_security") or preset.smtp_security
        imap_security = data.get("imap_security") or preset.imap_security
        imap_host = (data.get("imap_host") or preset.imap_host).strip().lower()
        email = data["email"].strip().lower()
        return Mailbox(
            email=email,
            kind=MailboxKind.SANDBOX if data["provider"] == "sandbox" else MailboxKind.SMTP,
            provider=data["provider"],
            smtp_host=(data.get("smtp_host") or preset.smtp_host).strip().lower(),
            smtp_port=data.get("smtp_port")
            or preset.smtp_port
            or default_port("smtp", smtp_security),
            smtp_security=smtp_security,
            smtp_username=data.get("smtp_username") or email,
            imap_host=imap_host,
            imap_port=(
                data.get("imap_port") or preset.imap_port or default_port("imap", imap_security)
            )
            if imap_host
            else None,
            imap_security=imap_security,
            imap_username=data.get("imap_username") or data.get("smtp_username") or email,
        )

    def passwords(self) -> tuple[str, str]:
        smtp = (self.cleaned_data.get("smtp_password") or "").strip()
        imap = (self.cleaned_data.get("imap_password") or "").strip() or smtp
        return smtp, imap


class MailboxSettingsForm(_ServerFields):
    """The detail page's edit form. Server fields are shown for SMTP mailboxes only; empty
    password fields keep the stored passwords."""

    from_name = forms.CharField(label="From name", max_length=FROM_NAME_MAX, required=False)
    daily_limit = forms.IntegerField(
        label="Daily limit", min_value=1, max_value=HARD_DAILY_CAP, help_text="1–500 per day."
    )
    sending_enabled = forms.BooleanField(label="Sending enabled", required=False)
    timezone = forms.ChoiceField(
        label="Time zone", choices=timezone_choices, help_text="The daily limit resets here."
    )
    signature = forms.CharField(
        label="Signature",
        max_length=SIGNATURE_MAX,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Inserted where a template says {{signature}}; never added on its own.",
    )
    signature_is_html = forms.BooleanField(label="The signature is HTML", required=False)
    smtp_password = _password_field("New SMTP password", "Leave empty to keep the current one.")
    imap_password = _password_field("New IMAP password", "Leave empty to keep the current one.")

    field_order = [
        "from_name",
        "daily_limit",
        "sending_enabled",
        "timezone",
        "signature",
        "signature_is_html",
        *SERVER_FIELDS,
    ]

    def __init__(self, *args: Any, mailbox: Mailbox, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mailbox = mailbox
        if mailbox.kind == MailboxKind.SANDBOX:
            for name in SERVER_FIELDS:
                del self.fields[name]
        else:
            self.fields["smtp_host"].required = True
            self.fields["smtp_port"].required = True

    @classmethod
    def for_mailbox(cls, mailbox: Mailbox) -> MailboxSettingsForm:
        initial = {
            form: getattr(mailbox, form)
            for form in API_NAME
            if hasattr(mailbox, form) and not form.endswith("password")
        }
        return cls(initial=initial, mailbox=mailbox)

    def service_data(self) -> dict[str, Any]:
        """Only what differs from the mailbox, so an untouched form changes nothing (and does
        not re-test the connection)."""
        data = self.cleaned_data
        result: dict[str, Any] = {}
        for name, value in data.items():
            if name.endswith("password"):
                if value and value.strip():
                    result[API_NAME[name]] = value
                continue
            if name in ("smtp_security", "imap_security") and not value:
                continue
            current = getattr(self.mailbox, name)
            if name == "imap_port" and value is None:
                continue
            if value != current:
                result[API_NAME[name]] = None if name == "imap_host" and not value else value
        if self.mailbox.kind == MailboxKind.SANDBOX:
            result = {k: v for k, v in result.items() if FORM_NAME[k] not in SERVER_FIELDS}
        return result


class DailyLimitForm(forms.Form):
    daily_limit = forms.IntegerField(label="Daily limit", min_value=1, max_value=HARD_DAILY_CAP)


class SendingForm(forms.Form):
    sending_enabled = forms.BooleanField(required=False)


def preset_data() -> dict[str, dict[str, Any]]:
    """What the Add mailbox page's script fills in per provider."""
    from warmysender.mailboxes.presets import PRESETS

    data: dict[str, dict[str, Any]] = {
        code: {
            "smtp_host": p.smtp_host,
            "smtp_port": p.smtp_port,
            "smtp_security": p.smtp_security,
            "imap_host": p.imap_host,
            "imap_port": p.imap_port,
            "imap_security": p.imap_security,
            "help": p.help_text,
            "custom": code == CUSTOM,
        }
        for code, p in PRESETS.items()
    }
    data["sandbox"] = {
        "sandbox": True,
        "help": "Mail is captured here instead of being sent: try the product without a real "
        "mailbox. Captured messages are listed on the mailbox's page.",
    }
    return data
