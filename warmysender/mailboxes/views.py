"""Pages for mailboxes: the list (inline daily limit and sending switch), Add mailbox with
provider presets and "Test connection", the detail page with its settings, deletion, and the
messages a sandbox mailbox captured.

Each view parses a form, calls one service, then renders or redirects. Members may look; admins
and owners change things. Every id in a URL is looked up inside `request.workspace`, so another
workspace's ids answer 404 exactly like missing ones.
"""

from __future__ import annotations

import uuid

import nh3
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warmysender.accounts.decorators import WorkspaceRequest, workspace_required
from warmysender.accounts.models import Role
from warmysender.accounts.quotas import (
    QuotaExceeded,
    SubscriptionInactive,
    require_active_subscription,
)
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.audit.services import Actor
from warmysender.mailboxes import connection_test, services
from warmysender.mailboxes.forms import (
    DailyLimitForm,
    MailboxCreateForm,
    MailboxSettingsForm,
    SendingForm,
    add_service_error,
    preset_data,
)
from warmysender.mailboxes.models import Mailbox, MailboxKind, SandboxMessage

CAPTURED_PAGE_SIZE = 50


def _actor(request: WorkspaceRequest) -> Actor:
    return Actor.person(request.user)


def _can_manage(request: WorkspaceRequest) -> bool:
    return request.membership.has_role(Role.ADMIN)


