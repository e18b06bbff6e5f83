"""Public endpoints reached from inside an email — the unsubscribe page, the open pixel and click
redirects: no log-in, no session, no CSRF (the signed link itself is the credential, and RFC
8058 one-click POSTs come from mail providers) — and the Settings → Tracking Domains page."""

from __future__ import annotations

import base64
import uuid

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warmysender.accounts.decorators import WorkspaceRequest, workspace_required
from warmysender.accounts.models import Role
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.audit.services import Actor
from warmysender.email import services, tracking
from warmysender.email.models import HitKind, TrackingDomain
from warmysender.email.unsubscribe import enrollment_for_token, unsubscribe

# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_CACHE = "no-store, no-cache, must-revalidate, max-age=0, private"


@csrf_exempt
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    enrollment = enrollment_for_token(token)
    if enrollment is None:
        return render(request, "email/unsubscribe.html", {"invalid": True}, status=404)
    context = {"workspace": enrollment.workspace.name, "email": enrollment.prospect.email}
    if request.method == "POST":
        # The one-click POST carries "List-Unsubscribe=One-Click"; the page's button does not.
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        unsubscribe(enrollment, now=timezone.now(), one_click=one_click)
        return render(request, "email/unsubscribe.html", {**context, "done": True})
    return render(request, "email/unsubscribe.html", context)


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _pixel_response() -> HttpResponse:
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = NO_CACHE
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """Always the GIF with 200, so a mail client never shows a broken image; a bad token
    records nothing, and neither does a HEAD request."""
    action_id = tracking.action_for_open_token(token)
    if action_id is not None and request.method == "GET":
        services.record_hit(
            HitKind.OPEN,
            action_id,
            ip=_client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            now=timezone.now(),
        )
    return _pixel_response()


@require_http_methods(["GET", "HEAD"])
def click_redirect(request: HttpRequest, token: str) -> HttpResponse:
    """302 to the URL signed into the token; an altered or forged token gets a 400 page and
    never a redirect. HEAD requests (link checkers) are answered but not recorded."""
    target = tracking.target_for_click_token(token)
    if target is None:
        return render(request, "email/bad_link.html", status=400)
    if request.method == "GET":
        services.record_hit(
            HitKind.CLICK,
            target.action_id,
            url=target.url,
            ip=_client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
            now=timezone.now(),
        )
    response = HttpResponseRedirect(target.url)
    response["Cache-Control"] = NO_CACHE
    response["Referrer-Policy"] = "no-referrer"
    return response


# --- Settings → Tracking Domains ----------------------------------------------------------------


class TrackingDomainForm(forms.Form):
    domain = forms.CharField(
        max_length=253,
        label="Domain",
        help_text="A sub-domain of yours, such as track.example.com.",
        widget=forms.TextInput(attrs={"placeholder": "track.example.com", "autocomplete": "off"}),
    )


def _actor(request: WorkspaceRequest) -> Actor:
    return Actor.person(request.user)


def _domains_page(
    request: WorkspaceRequest, form: TrackingDomainForm, status: int = 200
) -> HttpResponse:
    from django.conf import settings

    return render(
        request,
        "email/tracking_domains.html",
        {
            "nav": "tracking-domains",
            "form": form,
            "domains": TrackingDomain.objects.filter(workspace=request.workspace),
            "cname_target": settings.TRACKING_CNAME_TARGET,
            "can_manage": request.membership.has_role(Role.ADMIN),
        },
        status=status,
    )


@require_GET
@workspace_required
def tracking_domains(request: WorkspaceRequest) -> HttpResponse:
    return _domains_page(request, TrackingDomainForm())


