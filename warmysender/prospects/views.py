"""Pages for prospects, lists, CSV import and the blocklist.

Each view parses a form, calls one service, then renders or redirects. The clock is read once
per request. Every id in a URL or a form is looked up inside `request.workspace`, so another
workspace's ids answer 404 exactly like missing ones.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.contrib import messages
from django.db.models import Count, Model, Prefetch, Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warmysender.accounts.decorators import WorkspaceRequest, workspace_required
from warmysender.accounts.models import Role
from warmysender.accounts.quotas import QuotaExceeded, SubscriptionInactive
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.audit.services import Actor
from warmysender.prospects import imports, services
from warmysender.prospects.forms import (
    BlocklistSearchForm,
    BulkAddForm,
    ListForm,
    MappingForm,
    ProspectFilterForm,
    ProspectForm,
    SelectionForm,
    SuppressionForm,
    UploadForm,
    add_service_error,
)
from warmysender.prospects.models import (
    GlobalStatus,
    ImportJob,
    ImportStatus,
    Prospect,
    ProspectList,
    Suppression,
)

PAGE_SIZE = 50
HISTORY_SIZE = 20
M = TypeVar("M", bound=Model)


def _actor(request: WorkspaceRequest) -> Actor:
    return Actor.person(request.user)


def _can_manage(request: WorkspaceRequest) -> bool:
    return request.membership.has_role(Role.ADMIN)


def _is_htmx(request: WorkspaceRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _safe_next(request: WorkspaceRequest, target: str, fallback: str) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


# --- keyset pagination, newest first by (created_at, id) --------------------------------------


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    next_cursor: str | None
    prev_cursor: str | None


def _encode_cursor(row: Any) -> str:
    raw = json.dumps([row.created_at.isoformat(), str(row.pk)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    """A malformed cursor means "start from the first page", never an error page."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None:
            return None
        return created_at, uuid.UUID(pk)
    except (ValueError, TypeError):
        return None


def keyset_page(
    qs: QuerySet[M], *, after: str = "", before: str = "", size: int = PAGE_SIZE
) -> Page:
    """One page of `qs`. Unlike OFFSET, a keyset shows each row once even while rows are added
    between page loads, and it stays fast deep into a large workspace."""
    back = _decode_cursor(before) if before else None
    forward = _decode_cursor(after) if after and back is None else None
    if back is not None:
        created_at, pk = back
        rows = list(
            qs.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=pk)).order_by(
                "created_at", "id"
            )[: size + 1]
        )
        has_prev = len(rows) > size
        rows = rows[:size][::-1]
        has_next = True
    else:
        if forward is not None:
            created_at, pk = forward
            qs = qs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))
        rows = list(qs.order_by("-created_at", "-id")[: size + 1])
        has_next = len(rows) > size
        rows = rows[:size]
        has_prev = forward is not None
    return Page(
        rows=rows,
        next_cursor=_encode_cursor(rows[-1]) if rows and has_next else None,
        prev_cursor=_encode_cursor(rows[0]) if rows and has_prev else None,
    )


def _page_of(request: WorkspaceRequest, qs: QuerySet[M]) -> Page:
    return keyset_page(qs, after=request.GET.get("after", ""), before=request.GET.get("before", ""))


def _lists(request: WorkspaceRequest) -> QuerySet[ProspectList]:
    return ProspectList.objects.filter(workspace=request.workspace).order_by("name")


def _with_lists(qs: QuerySet[Prospect]) -> QuerySet[Prospect]:
    return qs.prefetch_related(Prefetch("lists", queryset=ProspectList.objects.order_by("name")))


# --- prospects ------------------------------------------------------------------------------


