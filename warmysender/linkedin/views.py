"""Pages for LinkedIn accounts: the list with live pills and the reconnect banner, the account
panel (type, strategy, ramp week, caps with usage, proxy, ⋮ menu), the connect wizard, the
one-click reconnect page from the 24-hour email, and the two Unipile callbacks.

Members look; admins and owners connect, reconnect, sync and disconnect. Every id in a URL is
looked up inside `request.workspace`, so another workspace's ids answer 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warmysender.accounts.decorators import WorkspaceRequest, workspace_required
from warmysender.accounts.models import Role
from warmysender.accounts.quotas import QuotaExceeded
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.audit.services import Actor
from warmysender.linkedin import connection, intake, limits, services
from warmysender.linkedin.models import (
    AccountStatus,
    LinkedInAccount,
    ProxyMode,
    Strategy,
)
from warmysender.linkedin.proxies import COUNTRIES, ProxyError, parse_proxy

CONNECTING_SLOW = services.CONNECTING_GRACE


@dataclass(frozen=True)
class Pill:
    css: str  # "ok" green, "" blue, "warn" amber, "bad" red
    text: str
    reconnect: bool = False


def pill_for(account: LinkedInAccount, now: datetime) -> Pill:
    """The live pill, exactly as the product describes it (the first-connected date is shown
    apart, never in the pill)."""
    status = account.status
    if status == AccountStatus.CONNECTED:
        if account.last_activity_at:
            return Pill("ok", f"Connected · last activity {_ago(account.last_activity_at, now)}")
        return Pill("ok", "Connected")
    if status == AccountStatus.CONNECTING:
        if now - account.status_changed_at < CONNECTING_SLOW:
            return Pill("", "Linking — finishing connection")
        return Pill("warn", "Linking — taking longer than expected")
    if status == AccountStatus.RESTRICTED:
        return Pill("bad", "Restricted")
    return Pill("bad" if status == AccountStatus.DISCONNECTED else "warn", "Reconnect needed", True)


def _ago(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return "moments ago"
    if seconds < 3600:
        return f"{seconds // 60} minutes ago"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} hours ago"
    return f"{seconds // 86400} days ago"


def _actor(request: WorkspaceRequest) -> Actor:
    return Actor.person(request.user)


def _can_manage(request: WorkspaceRequest) -> bool:
    return request.membership.has_role(Role.ADMIN)


def _client_or_message(request: HttpRequest) -> Any:
    try:
        return connection.make_client()
    except services.LinkedInError as exc:
        messages.error(request, exc.message)
        return None


# --- list and panel -------------------------------------------------------------------------


@require_GET
@workspace_required
def account_list(request: WorkspaceRequest) -> HttpResponse:
    now = timezone.now()
    accounts = list(
        LinkedInAccount.objects.filter(
            workspace=request.workspace, deleted_at__isnull=True
        ).order_by("created_at")
    )
    rows = [{"a": a, "pill": pill_for(a, now)} for a in accounts]
    needing = sum(1 for r in rows if r["pill"].reconnect)
    return render(
        request,
        "linkedin/account_list.html",
        {
            "nav": "linkedin",
            "rows": rows,
            "needing_reconnect": needing,
            "can_manage": _can_manage(request),
            "simulator_controls_url": _simulator_controls_url(),
        },
    )


def _simulator_controls_url() -> str | None:
    """The simulator's control page, where a person trying the product expires a session and
    watches the account turn to "Reconnect needed"; never shown against the real Unipile."""
    if settings.LINKEDIN_BACKEND != "simulator" or not settings.UNIPILE_DSN:
        return None
    return f"{str(settings.UNIPILE_DSN).rstrip('/')}/_sim/"


KIND_LABELS = {
    limits.INVITE: ("Invites", "this week"),
    limits.MESSAGE: ("Messages", "today"),
    limits.INMAIL: ("InMails", "today"),
    limits.PROFILE_VIEW: ("Profile views", "today"),
    limits.ENGAGEMENT: ("Engagements", "today"),
}


@require_GET
@workspace_required
def account_detail(request: WorkspaceRequest, pk: str) -> HttpResponse:
    now = timezone.now()
    account = get_in_workspace(LinkedInAccount, request.workspace, pk, deleted_at__isnull=True)
    caps = services.effective_caps(account, now)
    used = services.usage(account, now)
    cap_rows = []
    for kind in limits.KINDS:
        label, window = KIND_LABELS[kind]
        cap = caps[kind]
        cap_rows.append(
            {
                "kind": kind,
                "label": label,
                "window": window,
                "used": used[kind],
                "cap": cap,
                "percent": round(100 * used[kind] / cap) if cap else 0,
            }
        )
    week, weeks = limits.ramp_progress(account.strategy, account.ramp_started_at, now)
    return render(
        request,
        "linkedin/account_detail.html",
        {
            "nav": "linkedin",
            "a": account,
            "pill": pill_for(account, now),
            "caps": cap_rows,
            "week": week,
            "weeks": weeks,
            "can_manage": _can_manage(request),
            "countries": COUNTRIES,
            "cooling": account.cooldown_until and account.cooldown_until > now,
        },
    )


# --- the connect wizard -------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@workspace_required(min_role=Role.ADMIN)
def connect_wizard(request: WorkspaceRequest) -> HttpResponse:
    now = timezone.now()
    context: dict[str, Any] = {
        "nav": "linkedin",
        "countries": COUNTRIES,
        "strategies": Strategy.choices,
        "values": request.POST if request.method == "POST" else {},
        "errors": {},
    }
    if request.method == "GET":
        return render(request, "linkedin/connect.html", context)
    method = request.POST.get("method", "hosted")
    mode = request.POST.get("proxy_mode", ProxyMode.AUTO)
    value = (
        request.POST.get("proxy_country")
        if mode == ProxyMode.COUNTRY
        else request.POST.get("proxy_url")
    )
    try:
        proxy = parse_proxy(mode, value)
        if method == "hosted" and proxy.mode != ProxyMode.AUTO:
            raise services.LinkedInError(
                "The Unipile sign-in page picks the proxy automatically; choose “Sign in here” "
                "to connect through a country or custom proxy.",
                field="method",
            )
        if method not in ("hosted", "credentials"):
            raise services.LinkedInError("Choose how to sign in.", field="method")
        client = connection.make_client()
        account = services.create_account(
            request.workspace,
            proxy=proxy,
            strategy=request.POST.get("strategy", Strategy.NEW_ACCOUNT),
            actor=_actor(request),
            now=now,
        )
    except ProxyError as exc:
        context["errors"] = {"proxy": exc.message}
        return render(request, "linkedin/connect.html", context, status=400)
    except services.LinkedInError as exc:
        context["errors"] = {exc.field or "form": exc.message}
        return render(request, "linkedin/connect.html", context, status=400)
    except QuotaExceeded as exc:
        context["errors"] = {"form": exc.message}
        return render(request, "linkedin/connect.html", context, status=403)
    if method == "credentials":
        return redirect("linkedin:login", pk=account.pk)
    try:
        url = connection.hosted_connect_link(account, client, now=now)
    except services.LinkedInError as exc:
        messages.error(request, exc.message)
        return redirect("linkedin:detail", pk=account.pk)
    return redirect(url)


@require_http_methods(["GET", "POST"])
@workspace_required(min_role=Role.ADMIN)
def credentials_login(request: WorkspaceRequest, pk: str) -> HttpResponse:
    """Sign in with LinkedIn credentials through Unipile (the proxy is passed), then answer
    any checkpoint (2FA, OTP, in-app validation, CAPTCHA) within its validity."""
    now = timezone.now()
    account = get_in_workspace(LinkedInAccount, request.workspace, pk, deleted_at__isnull=True)
    context: dict[str, Any] = {"nav": "linkedin", "a": account, "error": "", "checkpoint": ""}
    if request.method == "GET":
        return render(request, "linkedin/login.html", context)
    client = _client_or_message(request)
    if client is None:
        return redirect("linkedin:detail", pk=account.pk)
    try:
        if "code" in request.POST:
            step = connection.solve_checkpoint(
                account, client, code=request.POST.get("code", ""), now=now
            )
        elif "li_at" in request.POST:
            step = connection.connect_with_cookie(
                account,
                client,
                li_at=request.POST.get("li_at", ""),
                li_a=request.POST.get("li_a", ""),
                user_agent=request.POST.get("user_agent", ""),
                now=now,
            )
        else:
            step = connection.connect_with_credentials(
                account,
                client,
                username=request.POST.get("username", ""),
                password=request.POST.get("password", ""),
                now=now,
            )
    except services.LinkedInError as exc:
        context["error"] = exc.message
        context["checkpoint"] = request.POST.get("checkpoint", "") if "code" in request.POST else ""
        return render(request, "linkedin/login.html", context, status=400)
    if not step.connected:
        context["checkpoint"] = step.checkpoint
        return render(request, "linkedin/login.html", context)
    messages.success(request, "LinkedIn account connected.")
    return redirect("linkedin:detail", pk=account.pk)


@require_GET
@workspace_required
def returned(request: WorkspaceRequest, pk: str) -> HttpResponse:
    """Where Unipile's sign-in page sends the person back to."""
    account = get_in_workspace(LinkedInAccount, request.workspace, pk)
    if request.GET.get("failed"):
        messages.error(request, "The LinkedIn sign-in did not finish; try again.")
    elif account.status != AccountStatus.CONNECTED:
        messages.info(request, "Finishing the connection with Unipile; this takes a few seconds.")
    return redirect("linkedin:accounts")


