"""Settings → Webhooks: the list with the create form (the secret shown once), a webhook's page
with its settings, the Test button (htmx) and the recent deliveries, and deletion.

Owners and admins only, like API keys: a webhook sends workspace data to any URL. Ids are looked
up inside `request.workspace`, so another workspace's ids are 404.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warmysender.accounts.decorators import WorkspaceRequest, workspace_required
from warmysender.accounts.models import Role
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.audit.services import Actor
from warmysender.webhooks import services
from warmysender.webhooks.forms import WebhookEditForm, WebhookForm
from warmysender.webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint

RECENT_DELIVERIES = 50


def _actor(request: WorkspaceRequest) -> Actor:
    return Actor.person(request.user)


def _no_store(response: HttpResponse) -> HttpResponse:
    # The page may carry a freshly issued secret: keep it out of caches and the history.
    response["Cache-Control"] = "no-store"
    return response


def _apply_error(form: WebhookForm, exc: services.WebhookError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


@require_http_methods(["GET", "POST"])
@workspace_required(min_role=Role.ADMIN)
def webhook_list(request: WorkspaceRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None)
    created: services.CreatedEndpoint | None = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.create_endpoint(
                request.workspace, form.cleaned_data, actor=_actor(request), now=timezone.now()
            )
        except services.WebhookError as exc:
            _apply_error(form, exc)
        else:
            form = WebhookForm()
    endpoints = WebhookEndpoint.objects.filter(workspace=request.workspace).order_by("-created_at")
    return _no_store(
        render(
            request,
            "webhooks/webhook_list.html",
            {"nav": "webhooks", "form": form, "endpoints": endpoints, "created": created},
            status=201 if created else 200,
        )
    )


def _deliveries(endpoint: WebhookEndpoint) -> dict[str, object]:
    rows = list(
        WebhookDelivery.objects.filter(workspace=endpoint.workspace, endpoint=endpoint).order_by(
            "-created_at"
        )[:RECENT_DELIVERIES]
    )
    # Only a pending delivery (first attempt, e.g. a test) is worth watching live; retries wait
    # minutes to days.
    return {"deliveries": rows, "polling": any(d.state == DeliveryState.PENDING for d in rows)}


@require_http_methods(["GET", "POST"])
@workspace_required(min_role=Role.ADMIN)
def webhook_detail(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    endpoint = get_in_workspace(WebhookEndpoint, request.workspace, pk)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "active": endpoint.active,
    }
    form = WebhookEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_endpoint(
                endpoint, form.cleaned_data, actor=_actor(request), now=timezone.now()
            )
        except services.WebhookError as exc:
            _apply_error(form, exc)
        else:
            messages.success(request, "Webhook saved.")
            return redirect("webhook-detail", pk=endpoint.pk)
    return render(
        request,
        "webhooks/webhook_detail.html",
        {
            "nav": "webhooks",
            "endpoint": endpoint,
            "form": form,
            **_deliveries(endpoint),
        },
    )


@require_GET
@workspace_required(min_role=Role.ADMIN)
def webhook_deliveries(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    """The "Recent deliveries" table alone, for htmx to refresh."""
    endpoint = get_in_workspace(WebhookEndpoint, request.workspace, pk)
    return render(
        request,
        "webhooks/webhook_detail.html#deliveries",
        {"endpoint": endpoint, **_deliveries(endpoint)},
    )


@require_POST
@workspace_required(min_role=Role.ADMIN)
def webhook_test(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    from warmysender.webhooks.tasks import queue_delivery_pass

    endpoint = get_in_workspace(WebhookEndpoint, request.workspace, pk)
    error = ""
    try:
        services.send_test(endpoint, actor=_actor(request), now=timezone.now())
    except services.WebhookError as exc:
        error = exc.message
    else:
        transaction.on_commit(queue_delivery_pass)
    if request.headers.get("HX-Request") == "true":
        return render(
            request,
            "webhooks/webhook_detail.html#deliveries",
            {
                "endpoint": endpoint,
                **_deliveries(endpoint),
                "test_message": error or "Test event queued; it usually arrives within seconds.",
                "test_error": bool(error),
            },
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, "Test event queued; it usually arrives within seconds.")
    return redirect("webhook-detail", pk=endpoint.pk)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def webhook_delete(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    endpoint = get_in_workspace(WebhookEndpoint, request.workspace, pk)
    url = endpoint.url
    services.delete_endpoint(endpoint, actor=_actor(request), now=timezone.now())
    messages.success(request, f"The webhook to {url} was deleted.")
    return redirect("webhook-list")
