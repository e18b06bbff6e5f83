"""Custom tracking domains: Settings → Tracking Domains, CNAME verification against a real DNS
server on loopback (answering from a small zone with dnspython's own wire format), and the
per-campaign choice."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from django.test import override_settings
from django.urls import reverse

from warmysender.audit.models import AuditEntry
from warmysender.conftest import Tenant, client_for
from warmysender.email import services
from warmysender.email.models import TrackingDomain
from warmysender.sequences.tests.flow import ACTOR, make_campaign, sandbox_mailbox

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TARGET = "track.warmysender.test"

# name -> list of (type, value)
ZONE: dict[str, list[tuple[str, str]]] = {
    "track.acme.com.": [("CNAME", f"{TARGET}.")],
    "links.acme.com.": [("CNAME", "elsewhere.example.net.")],
    "a-record.acme.com.": [("A", "192.0.2.10")],
}


class ZoneServer:
    """A UDP DNS server on 127.0.0.1 answering from ZONE: NXDOMAIN for unknown names, NOERROR
    with no answer for a known name without that type."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.running = True

    def serve(self) -> None:
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().lower()
            self.queries.append(name)
            records = ZONE.get(name)
            if records is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                wanted = dns.rdatatype.to_text(question.rdtype)
                for kind, value in records:
                    if kind == wanted:
                        response.answer.append(dns.rrset.from_text(name, 3600, "IN", kind, value))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self.running = False
        self.sock.close()


@pytest.fixture
def dns_zone() -> Iterator[ZoneServer]:
    server = ZoneServer()
    server.thread.start()
    with override_settings(
        TRACKING_DNS_SERVER=f"127.0.0.1:{server.port}", TRACKING_CNAME_TARGET=TARGET
    ):
        yield server
    server.close()


def add(tenant: Tenant, domain: str) -> TrackingDomain:
    return services.add_tracking_domain(
        workspace=tenant.workspace, domain=domain, actor=ACTOR, now=T0
    )


def test_a_cname_to_the_target_verifies(tenant: Tenant, dns_zone: ZoneServer) -> None:
    row = services.verify_tracking_domain(row=add(tenant, "Track.Acme.com."), actor=ACTOR, now=T0)
    assert row.domain == "track.acme.com"
    assert row.verified_at == T0 and row.last_check_error == ""
    assert dns_zone.queries == ["track.acme.com."]
    assert AuditEntry.objects.filter(action="tracking_domain.checked", to_state="verified").exists()


def test_a_cname_to_another_host_is_the_wrong_target(tenant: Tenant, dns_zone: ZoneServer) -> None:
    row = services.verify_tracking_domain(row=add(tenant, "links.acme.com"), actor=ACTOR, now=T0)
    assert row.verified_at is None
    assert row.last_check_error == (
        "CNAME record points to wrong target: links.acme.com points to "
        f"elsewhere.example.net, expected {TARGET}."
    )


def test_a_missing_name_has_no_cname(tenant: Tenant, dns_zone: ZoneServer) -> None:
    row = services.verify_tracking_domain(row=add(tenant, "nothing.acme.com"), actor=ACTOR, now=T0)
    assert row.verified_at is None
    assert row.last_check_error.startswith("No CNAME record found: nothing.acme.com does not exist")


def test_an_a_record_instead_of_a_cname_is_explained(tenant: Tenant, dns_zone: ZoneServer) -> None:
    row = services.verify_tracking_domain(row=add(tenant, "a-record.acme.com"), actor=ACTOR, now=T0)
    assert row.verified_at is None
    assert row.last_check_error.startswith("No CNAME record found: a-record.acme.com exists")
    assert "A record" in row.last_check_error


def test_a_domain_that_stops_verifying_loses_its_verification(
    tenant: Tenant, dns_zone: ZoneServer
) -> None:
    row = services.verify_tracking_domain(row=add(tenant, "track.acme.com"), actor=ACTOR, now=T0)
    assert row.is_verified
    ZONE["track.acme.com."] = [("CNAME", "moved.example.net.")]
    try:
        row = services.verify_tracking_domain(row=row, actor=ACTOR, now=T0)
    finally:
        ZONE["track.acme.com."] = [("CNAME", f"{TARGET}.")]
    assert not row.is_verified and "wrong target" in row.last_check_error


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "Enter a domain"),
        ("https://track.acme.com/", "is a URL"),
        ("no-dot", "is not a valid domain name"),
        ("bad_chars.acme.com", "is not a valid domain name"),
        ("-lead.acme.com", "is not a valid domain name"),
        (TARGET, "the tracking host itself"),
    ],
)
def test_bad_domains_are_refused_with_the_reason(
    tenant: Tenant, dns_zone: ZoneServer, value: str, problem: str
) -> None:
    with pytest.raises(services.TrackingDomainError) as caught:
        add(tenant, value)
    assert problem in caught.value.message
    assert not TrackingDomain.objects.exists()


