"""State changes of tracking: recording open and click hits, and the workspace's custom tracking
domains. Each function owns its transaction and writes the audit row and events with it."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from warmysender.accounts.models import Workspace
from warmysender.audit.services import Actor, emit_event, record_audit
from warmysender.email import scanners
from warmysender.email.models import HitKind, TrackingDomain, TrackingHit

TRACKER = Actor.system("tracking")
MAX_USER_AGENT = 1000
MAX_URL = 4000


@dataclass(frozen=True)
class SentEmail:
    """What a hit needs to know of the email it came from (one query)."""

    action_id: uuid.UUID
    workspace_id: uuid.UUID
    campaign_id: uuid.UUID
    prospect_id: uuid.UUID
    prospect_email: str
    mailbox_id: uuid.UUID | None
    step_index: int
    delivered_at: datetime | None


def _sent_email(action_id: uuid.UUID) -> SentEmail | None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.id, a.workspace_id, a.campaign_id, e.prospect_id, p.email, a.mailbox_id,
                   s.step_index, a.finished_at
              FROM sequences_action a
              JOIN sequences_enrollment e ON e.id = a.enrollment_id
              JOIN prospects_prospect p ON p.id = e.prospect_id
              JOIN sequences_step s ON s.id = a.step_id
             WHERE a.id = %s AND a.state = 'sent'
            """,
            [action_id],
        )
        row = cursor.fetchone()
    return SentEmail(*row) if row else None


def _networks() -> list[tuple[scanners.Network, str]]:
    return [*scanners.default_networks(), *settings.TRACKING_EXTRA_SCANNER_NETWORKS]


_DEFAULT_NETWORKS: list[tuple[scanners.Network, str]] | None = None


def scanner_networks() -> list[tuple[scanners.Network, str]]:
    global _DEFAULT_NETWORKS
    if _DEFAULT_NETWORKS is None:
        _DEFAULT_NETWORKS = _networks()
    return _DEFAULT_NETWORKS


def record_hit(
    kind: str,
    action_id: uuid.UUID,
    *,
    url: str = "",
    ip: str | None,
    user_agent: str,
    now: datetime,
) -> TrackingHit | None:
    """Keep one pixel load or click. A hit for an email that was not sent (or no longer
    exists) records nothing. The first real open or click of the prospect in the campaign
    records the campaign's log line, the audit row and `email.opened`; every real click records
    `email.clicked` once per URL per prospect per day."""
    email = _sent_email(action_id)
    if email is None:
        return None
    user_agent = user_agent[:MAX_USER_AGENT]
    other_clicks: list[tuple[datetime, str]] = []
    if kind == HitKind.CLICK:
        other_clicks = list(
            TrackingHit.objects.filter(
                action_id=action_id,
                kind=HitKind.CLICK,
                at__gte=now - scanners.MULTI_CLICK_WINDOW,
                at__lte=now + scanners.MULTI_CLICK_WINDOW,
            ).values_list("at", "url")
        )
    verdict = scanners.classify(
        kind=kind,
        user_agent=user_agent,
        ip=ip,
        at=now,
        delivered_at=email.delivered_at,
        networks=scanner_networks(),
        prefetch_seconds=settings.TRACKING_SCANNER_SECONDS,
        url=url,
        other_clicks=other_clicks,
    )
    with transaction.atomic():
        hit = TrackingHit.objects.create(
            workspace_id=email.workspace_id,
            action_id=action_id,
            campaign_id=email.campaign_id,
            kind=kind,
            url=url[:MAX_URL],
            ip=ip,
            user_agent=user_agent,
            at=now,
            is_scanner=verdict.is_scanner,
            scanner_reason=verdict.reason[:100],
        )
        if verdict.is_scanner:
            if verdict.reason == "several links clicked within a second":
                # The click just before this one was the same scanner: take it back out.
                TrackingHit.objects.filter(
                    action_id=action_id,
                    kind=HitKind.CLICK,
                    is_scanner=False,
                    at__gte=now - scanners.MULTI_CLICK_WINDOW,
                ).update(is_scanner=True, scanner_reason=verdict.reason)
            return hit
        _record_real_hit(email, kind, url, now)
    return hit