# --- ⋮ menu -------------------------------------------------------------------------------------


@require_POST
@workspace_required(min_role=Role.ADMIN)
def reconnect(request: WorkspaceRequest, pk: str) -> HttpResponse:
    account = get_in_workspace(LinkedInAccount, request.workspace, pk, deleted_at__isnull=True)
    return _start_reconnect(request, account)


def _start_reconnect(request: HttpRequest, account: LinkedInAccount) -> HttpResponse:
    client = _client_or_message(request)
    if client is None:
        return redirect("linkedin:accounts")
    try:
        url = connection.reconnect_link(account, client, now=timezone.now())
    except services.LinkedInError as exc:
        messages.error(request, exc.message)
        return redirect("linkedin:accounts")
    return redirect(url)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def sync(request: WorkspaceRequest, pk: str) -> HttpResponse:
    account = get_in_workspace(LinkedInAccount, request.workspace, pk, deleted_at__isnull=True)
    client = _client_or_message(request)
    if client is not None:
        try:
            report = connection.sync_status(account, client, now=timezone.now())
            account.refresh_from_db()
            messages.success(
                request,
                f"Status synced: {account.get_status_display()}."
                + (" (guard: " + "; ".join(report.messages) + ")" if report.messages else ""),
            )
        except services.LinkedInError as exc:
            messages.error(request, exc.message)
    return redirect("linkedin:detail", pk=account.pk)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def disconnect(request: WorkspaceRequest, pk: str) -> HttpResponse:
    account = get_in_workspace(LinkedInAccount, request.workspace, pk, deleted_at__isnull=True)
    services.disconnect_by_user(account, actor=_actor(request), now=timezone.now())
    messages.success(request, f"{account} disconnected; its campaigns wait until you reconnect.")
    return redirect("linkedin:accounts")