def test_the_same_domain_twice_is_refused(tenant: Tenant, dns_zone: ZoneServer) -> None:
    add(tenant, "track.acme.com")
    with pytest.raises(services.TrackingDomainError, match="already one of"):
        add(tenant, "TRACK.acme.com")
    assert TrackingDomain.objects.count() == 1


# --- the page ----------------------------------------------------------------------------


def test_an_admin_adds_and_verifies_a_domain_on_the_page(
    tenant: Tenant, dns_zone: ZoneServer
) -> None:
    client = client_for(tenant.admin)
    page = client.get(reverse("tracking-domains"))
    assert page.status_code == 200 and TARGET in page.content.decode()
    response = client.post(reverse("tracking-domain-add"), {"domain": "track.acme.com"})
    assert response.status_code == 302
    row = TrackingDomain.objects.get()
    response = client.post(reverse("tracking-domain-verify", args=[row.pk]), follow=True)
    assert "track.acme.com is verified" in response.content.decode()
    bad = client.post(reverse("tracking-domain-add"), {"domain": "https://x.acme.com"})
    assert bad.status_code == 400 and "is a URL" in bad.content.decode()
    wrong = services.add_tracking_domain(
        workspace=tenant.workspace, domain="links.acme.com", actor=ACTOR, now=T0
    )
    response = client.post(reverse("tracking-domain-verify", args=[wrong.pk]), follow=True)
    assert "CNAME record points to wrong target" in response.content.decode()


def test_a_member_sees_the_domains_but_cannot_change_them(
    tenant: Tenant, dns_zone: ZoneServer
) -> None:
    row = add(tenant, "track.acme.com")
    client = client_for(tenant.member)
    page = client.get(reverse("tracking-domains")).content.decode()
    assert "track.acme.com" in page and "Only owners and admins" in page
    assert client.post(reverse("tracking-domain-add"), {"domain": "x.acme.com"}).status_code == 403
    assert client.post(reverse("tracking-domain-verify", args=[row.pk])).status_code == 403
    assert client.post(reverse("tracking-domain-remove", args=[row.pk])).status_code == 403
    assert TrackingDomain.objects.count() == 1 and not dns_zone.queries


def test_an_outsider_never_sees_or_touches_the_domains(
    tenant: Tenant, outsider: Tenant, dns_zone: ZoneServer
) -> None:
    row = add(tenant, "track.acme.com")
    client = client_for(outsider.owner)
    assert "track.acme.com" not in client.get(reverse("tracking-domains")).content.decode()
    assert client.post(reverse("tracking-domain-verify", args=[row.pk])).status_code == 404
    assert client.post(reverse("tracking-domain-remove", args=[row.pk])).status_code == 404
    assert TrackingDomain.objects.filter(pk=row.pk).exists() and not dns_zone.queries


def test_a_campaign_uses_only_a_verified_domain_of_its_own_workspace(
    tenant: Tenant, outsider: Tenant, dns_zone: ZoneServer
) -> None:
    from warmysender.sequences.services import StepInput

    campaign = make_campaign(
        tenant,
        [sandbox_mailbox(tenant, "s@acme.com", T0)],
        [StepInput(step_index=1, subject="Hi", body_html="<p>Hi</p>")],
        T0,
    )
    unverified = add(tenant, "links.acme.com")
    verified = services.verify_tracking_domain(
        row=add(tenant, "track.acme.com"), actor=ACTOR, now=T0
    )
    theirs = TrackingDomain.objects.create(
        workspace=outsider.workspace,
        domain="t.other.com",
        cname_target=TARGET,
        created_at=T0,
        verified_at=T0,
    )
    url = reverse("campaign-tracking-domain", args=[campaign.pk])
    admin = client_for(tenant.admin)

    def choose(client: Any, value: str) -> str:
        return client.post(url, {"tracking_domain": value}, follow=True).content.decode()

    assert "not verified yet" in choose(admin, str(unverified.pk))
    assert "No such tracking domain" in choose(admin, str(theirs.pk))
    assert "is not a tracking domain" in choose(admin, "abc")
    campaign.refresh_from_db()
    assert campaign.tracking_domain_id is None
    page = choose(admin, str(verified.pk))
    assert "Tracking links now use track.acme.com" in page
    campaign.refresh_from_db()
    assert campaign.tracking_domain_id == verified.pk
    # A member cannot change it; an outsider cannot even find the campaign.
    assert client_for(tenant.member).post(url, {"tracking_domain": ""}).status_code == 403
    assert client_for(outsider.owner).post(url, {"tracking_domain": ""}).status_code == 404
    campaign.refresh_from_db()
    assert campaign.tracking_domain_id == verified.pk
    # Removing the domain puts the campaign back on the default address.
    admin.post(reverse("tracking-domain-remove", args=[verified.pk]))
    campaign.refresh_from_db()
    assert campaign.tracking_domain_id is None
