"""The simulator's control page at `/_sim/` over real HTTP: what it lists, each button's form
changing the world (and sending the same webhooks as the JSON control API), refusals that name
the problem and change nothing, and in Chromium the journey it exists for: from LinkedIn →
Accounts to "Simulator controls", expire the session, see "Reconnect needed", reconnect."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from warmysender.conftest import Tenant
from warmysender.linkedin import connection
from warmysender.linkedin.client import Failure, InvitationSent
from warmysender.linkedin.models import AccountStatus, LinkedInAccount
from warmysender.linkedin.simulator import SimulatorServer
from warmysender.linkedin.tests.conftest import WebhookReceiver
from warmysender.linkedin.tests.test_browser_linkedin import (
    log_in,
    sign_in_on_hosted_page,
    wait_for_pill,
)

SECRET = {"X-Warmy-Unipile-Secret": "s3cret-intake-token"}


def page(sim: SimulatorServer) -> str:
    answer = httpx.get(f"{sim.base_url}/_sim/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    return answer.text


def row(html: str, account_id: str) -> str:
    """The account's table row, so an assertion cannot be met by another account's row."""
    found = re.search(rf"<tr id='account-{re.escape(account_id)}'.*?</tr>", html, re.S)
    assert found, f"no row for {account_id}"
    return found.group(0)


def press(sim: SimulatorServer, path: str, **form: str) -> str:
    """Submit a form as a browser does: a 303 back to the page, which shows what happened."""
    answer = httpx.post(f"{sim.base_url}/_sim/ui{path}", data=form)
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/_sim/?done=")
    shown = httpx.get(sim.base_url + location)
    assert shown.status_code == 200
    flash = re.search(r"<p class='flash' role='status'>(.*?)</p>", shown.text)
    assert flash, "the page shows no message"
    return shown.text


def flash_of(html: str) -> str:
    found = re.search(r"<p class='flash' role='status'>(.*?)</p>", html)
    assert found
    return found.group(1)


def test_the_page_lists_accounts_status_pending_invitations_and_faults(
    unipile_sim: SimulatorServer,
) -> None:
    client = unipile_sim.client()
    ada = unipile_sim.add_account(username="ada.lovelace@example.com")["id"]
    grace = unipile_sim.add_account(username="grace.hopper@example.com", status="STOPPED")["id"]
    for slug in ("omar-said", "lea-martin"):
        assert isinstance(client.send_invitation(ada, slug), InvitationSent)
    unipile_sim.fault("too_many_requests", times=2, account_id=grace, operation="send_invitation")
    unipile_sim.fault("service_unavailable", times=None)
    html = page(unipile_sim)
    assert html.index("Ada Lovelace") < html.index("Grace Hopper")
    first, second = row(html, ada), row(html, grace)
    assert f"<code>{ada}</code>" in first and "ada.lovelace@example.com" in first
    assert "data-testid='provider-status'>OK<" in first
    assert "data-testid='pending-invitations'>2<" in first
    assert "data-testid='faults'><span class='muted'>none" in first
    assert "data-testid='provider-status'>STOPPED<" in second
    assert "data-testid='pending-invitations'>0<" in second
    assert "<code>too_many_requests</code> on send_invitation × 2" in second
    assert "Fleet-wide faults: <code>service_unavailable</code> until cleared" in html
    assert "data-testid='fleet'>up<" in html
    # Plain forms, no script or external asset.
    assert "<script" not in html and "<link" not in html and "src=" not in html
    assert "https://" not in html
    for action in ("expire", "restrict", "fail-404", "clear", "accept-invitations", "message"):
        assert f"action='/_sim/ui/accounts/{ada}/{action}'" in first


def test_an_empty_simulator_says_how_accounts_arrive(unipile_sim: SimulatorServer) -> None:
    html = page(unipile_sim)
    assert "No accounts yet" in html
    assert "No webhook intake is registered" in html
    assert httpx.get(f"{unipile_sim.base_url}/_sim", follow_redirects=True).url.path == "/_sim/"


def test_expire_session_sends_the_same_webhook_as_the_control_api(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    ada = unipile_sim.add_account(username="ada.lovelace@example.com")["id"]
    grace = unipile_sim.add_account(username="grace.hopper@example.com")["id"]
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    html = press(unipile_sim, f"/accounts/{ada}/expire")
    assert unipile_sim.account(ada)["sources"][0]["status"] == "CREDENTIALS"
    assert unipile_sim.account(grace)["sources"][0]["status"] == "OK"
    assert "data-testid='provider-status'>CREDENTIALS<" in row(html, ada)
    assert flash_of(html).startswith("Ada Lovelace: session expired")
    [by_button] = webhook_receiver.wait_for(1)
    assert by_button.path == "/hooks/unipile"
    assert by_button.headers["x-warmy-unipile-secret"] == "s3cret-intake-token"
    assert by_button.json() == {
        "AccountStatus": {"account_id": ada, "account_type": "LINKEDIN", "message": "CREDENTIALS"}
    }
    unipile_sim.expire_session(grace)  # the JSON control call, for comparison
    _, by_api = webhook_receiver.wait_for(2)
    assert set(by_api.headers) == set(by_button.headers)
    assert by_api.headers["x-warmy-unipile-secret"] == "s3cret-intake-token"
    assert by_api.json() == {
        "AccountStatus": {"account_id": grace, "account_type": "LINKEDIN", "message": "CREDENTIALS"}
    }
    unipile_sim.wait_for_webhooks()
    assert len(webhook_receiver.received) == 2  # one webhook per expiry, nothing more
    assert "CREDENTIALS for " + ada + " — delivered" in page(unipile_sim)


def test_restrict_and_lift_the_restriction(unipile_sim: SimulatorServer) -> None:
    client = unipile_sim.client()
    ada = unipile_sim.add_account(username="ada.lovelace@example.com")["id"]
    html = press(unipile_sim, f"/accounts/{ada}/restrict", restricted="true")
    assert unipile_sim.state.accounts[ada].restricted
    assert "restricted</span>" in row(html, ada) and "Lift restriction" in row(html, ada)
    refused = client.send_invitation(ada, "omar-said")
    assert isinstance(refused, Failure) and refused.kind == "restricted"
    html = press(unipile_sim, f"/accounts/{ada}/restrict", restricted="false")
    assert not unipile_sim.state.accounts[ada].restricted
    assert "restricted</span>" not in row(html, ada)
    assert flash_of(html) == "Ada Lovelace: restriction lifted."
    assert isinstance(client.send_invitation(ada, "omar-said"), InvitationSent)


def test_answer_404_three_times_then_clear(unipile_sim: SimulatorServer) -> None:
    client = unipile_sim.client()
    ada = unipile_sim.add_account(username="ada.lovelace@example.com")["id"]
    grace = unipile_sim.add_account(username="grace.hopper@example.com")["id"]
    html = press(unipile_sim, f"/accounts/{ada}/fail-404")
    assert "<code>resource_not_found</code> × 3" in row(html, ada)
    assert "none" in row(html, grace)
    for _ in range(3):
        result = client.account_status(ada)
        assert isinstance(result, Failure) and result.kind == "account_not_found"
    assert client.account_status(ada) == "OK"  # three, then found again
    assert client.account_status(grace) == "OK"
    press(unipile_sim, f"/accounts/{ada}/fail-404")
    unipile_sim.fault("too_many_requests", times=None, account_id=ada)
    unipile_sim.fault("too_many_requests", times=None, account_id=grace)
    html = press(unipile_sim, f"/accounts/{ada}/clear")
    assert flash_of(html) == "Ada Lovelace: 2 faults cleared."
    assert "data-testid='faults'><span class='muted'>none" in row(html, ada)
    assert client.account_status(ada) == "OK"
    assert [f.account_id for f in unipile_sim.state.faults] == [grace]  # another's stay


def test_accept_every_pending_invitation(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    client = unipile_sim.client()
    ada = unipile_sim.add_account(username="ada.lovelace@example.com")["id"]
    grace = unipile_sim.add_account(username="grace.hopper@example.com")["id"]
    for slug in ("omar-said", "lea-martin"):
        assert isinstance(client.send_invitation(ada, slug), InvitationSent)
    assert isinstance(client.send_invitation(grace, "omar-said"), InvitationSent)
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    html = press(unipile_sim, f"/accounts/{ada}/accept-invitations")
    assert flash_of(html) == "Ada Lovelace: 2 invitations accepted."
    assert "data-testid='pending-invitations'>0<" in row(html, ada)
    assert "data-testid='pending-invitations'>1<" in row(html, grace)
    received = webhook_receiver.wait_for(2)
    events = sorted((r.json()["event"], r.json()["user_public_identifier"]) for r in received)
    assert events == [("new_relation", "lea-martin"), ("new_relation", "omar-said")]
    assert {r.json()["account_id"] for r in received} == {ada}
    assert len(unipile_sim.state.accounts[ada].relations) == 2
    again = press(unipile_sim, f"/accounts/{ada}/accept-invitations")
    assert flash_of(again) == "Ada Lovelace: no pending invitation to accept."
    unipile_sim.wait_for_webhooks()
    assert len(webhook_receiver.received) == 2


def test_write_to_the_account(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    ada = unipile_sim.add_account(username="ada.lovelace@example.com")["id"]
    unipile_sim.connect_person(ada, "omar-said")
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    # The sender field starts as the newest connection, as a reply would come from.
    assert "name='from' aria-label='From' size='14' value='omar-said'" in row(
        page(unipile_sim), ada
    )
    html = press(unipile_sim, f"/accounts/{ada}/message", **{"from": "omar-said", "text": "Hi!"})
    assert flash_of(html) == "Ada Lovelace: message from omar-said received."
    [message] = webhook_receiver.wait_for(1)
    assert message.json()["event"] == "message_received"
    assert message.json()["account_id"] == ada and message.json()["message"] == "Hi!"
    [chat] = unipile_sim.state.chats.values()
    assert chat.account_id == ada and chat.attendee.public_identifier == "omar-said"


def test_the_api_goes_down_and_comes_back(unipile_sim: SimulatorServer) -> None:
    client = unipile_sim.client()
    ada = unipile_sim.add_account()["id"]
    html = press(unipile_sim, "/down", status="502")
    assert unipile_sim.state.down_status == 502
    assert "data-testid='fleet'>down (502)<" in html
    assert flash_of(html) == "The API is down: every call answers 502."
    down = client.account_status(ada)
    assert isinstance(down, Failure) and down.status == 502
    html = press(unipile_sim, "/up")
    assert unipile_sim.state.down_status is None and "data-testid='fleet'>up<" in html
    assert client.account_status(ada) == "OK"


def test_refusals_name_the_problem_and_change_nothing(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    ada = unipile_sim.add_account(username="ada.lovelace@example.com")["id"]
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    base = f"{unipile_sim.base_url}/_sim/ui"
    for action in ("expire", "restrict", "fail-404", "clear", "accept-invitations", "message"):
        answer = httpx.post(
            f"{base}/accounts/nobody/{action}", data={"from": "omar-said", "text": "Hi"}
        )
        assert answer.status_code == 404, action
        assert answer.headers["content-type"].startswith("text/html")
        assert "Account nobody not found." in answer.text
        assert "Nothing was changed" in answer.text
    for text in ("", "   "):
        empty = httpx.post(
            f"{base}/accounts/{ada}/message", data={"from": "omar-said", "text": text}
        )
        assert empty.status_code == 400
        assert "text is required: the message is empty" in empty.text
    no_sender = httpx.post(f"{base}/accounts/{ada}/message", data={"from": " ", "text": "Hi"})
    assert no_sender.status_code == 400 and "from (a provider id" in no_sender.text
    bad_flag = httpx.post(f"{base}/accounts/{ada}/restrict", data={"restricted": "maybe"})
    assert bad_flag.status_code == 400 and "restricted must be true or false" in bad_flag.text
    for status in ("418", "soon"):
        bad_down = httpx.post(f"{base}/down", data={"status": status})
        assert (
            bad_down.status_code == 400 and "status must be 500, 502, 503 or 504" in bad_down.text
        )
    state = unipile_sim.state
    assert state.chats == {} and state.faults == [] and state.down_status is None
    assert state.accounts[ada].status == "OK" and not state.accounts[ada].restricted
    unipile_sim.wait_for_webhooks()
    assert webhook_receiver.received == [] and unipile_sim.deliveries() == []
    assert httpx.get(f"{base}/accounts/{ada}/expire").status_code == 404  # forms only POST


@pytest.mark.browser
def test_a_person_expires_the_session_from_the_control_page_and_reconnects(
    live_server: Any,
    page: Page,
    tenant: Tenant,
    unipile_sim: SimulatorServer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.LINKEDIN_BACKEND = "simulator"
    settings.UNIPILE_DSN = unipile_sim.base_url
    settings.UNIPILE_API_KEY = unipile_sim.api_key
    settings.SITE_URL = live_server.url
    base = live_server.url
    log_in(page, base, tenant.admin.email)
    page.goto(f"{base}/linkedin/accounts/connect/")
    page.get_by_label("Strategy (sets the ramp)").select_option("new_account")
    page.get_by_label("Automatic (near your location)").check()
    page.get_by_label(re.compile("On Unipile's secure page")).check()
    page.get_by_role("button", name="Continue").click()
    sign_in_on_hosted_page(page)
    page.wait_for_url(re.compile(r"/linkedin/accounts/$"))
    wait_for_pill(page, "Connected")
    account = LinkedInAccount.objects.get(workspace=tenant.workspace)

    with page.expect_popup() as opened:
        page.get_by_role("link", name="Simulator controls").click()
    controls = opened.value
    expect(controls.get_by_role("heading", name="Control page")).to_be_visible()
    row = controls.locator(f"#account-{account.unipile_account_id}")
    expect(row.get_by_test_id("provider-status")).to_have_text("OK")
    row.get_by_role("button", name="Expire session").click()
    expect(controls.get_by_role("status")).to_contain_text("Ada Lovelace: session expired")
    expect(row.get_by_test_id("provider-status")).to_have_text("CREDENTIALS")

    # No intake is registered here, so the periodic status check (4 minutes on) notices it.
    connection.check_statuses(unipile_sim.client(), now=timezone.now() + timedelta(minutes=4))
    page.reload()
    expect(page.get_by_test_id("status")).to_have_text("Reconnect needed")
    page.get_by_role("button", name="Reconnect Account").click()
    sign_in_on_hosted_page(page)
    page.wait_for_url(re.compile(r"/linkedin/accounts/$"))
    wait_for_pill(page, "Connected")
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    controls.reload()
    expect(row.get_by_test_id("provider-status")).to_have_text("OK")