def _record_real_hit(email: SentEmail, kind: str, url: str, now: datetime) -> None:
    from warmysender.accounts.models import Workspace
    from warmysender.sequences.models import Campaign
    from warmysender.sequences.services import log_event

    workspace = Workspace(pk=email.workspace_id)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO email_trackingfirst (workspace_id, campaign_id, prospect_id, action_id,
                                             kind, url, at)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (campaign_id, prospect_id, kind) DO NOTHING
            """,
            [
                email.workspace_id,
                email.campaign_id,
                email.prospect_id,
                email.action_id,
                kind,
                url[:MAX_URL],
                now,
            ],
        )
        first = cursor.rowcount == 1
    data: dict[str, Any] = {
        "prospectId": str(email.prospect_id),
        "prospectEmail": email.prospect_email,
        "campaignId": str(email.campaign_id),
        "mailboxId": str(email.mailbox_id) if email.mailbox_id else None,
        "stepIndex": email.step_index,
    }
    if kind == HitKind.CLICK:
        url_hash = hashlib.sha256(url.encode()).hexdigest()[:32]
        emit_event(
            workspace=workspace,
            type="email.clicked",
            data={**data, "url": url, "clickedAt": now.isoformat()},
            now=now,
            dedup_key=f"email.clicked:{email.prospect_id}:{url_hash}:{now.date().isoformat()}",
        )
    if not first:
        return
    if kind == HitKind.OPEN:
        emit_event(
            workspace=workspace,
            type="email.opened",
            data={**data, "openedAt": now.isoformat()},
            now=now,
            dedup_key=f"email.opened:{email.campaign_id}:{email.prospect_id}",
        )
    verb = "opened" if kind == HitKind.OPEN else "clicked"
    what = f"{email.prospect_email} {verb} step {email.step_index}" + (
        f": {url[:200]}" if kind == HitKind.CLICK else ""
    )
    log_event(
        Campaign(pk=email.campaign_id, workspace_id=email.workspace_id),
        verb,
        f"First {'open' if kind == HitKind.OPEN else 'click'}: {what}",
        now=now,
        reason=f"first_{kind}",
        data={**data, "actionId": str(email.action_id)},
    )
    record_audit(
        workspace=workspace,
        actor=TRACKER,
        action=f"prospect.first_{kind}",
        object_type="prospect",
        object_id=str(email.prospect_id),
        to_state=verb,
        data={**data, "actionId": str(email.action_id)},
        now=now,
    )


# --- custom tracking domains ------------------------------------------------------------------

_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")

NO_CNAME = "No CNAME record found"
WRONG_TARGET = "CNAME record points to wrong target"


class TrackingDomainError(Exception):
    def __init__(self, message: str, *, field: str = "domain") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def normalize_domain(value: str) -> str:
    """`Track.Example.com.` → `track.example.com`; raises TrackingDomainError naming the problem."""
    raw = (value or "").strip()
    if not raw:
        raise TrackingDomainError("Enter a domain such as track.example.com.")
    if "://" in raw or "/" in raw:
        raise TrackingDomainError(
            f"{raw!r} is a URL; enter only the host name, such as track.example.com."
        )
    domain = raw.lower().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise TrackingDomainError(f"{raw!r} is not a valid domain name.") from None
    if not _HOSTNAME.match(domain):
        raise TrackingDomainError(
            f"{raw!r} is not a valid domain name (letters, digits and hyphens, with at least one dot)."
        )
    return domain


def add_tracking_domain(
    *, workspace: Workspace, domain: str, actor: Actor, now: datetime
) -> TrackingDomain:
    name = normalize_domain(domain)
    target = settings.TRACKING_CNAME_TARGET.lower().rstrip(".")
    if name == target:
        raise TrackingDomainError(f"{name} is the tracking host itself; add your own sub-domain.")
    try:
        with transaction.atomic():
            row = TrackingDomain.objects.create(
                workspace=workspace, domain=name, cname_target=target, created_at=now
            )
            record_audit(
                workspace=workspace,
                actor=actor,
                action="tracking_domain.added",
                obj=row,
                to_state="unverified",
                data={"domain": name, "cnameTarget": target},
                now=now,
            )
    except IntegrityError:
        raise TrackingDomainError(f"{name} is already one of this workspace's domains.") from None
    return row


def _resolver() -> Any:
    import dns.resolver

    server = settings.TRACKING_DNS_SERVER
    if not server:
        return dns.resolver.Resolver()
    resolver = dns.resolver.Resolver(configure=False)
    host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
    resolver.nameservers = [host or server]
    if port:
        resolver.port = int(port)
    resolver.lifetime = 5.0
    return resolver


def lookup_cname(domain: str) -> tuple[str | None, str]:
    """(CNAME target or None, problem). The problem is one of the spec's messages, with detail."""
    import dns.exception
    import dns.resolver

    try:
        answer = _resolver().resolve(domain, "CNAME")
    except dns.resolver.NXDOMAIN:
        return None, f"{NO_CNAME}: {domain} does not exist in DNS yet."
    except dns.resolver.NoAnswer:
        return None, (
            f"{NO_CNAME}: {domain} exists but has no CNAME record "
            "(an A record in its place breaks tracking; replace it with the CNAME)."
        )
    except dns.resolver.NoNameservers:
        return None, f"{NO_CNAME}: the DNS servers for {domain} did not answer."
    except dns.exception.Timeout:
        return None, f"{NO_CNAME}: the DNS lookup for {domain} timed out; try again later."
    target = str(answer[0].target).lower().rstrip(".")
    return target, ""


