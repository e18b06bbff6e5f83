"""/api/v1/linkedin/accounts: list and read LinkedIn accounts with their live caps and usage."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from warmysender.accounts.tenancy import get_in_workspace
from warmysender.api.auth import ApiKeyAuth, authenticated_key, scoped
from warmysender.api.errors import ERROR_HEADERS, errors
from warmysender.api.pagination import paginate
from warmysender.api.schemas import PageFilters
from warmysender.linkedin import limits, services
from warmysender.linkedin.models import LinkedInAccount

READ = "linkedin:read"

router = Router(tags=["linkedin"])

Status = Literal[
    "connecting", "connected", "needs_verification", "disconnected", "restricted", "error"
]
AccountTypeName = Literal["free", "premium", "sales_navigator", "recruiter", "unknown"]
StrategyName = Literal["new_account", "established", "veteran", "recovery"]


class CapOut(BaseModel):
    cap: int = Field(
        description="Effective cap: min(account-type table, strategy ramp) or the override."
    )
    used: int = Field(description="Used in the current window.")
    window: Literal["rolling_7_days", "utc_day"]


class CapsOut(BaseModel):
    invite: CapOut
    message: CapOut
    inmail: CapOut
    profileView: CapOut
    engagement: CapOut


class ProxyOut(BaseModel):
    mode: Literal["auto", "country", "custom"]
    country: str = Field(description='ISO 3166 alpha-2 for `country`, else "".')
    display: str = Field(description="What the account page shows; never the password.")


class LinkedInAccountOut(BaseModel):
    id: uuid.UUID
    name: str
    publicIdentifier: str
    unipileAccountId: str
    accountType: AccountTypeName
    strategy: StrategyName
    rampWeek: int
    rampWeeks: int
    status: Status
    needsReconnect: bool
    lastError: str
    disconnectedAt: datetime | None
    disconnectedBy: str
    firstConnectedAt: datetime | None
    lastActivityAt: datetime | None
    strikes: int
    cooldownUntil: datetime | None
    proxy: ProxyOut
    caps: CapsOut
    capOverrides: dict[str, int]
    createdAt: datetime

    @classmethod
    def of(cls, a: LinkedInAccount, now: datetime) -> LinkedInAccountOut:
        caps = services.effective_caps(a, now)
        used = services.usage(a, now)
        week, weeks = limits.ramp_progress(a.strategy, a.ramp_started_at, now)

        def cap(kind: str) -> CapOut:
            window = "rolling_7_days" if kind in limits.WEEKLY_KINDS else "utc_day"
            return CapOut(cap=caps[kind], used=used[kind], window=window)  # type: ignore[arg-type]

        return cls(
            id=a.pk,
            name=a.name,
            publicIdentifier=a.public_identifier,
            unipileAccountId=a.unipile_account_id,
            accountType=a.account_type,  # type: ignore[arg-type]
            strategy=a.strategy,  # type: ignore[arg-type]
            rampWeek=week,
            rampWeeks=weeks,
            status=a.status,  # type: ignore[arg-type]
            needsReconnect=a.needs_reconnect,
            lastError=a.last_error,
            disconnectedAt=a.disconnected_at,
            disconnectedBy=a.disconnected_by,
            firstConnectedAt=a.first_connected_at,
            lastActivityAt=a.last_activity_at,
            strikes=a.strikes,
            cooldownUntil=a.cooldown_until,
            proxy=ProxyOut(
                mode=a.proxy_mode,  # type: ignore[arg-type]
                country=a.proxy_country,
                display=a.proxy_display,
            ),
            caps=CapsOut(
                invite=cap(limits.INVITE),
                message=cap(limits.MESSAGE),
                inmail=cap(limits.INMAIL),
                profileView=cap(limits.PROFILE_VIEW),
                engagement=cap(limits.ENGAGEMENT),
            ),
            capOverrides=dict(a.cap_overrides),
            createdAt=a.created_at,
        )


class LinkedInAccountData(BaseModel):
    data: LinkedInAccountOut


class LinkedInAccountPage(BaseModel):
    data: list[LinkedInAccountOut]
    nextCursor: str | None


class LinkedInAccountFilters(PageFilters):
    status: Status | SkipJsonSchema[None] = Field(default=None, description="Only this status.")


@router.get(
    "/accounts",
    auth=ApiKeyAuth(READ),
    response={200: LinkedInAccountPage, **errors()},
    operation_id="listLinkedInAccounts",
    summary="List LinkedIn accounts",
    description=scoped(
        READ, "Newest first, with cursor pagination; `status` filters. Caps and usage are live."
    ),
    openapi_extra=ERROR_HEADERS,
)
def list_accounts(
    request: HttpRequest, filters: Query[LinkedInAccountFilters]
) -> LinkedInAccountPage:
    now = timezone.now()
    qs = LinkedInAccount.objects.filter(
        workspace=authenticated_key(request).workspace, deleted_at__isnull=True
    )
    if filters.status:
        qs = qs.filter(status=filters.status)
    rows, next_cursor = paginate(qs, limit=filters.limit, cursor=filters.cursor)
    return LinkedInAccountPage(
        data=[LinkedInAccountOut.of(a, now) for a in rows], nextCursor=next_cursor
    )


@router.get(
    "/accounts/{id}",
    auth=ApiKeyAuth(READ),
    response={200: LinkedInAccountData, **errors(404)},
    operation_id="getLinkedInAccount",
    summary="Get a LinkedIn account",
    description=scoped(READ, "404 not_found for an id that is missing or of another workspace."),
    openapi_extra=ERROR_HEADERS,
)
def get_account(request: HttpRequest, id: uuid.UUID) -> LinkedInAccountData:
    account = get_in_workspace(
        LinkedInAccount, authenticated_key(request).workspace, id, deleted_at__isnull=True
    )
    return LinkedInAccountData(data=LinkedInAccountOut.of(account, timezone.now()))
