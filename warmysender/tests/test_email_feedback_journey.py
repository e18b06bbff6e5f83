"""The email feedback loop end to end, on loopback: a campaign's first emails go out through
aiosmtpd, the prospects' answers land in a real Dovecot mailbox, one IMAP sync applies them, and
the outgoing webhook delivers the result to a receiver that checks the signature with the
product documentation's own recipe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client

from warmysender.audit.services import Actor
from warmysender.conftest import Tenant
from warmysender.email.tests.corpus import autoreply, bounce
from warmysender.inbox.tests.helpers import (
    T0,
    World,
    campaign_that_sent,
    enrollment_of,
    make_world,
    reply_to,
    sent_action,
)
from warmysender.prospects.models import Suppression
from warmysender.sequences.models import EnrollmentStatus
from warmysender.testing.imap import DovecotServer
from warmysender.testing.smtp import SmtpServer
from warmysender.webhooks import delivery
from warmysender.webhooks import services as webhooks
from warmysender.webhooks.tests.receiver import Receiver, verify

pytestmark = pytest.mark.django_db
ADA, BOB, CARO = "ada@example.com", "bob@example.org", "caro@example.net"


@pytest.fixture
def world(
    tenant: Tenant, smtp_server: SmtpServer, imap_server: DovecotServer, settings: object
) -> World:
    settings.SMTP_CA_FILE = str(imap_server.ca_file)  # type: ignore[attr-defined]
    settings.WEBHOOKS_ALLOW_LOOPBACK = True  # type: ignore[attr-defined]
    return make_world(tenant, smtp_server, imap_server)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_a_reply_stops_the_sequence_shows_on_the_thread_and_is_delivered_once_signed(
    world: World, receiver: Receiver
) -> None:
    created = webhooks.create_endpoint(
        world.tenant.workspace,
        {"url": receiver.url(), "events": ["reply.received", "email.bounced"]},
        actor=Actor.person(world.tenant.owner),
        now=T0,
    )
    campaign = campaign_that_sent(world, [ADA, BOB, CARO])
    ada, bob, caro = (sent_action(campaign, e) for e in (ADA, BOB, CARO))
    world.append(reply_to(ada, body="Yes, let's talk on Thursday."))
    world.append(
        autoreply(
            "en_outlook",
            sender=BOB,
            to=world.login,
            subject=bob.subject,
            message_id=bob.message_id,
            token="bob",
        )
    )
    world.append(
        bounce(
            "postfix_user_unknown",
            sender=world.login,
            recipient=CARO,
            message_id=caro.message_id,
            action_id=str(caro.pk),
        ),
        folder="INBOX",
    )

    # One sync.
    report = world.sync(T0 + timedelta(hours=2))
    assert report.error == ""

    # The reply stopped Ada's sequence; the out-of-office did not stop Bob's; Caro's address
    # bounced hard and is suppressed.
    assert enrollment_of(campaign, ADA).status == EnrollmentStatus.REPLIED
    assert enrollment_of(campaign, BOB).status == EnrollmentStatus.PENDING
    assert enrollment_of(campaign, CARO).status == EnrollmentStatus.BOUNCED
    assert Suppression.objects.filter(workspace=world.tenant.workspace, value=CARO).exists()

    # The reply is on Ada's thread, under her sent email.
    client = Client()
    client.force_login(world.tenant.member)
    page = client.get(f"/prospects/{enrollment_of(campaign, ADA).prospect_id}/thread/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "let&#x27;s talk on Thursday" in text or "let's talk on Thursday" in text
    assert ada.subject in text

    # Delivered: exactly one signed reply.received (and the bounce), verified by the recipe.
    delivery.deliver_due(lambda: T0 + timedelta(hours=2, minutes=1))
    # A second pass (and a second sync) delivers nothing again.
    world.sync(T0 + timedelta(hours=3))
    delivery.deliver_due(lambda: T0 + timedelta(hours=3, minutes=1))
    by_type: dict[str, list[dict[str, object]]] = {}
    for request in receiver.requests:
        assert verify(created.secret, request.headers["x-warmy-signature"], request.body)
        envelope = json.loads(request.body)
        assert request.headers["x-warmy-event-type"] == envelope["type"]
        assert request.headers["x-warmy-event-id"] == envelope["id"]
        by_type.setdefault(envelope["type"], []).append(envelope)
    [replied] = by_type["reply.received"]
    assert replied["workspaceId"] == str(world.tenant.workspace.pk)
    data = replied["data"]
    assert isinstance(data, dict)
    assert data["prospectEmail"] == ADA and data["campaignId"] == str(campaign.pk)
    [bounced] = by_type["email.bounced"]
    assert isinstance(bounced["data"], dict) and bounced["data"]["prospectEmail"] == CARO
    assert set(by_type) == {"reply.received", "email.bounced"}
