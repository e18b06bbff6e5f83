"""The prospect's thread page: sent emails and what came back, in time order, for members of
the workspace only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from warmysender.conftest import Tenant, client_for
from warmysender.inbox.tests.helpers import (
    T0,
    World,
    campaign_that_sent,
    make_world,
    reply_to,
    sent_action,
)
from warmysender.testing.imap import DovecotServer
from warmysender.testing.smtp import SmtpServer

pytestmark = pytest.mark.django_db
ADA = "ada@example.com"


def test_the_thread_shows_the_email_and_the_reply_in_order_to_members_only(
    tenant: Tenant,
    outsider: Tenant,
    smtp_server: SmtpServer,
    imap_server: DovecotServer,
    settings: object,
) -> None:
    settings.SMTP_CA_FILE = str(imap_server.ca_file)  # type: ignore[attr-defined]
    world: World = make_world(tenant, smtp_server, imap_server)
    campaign = campaign_that_sent(world, [ADA])
    action = sent_action(campaign, ADA)
    world.append(reply_to(action, body="Yes <b>please</b>, call me"))
    world.sync(T0 + timedelta(hours=2))
    url = f"/prospects/{action.enrollment.prospect_id}/thread/"

    page = client_for(tenant.member).get(url)
    assert page.status_code == 200
    html = page.content.decode()
    sent_at, reply_at = html.index("Sent from"), html.index("Reply to")
    assert sent_at < reply_at
    assert f"Re: {action.subject}" in html
    assert "Yes &lt;b&gt;please&lt;/b&gt;, call me" in html  # the body is text, escaped

    assert client_for(outsider.owner).get(url).status_code == 404
    from django.test import Client

    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    assert client_for(tenant.member).get("/prospects/not-a-uuid/thread/").status_code == 404