@require_POST
@workspace_required(min_role=Role.ADMIN)
def tracking_domain_add(request: WorkspaceRequest) -> HttpResponse:
    form = TrackingDomainForm(request.POST)
    if form.is_valid():
        try:
            row = services.add_tracking_domain(
                workspace=request.workspace,
                domain=form.cleaned_data["domain"],
                actor=_actor(request),
                now=timezone.now(),
            )
        except services.TrackingDomainError as exc:
            form.add_error("domain", exc.message)
        else:
            messages.success(
                request,
                f"Added {row.domain}. Create a CNAME record pointing it to {row.cname_target}, "
                "then press Verify.",
            )
            return redirect("tracking-domains")
    return _domains_page(request, form, status=400)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def tracking_domain_verify(request: WorkspaceRequest, pk: uuid.UUID | int) -> HttpResponse:
    row = get_in_workspace(TrackingDomain, request.workspace, pk)
    checked = services.verify_tracking_domain(row=row, actor=_actor(request), now=timezone.now())
    if checked.last_check_error:
        messages.error(request, checked.last_check_error)
    else:
        messages.success(request, f"{checked.domain} is verified: campaigns can use it now.")
    return redirect("tracking-domains")


@require_POST
@workspace_required(min_role=Role.ADMIN)
def tracking_domain_remove(request: WorkspaceRequest, pk: uuid.UUID | int) -> HttpResponse:
    row = get_in_workspace(TrackingDomain, request.workspace, pk)
    name = row.domain
    services.remove_tracking_domain(row=row, actor=_actor(request), now=timezone.now())
    messages.success(
        request, f"Removed {name}; campaigns that used it track through the default address."
    )
    return redirect("tracking-domains")


@require_POST
@workspace_required(min_role=Role.ADMIN)
def campaign_tracking_domain(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    """The campaign page's "Tracking domain" choice."""
    from warmysender.sequences.models import Campaign

    campaign = get_in_workspace(Campaign, request.workspace, pk)
    raw = request.POST.get("tracking_domain", "").strip()
    domain: TrackingDomain | None = None
    if raw:
        if not raw.isdigit():
            messages.error(request, f"{raw!r} is not a tracking domain of this workspace.")
            return redirect("campaign-detail", pk=campaign.pk)
        domain = TrackingDomain.objects.filter(workspace=request.workspace, pk=int(raw)).first()
        if domain is None:
            messages.error(request, "No such tracking domain in this workspace.")
            return redirect("campaign-detail", pk=campaign.pk)
    try:
        services.set_campaign_tracking_domain(
            campaign=campaign, domain=domain, actor=_actor(request), now=timezone.now()
        )
    except services.TrackingDomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Tracking links now use {domain.domain}."
            if domain
            else "Tracking links now use the default address.",
        )
    return redirect("campaign-detail", pk=campaign.pk)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def step_auto_optimize(request: WorkspaceRequest, pk: uuid.UUID, step_pk: int) -> HttpResponse:
    """The campaign page's per-step A/B auto-optimize settings."""
    from warmysender.sequences import ab
    from warmysender.sequences.models import Campaign, Step

    campaign = get_in_workspace(Campaign, request.workspace, pk)
    step = Step.objects.filter(campaign=campaign, pk=step_pk).first()
    if step is None:
        messages.error(request, "That step is not part of this campaign.")
        return redirect("campaign-detail", pk=campaign.pk)
    enabled = request.POST.get("auto_optimize") == "on"
    raw_sample = request.POST.get("ab_min_sample", "").strip()
    raw_confidence = request.POST.get("ab_confidence", "").strip().rstrip("%").strip()
    try:
        min_sample = int(raw_sample)
    except ValueError:
        messages.error(
            request, f"The minimum sample must be a whole number of sends, not {raw_sample!r}."
        )
        return redirect("campaign-detail", pk=campaign.pk)
    try:
        confidence = float(raw_confidence) / 100
    except ValueError:
        messages.error(
            request, f"The confidence must be a percentage such as 95, not {raw_confidence!r}."
        )
        return redirect("campaign-detail", pk=campaign.pk)
    try:
        ab.set_auto_optimize(
            step=step,
            enabled=enabled,
            min_sample=min_sample,
            confidence=confidence,
            actor=_actor(request),
            now=timezone.now(),
        )
    except ab.AbSettingsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Step {step.step_index}: auto-optimize "
            + (
                f"on (at least {min_sample} sends per variant, {100 * confidence:g} % confidence)."
                if enabled
                else "off; the variants' weights apply."
            ),
        )
    return redirect("campaign-detail", pk=campaign.pk)