def _is_htmx(request: WorkspaceRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _row(request: WorkspaceRequest, mailbox: Mailbox, error: str = "") -> HttpResponse:
    # 200 even with an error: htmx swaps only successful answers, and the row shows the error.
    return render(
        request,
        "mailboxes/mailbox_list.html#row",
        {"m": mailbox, "can_manage": _can_manage(request), "row_error": error},
    )


# --- list ---------------------------------------------------------------------------------------


@require_GET
@workspace_required
def mailbox_list(request: WorkspaceRequest) -> HttpResponse:
    mailboxes = Mailbox.objects.filter(workspace=request.workspace).order_by("email")
    return render(
        request,
        "mailboxes/mailbox_list.html",
        {"nav": "mailboxes", "mailboxes": mailboxes, "can_manage": _can_manage(request)},
    )


@require_POST
@workspace_required(min_role=Role.ADMIN)
def mailbox_daily_limit(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    """The list's inline "Edit daily limit": live from the next scheduler tick."""
    mailbox = get_in_workspace(Mailbox, request.workspace, pk)
    form = DailyLimitForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.update_mailbox(
                mailbox,
                {"dailyLimit": form.cleaned_data["daily_limit"]},
                actor=_actor(request),
                now=timezone.now(),
            )
        except services.MailboxError as exc:
            error = exc.message
    else:
        error = "The daily limit is a whole number from 1 to 500."
    if _is_htmx(request):
        return _row(request, mailbox, error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"{mailbox.email} now sends at most {mailbox.daily_limit} a day.")
    return redirect("mailbox-list")


@require_POST
@workspace_required(min_role=Role.ADMIN)
def mailbox_sending(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    """The list's sending switch."""
    mailbox = get_in_workspace(Mailbox, request.workspace, pk)
    form = SendingForm(request.POST)
    enabled = form.is_valid() and bool(form.cleaned_data["sending_enabled"])
    services.update_mailbox(
        mailbox, {"sendingEnabled": enabled}, actor=_actor(request), now=timezone.now()
    )
    if _is_htmx(request):
        return _row(request, mailbox)
    messages.success(request, f"Sending {'enabled' if enabled else 'paused'} for {mailbox.email}.")
    return redirect("mailbox-list")


# --- add --------------------------------------------------------------------------------------------


def _create_page(
    request: WorkspaceRequest, form: MailboxCreateForm, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "mailboxes/mailbox_form.html",
        {"nav": "mailboxes", "form": form, "presets": preset_data()},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@workspace_required(min_role=Role.ADMIN)
def mailbox_create(request: WorkspaceRequest) -> HttpResponse:
    if request.method != "POST":
        return _create_page(request, MailboxCreateForm())
    form = MailboxCreateForm(request.POST)
    if form.is_valid():
        now = timezone.now()
        try:
            require_active_subscription(request.workspace, now)
            mailbox = services.create_mailbox(
                request.workspace, form.service_data(), actor=_actor(request), now=now
            )
        except services.MailboxError as exc:
            add_service_error(form, exc)
        except (QuotaExceeded, SubscriptionInactive) as exc:
            form.add_error(None, str(exc))
        else:
            if mailbox.kind == MailboxKind.SMTP:
                # "Test Connection" is part of connecting: the user sees Connected or the hint.
                report = services.run_connection_test(mailbox, actor=_actor(request), now=now)
                if report.ok:
                    messages.success(request, f"Connected {mailbox.email}.")
                else:
                    messages.error(
                        request,
                        f"Saved {mailbox.email}, but the connection test failed; see below.",
                    )
            else:
                messages.success(request, f"Added the sandbox mailbox {mailbox.email}.")
            return redirect("mailbox-detail", pk=mailbox.pk)
    return _create_page(request, form, status=400)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def mailbox_test_unsaved(request: WorkspaceRequest) -> HttpResponse:
    """The Add page's "Test connection" button: tests what is typed, saves nothing."""
    form = MailboxCreateForm(request.POST)
    context: dict[str, object] = {"form": form}
    if not form.is_valid():
        context["invalid"] = True
        return render(request, "mailboxes/_test_result.html", context, status=400)
    smtp_password, imap_password = form.passwords()
    report = connection_test.test_connection(
        form.unsaved_mailbox(),
        now=timezone.now(),
        smtp_password=smtp_password,
        imap_password=imap_password,
    )
    context["report"] = report
    return render(request, "mailboxes/_test_result.html", context)


# --- one mailbox ---------------------------------------------------------------------------------------


def _detail(
    request: WorkspaceRequest,
    mailbox: Mailbox,
    form: MailboxSettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    if form is None and _can_manage(request):
        form = MailboxSettingsForm.for_mailbox(mailbox)
    return render(
        request,
        "mailboxes/mailbox_detail.html",
        {
            "nav": "mailboxes",
            "mailbox": mailbox,
            "form": form,
            "can_manage": _can_manage(request),
            "captured_count": mailbox.sandbox_messages.count()
            if mailbox.kind == MailboxKind.SANDBOX
            else 0,
            "signature_preview": _sanitized(mailbox.signature) if mailbox.signature_is_html else "",
            "error_hint": _hint_for_stored_error(mailbox),
        },
        status=status,
    )


def _hint_for_stored_error(mailbox: Mailbox) -> str:
    """Advice for an error recorded without one (the sending engine stores the server's words
    only); a connection test's error already carries its hint on its second line."""
    if mailbox.status != "error" or not mailbox.last_error or "\n" in mailbox.last_error:
        return ""
    return connection_test.hint_for(
        mailbox.last_error,
        provider=mailbox.provider,
        port=mailbox.smtp_port,
        security=mailbox.smtp_security,
    )


@require_GET
@workspace_required
def mailbox_detail(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    return _detail(request, get_in_workspace(Mailbox, request.workspace, pk))


@require_POST
@workspace_required(min_role=Role.ADMIN)
def mailbox_edit(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    mailbox = get_in_workspace(Mailbox, request.workspace, pk)
    form = MailboxSettingsForm(request.POST, mailbox=mailbox)
    if form.is_valid():
        try:
            result = services.update_mailbox(
                mailbox, form.service_data(), actor=_actor(request), now=timezone.now()
            )
        except services.MailboxError as exc:
            add_service_error(form, exc)
            mailbox.refresh_from_db()
        else:
            if result.report is None:
                messages.success(request, "Saved." if result.changed else "Nothing changed.")
            elif result.report.ok:
                messages.success(request, "Saved; the connection test passed.")
            else:
                messages.error(request, "Saved, but the connection test failed; see below.")
            return redirect("mailbox-detail", pk=mailbox.pk)
    return _detail(request, mailbox, form, status=400)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def mailbox_test(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    mailbox = get_in_workspace(Mailbox, request.workspace, pk)
    report = services.run_connection_test(mailbox, actor=_actor(request), now=timezone.now())
    if _is_htmx(request):
        return render(
            request,
            "mailboxes/_test_result.html",
            {"report": report, "mailbox": mailbox, "saved": True},
        )
    if report.ok:
        messages.success(request, f"{mailbox.email} is connected.")
    else:
        messages.error(request, "The connection test failed; see below.")
    return redirect("mailbox-detail", pk=mailbox.pk)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def mailbox_delete(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    mailbox = get_in_workspace(Mailbox, request.workspace, pk)
    if request.POST.get("confirm") != mailbox.email:
        messages.error(request, "Type the mailbox's address to confirm the deletion.")
        return redirect("mailbox-detail", pk=mailbox.pk)
    email = mailbox.email
    services.delete_mailbox(mailbox, actor=_actor(request), now=timezone.now())
    messages.success(request, f"Deleted {email}.")
    return redirect("mailbox-list")


# --- captured (sandbox) messages ------------------------------------------------------------------------


def _sandbox(request: WorkspaceRequest, pk: uuid.UUID) -> Mailbox:
    mailbox = get_in_workspace(Mailbox, request.workspace, pk)
    if mailbox.kind != MailboxKind.SANDBOX:
        raise Http404("Only sandbox mailboxes capture messages.")
    return mailbox


@require_GET
@workspace_required
def captured_list(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    mailbox = _sandbox(request, pk)
    rows = list(
        SandboxMessage.objects.filter(mailbox=mailbox)
        .defer("raw", "html", "headers")
        .order_by("-created_at", "-id")[:CAPTURED_PAGE_SIZE]
    )
    return render(
        request,
        "mailboxes/captured_list.html",
        {
            "nav": "mailboxes",
            "mailbox": mailbox,
            "rows": rows,
            "total": SandboxMessage.objects.filter(mailbox=mailbox).count(),
            "page_size": CAPTURED_PAGE_SIZE,
        },
    )


@require_GET
@workspace_required
def captured_detail(
    request: WorkspaceRequest, pk: uuid.UUID, message_pk: uuid.UUID
) -> HttpResponse:
    mailbox = _sandbox(request, pk)
    captured = get_in_workspace(SandboxMessage, request.workspace, message_pk, mailbox=mailbox)
    return render(
        request,
        "mailboxes/captured_detail.html",
        {
            "nav": "mailboxes",
            "mailbox": mailbox,
            "message": captured,
            "headers": sorted(captured.headers.items()),
            "html": _sanitized(captured.html),
        },
    )


def _sanitized(html: str) -> str:
    """HTML safe to show: no scripts, handlers or remote frames. It is shown in a sandboxed
    iframe (no scripts, no same-origin) on top of this."""
    return nh3.clean(html, link_rel="noopener noreferrer nofollow") if html else ""
