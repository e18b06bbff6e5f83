"""/api/v1/campaigns: email campaigns, their lifecycle (start, pause), enrollments, and the
decision on a send whose outcome is unknown. Every change goes through
`warmysender.sequences.services`; its CampaignError becomes the error envelope in v1.py."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Count, F, Prefetch
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from ninja import Query, Router

from warmysender.accounts.models import Workspace
from warmysender.accounts.quotas import require_active_subscription
from warmysender.accounts.tenancy import get_in_workspace
from warmysender.api import idempotency
from warmysender.api.auth import ApiKeyAuth, authenticated_key, scoped
from warmysender.api.campaign_schemas import (
    ActionData,
    ActionOut,
    CampaignData,
    CampaignDetailOut,
    CampaignFilters,
    CampaignIn,
    CampaignMailboxOut,
    CampaignOut,
    CampaignPage,
    CampaignPatch,
    EnrolledData,
    EnrolledOut,
    EnrollIn,
    EnrollmentCountsOut,
    EnrollmentFilters,
    EnrollmentOut,
    EnrollmentPage,
    PoolEntryPatch,
    ResolveIn,
    SkippedOut,
    StepOut,
    UnenrolledData,
    UnenrolledOut,
    UnenrollIn,
)
from warmysender.api.errors import ERROR_HEADERS, errors
from warmysender.api.idempotency import IdempotencyKeyHeader
from warmysender.api.pagination import paginate
from warmysender.audit.services import Actor
from warmysender.email.stats import campaign_totals
from warmysender.sequences import services
from warmysender.sequences.models import (
    Action,
    Campaign,
    CampaignMailbox,
    Enrollment,
    PauseReason,
    Step,
)

READ = "campaigns:read"
WRITE = "campaigns:write"
ENROLL = "enrollments:write"

router = Router(tags=["campaigns"])


# --- reading --------------------------------------------------------------------------------


def detail(workspace: Workspace, campaign_id: Any) -> CampaignDetailOut:
    campaign = get_in_workspace(Campaign, workspace, campaign_id)
    loaded = (
        Campaign.objects.filter(pk=campaign.pk)
        .prefetch_related(
            Prefetch("steps", queryset=Step.objects.prefetch_related("variants")),
            Prefetch("pool", queryset=CampaignMailbox.objects.select_related("mailbox")),
        )
        .get()
    )
    counts = dict(
        Enrollment.objects.filter(campaign=loaded)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return CampaignDetailOut(
        **CampaignOut.fields_of(loaded, counts=campaign_totals(loaded.pk)),
        steps=[StepOut.of(s) for s in loaded.steps.all()],
        mailboxes=[CampaignMailboxOut.of(entry) for entry in loaded.pool.all()],
        enrollments=EnrollmentCountsOut.of(counts),
    )


def render(workspace: Workspace, campaign: Campaign) -> dict[str, Any]:
    return {"data": detail(workspace, campaign.pk).model_dump(mode="json")}


@router.get(
    "",
    auth=ApiKeyAuth(READ),
    response={200: CampaignPage, **errors()},
    operation_id="listCampaigns",
    summary="List campaigns",
    description=scoped(
        READ,
        "Newest first, with cursor pagination; `status` keeps one status. Each campaign carries "
        "its settings and all-time stats.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def list_campaigns(request: HttpRequest, filters: Query[CampaignFilters]) -> CampaignPage:
    workspace = authenticated_key(request).workspace
    qs = Campaign.objects.filter(workspace=workspace)
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    rows, next_cursor = paginate(qs, limit=filters.limit, cursor=filters.cursor)
    return CampaignPage(
        # One stats query per campaign of the page (at most `limit`).
        data=[CampaignOut.of(c, counts=campaign_totals(c.pk)) for c in rows],
        nextCursor=next_cursor,
    )


@router.get(
    "/{id}",
    auth=ApiKeyAuth(READ),
    response={200: CampaignData, **errors(404)},
    operation_id="getCampaign",
    summary="Get a campaign",
    description=scoped(
        READ,
        "The campaign with its steps, mailboxes, settings, all-time stats and how many "
        "enrollments are in each status. 404 not_found for an id missing or of another workspace.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def get_campaign(request: HttpRequest, id: uuid.UUID) -> CampaignData:
    return CampaignData(data=detail(authenticated_key(request).workspace, id))


# --- creating and changing ------------------------------------------------------------------


@router.post(
    "",
    auth=ApiKeyAuth(WRITE),
    response={201: CampaignData, **errors(404, 409)},
    operation_id="createCampaign",
    summary="Create a campaign (always a draft)",
    description=scoped(
        WRITE,
        "Needs a name, 1–50 steps with unique `stepIndex`, and at least one mailbox that is "
        "connected with sending enabled (else 400 unusable_mailboxes). `prospectIds` are "
        "enrolled at once (404 not_found for an id that is not a prospect here). `endDate` must "
        "lie in the future and after `startDate`. Template syntax errors are 400 "
        "validation_error naming the step, line and column.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def create_campaign(
    request: HttpRequest, body: CampaignIn, idempotency_key: IdempotencyKeyHeader = None
) -> JsonResponse:
    key = authenticated_key(request)
    now = timezone.now()

    def produce() -> tuple[int, dict[str, Any]]:
        require_active_subscription(key.workspace, now)
        campaign = services.create_campaign(
            workspace=key.workspace,
            name=body.name,
            steps=body.step_inputs(),
            mailbox_ids=body.mailboxIds,
            settings=body.settings(),
            prospect_ids=body.prospectIds,
            actor=Actor.api_key(key),
            now=now,
        )
        return 201, render(key.workspace, campaign)

    return idempotency.respond(request, produce, now=now)


@router.patch(
    "/{id}",
    auth=ApiKeyAuth(WRITE),
    response={200: CampaignData, **errors(404, 409)},
    operation_id="updateCampaign",
    summary="Update a draft or paused campaign",
    description=scoped(
        WRITE,
        "Only the fields sent change; `steps` and `mailboxIds` replace the whole set, and "
        "`startDate`/`endDate` may be set to null. Other statuses are 400 invalid_status.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def update_campaign(request: HttpRequest, id: uuid.UUID, body: CampaignPatch) -> dict[str, Any]:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    campaign = get_in_workspace(Campaign, key.workspace, id)
    services.update_campaign(
        campaign=campaign,
        settings=body.settings(),
        steps=body.step_inputs(),
        mailbox_ids=body.mailboxIds,
        actor=Actor.api_key(key),
        now=now,
    )
    return render(key.workspace, campaign)


@router.post(
    "/{id}/start",
    auth=ApiKeyAuth(WRITE),
    response={200: CampaignData, **errors(404)},
    operation_id="startCampaign",
    summary="Start or resume a campaign",
    description=scoped(
        WRITE,
        "A draft or paused campaign becomes `running`, or `scheduled` while its startDate lies "
        "ahead. Refused with 400 validation_error (no steps, a template error, a `custom.` field "
        "none of the enrolled prospects has), 400 unusable_mailboxes, 400 end_date_expired, 403 "
        "subscription_blocked, or 400 invalid_status (completed, errored, already running).",
    ),
    openapi_extra=ERROR_HEADERS,
)
def start_campaign(request: HttpRequest, id: uuid.UUID) -> dict[str, Any]:
    key = authenticated_key(request)
    campaign = get_in_workspace(Campaign, key.workspace, id)
    started = services.start_campaign(
        campaign=campaign, actor=Actor.api_key(key), now=timezone.now()
    )
    return render(key.workspace, started)


@router.post(
    "/{id}/pause",
    auth=ApiKeyAuth(WRITE),
    response={200: CampaignData, **errors(404)},
    operation_id="pauseCampaign",
    summary="Pause a running or scheduled campaign",
    description=scoped(
        WRITE,
        "The campaign becomes `paused` with pausedReason `api`; every prospect keeps its step. "
        "Other statuses are 400 invalid_status. Allowed while the subscription is inactive, as "
        "it only stops sending.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def pause_campaign(request: HttpRequest, id: uuid.UUID) -> dict[str, Any]:
    key = authenticated_key(request)
    campaign = get_in_workspace(Campaign, key.workspace, id)
    paused = services.pause_campaign(
        campaign=campaign, reason=PauseReason.API, actor=Actor.api_key(key), now=timezone.now()
    )
    return render(key.workspace, paused)


# --- enrollments ----------------------------------------------------------------------------


@router.post(
    "/{id}/enrollments",
    auth=ApiKeyAuth(ENROLL),
    response={201: EnrolledData, **errors(404, 409)},
    operation_id="enrollProspects",
    summary="Enroll prospects",
    description=scoped(
        ENROLL,
        "By `prospectIds`, `listIds` (every member) and `emails`, combinable; at least one. A "
        "prospect already in the campaign is 409 conflict (nothing is enrolled); an id or email "
        "that is not a prospect here is 404 not_found. Suppressed, bounced and unsubscribed "
        "prospects are skipped and listed with the reason.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def enroll(
    request: HttpRequest,
    id: uuid.UUID,
    body: EnrollIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JsonResponse:
    key = authenticated_key(request)
    now = timezone.now()

    def produce() -> tuple[int, dict[str, Any]]:
        require_active_subscription(key.workspace, now)
        campaign = get_in_workspace(Campaign, key.workspace, id)
        result = services.enroll(
            campaign=campaign,
            prospect_ids=body.prospectIds or (),
            list_ids=body.listIds or (),
            emails=body.emails or (),
            actor=Actor.api_key(key),
            now=now,
        )
        out = EnrolledOut(
            enrolledCount=len(result.enrolled),
            skipped=[SkippedOut(email=e, reason=r) for e, r in result.skipped.items()],
        )
        return 201, EnrolledData(data=out).model_dump(mode="json")

    return idempotency.respond(request, produce, now=now)


@router.delete(
    "/{id}/enrollments",
    auth=ApiKeyAuth(ENROLL),
    response={200: UnenrolledData, **errors(404)},
    operation_id="unenrollProspects",
    summary="Unenroll prospects",
    description=scoped(
        ENROLL,
        "Stops these prospects in this campaign (their history stays). Those not enrolled count "
        "toward `totalProcessed` only. Allowed while the subscription is inactive.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def unenroll(request: HttpRequest, id: uuid.UUID, body: UnenrollIn) -> UnenrolledData:
    key = authenticated_key(request)
    campaign = get_in_workspace(Campaign, key.workspace, id)
    result = services.unenroll(
        campaign=campaign,
        prospect_ids=body.prospectIds or (),
        emails=body.emails or (),
        actor=Actor.api_key(key),
        now=timezone.now(),
    )
    return UnenrolledData(
        data=UnenrolledOut(unenrolledCount=result.unenrolled, totalProcessed=result.processed)
    )


@router.get(
    "/{id}/enrollments",
    auth=ApiKeyAuth(READ),
    response={200: EnrollmentPage, **errors(404)},
    operation_id="listEnrollments",
    summary="List a campaign's enrollments",
    description=scoped(
        READ,
        "Newest first, with cursor pagination; `status` keeps one status. Each shows the "
        "prospect, the step it is at, when it acts next and why it waits.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def list_enrollments(
    request: HttpRequest, id: uuid.UUID, filters: Query[EnrollmentFilters]
) -> EnrollmentPage:
    campaign = get_in_workspace(Campaign, authenticated_key(request).workspace, id)
    qs = Enrollment.objects.filter(campaign=campaign).select_related("prospect")
    if filters.status is not None:
        qs = qs.filter(status=filters.status)
    # The pagination keys on created_at; an enrollment is created when it is enrolled.
    rows, next_cursor = paginate(
        qs.annotate(created_at=F("enrolled_at")), limit=filters.limit, cursor=filters.cursor
    )
    return EnrollmentPage(data=[EnrollmentOut.of(e) for e in rows], nextCursor=next_cursor)


@router.patch(
    "/{id}/mailboxes/{mailboxId}",
    auth=ApiKeyAuth(WRITE),
    response={200: CampaignData, **errors(404, 409)},
    operation_id="updateCampaignMailbox",
    summary="Switch a mailbox on or off in a campaign, or set its daily cap there",
    description=scoped(
        WRITE,
        "Works while the campaign runs: the next scheduler tick uses the change. Prospects "
        "waiting on a mailbox switched off get another from the pool. 404 when the mailbox is "
        "not in the campaign's pool; 400 invalid_status for completed or errored campaigns.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def update_campaign_mailbox(
    request: HttpRequest, id: uuid.UUID, mailboxId: uuid.UUID, body: PoolEntryPatch
) -> dict[str, Any]:
    key = authenticated_key(request)
    now = timezone.now()
    campaign = get_in_workspace(Campaign, key.workspace, id)
    changes: dict[str, Any] = {}
    if "maxSendsPerMailboxPerDay" in body.model_fields_set:
        changes["max_sends_per_day"] = body.maxSendsPerMailboxPerDay
    services.update_pool_entry(
        campaign=campaign,
        mailbox_id=mailboxId,
        active=body.active,
        actor=Actor.api_key(key),
        now=now,
        **changes,
    )
    return render(key.workspace, campaign)


# --- unknown outcomes -----------------------------------------------------------------------


@router.post(
    "/{id}/actions/{actionId}/resolve",
    auth=ApiKeyAuth(WRITE),
    response={200: ActionData, **errors(404)},
    operation_id="resolveUnknownSend",
    summary="Decide on a send whose outcome is unknown",
    description=scoped(
        WRITE,
        "A send whose connection broke after the server may have taken the message is never "
        "retried by itself. `mark_sent` records it as delivered and moves the prospect on; "
        "`send_again` queues the same step once more. 400 invalid_status when the send's outcome "
        "is not unknown.",
    ),
    openapi_extra=ERROR_HEADERS,
)
def resolve_unknown(
    request: HttpRequest, id: uuid.UUID, actionId: uuid.UUID, body: ResolveIn
) -> ActionData:
    key = authenticated_key(request)
    now = timezone.now()
    require_active_subscription(key.workspace, now)
    campaign = get_in_workspace(Campaign, key.workspace, id)
    action = get_in_workspace(Action, key.workspace, actionId, campaign=campaign)
    services.resolve_unknown(
        action=action, decision=body.decision, actor=Actor.api_key(key), now=now
    )
    resolved = Action.objects.select_related("step").get(pk=action.pk)
    return ActionData(data=ActionOut.of(resolved))