@require_GET
@workspace_required
def prospect_list(request: WorkspaceRequest) -> HttpResponse:
    lists = _lists(request)
    filters = ProspectFilterForm(request.GET, lists=lists)
    if filters.is_valid():
        chosen = filters.cleaned_data["list"]
        qs = services.search_prospects(
            request.workspace,
            query=filters.cleaned_data["q"],
            list_id=chosen.pk if chosen else None,
            status=filters.cleaned_data["status"],
        )
    else:
        qs = Prospect.objects.none()
    page = _page_of(request, _with_lists(qs))
    context = {
        "nav": "prospects",
        "filters": filters,
        "page": page,
        "lists": lists,
        "filtered": any(request.GET.get(k) for k in ("q", "list", "status")),
        "statuses": GlobalStatus,
    }
    template = "prospects/prospect_list.html"
    if _is_htmx(request) and request.headers.get("HX-Target") == "prospect-table":
        template += "#table"
    response = render(request, template, context)
    # The same URL answers with the whole page or just the table; caches must keep both apart.
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@require_http_methods(["GET", "POST"])
@workspace_required
def prospect_create(request: WorkspaceRequest) -> HttpResponse:
    form = ProspectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.create_prospect(
                workspace=request.workspace,
                data=form.service_data(),
                actor=_actor(request),
                now=timezone.now(),
            )
        except services.ProspectError as exc:
            add_service_error(form, exc)
        except (QuotaExceeded, SubscriptionInactive) as exc:
            form.add_error(None, str(exc))
        else:
            if result.created:
                messages.success(request, f"Added {result.prospect.email}.")
            else:
                messages.info(
                    request, f"{result.prospect.email} was already a prospect; nothing changed."
                )
            return redirect("prospect-detail", pk=result.prospect.pk)
    return render(
        request,
        "prospects/prospect_form.html",
        {"nav": "prospects", "form": form, "title": "Add prospect"},
        status=400 if form.errors else 200,
    )


