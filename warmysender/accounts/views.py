"""Account pages: sign-up, log-in, invitations, workspaces, team and API keys.

Views are thin: parse a form, call one service, render or redirect. The clock is read once per
request. Every lookup of a tenant row goes through `get_in_workspace`, so another workspace's ids
behave like missing ones (404).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from warmysender.accounts import services
from warmysender.accounts.decorators import WorkspaceRequest, workspace_required
from warmysender.accounts.forms import (
    ApiKeyForm,
    InviteForm,
    LoginForm,
    RoleForm,
    SignUpForm,
    WorkspaceForm,
)
from warmysender.accounts.models import (
    ROLE_RANK,
    ApiKey,
    Invitation,
    Membership,
    Role,
    User,
    Workspace,
)
from warmysender.accounts.quotas import (
    QuotaExceeded,
    check_member_capacity,
    check_workspace_capacity,
    plan_state,
)
from warmysender.accounts.services import AccountError
from warmysender.accounts.tenancy import get_in_workspace

# --- helpers ---------------------------------------------------------------------------------


def _safe_next(request: HttpRequest) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


def _invitation_token_in(path: str | None) -> str | None:
    """The token when `path` is an invitation link, so sign-up can pre-fill the email."""
    if not path:
        return None
    try:
        match = resolve(path.split("?", 1)[0])
    except Resolver404:
        return None
    return match.kwargs.get("token") if match.url_name == "invitation-accept" else None


def _form_error(form: Any, exc: AccountError) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)


# --- sign-up, log-in, log-out ----------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    now = timezone.now()
    invitation: Invitation | None = None
    token = _invitation_token_in(next_url)
    if token:
        try:
            invitation = services.invitation_from_token(token, now)
        except AccountError:
            invitation = None
    initial = {"email": invitation.email} if invitation else {}
    form = SignUpForm(request.POST or None, initial=initial, joining=invitation is not None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.sign_up(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                workspace_name=form.cleaned_data["workspace_name"],
                now=now,
            )
        except AccountError as exc:
            _form_error(form, exc)
        else:
            auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    return render(
        request,
        "registration/signup.html",
        {"form": form, "next": next_url, "invitation": invitation},
    )


@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if request.user.is_authenticated and request.method == "GET":
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    form = LoginForm(request.POST or None, request=request, now=timezone.now())
    if request.method == "POST" and form.is_valid():
        assert form.user is not None
        auth_login(request, form.user)
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/login.html", {"form": form, "next": next_url})


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    auth_logout(request)
    messages.info(request, "You are logged out.")
    # From an invitation addressed to someone else: log in as them and come back to it.
    return redirect_to_login(next_url) if next_url else redirect("login")


# --- invitations -----------------------------------------------------------------------------


INVITATION_ERROR_STATUS = {"invalid": 404, "expired": 410, "used": 410, "forbidden": 403}


@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    now = timezone.now()
    context: dict[str, Any] = {"token": token, "here": request.path}
    try:
        invitation = services.invitation_from_token(token, now)
    except AccountError as exc:
        context["error"] = exc.message
        return render(
            request,
            "accounts/invitation.html",
            context,
            status=INVITATION_ERROR_STATUS.get(exc.code, 400),
        )
    context["invitation"] = invitation
    user = request.user
    if not user.is_authenticated:
        if request.method == "POST":
            return redirect_to_login(request.path)
        return render(request, "accounts/invitation.html", context)
    assert isinstance(user, User)
    context["email_matches"] = user.email.lower() == invitation.email.lower()
    if request.method == "POST":
        try:
            services.accept_invitation(invitation=invitation, user=user, now=now)
        except AccountError as exc:
            context["error"] = exc.message
            return render(
                request,
                "accounts/invitation.html",
                context,
                status=INVITATION_ERROR_STATUS.get(exc.code, 400),
            )
        messages.success(
            request,
            f"Welcome to {invitation.workspace.name}: you joined as {invitation.get_role_display().lower()}.",
        )
        return redirect("home")
    return render(request, "accounts/invitation.html", context)


# --- workspaces ------------------------------------------------------------------------------


@login_required
@require_POST
def workspace_switch(request: HttpRequest) -> HttpResponse:
    try:
        workspace_id = uuid.UUID(request.POST.get("workspace", ""))
    except ValueError as exc:
        raise Http404("No such workspace.") from exc
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        raise Http404("No such workspace.")
    assert isinstance(request.user, User)
    try:
        services.switch_workspace(user=request.user, workspace=workspace)
    except AccountError as exc:
        # Not a member: the same answer as for a workspace that does not exist.
        raise Http404(exc.message) from exc
    messages.success(request, f"Switched to {workspace.name}.")
    return redirect("home")


@login_required
@require_http_methods(["GET", "POST"])
def workspace_create(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    user = request.user
    assert isinstance(user, User)
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.create_workspace(
                user=user, name=form.cleaned_data["name"], now=now
            )
        except QuotaExceeded as exc:
            form.add_error(None, exc.message)
        except AccountError as exc:
            _form_error(form, exc)
        else:
            messages.success(
                request, f"Workspace {workspace.name} created; you are now working in it."
            )
            return redirect("home")
    blocked: str | None = None
    try:
        check_workspace_capacity(user, now)
    except QuotaExceeded as exc:
        blocked = exc.message
    return render(
        request,
        "accounts/workspace_create.html",
        {"form": form, "blocked": blocked, "nav": "workspace"},
    )


# --- team ------------------------------------------------------------------------------------


def _team_context(
    request: WorkspaceRequest, now: datetime, invite_form: InviteForm | None = None
) -> dict[str, Any]:
    workspace = request.workspace
    members = sorted(
        Membership.objects.for_workspace(workspace).select_related("user"),
        key=lambda m: (-ROLE_RANK[Role(m.role)], m.user.email),
    )
    pending = (
        Invitation.objects.for_workspace(workspace)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)
        .select_related("invited_by")
        .order_by("created_at")
    )
    invite_blocked: str | None = None
    try:
        check_member_capacity(workspace, now)
    except QuotaExceeded as exc:
        invite_blocked = exc.message
    return {
        "nav": "team",
        "members": members,
        "pending": list(pending),
        "max_members": plan_state(workspace, now).plan.max_members,
        "can_manage": request.membership.has_role(Role.ADMIN),
        "invite_form": invite_form or InviteForm(),
        "invite_blocked": invite_blocked,
        "role_choices": RoleForm.base_fields["role"].choices,  # type: ignore[attr-defined]
    }


@workspace_required
@require_http_methods(["GET"])
def team(request: WorkspaceRequest) -> HttpResponse:
    return render(request, "accounts/team.html", _team_context(request, timezone.now()))


@workspace_required(min_role=Role.ADMIN)
@require_POST
def team_invite(request: WorkspaceRequest) -> HttpResponse:
    now = timezone.now()
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            issued = services.invite(
                workspace=request.workspace,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                actor=request.user,
                now=now,
            )
        except QuotaExceeded as exc:
            form.add_error(None, exc.message)
        except AccountError as exc:
            _form_error(form, exc)
        else:
            invitation = issued.invitation
            messages.success(
                request,
                f"Invitation sent to {invitation.email} as {invitation.get_role_display().lower()}; "
                f"it expires on {invitation.expires_at:%b %-d, %Y}.",
            )
            return redirect("team")
    return render(request, "accounts/team.html", _team_context(request, now, invite_form=form))


@workspace_required(min_role=Role.ADMIN)
@require_POST
def team_member_role(request: WorkspaceRequest, pk: int) -> HttpResponse:
    membership = get_in_workspace(Membership, request.workspace, pk)
    form = RoleForm(request.POST)
    error: str | None = None
    if not form.is_valid():
        error = "Choose admin or member."
    else:
        try:
            membership = services.change_role(
                membership=membership,
                role=form.cleaned_data["role"],
                actor=request.user,
                now=timezone.now(),
            )
        except AccountError as exc:
            error = exc.message
    if request.htmx:  # type: ignore[attr-defined]
        return render(
            request,
            "accounts/team.html#member-row",
            {
                "m": membership,
                "can_manage": True,
                "role_choices": RoleForm.base_fields["role"].choices,  # type: ignore[attr-defined]
                "row_error": error,
                "row_saved": error is None,
            },
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request, f"{membership.user.email} is now {membership.get_role_display().lower()}."
        )
    return redirect("team")


@workspace_required(min_role=Role.ADMIN)
@require_POST
def team_member_remove(request: WorkspaceRequest, pk: int) -> HttpResponse:
    membership = get_in_workspace(Membership, request.workspace, pk)
    try:
        services.remove_member(membership=membership, actor=request.user, now=timezone.now())
    except AccountError as exc:
        messages.error(request, exc.message)
        return redirect("team")
    if membership.user_id == request.user.pk:
        messages.success(request, f"You left {request.workspace.name}.")
        return redirect("home")
    messages.success(request, f"{membership.user.email} was removed from {request.workspace.name}.")
    return redirect("team")


@workspace_required(min_role=Role.ADMIN)
@require_POST
def team_invitation_revoke(request: WorkspaceRequest, pk: int) -> HttpResponse:
    invitation = get_in_workspace(Invitation, request.workspace, pk)
    services.revoke_invitation(invitation=invitation, actor=request.user, now=timezone.now())
    messages.success(request, f"The invitation for {invitation.email} was revoked.")
    return redirect("team")


# --- API keys --------------------------------------------------------------------------------


def _api_keys_context(
    request: WorkspaceRequest, form: ApiKeyForm, issued: services.IssuedKey | None
) -> dict[str, Any]:
    keys = (
        ApiKey.objects.for_workspace(request.workspace)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at")
    )
    return {"nav": "api-keys", "keys": list(keys), "form": form, "issued": issued}


def _no_store(response: HttpResponse) -> HttpResponse:
    # The page may carry a freshly issued key: keep it out of every cache and the history.
    response["Cache-Control"] = "no-store"
    return response


@workspace_required(min_role=Role.ADMIN)
@require_http_methods(["GET", "POST"])
def api_keys(request: WorkspaceRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    issued: services.IssuedKey | None = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.create_api_key(
                workspace=request.workspace,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                actor=request.user,
                now=timezone.now(),
            )
        except AccountError as exc:
            _form_error(form, exc)
        else:
            form = ApiKeyForm()
    context = _api_keys_context(request, form, issued)
    # htmx swaps only the main section, so the address stays a GET and a reload shows the list
    # without the key; without JavaScript the full page is rendered in answer to the POST.
    template = "accounts/api_keys.html#main" if request.htmx else "accounts/api_keys.html"  # type: ignore[attr-defined]
    return _no_store(render(request, template, context, status=201 if issued else 200))


@workspace_required(min_role=Role.ADMIN)
@require_POST
def api_key_revoke(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    key = get_in_workspace(ApiKey, request.workspace, pk)
    services.revoke_api_key(key=key, actor=request.user, now=timezone.now())
    messages.success(
        request, f"The key {key.name} ({key.prefix}…) was revoked; it no longer works."
    )
    return HttpResponseRedirect(reverse("api-keys"))