@require_POST
@workspace_required(min_role=Role.ADMIN)
def change_proxy(request: WorkspaceRequest, pk: str) -> HttpResponse:
    account = get_in_workspace(LinkedInAccount, request.workspace, pk, deleted_at__isnull=True)
    mode = request.POST.get("proxy_mode", "")
    value = (
        request.POST.get("proxy_country")
        if mode == ProxyMode.COUNTRY
        else request.POST.get("proxy_url")
    )
    try:
        services.change_proxy(account, mode, value, actor=_actor(request), now=timezone.now())
        messages.success(
            request, "Proxy changed. It applies from the next connection: reconnect the account."
        )
    except services.LinkedInError as exc:
        messages.error(request, exc.message)
    return redirect("linkedin:detail", pk=account.pk)


# --- the one-click reconnect link from the 24-hour email ----------------------------------------


@require_http_methods(["GET", "POST"])
def reconnect_from_email(request: HttpRequest, token: str) -> HttpResponse:
    """No WarmySender log-in needed: the signed link names the account. GET shows the screen
    (a mail scanner following the link starts nothing); the button POSTs."""
    try:
        account = services.account_from_reconnect_token(token)
    except services.LinkedInError as exc:
        return render(request, "linkedin/reconnect_email.html", {"error": exc.message}, status=404)
    if request.method == "POST":
        return _start_reconnect(request, account)
    return render(
        request,
        "linkedin/reconnect_email.html",
        {"a": account, "pill": pill_for(account, timezone.now())},
    )


# --- Unipile callbacks ----------------------------------------------------------------------


@csrf_exempt
@require_POST
def unipile_webhook(request: HttpRequest) -> HttpResponse:
    try:
        result = intake.receive(
            request.body,
            request.headers.get(intake.SECRET_HEADER),
            now=timezone.now(),
            client=_optional_client(),
        )
    except intake.IntakeError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    return JsonResponse(
        {
            "ok": True,
            "event": result.event.type,
            "duplicate": result.duplicate,
            "ignored": result.ignored,
        }
    )


@csrf_exempt
@require_POST
def hosted_notify(request: HttpRequest, token: str) -> HttpResponse:
    account = connection.account_from_hosted_token(token)
    if account is None:
        return JsonResponse({"error": "unknown or expired callback"}, status=404)
    try:
        result = intake.receive_hosted_notify(
            request.body, account, now=timezone.now(), client=_optional_client()
        )
    except intake.IntakeError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    except services.LinkedInError as exc:
        # e.g. the LinkedIn account is already connected as another card.
        return JsonResponse({"error": exc.message}, status=409)
    return JsonResponse({"ok": True, "duplicate": result.duplicate})


def _optional_client() -> Any:
    try:
        return connection.make_client()
    except services.LinkedInError:
        return None
