"""Forms of the account pages. They parse and validate input; state changes stay in services."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from warmysender.accounts import services
from warmysender.accounts.models import ApiScope, Role, User


def client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "0.0.0.0"


class SignUpForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters; not a common or all-numeric password.",
    )
    workspace_name = forms.CharField(
        max_length=100,
        label="Workspace name",
        help_text="Usually your company or team; you can add more workspaces later.",
    )

    def __init__(self, *args: Any, joining: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if joining:
            # Invited people join someone else's workspace; their own one is optional.
            field = self.fields["workspace_name"]
            field.required = False
            field.help_text = "Optional: you also get a workspace of your own, named this."

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password")
        if password:
            try:
                password_validation.validate_password(
                    password, user=User(email=cleaned.get("email", ""))
                )
            except ValidationError as exc:
                self.add_error("password", exc)
        return cleaned


class LoginForm(forms.Form):
    """Authenticates like Django's AuthenticationForm, with the PostgreSQL-backed lock-out per
    (email, IP): a locked pair is refused before the password is even checked."""

    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True})
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, *args: Any, request: HttpRequest, now: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.now = now
        self.user: User | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        email = (cleaned.get("email") or "").strip().lower()
        password = cleaned.get("password")
        if not email or not password:
            return cleaned
        ip = client_ip(self.request)
        locked_until = services.login_locked_until(email, ip, self.now)
        if locked_until is not None:
            raise ValidationError(lockout_message(locked_until, self.now), code="locked")
        user = authenticate(self.request, email=email, password=password)
        if user is None:
            locked_until = services.register_login_failure(email, ip, self.now)
            if locked_until is not None:
                raise ValidationError(lockout_message(locked_until, self.now), code="locked")
            raise ValidationError("The email or password is incorrect.", code="invalid_login")
        services.clear_login_failures(email, ip)
        assert isinstance(user, User)
        self.user = user
        return cleaned


def lockout_message(locked_until: datetime, now: datetime) -> str:
    minutes = max(1, math.ceil((locked_until - now).total_seconds() / 60))
    return (
        "Too many failed log-ins for this email from your network. "
        f"Try again at {locked_until:%H:%M} UTC (in {minutes} minute{'s' if minutes != 1 else ''}), "
        "or reset your password."
    )


class WorkspaceForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Workspace name", widget=forms.TextInput(attrs={"autofocus": True})
    )


INVITABLE_ROLES = [(Role.MEMBER.value, "Member"), (Role.ADMIN.value, "Admin")]


class InviteForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"placeholder": "name@company.com"})
    )
    role = forms.ChoiceField(choices=INVITABLE_ROLES, initial=Role.MEMBER.value)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=INVITABLE_ROLES)


@dataclass(frozen=True)
class ScopeChoice:
    value: str
    action: str
    checked: bool


@dataclass(frozen=True)
class ScopeGroup:
    resource: str
    choices: list[ScopeChoice]


RESOURCE_LABELS = {
    "prospects": "Prospects",
    "mailboxes": "Mailboxes",
    "warmup": "Warmup",
    "campaigns": "Campaigns",
    "enrollments": "Enrollments",
    "suppressions": "Suppressions",
    "webhooks": "Webhooks",
    "jobs": "Jobs",
    "linkedin": "LinkedIn",
}


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. CRM sync"}),
        help_text="Say where the key is used, so you know what breaks when you revoke it.",
    )
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )

    def scope_groups(self) -> list[ScopeGroup]:
        """The 16 scopes grouped by resource, in declaration order, for a compact grid."""
        selected = set(self["scopes"].value() or [])
        groups: dict[str, list[ScopeChoice]] = {}
        for value in ApiScope.values:
            resource, action = value.split(":", 1)
            groups.setdefault(resource, []).append(ScopeChoice(value, action, value in selected))
        return [ScopeGroup(RESOURCE_LABELS.get(r, r.title()), c) for r, c in groups.items()]
