"""Pages for email campaigns: the list, the builder, the preview and the campaign page with its
lifecycle buttons, enrollments and event log.

Each view parses a form, calls one service, then renders or redirects. The clock is read once
per request. Every id in a URL or a form is looked up inside `request.workspace`, so another
workspace's ids answer 404 exactly like missing ones. Members see everything; changes need the
admin role (`workspace_required(min_role=Role.ADMIN)`, the friendly 403 page otherwise).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.db.models import Count, F, IntegerField, Min, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from warmysender.accounts.decorators import WorkspaceRequest, workspace_required
from warmysender.accounts.models import Role
from warmysender.accounts.quotas import SubscriptionInactive, plan_state
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.audit.services import Actor
from warmysender.email.models import TrackingDomain
from warmysender.mailboxes.models import Mailbox, MailboxStatus
from warmysender.prospects.models import Prospect, ProspectList
from warmysender.prospects.views import Page, keyset_page
from warmysender.sequences import services
from warmysender.sequences.caps import local_day
from warmysender.sequences.forms import (
    FIRST_STEP,
    STEP_PREFIX,
    CampaignForm,
    EnrollForm,
    PreviewForm,
    ResolveForm,
    StepFormSet,
    add_service_error,
    change_steps,
    editor_status,
    has_more_than_two_variants,
    steps_from_data,
    steps_initial,
)
from warmysender.sequences.models import (
    ACTIVE_ENROLLMENT,
    Action,
    ActionState,
    Campaign,
    CampaignEvent,
    CampaignMailbox,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
    PauseReason,
    SendCounter,
)
from warmysender.sequences.windows import describe_next, is_open, next_opening

EDITABLE = (CampaignStatus.DRAFT, CampaignStatus.PAUSED)
PAUSABLE = (CampaignStatus.RUNNING, CampaignStatus.SCHEDULED, CampaignStatus.COOLDOWN)
STARTABLE = (CampaignStatus.DRAFT, CampaignStatus.PAUSED)
EVENT_LOG_SIZE = 50
PREVIEW_CHOICES = 200
_STATUS_PREFIX = re.compile(rf"{STEP_PREFIX}-\d{{1,2}}-(b_)?")


def _actor(request: WorkspaceRequest) -> Actor:
    return Actor.person(request.user)


def _can_manage(request: WorkspaceRequest) -> bool:
    return request.membership.has_role(Role.ADMIN)


def _is_htmx(request: WorkspaceRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _campaign(request: WorkspaceRequest, pk: uuid.UUID) -> Campaign:
    return get_in_workspace(Campaign, request.workspace, pk)


def _count(queryset: QuerySet[Any]) -> Coalesce:
    """A per-campaign count as a subquery: joining enrollments, actions and the pool in one
    query would multiply rows before counting."""
    counted = queryset.filter(campaign=OuterRef("pk")).order_by().values("campaign")
    return Coalesce(
        Subquery(counted.annotate(n=Count("*")).values("n"), output_field=IntegerField()), 0
    )


def pause_reason_label(reason: str) -> str:
    try:
        return str(PauseReason(reason).label)
    except ValueError:
        return reason.replace("_", " ")


# --- the list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    schedule: str
    pause_reason: str


@require_GET
@workspace_required
def campaign_list(request: WorkspaceRequest) -> HttpResponse:
    qs = Campaign.objects.filter(workspace=request.workspace).annotate(
        mailbox_count=_count(CampaignMailbox.objects.all()),
        enrolled_count=_count(Enrollment.objects.exclude(status=EnrollmentStatus.UNENROLLED)),
        sent_count=_count(Action.objects.filter(state=ActionState.SENT)),
    )
    page = keyset_page(qs, after=request.GET.get("after", ""), before=request.GET.get("before", ""))
    rows = [
        CampaignRow(c, services.window_of(c).label(), pause_reason_label(c.paused_reason))
        for c in page.rows
    ]
    return render(
        request,
        "sequences/campaign_list.html",
        {"nav": "campaigns", "page": page, "rows": rows, "can_manage": _can_manage(request)},
    )


# --- the builder --------------------------------------------------------------------------


def _builder_mailboxes(request: WorkspaceRequest, campaign: Campaign | None) -> list[Mailbox]:
    """Usable mailboxes, plus those already in the campaign's pool whatever their state (so
    they can be seen, and taken out)."""
    usable = Q(status=MailboxStatus.CONNECTED, sending_enabled=True)
    if campaign is not None:
        usable |= Q(campaign_links__campaign=campaign)
    return list(
        Mailbox.objects.filter(workspace=request.workspace)
        .filter(usable)
        .distinct()
        .order_by("email")
    )


def _builder(request: WorkspaceRequest, campaign: Campaign | None) -> HttpResponse:
    mailboxes = _builder_mailboxes(request, campaign)
    status = 200
    if request.method != "POST":
        initial = CampaignForm.initial_for(campaign) if campaign else {}
        form = CampaignForm(initial=initial, mailboxes=mailboxes)
        rows = steps_initial(campaign) if campaign else None
        steps = StepFormSet(initial=rows or [dict(FIRST_STEP)], prefix=STEP_PREFIX)
    elif op := request.POST.get("op", ""):
        # Adding or removing a step: show the form again as typed, nothing is saved or checked.
        form = CampaignForm.shown_again(request.POST, mailboxes=mailboxes)
        rows = change_steps(steps_from_data(request.POST), op)
        steps = StepFormSet(initial=rows, prefix=STEP_PREFIX)
        if _is_htmx(request):
            return render(request, "sequences/campaign_form.html#steps", {"steps": steps})
    else:
        form = CampaignForm(request.POST, mailboxes=mailboxes)
        steps = StepFormSet(request.POST, prefix=STEP_PREFIX)
        if form.is_valid() & steps.is_valid():
            try:
                saved = services.save_from_builder(
                    workspace=request.workspace,
                    campaign=campaign,
                    name=form.cleaned_data["name"],
                    steps=steps.step_inputs(),
                    pool=form.pool(),
                    settings=form.settings(),
                    actor=_actor(request),
                    now=timezone.now(),
                )
            except services.CampaignError as exc:
                add_service_error(form, steps, exc)
            else:
                if campaign is None:
                    messages.success(request, f"Saved {saved.name} as a draft.")
                else:
                    messages.success(request, "Saved.")
                return redirect("campaign-detail", pk=saved.pk)
        status = 400
    return render(
        request,
        "sequences/campaign_form.html",
        {
            "nav": "campaigns",
            "campaign": campaign,
            "form": form,
            "steps": steps,
            "title": f"Edit {campaign.name}" if campaign else "New campaign",
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@workspace_required(min_role=Role.ADMIN)
def campaign_create(request: WorkspaceRequest) -> HttpResponse:
    return _builder(request, None)


@require_http_methods(["GET", "POST"])
@workspace_required(min_role=Role.ADMIN)
def campaign_edit(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    campaign = _campaign(request, pk)
    if campaign.status not in EDITABLE:
        messages.error(
            request,
            f"This campaign is {campaign.status}; only draft or paused campaigns can be edited. "
            "Pause it first.",
        )
        return redirect("campaign-detail", pk=campaign.pk)
    if has_more_than_two_variants(campaign):
        messages.error(
            request,
            "A step of this campaign has more than two variants; the builder edits variants A "
            "and B only, so change it through the API.",
        )
        return redirect("campaign-detail", pk=campaign.pk)
    return _builder(request, campaign)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def campaign_editor_status(request: WorkspaceRequest) -> HttpResponse:
    """The builder's status line for one subject and body: spintax variations and the first
    template problem of each part, with its line and column."""
    prefix = request.POST.get("prefix", "")
    if not _STATUS_PREFIX.fullmatch(prefix):
        return HttpResponseBadRequest("Unknown editor.")
    status = editor_status(
        request.POST.get(f"{prefix}subject", ""), request.POST.get(f"{prefix}body_html", "")
    )
    return render(request, "sequences/_editor_status.html", {"status": status, "prefix": prefix})


# --- the campaign page --------------------------------------------------------------------


def _rate(count: int, sent: int) -> float:
    """Percent of sent, at most 100 (a prospect can open more often than once)."""
    if not sent:
        return 0.0
    return min(100.0, round(100 * count / sent, 1))


def campaign_stats(campaign: Campaign) -> dict[str, Any]:
    """All-time numbers since creation, per step and variant too (warmysender/email/stats.py):
    scanner hits left out, rates at most 100 %."""
    from warmysender.email.stats import campaign_stats as tracked_stats

    tracked = tracked_stats(campaign)
    return {
        **tracked.counts.as_dict(),
        "steps": tracked.steps,
        "scanner_hits": tracked.scanner_hits,
    }


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


def sending_checklist(campaign: Campaign, now: datetime) -> list[Check]:
    """ "Campaign not sending" (spec 4.17): each condition the engine needs, as it is now."""
    window = services.window_of(campaign)
    checks: list[Check] = []
    if campaign.status == CampaignStatus.RUNNING:
        checks.append(Check(True, "The campaign is running."))
    elif campaign.status == CampaignStatus.SCHEDULED and campaign.start_date:
        start = timezone.localtime(campaign.start_date, window.zone)
        checks.append(Check(False, f"The campaign starts on {start:%a %-d %b %Y %H:%M}."))
    else:
        checks.append(Check(False, f"The campaign is {campaign.status}, not running."))
    if plan_state(campaign.workspace, now).is_active:
        checks.append(Check(True, "The workspace subscription is active."))
    else:
        checks.append(Check(False, "The workspace subscription is not active."))
    pool = list(campaign.pool.filter(is_active=True).select_related("mailbox"))
    usable = sum(1 for entry in pool if entry.mailbox.is_usable)
    if usable:
        checks.append(Check(True, f"{usable} connected mailbox{'es' if usable != 1 else ''}."))
    else:
        checks.append(Check(False, "No connected mailbox with sending enabled."))
    counter = SendCounter.objects.filter(
        scope="campaign", key=str(campaign.pk), day=local_day(now, window.zone)
    ).first()
    today = counter.count if counter else 0
    checks.append(
        Check(
            today < campaign.daily_send_limit,
            f"{today} of {campaign.daily_send_limit} daily sends used today.",
        )
    )
    if is_open(window, now):
        checks.append(Check(True, "Inside the sending window now."))
    else:
        opening = next_opening(window, now)
        checks.append(
            Check(False, describe_next(window, opening) if opening else "The window never opens.")
        )
    if campaign.end_date and campaign.end_date <= now:
        checks.append(Check(False, "The end date has passed."))
    waiting = Enrollment.objects.filter(
        campaign=campaign, status__in=[EnrollmentStatus.PENDING, EnrollmentStatus.SENDING]
    ).count()
    checks.append(
        Check(
            waiting > 0,
            f"{waiting} prospect{'s' if waiting != 1 else ''} waiting for a step."
            if waiting
            else "No prospect is waiting for a step (all finished, stopped or not enrolled).",
        )
    )
    return checks


def _enrollments(campaign: Campaign, status: str) -> QuerySet[Enrollment]:
    qs = (
        Enrollment.objects.filter(campaign=campaign)
        .select_related("prospect", "mailbox")
        .prefetch_related(
            Prefetch(
                "actions",
                queryset=Action.objects.filter(state=ActionState.UNKNOWN).select_related("step"),
                to_attr="unknown_actions",
            )
        )
        .annotate(created_at=F("enrolled_at"))
    )
    if status in EnrollmentStatus.values:
        qs = qs.filter(status=status)
    return qs


def _detail_context(
    request: WorkspaceRequest,
    campaign: Campaign,
    *,
    now: datetime,
    enroll_form: EnrollForm | None = None,
    launch_problem: str = "",
) -> dict[str, Any]:
    status_filter = request.GET.get("status", "")
    page: Page = keyset_page(
        _enrollments(campaign, status_filter),
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
    )
    counts = dict(
        Enrollment.objects.filter(campaign=campaign)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    lists = ProspectList.objects.filter(workspace=request.workspace).order_by("name")
    steps = list(campaign.steps.prefetch_related("variants").order_by("step_index"))
    next_send = Enrollment.objects.filter(
        campaign=campaign, status=EnrollmentStatus.PENDING
    ).aggregate(at=Min("next_action_at"))["at"]
    return {
        "nav": "campaigns",
        "campaign": campaign,
        "schedule": services.window_of(campaign).label(),
        "pause_reason": pause_reason_label(campaign.paused_reason),
        "stats": campaign_stats(campaign),
        "page": page,
        "status_filter": status_filter,
        "enrollment_statuses": EnrollmentStatus.choices,
        "counts": counts,
        "enrolled_total": sum(n for s, n in counts.items() if s != EnrollmentStatus.UNENROLLED),
        "template_fix_count": counts.get(EnrollmentStatus.PENDING_TEMPLATE_FIX, 0),
        "review_count": counts.get(EnrollmentStatus.NEEDS_REVIEW, 0),
        "steps": steps,
        "step_count": len(steps),
        "pool": campaign.pool.select_related("mailbox").all(),
        "events": CampaignEvent.objects.filter(campaign=campaign).order_by("-created_at", "-id")[
            :EVENT_LOG_SIZE
        ],
        "enroll_form": enroll_form or EnrollForm(lists=lists),
        "has_lists": lists.exists(),
        "checklist": sending_checklist(campaign, now),
        "next_send": next_send,
        "launch_problem": launch_problem,
        "tracking_domains": TrackingDomain.objects.filter(
            workspace=request.workspace, verified_at__isnull=False
        ),
        "can_manage": _can_manage(request),
        "can_edit": campaign.status in EDITABLE,
        "can_start": campaign.status in STARTABLE,
        "can_pause": campaign.status in PAUSABLE,
        "active_statuses": ACTIVE_ENROLLMENT,
    }


def _render_detail(
    request: WorkspaceRequest, campaign: Campaign, *, status: int = 200, **extra: Any
) -> HttpResponse:
    context = _detail_context(request, campaign, now=timezone.now(), **extra)
    template = "sequences/campaign_detail.html"
    if _is_htmx(request) and request.headers.get("HX-Target") == "enrollment-table":
        template += "#enrollments"
    response = render(request, template, context, status=status)
    # The same URL answers with the whole page or just the table; caches must keep both apart.
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@require_GET
@workspace_required
def campaign_detail(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    return _render_detail(request, _campaign(request, pk))


@require_GET
@workspace_required
def campaign_stats_partial(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    campaign = _campaign(request, pk)
    return render(
        request,
        "sequences/campaign_detail.html#stats",
        {"campaign": campaign, "stats": campaign_stats(campaign)},
    )


@require_POST
@workspace_required(min_role=Role.ADMIN)
def campaign_start(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    """Start a draft, or resume a paused campaign; a refusal shows the launch problem."""
    campaign = _campaign(request, pk)
    was = campaign.status
    try:
        started = services.start_campaign(
            campaign=campaign, actor=_actor(request), now=timezone.now()
        )
    except services.CampaignError as exc:
        return _render_detail(request, campaign, status=400, launch_problem=exc.message)
    except SubscriptionInactive as exc:
        return _render_detail(request, campaign, status=400, launch_problem=str(exc))
    verb = "Resumed" if was == CampaignStatus.PAUSED else "Started"
    if started.status == CampaignStatus.SCHEDULED:
        messages.success(request, f"Scheduled {started.name}: it starts on its start date.")
    else:
        messages.success(request, f"{verb} {started.name}.")
    return redirect("campaign-detail", pk=campaign.pk)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def campaign_pause(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    campaign = _campaign(request, pk)
    try:
        services.pause_campaign(
            campaign=campaign, reason=PauseReason.MANUAL, actor=_actor(request), now=timezone.now()
        )
    except services.CampaignError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Paused {campaign.name}. Nothing more is sent until you resume.")
    return redirect("campaign-detail", pk=campaign.pk)


def _enrolled_message(result: services.EnrollResult) -> str:
    count = len(result.enrolled)
    text = f"Enrolled {count} prospect{'s' if count != 1 else ''}."
    if result.skipped:
        reasons = ", ".join(f"{email} ({why})" for email, why in list(result.skipped.items())[:5])
        more = len(result.skipped) - 5
        text += f" Skipped {len(result.skipped)}: {reasons}" + (
            f" and {more} more." if more > 0 else "."
        )
    return text


@require_POST
@workspace_required(min_role=Role.ADMIN)
def campaign_enroll(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    campaign = _campaign(request, pk)
    lists = ProspectList.objects.filter(workspace=request.workspace).order_by("name")
    form = EnrollForm(request.POST, lists=lists)
    if form.is_valid():
        chosen = form.cleaned_data["prospect_list"]
        try:
            result = services.enroll(
                campaign=campaign,
                list_ids=[chosen.pk] if chosen else [],
                emails=form.cleaned_data["emails"],
                actor=_actor(request),
                now=timezone.now(),
                on_duplicate="skip",
            )
        except services.CampaignError as exc:
            missing = exc.details.get("emails") if isinstance(exc.details, dict) else None
            if missing:
                form.add_error(
                    "emails", f"Not prospects of this workspace: {', '.join(missing[:10])}."
                )
            else:
                form.add_error(None, exc.message)
        else:
            messages.success(request, _enrolled_message(result))
            return redirect("campaign-detail", pk=campaign.pk)
    return _render_detail(request, campaign, status=400, enroll_form=form)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def campaign_resolve(
    request: WorkspaceRequest, pk: uuid.UUID, action_pk: uuid.UUID
) -> HttpResponse:
    """A person's answer to a send whose outcome is unknown."""
    campaign = _campaign(request, pk)
    action = get_in_workspace(Action, request.workspace, action_pk, campaign=campaign)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose “Mark as sent” or “Send again”.")
        return redirect("campaign-detail", pk=campaign.pk)
    decision = form.cleaned_data["decision"]
    try:
        services.resolve_unknown(
            action=action, decision=decision, actor=_actor(request), now=timezone.now()
        )
    except services.CampaignError as exc:
        messages.error(request, exc.message)
    else:
        if decision == "mark_sent":
            messages.success(request, f"Marked the email to {action.to_email} as sent.")
        else:
            messages.success(request, f"The email to {action.to_email} will be sent again.")
    return redirect("campaign-detail", pk=campaign.pk)