@require_GET
@workspace_required
def prospect_detail(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    prospect = get_in_workspace(Prospect, request.workspace, pk)
    member_of = prospect.lists.order_by("name")
    return render(
        request,
        "prospects/prospect_detail.html",
        {
            "nav": "prospects",
            "prospect": prospect,
            "member_of": member_of,
            "other_lists": _lists(request).exclude(pk__in=member_of.values("pk")),
            "can_manage": _can_manage(request),
            "custom_fields": sorted(prospect.custom_fields.items()),
        },
    )


@require_http_methods(["GET", "POST"])
@workspace_required
def prospect_edit(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    prospect = get_in_workspace(Prospect, request.workspace, pk)
    if request.method == "POST":
        form = ProspectForm(request.POST, existing_custom=dict(prospect.custom_fields))
        if form.is_valid():
            try:
                services.update_prospect(
                    prospect=prospect,
                    data=form.service_data(),
                    actor=_actor(request),
                    now=timezone.now(),
                )
            except services.ProspectError as exc:
                add_service_error(form, exc)
                prospect.refresh_from_db()
            else:
                messages.success(request, "Saved.")
                return redirect("prospect-detail", pk=prospect.pk)
    else:
        form = ProspectForm.for_prospect(prospect)
    return render(
        request,
        "prospects/prospect_form.html",
        {"nav": "prospects", "form": form, "prospect": prospect, "title": f"Edit {prospect.email}"},
        status=400 if form.errors else 200,
    )


@require_POST
@workspace_required(min_role=Role.ADMIN)
def prospect_delete(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    prospect = get_in_workspace(Prospect, request.workspace, pk)
    email = prospect.email
    services.delete_prospect(prospect=prospect, actor=_actor(request), now=timezone.now())
    messages.success(request, f"Deleted {email}.")
    return redirect("prospect-list")


@require_POST
@workspace_required
def prospect_bulk_add(request: WorkspaceRequest) -> HttpResponse:
    form = BulkAddForm(request.POST)
    fallback = reverse("prospect-list")
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(_safe_next(request, request.POST.get("next", ""), fallback))
    prospect_list = get_in_workspace(ProspectList, request.workspace, form.cleaned_data["list"])
    ids = form.cleaned_data["prospect"]
    if not ids:
        messages.error(request, "Select at least one prospect first.")
    else:
        added = services.add_to_list(
            prospect_list=prospect_list,
            prospect_ids=ids,
            actor=_actor(request),
            now=timezone.now(),
        )
        already = len(ids) - added
        note = f" ({already} already in it)" if already > 0 else ""
        messages.success(
            request,
            f"Added {added} prospect{'s' if added != 1 else ''} to {prospect_list.name}{note}.",
        )
    return redirect(_safe_next(request, form.cleaned_data["next"], fallback))


# --- lists ----------------------------------------------------------------------------------


def _list_index(request: WorkspaceRequest, form: ListForm, status: int = 200) -> HttpResponse:
    lists = _lists(request).annotate(prospect_count=Count("listmembership"))
    return render(
        request,
        "prospects/list_index.html",
        {"nav": "lists", "lists": lists, "form": form},
        status=status,
    )


@require_GET
@workspace_required
def list_index(request: WorkspaceRequest) -> HttpResponse:
    return _list_index(request, ListForm())


@require_POST
@workspace_required
def list_create(request: WorkspaceRequest) -> HttpResponse:
    form = ListForm(request.POST)
    if form.is_valid():
        try:
            created = services.create_list(
                workspace=request.workspace,
                name=form.cleaned_data["name"],
                color=form.cleaned_data["color"],
                actor=_actor(request),
                now=timezone.now(),
            )
        except services.ProspectError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Created the list {created.name}.")
            return redirect("list-detail", pk=created.pk)
    return _list_index(request, form, status=400)


def _list_detail(
    request: WorkspaceRequest, prospect_list: ProspectList, form: ListForm, status: int = 200
) -> HttpResponse:
    qs = _with_lists(
        Prospect.objects.filter(
            workspace=request.workspace, listmembership__prospect_list=prospect_list
        )
    )
    return render(
        request,
        "prospects/list_detail.html",
        {
            "nav": "lists",
            "prospect_list": prospect_list,
            "count": prospect_list.listmembership_set.count(),
            "page": _page_of(request, qs),
            "form": form,
            "can_manage": _can_manage(request),
        },
        status=status,
    )


@require_GET
@workspace_required
def list_detail(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    prospect_list = get_in_workspace(ProspectList, request.workspace, pk)
    form = ListForm(initial={"name": prospect_list.name, "color": prospect_list.color})
    return _list_detail(request, prospect_list, form)


@require_POST
@workspace_required
def list_edit(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    prospect_list = get_in_workspace(ProspectList, request.workspace, pk)
    form = ListForm(request.POST)
    if form.is_valid():
        try:
            services.update_list(
                prospect_list=prospect_list,
                name=form.cleaned_data["name"],
                color=form.cleaned_data["color"],
                actor=_actor(request),
                now=timezone.now(),
            )
        except services.ProspectError as exc:
            add_service_error(form, exc)
            prospect_list.refresh_from_db()
        else:
            messages.success(request, "Saved.")
            return redirect("list-detail", pk=prospect_list.pk)
    return _list_detail(request, prospect_list, form, status=400)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def list_delete(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    prospect_list = get_in_workspace(ProspectList, request.workspace, pk)
    name = prospect_list.name
    services.delete_list(prospect_list=prospect_list, actor=_actor(request), now=timezone.now())
    messages.success(request, f"Deleted the list {name}; its prospects are kept.")
    return redirect("list-index")


@require_POST
@workspace_required
def list_remove_prospects(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    prospect_list = get_in_workspace(ProspectList, request.workspace, pk)
    form = SelectionForm(request.POST)
    if not form.is_valid() or not form.cleaned_data["prospect"]:
        messages.error(request, "Select at least one prospect first.")
    else:
        removed = services.remove_from_list(
            prospect_list=prospect_list,
            prospect_ids=form.cleaned_data["prospect"],
            actor=_actor(request),
            now=timezone.now(),
        )
        messages.success(
            request,
            f"Removed {removed} prospect{'s' if removed != 1 else ''} from {prospect_list.name}.",
        )
    return redirect("list-detail", pk=prospect_list.pk)


# --- CSV import -----------------------------------------------------------------------------


def _import_new(request: WorkspaceRequest, form: UploadForm, status: int = 200) -> HttpResponse:
    history = (
        ImportJob.objects.filter(workspace=request.workspace)
        .select_related("target_list")
        .defer("content", "report")
        .order_by("-created_at")[:HISTORY_SIZE]
    )
    return render(
        request,
        "prospects/import_new.html",
        {"nav": "import", "form": form, "history": history},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@workspace_required
def import_new(request: WorkspaceRequest) -> HttpResponse:
    if request.method != "POST":
        return _import_new(request, UploadForm())
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            job = imports.start_import(
                workspace=request.workspace,
                actor=_actor(request),
                file_name=form.cleaned_data["file"].name,
                data=form.read(),
                now=timezone.now(),
            )
        except imports.ImportRejected as exc:
            form.add_error("file", exc.message)
        else:
            return redirect("import-map", pk=job.pk)
    return _import_new(request, form, status=400)


def _job(request: WorkspaceRequest, pk: uuid.UUID, *, without: tuple[str, ...]) -> ImportJob:
    """The job in this workspace, without the (large) fields named in `without`."""
    job = (
        ImportJob.objects.select_related("target_list", "created_by")
        .defer(*without)
        .filter(workspace=request.workspace, pk=pk)
        .first()
    )
    if job is None:
        raise Http404("No import with this id.")
    return job


@require_http_methods(["GET", "POST"])
@workspace_required
def import_map(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    job = get_in_workspace(ImportJob, request.workspace, pk)
    if job.status != ImportStatus.MAPPING:
        return redirect("import-detail", pk=job.pk)
    form = MappingForm(
        request.POST or None, job=job, choices=imports.MAPPING_CHOICES, lists=_lists(request)
    )
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["target_list"]
        try:
            imports.confirm_import(
                job=job,
                mapping=form.mapping(),
                target_list_id=target.pk if target else None,
                new_list_name=form.cleaned_data["new_list_name"],
                actor=_actor(request),
                now=timezone.now(),
            )
        except imports.ImportRejected as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("import-detail", pk=job.pk)
    preview = imports.preview_rows(job, limit=5)
    return render(
        request,
        "prospects/import_map.html",
        {
            "nav": "import",
            "job": job,
            "form": form,
            "preview": preview,
            "mapping_rows": form.rows(preview),
            "warning": imports.mapping_warning(job.mapping),
        },
        status=400 if form.errors else 200,
    )


def _import_context(job: ImportJob) -> dict[str, Any]:
    return {
        "nav": "import",
        "job": job,
        "done": job.status in (ImportStatus.COMPLETED, ImportStatus.FAILED),
        "skipped": job.duplicate_count + job.suppressed_count + job.invalid_count,
    }


@require_GET
@workspace_required
def import_detail(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    job = _job(request, pk, without=("content", "report"))
    if job.status == ImportStatus.MAPPING:
        return redirect("import-map", pk=job.pk)
    return render(request, "prospects/import_detail.html", _import_context(job))


@require_GET
@workspace_required
def import_progress(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    job = _job(request, pk, without=("content", "report"))
    return render(request, "prospects/import_detail.html#progress", _import_context(job))


@require_GET
@workspace_required
def import_report(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    job = _job(request, pk, without=("content",))
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", job.file_name.rsplit(".", 1)[0])[:80] or "import"
    response = HttpResponse(imports.report_csv(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{stem}-report.csv"'
    return response


# --- blocklist ------------------------------------------------------------------------------


def _blocklist(request: WorkspaceRequest, form: SuppressionForm, status: int = 200) -> HttpResponse:
    search = BlocklistSearchForm(request.GET)
    qs = Suppression.objects.filter(workspace=request.workspace).select_related("created_by")
    query = search.cleaned_data["q"].strip() if search.is_valid() else ""
    if query:
        qs = qs.filter(Q(value__icontains=query) | Q(reason__icontains=query))
    return render(
        request,
        "prospects/blocklist.html",
        {
            "nav": "blocklist",
            "form": form,
            "search": search,
            "query": query,
            "page": _page_of(request, qs),
            "can_manage": _can_manage(request),
        },
        status=status,
    )


@require_GET
@workspace_required
def blocklist(request: WorkspaceRequest) -> HttpResponse:
    return _blocklist(request, SuppressionForm())


@require_POST
@workspace_required(min_role=Role.ADMIN)
def blocklist_add(request: WorkspaceRequest) -> HttpResponse:
    form = SuppressionForm(request.POST)
    if form.is_valid():
        try:
            entry, created = services.add_suppression(
                workspace=request.workspace,
                value=form.cleaned_data["value"],
                reason=form.cleaned_data["reason"],
                actor=_actor(request),
                now=timezone.now(),
            )
        except services.ProspectError as exc:
            add_service_error(form, exc)
        else:
            if created:
                messages.success(request, f"Blocked the {entry.kind} {entry.value}.")
            else:
                messages.info(request, f"The {entry.kind} {entry.value} was already blocked.")
            return redirect("blocklist")
    return _blocklist(request, form, status=400)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def blocklist_remove(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    entry = get_in_workspace(Suppression, request.workspace, pk)
    value = entry.value
    services.remove_suppression(entry=entry, actor=_actor(request), now=timezone.now())
    messages.success(request, f"Removed {value} from the blocklist.")
    return redirect("blocklist")