def verify_tracking_domain(*, row: TrackingDomain, actor: Actor, now: datetime) -> TrackingDomain:
    """Look up the CNAME now and record the outcome (verified, or the reason it is not)."""
    expected = settings.TRACKING_CNAME_TARGET.lower().rstrip(".")
    found, problem = lookup_cname(row.domain)
    if found is not None and found != expected:
        problem = f"{WRONG_TARGET}: {row.domain} points to {found}, expected {expected}."
    with transaction.atomic():
        locked = TrackingDomain.objects.select_for_update().get(pk=row.pk)
        before = "verified" if locked.verified_at else "unverified"
        locked.cname_target = expected
        locked.last_checked_at = now
        locked.last_check_error = problem
        if problem:
            locked.verified_at = None
        elif locked.verified_at is None:
            locked.verified_at = now
        locked.save()
        after = "verified" if locked.verified_at else "unverified"
        record_audit(
            workspace=locked.workspace,
            actor=actor,
            action="tracking_domain.checked",
            obj=locked,
            from_state=before,
            to_state=after,
            reason=problem,
            data={"domain": locked.domain, "found": found, "expected": expected},
            now=now,
        )
    return locked


def remove_tracking_domain(*, row: TrackingDomain, actor: Actor, now: datetime) -> None:
    """Campaigns using it fall back to SITE_URL links (the foreign key is set null)."""
    with transaction.atomic():
        record_audit(
            workspace=row.workspace,
            actor=actor,
            action="tracking_domain.removed",
            obj=row,
            from_state="verified" if row.verified_at else "unverified",
            data={"domain": row.domain},
            now=now,
        )
        row.delete()


def set_campaign_tracking_domain(
    *, campaign: Any, domain: TrackingDomain | None, actor: Actor, now: datetime
) -> None:
    """Choose the domain of a campaign's tracking links (None: SITE_URL). Only a verified
    domain of the campaign's own workspace may be chosen."""
    from warmysender.sequences.models import Campaign

    if domain is not None:
        if domain.workspace_id != campaign.workspace_id:
            raise TrackingDomainError("No such tracking domain.", field="tracking_domain")
        if domain.verified_at is None:
            raise TrackingDomainError(
                f"{domain.domain} is not verified yet; verify its CNAME first.",
                field="tracking_domain",
            )
    with transaction.atomic():
        before = campaign.tracking_domain_id
        Campaign.objects.filter(pk=campaign.pk).update(tracking_domain=domain, updated_at=now)
        campaign.tracking_domain = domain
        record_audit(
            workspace=campaign.workspace,
            actor=actor,
            action="campaign.tracking_domain_set",
            obj=campaign,
            from_state=str(before or ""),
            to_state=str(domain.pk if domain else ""),
            data={"domain": domain.domain if domain else None},
            now=now,
        )