@require_POST
@workspace_required(min_role=Role.ADMIN)
def campaign_template_fixed(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    campaign = _campaign(request, pk)
    count = services.resume_template_fix(
        campaign=campaign, actor=_actor(request), now=timezone.now()
    )
    if count:
        messages.success(
            request,
            f"{count} prospect{'s' if count != 1 else ''} will be retried on the next tick.",
        )
    else:
        messages.info(request, "No prospect was waiting for a template fix.")
    return redirect("campaign-detail", pk=campaign.pk)


# --- preview ------------------------------------------------------------------------------


@require_GET
@workspace_required
def campaign_preview(request: WorkspaceRequest, pk: uuid.UUID) -> HttpResponse:
    campaign = _campaign(request, pk)
    form = PreviewForm(request.GET)
    chosen: Prospect | None = None
    problem = ""
    seed = 0
    prospects = Prospect.objects.filter(workspace=request.workspace)
    if form.is_valid():
        seed = form.cleaned_data["seed"] or 0
        email = (form.cleaned_data["email"] or "").strip().lower()
        if form.cleaned_data["prospect"]:
            chosen = prospects.filter(pk=form.cleaned_data["prospect"]).first()
            problem = "" if chosen else "There is no such prospect in this workspace."
        elif email:
            chosen = prospects.filter(email=email).first()
            problem = "" if chosen else f"No prospect has the email {email}."
    else:
        problem = "That is not a prospect id."
    enrolled = list(
        Enrollment.objects.filter(campaign=campaign)
        .select_related("prospect")
        .order_by("enrolled_at", "id")[:PREVIEW_CHOICES]
    )
    if chosen is None and not problem:
        chosen = enrolled[0].prospect if enrolled else prospects.order_by("created_at").first()
    mailbox = services.preview_sender(campaign)
    previews = (
        services.preview_campaign(campaign, chosen, mailbox=mailbox, seed=seed) if chosen else []
    )
    return render(
        request,
        "sequences/campaign_preview.html",
        {
            "nav": "campaigns",
            "campaign": campaign,
            "chosen": chosen,
            "problem": problem,
            "enrolled": [e.prospect for e in enrolled],
            "previews": previews,
            "mailbox": mailbox,
            "seed": seed,
            "next_seed": seed + 1,
        },
        status=400 if problem else 200,
    )
