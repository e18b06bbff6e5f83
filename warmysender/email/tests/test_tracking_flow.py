"""Open and click tracking end to end: a campaign email goes out through a sandbox mailbox with
its links rewritten and the pixel added; loading the pixel and following the links through the
public endpoints records hits, the first open and click once, the events, and the campaign
page's numbers without scanners. Also the unsubscribe link and the one-click POST."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.urls import reverse

from warmysender.audit.models import AuditEntry, DomainEvent
from warmysender.conftest import Tenant, client_for
from warmysender.email import tracking
from warmysender.email.models import TrackingDomain, TrackingFirst, TrackingHit
from warmysender.email.unsubscribe import unsubscribe_token
from warmysender.mailboxes.models import SandboxMessage
from warmysender.prospects import services as prospect_services
from warmysender.prospects.models import GlobalStatus, Prospect, Suppression
from warmysender.sequences import services
from warmysender.sequences.models import (
    Action,
    Campaign,
    CampaignEvent,
    Enrollment,
    EnrollmentStatus,
)
from warmysender.sequences.services import StepInput
from warmysender.sequences.tests.flow import ACTOR, drive, make_campaign, sandbox_mailbox

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(hours=2)  # well past the prefetch window
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
BODY = (
    '<p>Hi {{firstName}}, see <a href="https://example.com/pricing?a=1&b=2">our prices</a>'
    ' or <a href="https://example.com/demo">book a demo</a>,'
    ' or <a href="mailto:sales@acme.com">write to us</a>.</p>'
)
STEPS = [
    StepInput(step_index=1, subject="Hello {{firstName}}", body_html=BODY),
    StepInput(step_index=2, subject="", body_html="<p>Bump.</p>", delay_days=2),
]


def prospect(tenant: Tenant, email: str) -> Prospect:
    return prospect_services.create_prospect(
        workspace=tenant.workspace, data={"email": email, "firstName": "Ada"}, actor=ACTOR, now=T0
    ).prospect


def send_campaign(tenant: Tenant, emails: list[str], **settings: Any) -> Campaign:
    mailbox = sandbox_mailbox(tenant, "sales@acme.com", T0)
    people = [prospect(tenant, e) for e in emails]
    campaign = make_campaign(tenant, [mailbox], STEPS, T0, **settings)
    services.enroll(campaign=campaign, prospect_ids=[p.id for p in people], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    for minute in range(0, 30, 3):
        drive(T0 + timedelta(minutes=minute))
    assert SandboxMessage.objects.count() == len(emails)
    return campaign


def html_of(to_email: str) -> str:
    return SandboxMessage.objects.get(to_email=to_email).html


def path_of(url: str) -> str:
    return urlsplit(html_lib.unescape(url)).path


def pixel_path(body: str) -> str:
    match = re.search(r'<img src="([^"]+/t/o/[^"]+)"', body)
    assert match, body
    return path_of(match.group(1))


def click_paths(body: str) -> list[str]:
    return [path_of(u) for u in re.findall(r'href="([^"]*/t/c/[^"]*)"', body)]


def hit(path: str, *, at: datetime, agent: str = BROWSER, ip: str = "198.51.100.7") -> Any:
    with time_machine.travel(at, tick=False):
        return Client().get(path, HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)


def events(type: str) -> list[DomainEvent]:
    return list(DomainEvent.objects.filter(type=type).order_by("occurred_at"))


def test_links_are_rewritten_and_the_pixel_added_but_not_mailto_or_unsubscribe(
    tenant: Tenant,
) -> None:
    send_campaign(tenant, ["ada@example.com"])
    body = html_of("ada@example.com")
    assert len(click_paths(body)) == 2
    assert 'href="mailto:sales@acme.com"' in body
    assert "https://example.com/pricing" not in body  # only inside the signed token
    assert re.search(
        r'<a href="http://testserver/u/[^"]+">Unsubscribe</a>|/u/[^"]+">Unsubscribe', body
    )
    action = Action.objects.get(step__step_index=1)
    assert pixel_path(body) == reverse("tracking-open", args=[tracking.open_token(action.pk)])
    # The text part keeps the plain links and no pixel.
    text = SandboxMessage.objects.get().text
    assert "/t/o/" not in text


def test_tracking_off_leaves_links_and_adds_no_pixel(tenant: Tenant) -> None:
    send_campaign(tenant, ["ada@example.com"], track_opens=False, track_clicks=False)
    body = html_of("ada@example.com")
    assert "/t/o/" not in body and "/t/c/" not in body
    assert 'href="https://example.com/pricing?a=1&amp;b=2"' in body


def test_opens_only_keeps_links_and_adds_the_pixel(tenant: Tenant) -> None:
    send_campaign(tenant, ["ada@example.com"], track_opens=True, track_clicks=False)
    body = html_of("ada@example.com")
    assert "/t/c/" not in body and "/t/o/" in body


def test_the_pixel_records_every_hit_but_the_first_open_once(tenant: Tenant) -> None:
    campaign = send_campaign(tenant, ["ada@example.com"])
    pixel = pixel_path(html_of("ada@example.com"))
    for minutes in (0, 5, 60):
        response = hit(pixel, at=LATER + timedelta(minutes=minutes))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/gif"
        assert "no-store" in response["Cache-Control"]
        assert response.content.startswith(b"GIF89a")
    assert TrackingHit.objects.filter(kind="open").count() == 3
    first = TrackingFirst.objects.get(kind="open")
    assert first.at == LATER and first.campaign_id == campaign.pk
    [opened] = events("email.opened")
    ada = Prospect.objects.get(email="ada@example.com")
    assert opened.data == {
        "prospectId": str(ada.pk),
        "prospectEmail": "ada@example.com",
        "campaignId": str(campaign.pk),
        "mailboxId": opened.data["mailboxId"],
        "stepIndex": 1,
        "openedAt": LATER.isoformat(),
    }
    assert opened.data["mailboxId"]
    assert CampaignEvent.objects.filter(campaign=campaign, type="opened").count() == 1
    assert AuditEntry.objects.filter(action="prospect.first_open").count() == 1


def test_a_click_redirects_to_the_signed_url_and_records_the_first_click_once(
    tenant: Tenant,
) -> None:
    campaign = send_campaign(tenant, ["ada@example.com"])
    pricing, demo = click_paths(html_of("ada@example.com"))
    response = hit(pricing, at=LATER)
    assert response.status_code == 302
    assert response["Location"] == "https://example.com/pricing?a=1&b=2"
    hit(pricing, at=LATER + timedelta(minutes=1))
    assert hit(demo, at=LATER + timedelta(minutes=2))["Location"] == "https://example.com/demo"
    assert TrackingHit.objects.filter(kind="click", is_scanner=False).count() == 3
    assert TrackingFirst.objects.filter(kind="click").count() == 1
    clicked = events("email.clicked")
    # Once per unique URL per prospect per day.
    assert [e.data["url"] for e in clicked] == [
        "https://example.com/pricing?a=1&b=2",
        "https://example.com/demo",
    ]
    assert clicked[0].data["clickedAt"] == LATER.isoformat()
    assert CampaignEvent.objects.filter(campaign=campaign, type="clicked").count() == 1
    # The next day the same URL is a new `email.clicked`.
    hit(pricing, at=LATER + timedelta(days=1))
    assert len(events("email.clicked")) == 3


def test_an_altered_or_forged_click_token_is_refused_and_never_redirects(tenant: Tenant) -> None:
    send_campaign(tenant, ["ada@example.com"])
    pricing = click_paths(html_of("ada@example.com"))[0]
    token = pricing.split("/t/c/")[1].rstrip("/")
    action = Action.objects.get(step__step_index=1)
    forged = [
        # Another target signed with a different key.
        signing.dumps(
            [action.pk.hex, "https://evil.example/"], key="x" * 50, salt=tracking.CLICK_SALT
        ),
        # The open token used as a click token.
        tracking.open_token(action.pk),
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "garbage",
    ]
    for bad in forged:
        response = Client().get(f"/t/c/{bad}/", HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 400, bad
        assert "Location" not in response
        assert b"Link not valid" in response.content
    # A validly signed token for a non-http scheme is refused too (no javascript: redirect).
    js = tracking.click_token(action.pk, "javascript:alert(1)")
    assert Client().get(f"/t/c/{js}/").status_code == 400
    assert not TrackingHit.objects.exists()


def test_a_bad_pixel_token_still_answers_the_gif_and_records_nothing(tenant: Tenant) -> None:
    send_campaign(tenant, ["ada@example.com"])
    for bad in ("nope", tracking.open_token(Action.objects.get().pk)[:-3] + "xyz"):
        response = Client().get(f"/t/o/{bad}.gif", HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    # A HEAD of a good pixel (a link checker) answers but records nothing either.
    good = pixel_path(html_of("ada@example.com"))
    assert Client().head(good, HTTP_USER_AGENT=BROWSER).status_code == 200
    assert not TrackingHit.objects.exists()


def test_scanner_hits_are_kept_flagged_and_left_out_of_the_rates(tenant: Tenant) -> None:
    campaign = send_campaign(tenant, ["ada@example.com", "bob@example.com"])
    ada_pixel = pixel_path(html_of("ada@example.com"))
    bob_body = html_of("bob@example.com")
    sent_at = Action.objects.get(to_email="bob@example.com").finished_at
    assert sent_at is not None
    # Bob's gateway opens everything within seconds and follows both links at once.
    hit(pixel_path(bob_body), at=sent_at + timedelta(seconds=3))
    hit(pixel_path(bob_body), at=LATER, agent="Mozilla/5.0 (compatible; Mimecast)")
    hit(pixel_path(bob_body), at=LATER, ip="40.107.22.5")  # Exchange Online Protection
    pricing, demo = click_paths(bob_body)
    hit(pricing, at=LATER + timedelta(minutes=5))
    hit(demo, at=LATER + timedelta(minutes=5, milliseconds=300))
    # Ada opens for real.
    hit(ada_pixel, at=LATER)
    reasons = dict(
        TrackingHit.objects.filter(action__to_email="bob@example.com").values_list(
            "scanner_reason", "is_scanner"
        )
    )
    assert reasons == {
        "within 30 s of delivery": True,
        "user agent: mimecast": True,
        "microsoft exchange online protection address range": True,
        "several links clicked within a second": True,
    }
    assert TrackingHit.objects.filter(is_scanner=False).count() == 1
    response = client_for(tenant.member).get(reverse("campaign-detail", args=[campaign.pk]))
    page = response.content.decode()
    assert re.search(r'data-testid="stat-opens">1<', page)
    assert re.search(r'data-testid="rate-open">50.0%', page)
    assert re.search(r'data-testid="stat-clicks">0<', page)
    assert "5 hits from security scanners or prefetchers left out." in page
    assert len(events("email.opened")) == 1


def test_the_campaign_page_shows_per_step_and_variant_numbers_within_100_percent(
    tenant: Tenant, outsider: Tenant
) -> None:
    campaign = send_campaign(tenant, ["ada@example.com"])
    pixel = pixel_path(html_of("ada@example.com"))
    for minutes in range(5):  # five opens of one email are one open
        hit(pixel, at=LATER + timedelta(minutes=minutes))
    pricing = click_paths(html_of("ada@example.com"))[0]
    hit(pricing, at=LATER + timedelta(minutes=10))
    hit(pricing, at=LATER + timedelta(minutes=20))
    url = reverse("campaign-detail", args=[campaign.pk])
    page = client_for(tenant.member).get(url).content.decode()
    assert re.search(r'data-testid="rate-open">100.0%', page)
    assert re.search(r'data-testid="rate-click">100.0%', page)
    assert 'data-step="1"' in page
    stats_url = reverse("campaign-stats", args=[campaign.pk])
    assert 'data-testid="step-stats"' in client_for(tenant.member).get(stats_url).content.decode()
    # Another workspace sees neither the page nor its numbers.
    assert client_for(outsider.owner).get(url).status_code == 404
    assert client_for(outsider.owner).get(stats_url).status_code == 404


def test_hits_of_an_email_that_was_never_sent_record_nothing(tenant: Tenant) -> None:
    send_campaign(tenant, ["ada@example.com"])
    planned = Action.objects.get()
    Action.objects.filter(pk=planned.pk).update(state="failed")
    hit(reverse("tracking-open", args=[tracking.open_token(planned.pk)]), at=LATER)
    assert not TrackingHit.objects.exists()


def test_a_verified_custom_domain_carries_the_campaigns_links(tenant: Tenant) -> None:
    domain = TrackingDomain.objects.create(
        workspace=tenant.workspace,
        domain="track.acme.com",
        cname_target="127.0.0.1",
        created_at=T0,
        verified_at=T0,
    )
    mailbox = sandbox_mailbox(tenant, "sales@acme.com", T0)
    ada = prospect(tenant, "ada@example.com")
    campaign = make_campaign(tenant, [mailbox], STEPS[:1], T0)
    from warmysender.email.services import set_campaign_tracking_domain

    set_campaign_tracking_domain(campaign=campaign, domain=domain, actor=ACTOR, now=T0)
    services.enroll(campaign=campaign, prospect_ids=[ada.id], actor=ACTOR, now=T0)
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    drive(T0)
    body = html_of("ada@example.com")
    assert 'src="http://track.acme.com/t/o/' in body
    assert 'href="http://track.acme.com/t/c/' in body
    assert "track.acme.com/u/" not in body  # unsubscribe stays on SITE_URL


def test_one_click_post_unsubscribes_suppresses_and_stops_every_enrollment(
    tenant: Tenant,
) -> None:
    campaign = send_campaign(tenant, ["ada@example.com"])
    ada = Prospect.objects.get(email="ada@example.com")
    other = make_campaign(tenant, [sandbox_mailbox(tenant, "b@acme.com", T0)], STEPS, T0)
    services.enroll(campaign=other, prospect_ids=[ada.id], actor=ACTOR, now=T0)
    enrollment = Enrollment.objects.get(campaign=campaign)
    url = reverse("unsubscribe", args=[unsubscribe_token(enrollment)])
    with time_machine.travel(LATER, tick=False):
        # The mail provider's POST: no cookie, no CSRF token, form body as RFC 8058 says.
        response = Client(enforce_csrf_checks=True).post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert b"acme Inc" in response.content  # the workspace's name
    assert Suppression.objects.filter(workspace=tenant.workspace, value="ada@example.com").exists()
    assert set(Enrollment.objects.values_list("status", flat=True)) == {
        EnrollmentStatus.UNSUBSCRIBED
    }
    ada.refresh_from_db()
    assert ada.global_status == GlobalStatus.UNSUBSCRIBED
    [unsubscribed] = events("email.unsubscribed")
    assert unsubscribed.data["prospectEmail"] == "ada@example.com"
    assert unsubscribed.data["campaignId"] == str(campaign.pk)
    assert unsubscribed.data["unsubscribedAt"] == LATER.isoformat()
    assert unsubscribed.data["oneClick"] is True
    assert [e.data["prospectId"] for e in events("prospect.suppressed")] == [str(ada.pk)]
    # The page's own button later: nothing new.
    with time_machine.travel(LATER + timedelta(hours=1), tick=False):
        assert Client().post(url).status_code == 200
    assert len(events("email.unsubscribed")) == 1
    assert len(events("prospect.suppressed")) == 1
    # The follow-up never goes out.
    drive(T0 + timedelta(days=3))
    assert SandboxMessage.objects.count() == 1


def test_the_visible_link_asks_first_then_unsubscribes(tenant: Tenant) -> None:
    send_campaign(tenant, ["ada@example.com"])
    enrollment = Enrollment.objects.get()
    url = reverse("unsubscribe", args=[unsubscribe_token(enrollment)])
    page = Client().get(url)
    assert page.status_code == 200 and b"Stop all email from acme Inc" in page.content
    assert not Suppression.objects.exists()  # a GET (link scanners) changes nothing
    with time_machine.travel(LATER, tick=False):
        done = Client().post(url)
    assert b"You are unsubscribed" in done.content
    assert events("email.unsubscribed")[0].data["oneClick"] is False
    assert Client().get(url[:-3] + "xx/").status_code == 404


def test_a_repeat_open_costs_one_lookup_and_two_inserts_and_no_session(tenant: Tenant) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    send_campaign(tenant, ["ada@example.com"])
    pixel = pixel_path(html_of("ada@example.com"))
    hit(pixel, at=LATER)
    with CaptureQueriesContext(connection) as ctx:
        hit(pixel, at=LATER + timedelta(minutes=1))
    statements = [
        q["sql"].split()[0].upper()
        for q in ctx.captured_queries
        if "SAVEPOINT" not in q["sql"].upper()
    ]
    assert statements == ["SELECT", "INSERT", "INSERT"]
    assert "django_session" not in " ".join(q["sql"] for q in ctx.captured_queries)
