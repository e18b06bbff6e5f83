"""The Unipile simulator over real HTTP: its hosted-auth pages, webhooks to a loopback receiver,
the control API, the request log, error bodies and its behaviour under concurrent use."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from warmysender.linkedin.client import (
    CredentialsLogin,
    Failure,
    HostedAuthLink,
    InvitationSent,
    UnipileClient,
)
from warmysender.linkedin.simulator import SimulatorServer
from warmysender.linkedin.tests.conftest import WebhookReceiver
from warmysender.testing.processes import wait_for

SECRET = {"X-Warmy-Unipile-Secret": "s3cret-intake-token"}


def link(
    client: UnipileClient,
    receiver: WebhookReceiver,
    *,
    reconnect: str | None = None,
    expires_on: datetime | None = None,
) -> str:
    made = client.create_hosted_auth_link(
        expires_on=expires_on or datetime.now(UTC) + timedelta(hours=1),
        name="workspace-1:member-2",
        notify_url=receiver.url.replace("/hooks/unipile", "/notify"),
        success_redirect_url="http://app.test/linkedin/connected",
        failure_redirect_url="http://app.test/linkedin/failed",
        reconnect_account=reconnect,
    )
    assert isinstance(made, HostedAuthLink)
    return made.url


def form_action(page: str) -> str:
    match = re.search(r"<form method='post' action='([^']+)'", page)
    assert match, page
    return match.group(1)


# --- hosted auth --------------------------------------------------------------------------------


def test_a_person_connects_through_the_hosted_form(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    url = link(unipile_sim.client(), webhook_receiver)
    with httpx.Client(base_url=unipile_sim.base_url) as browser:
        page = browser.get(url)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<label for='username'>" in page.text and "type='password'" in page.text
        done = browser.post(
            form_action(page.text), data={"username": "hana@example.com", "password": "pw"}
        )
        assert done.status_code == 303
        assert done.headers["location"] == "http://app.test/linkedin/connected"
        again = browser.get(url)
        assert again.status_code == 410 and "already used" in again.text
    received = webhook_receiver.wait_for(3)
    notify = next(r for r in received if r.path == "/notify")
    account_id = notify.json()["account_id"]
    assert notify.json() == {
        "status": "CREATION_SUCCESS",
        "account_id": account_id,
        "name": "workspace-1:member-2",
    }
    statuses = [r.json()["AccountStatus"]["message"] for r in received if r.path != "/notify"]
    assert statuses == ["CREATION_SUCCESS", "SYNC_SUCCESS"]
    assert unipile_sim.account(account_id)["sources"][0]["status"] == "OK"
    # The hosted page is not the API: it is not in the request log.
    assert [r["operation"] for r in unipile_sim.requests()] == ["hosted_link"]


def test_the_hosted_form_asks_for_the_checkpoint_code(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    url = link(unipile_sim.client(), webhook_receiver)
    with httpx.Client() as browser:
        page = browser.get(url)
        wrong_password = browser.post(
            url, data={"username": "ivo+2fa@example.com", "password": "wrong-password"}
        )
        assert wrong_password.status_code == 400 and "Invalid credentials" in wrong_password.text
        assert "value='ivo+2fa@example.com'" in wrong_password.text
        checkpoint = browser.post(
            unipile_sim.base_url + form_action(page.text),
            data={"username": "ivo+2fa@example.com", "password": "pw"},
        )
        assert checkpoint.status_code == 200 and "Two-step verification" in checkpoint.text
        code = re.search(r"<code id='sim-code'>(\w+)</code>", checkpoint.text)
        assert code
        action = unipile_sim.base_url + form_action(checkpoint.text)
        bad = browser.post(action, data={"code": "nope"})
        assert bad.status_code == 400 and "not right" in bad.text
        # Reloading the link mid-way shows the checkpoint again, not a new sign-in.
        assert "Two-step verification" in browser.get(url).text
        good = browser.post(action, data={"code": code.group(1)})
        assert good.status_code == 303
        assert good.headers["location"] == "http://app.test/linkedin/connected"
    notify = webhook_receiver.wait_for(1)[0].json()
    assert unipile_sim.account(notify["account_id"])["checkpoint"] is None


def test_hosted_in_app_validation_is_approved_with_a_button(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    url = link(unipile_sim.client(), webhook_receiver)
    with httpx.Client() as browser:
        waiting = browser.post(url, data={"username": "jo+inapp@example.com", "password": "pw"})
        assert "Check your LinkedIn app" in waiting.text
        approved = browser.post(
            unipile_sim.base_url + form_action(waiting.text), data={"code": "APPROVED"}
        )
    assert approved.status_code == 303


def test_a_hosted_reconnect_brings_the_session_back(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    account = unipile_sim.add_account(username="kim@example.com")["id"]
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    unipile_sim.expire_session(account)
    url = link(unipile_sim.client(), webhook_receiver, reconnect=account)
    with httpx.Client() as browser:
        page = browser.get(url)
        assert "Reconnect your LinkedIn account" in page.text
        done = browser.post(url, data={"username": "kim@example.com", "password": "pw"})
    assert done.status_code == 303
    received = webhook_receiver.wait_for(3)
    assert [r.json()["AccountStatus"]["message"] for r in received if r.path != "/notify"] == [
        "CREDENTIALS",
        "RECONNECTED",
    ]
    notify = next(r for r in received if r.path == "/notify").json()
    assert notify["status"] == "RECONNECTED" and notify["account_id"] == account
    assert unipile_sim.account(account)["sources"][0]["status"] == "OK"
    assert len(unipile_sim.state.accounts) == 1  # reconnecting made no second account


def test_an_expired_hosted_link_cannot_be_used(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    url = link(
        unipile_sim.client(), webhook_receiver, expires_on=datetime.now(UTC) + timedelta(minutes=5)
    )
    unipile_sim.advance(301)
    with httpx.Client() as browser:
        page = browser.get(url)
        assert page.status_code == 410 and "expired" in page.text
        post = browser.post(url, data={"username": "lu@example.com", "password": "pw"})
    assert post.status_code == 303 and post.headers["location"] == "http://app.test/linkedin/failed"
    assert unipile_sim.state.accounts == {}


def test_a_hosted_checkpoint_that_expires_goes_to_the_failure_url(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    url = link(unipile_sim.client(), webhook_receiver)
    with httpx.Client() as browser:
        checkpoint = browser.post(url, data={"username": "mo+otp@example.com", "password": "pw"})
        code = re.search(r"<code id='sim-code'>(\w+)</code>", checkpoint.text)
        assert code
        unipile_sim.advance(11 * 60)
        late = browser.post(
            unipile_sim.base_url + form_action(checkpoint.text), data={"code": code.group(1)}
        )
    assert late.status_code == 303 and late.headers["location"] == "http://app.test/linkedin/failed"
    assert unipile_sim.state.accounts == {}


def test_an_unknown_hosted_link_is_refused(unipile_sim: SimulatorServer) -> None:
    page = httpx.get(unipile_sim.base_url + "/hosted/not-a-token")
    assert page.status_code == 410 and "does not exist" in page.text


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"type": "sideways"}, "type must be create or reconnect"),
        ({"type": "create", "providers": []}, "providers is required"),
        ({"type": "create", "providers": ["LINKEDIN"], "expiresOn": "soon"}, "expiresOn must be"),
        (
            {"type": "create", "providers": ["LINKEDIN"], "expiresOn": "2030-01-01T00:00:00"},
            "UTC",
        ),
        (
            {"type": "create", "providers": ["LINKEDIN"], "expiresOn": "2030-01-01T00:00:00.000Z"},
            "api_url is required",
        ),
    ],
)
def test_a_malformed_hosted_link_request_names_the_problem(
    unipile_sim: SimulatorServer, body: dict[str, Any], problem: str
) -> None:
    answer = httpx.post(
        unipile_sim.base_url + "/api/v1/hosted/accounts/link",
        json=body,
        headers={"X-API-KEY": unipile_sim.api_key},
    )
    assert answer.status_code == 400 and problem in answer.json()["detail"]
    assert unipile_sim.state.links == {}


# --- webhooks -----------------------------------------------------------------------------------


def test_status_message_and_relation_webhooks_carry_the_secret_header(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    client = unipile_sim.client()
    account = unipile_sim.add_account(username="nia@example.com")["id"]
    sibling = unipile_sim.add_account(username="nia.two@example.com")["id"]
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    invite = client.send_invitation(account, "omar-said")
    assert isinstance(invite, InvitationSent)
    unipile_sim.accept(invite.invitation_id, also_on=[sibling])
    unipile_sim.inbound(account, "omar-said", "Thanks for connecting!")
    unipile_sim.expire_session(account)
    received = webhook_receiver.wait_for(4)
    for r in received:
        assert r.path == "/hooks/unipile"
        assert r.headers["x-warmy-unipile-secret"] == "s3cret-intake-token"
        assert "content-type" not in r.headers  # Unipile adds none unless asked
    relation, sibling_relation, message, status = (r.json() for r in received)
    assert relation["event"] == "new_relation" and relation["account_id"] == account
    assert relation["user_public_identifier"] == "omar-said"
    assert relation["user_provider_id"].startswith("ACo")
    assert sibling_relation["account_id"] == sibling
    assert message["event"] == "message_received" and message["account_id"] == account
    assert message["message"] == "Thanks for connecting!"
    assert message["sender"]["attendee_provider_id"] == relation["user_provider_id"]
    assert {"chat_id", "message_id", "timestamp", "attendees", "account_type"} <= set(message)
    assert status == {
        "AccountStatus": {
            "account_id": account,
            "account_type": "LINKEDIN",
            "message": "CREDENTIALS",
        }
    }


def test_the_accounts_own_sends_are_echoed_as_message_webhooks(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    client = unipile_sim.client()
    made = unipile_sim.add_account(username="pia@example.com")
    unipile_sim.connect_person(made["id"], "quinn-lo")
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    assert not isinstance(client.start_chat(made["id"], "quinn-lo", "Hi Quinn"), Failure)
    echo = webhook_receiver.wait_for(1)[0].json()
    assert echo["event"] == "message_received" and echo["message"] == "Hi Quinn"
    assert echo["sender"]["attendee_provider_id"] == made["connection_params"]["im"]["id"]


def test_a_failed_delivery_is_retried_with_the_same_body(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    account = unipile_sim.add_account()["id"]
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    webhook_receiver.fail_next = 2
    unipile_sim.set_status(account, "ERROR")
    received = webhook_receiver.wait_for(3)
    assert len({r.body for r in received}) == 1
    unipile_sim.wait_for_webhooks()
    [delivery] = unipile_sim.deliveries()
    assert (delivery["attempts"], delivery["delivered"], delivery["status_code"]) == (3, True, 200)


def test_delivery_gives_up_after_five_retries(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    account = unipile_sim.add_account()["id"]
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    webhook_receiver.fail_next = 100
    unipile_sim.set_status(account, "STOPPED")
    webhook_receiver.wait_for(6)
    unipile_sim.wait_for_webhooks()
    [delivery] = unipile_sim.deliveries()
    assert (delivery["attempts"], delivery["delivered"]) == (6, False)
    assert len(webhook_receiver.received) == 6


def test_duplicate_mode_delivers_each_event_twice(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    account = unipile_sim.add_account()["id"]
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    unipile_sim.control("POST", "/config", {"duplicate_webhooks": True})
    unipile_sim.expire_session(account)
    first, second = webhook_receiver.wait_for(2)
    assert first.body == second.body


def test_webhooks_registered_through_the_v1_api(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    api = httpx.Client(
        base_url=unipile_sim.base_url + "/api/v1", headers={"X-API-KEY": unipile_sim.api_key}
    )
    account = unipile_sim.add_account()["id"]
    made = api.post(
        "/webhooks",
        json={
            "request_url": webhook_receiver.url,
            "source": "account_status",
            "headers": [
                {"key": "Content-Type", "value": "application/json"},
                {"key": "X-Secret", "value": "abc"},
            ],
        },
    )
    assert made.status_code == 201 and made.json()["object"] == "WebhookCreated"
    bad = api.post("/webhooks", json={"request_url": "ftp://x", "source": "account_status"})
    assert bad.status_code == 400 and bad.json()["type"] == "errors/invalid_url"
    unipile_sim.inbound(account, "rui-sa", "not an account_status event")
    unipile_sim.set_status(account, "PERMISSIONS")
    [only] = webhook_receiver.wait_for(1)
    assert only.headers["content-type"] == "application/json" and only.headers["x-secret"] == "abc"
    assert only.json()["AccountStatus"]["message"] == "PERMISSIONS"
    assert len(api.get("/webhooks").json()["items"]) == 1
    assert api.delete(f"/webhooks/{made.json()['webhook_id']}").status_code == 200
    assert api.get("/webhooks").json()["items"] == []


# --- control API, request log, errors ---------------------------------------------------------


def test_the_request_log_records_each_api_call_with_its_account(
    unipile_sim: SimulatorServer,
) -> None:
    client = unipile_sim.client()
    a = unipile_sim.add_account()["id"]
    b = unipile_sim.add_account()["id"]
    assert unipile_sim.requests() == []  # control calls are not Unipile calls
    client.account_status(a)
    client.send_invitation(b, "sam-ng")
    client.list_relations(b)
    log = unipile_sim.requests()
    assert [(r["method"], r["operation"], r["account_id"], r["status"]) for r in log] == [
        ("GET", "get_account", a, 200),
        ("POST", "send_invitation", b, 201),
        ("GET", "list_relations", b, 200),
    ]
    assert all(r["at"].endswith("Z") for r in log)
    assert [r["operation"] for r in unipile_sim.requests(account_id=a)] == ["get_account"]
    unipile_sim.clear_requests()
    assert unipile_sim.requests() == []


def test_not_found_until_cleared(unipile_sim: SimulatorServer) -> None:
    client = unipile_sim.client()
    account = unipile_sim.add_account()["id"]
    unipile_sim.not_found(account)
    for _ in range(4):
        result = client.account_status(account)
        assert isinstance(result, Failure) and result.kind == "account_not_found"
    other = unipile_sim.add_account()["id"]
    assert client.account_status(other) == "OK"
    unipile_sim.found_again(account)
    assert client.account_status(account) == "OK"


def test_down_answers_503_everywhere_until_it_comes_back(unipile_sim: SimulatorServer) -> None:
    unipile_sim.go_down()
    answer = httpx.get(
        unipile_sim.base_url + "/api/v1/accounts", headers={"X-API-KEY": unipile_sim.api_key}
    )
    assert answer.status_code == 503
    assert answer.json() == {
        "status": 503,
        "type": "errors/service_unavailable",
        "title": "Service unavailable",
        "detail": "The service is temporarily unavailable.",
        "instance": "/api/v1/accounts",
    }
    assert httpx.get(unipile_sim.base_url + "/hosted/x").status_code == 503
    unipile_sim.go_down(504)
    again = httpx.get(unipile_sim.base_url + "/api/v1/accounts", headers={"X-API-KEY": "wrong"})
    assert again.status_code == 504 and again.json()["type"] == "errors/request_timeout"
    unipile_sim.come_back()
    assert httpx.get(
        unipile_sim.base_url + "/api/v1/accounts", headers={"X-API-KEY": unipile_sim.api_key}
    ).json() == {"object": "AccountList", "items": [], "cursor": None}


def test_every_api_route_wants_the_key(unipile_sim: SimulatorServer) -> None:
    for method, path in [
        ("GET", "/accounts"),
        ("POST", "/accounts"),
        ("GET", "/users/me"),
        ("POST", "/users/invite"),
        ("GET", "/chats"),
        ("POST", "/posts/reaction"),
    ]:
        answer = httpx.request(method, f"{unipile_sim.base_url}/api/v1{path}", json={})
        assert answer.status_code == 401, path
        assert answer.json()["type"] == "errors/missing_credentials"


def test_an_unknown_route_answers_a_unipile_404(unipile_sim: SimulatorServer) -> None:
    answer = httpx.get(
        unipile_sim.base_url + "/api/v1/nothing/here", headers={"X-API-KEY": unipile_sim.api_key}
    )
    assert answer.status_code == 404 and answer.json()["type"] == "errors/resource_not_found"


@pytest.mark.parametrize(
    ("path", "body", "problem"),
    [
        ("/faults", {"error": "no_such_error"}, "unknown Unipile error type"),
        ("/faults", {"error": "provider_error", "times": 0}, "times must be"),
        ("/down", {"status": 418}, "status must be 500, 502, 503 or 504"),
        ("/clock", {"advance_seconds": -5}, "non-negative"),
        ("/config", {"surprise": True}, "unknown settings"),
        ("/config", {"next_checkpoint": "SMOKE_SIGNAL"}, "next_checkpoint must be"),
        ("/accounts", {"status": "HAPPY"}, "status must be one of"),
        ("/people", {"public_identifier": "x", "flags": ["vip"]}, "unknown flags"),
    ],
)
def test_the_control_api_refuses_bad_input_and_changes_nothing(
    unipile_sim: SimulatorServer, path: str, body: dict[str, Any], problem: str
) -> None:
    def world() -> dict[str, Any]:
        state = unipile_sim.control("GET", "/state")
        state.pop("now")  # the clock runs on
        return {**state, "config": unipile_sim.control("POST", "/config", {})}

    before = world()
    answer = httpx.post(f"{unipile_sim.base_url}/_sim{path}", json=body)
    assert answer.status_code == 400 and problem in answer.json()["detail"]
    assert world() == before


def test_the_control_api_refuses_malformed_json(unipile_sim: SimulatorServer) -> None:
    answer = httpx.post(
        unipile_sim.base_url + "/_sim/faults",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400 and answer.json()["type"] == "errors/malformed_request"


def test_the_api_refuses_malformed_bodies_clearly(unipile_sim: SimulatorServer) -> None:
    api = httpx.Client(
        base_url=unipile_sim.base_url + "/api/v1", headers={"X-API-KEY": unipile_sim.api_key}
    )
    account = unipile_sim.add_account()["id"]
    garbage = api.post(
        "/users/invite", content=b"[1,2", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400 and garbage.json()["type"] == "errors/malformed_request"
    missing = api.post("/users/invite", json={"account_id": account})
    assert missing.json()["detail"] == "provider_id is required"
    long_note = api.post(
        "/users/invite", json={"account_id": account, "provider_id": "x-y", "message": "z" * 301}
    )
    assert long_note.status_code == 400 and long_note.json()["type"] == "errors/too_many_characters"
    cursor = api.get("/accounts", params={"cursor": "!!!"})
    assert cursor.status_code == 400 and "cursor" in cursor.json()["detail"]
    too_many = api.get("/accounts", params={"limit": 251})
    assert too_many.json()["type"] == "errors/limit_too_high"
    assert unipile_sim.state.invitations == {}


def test_a_reset_forgets_everything(unipile_sim: SimulatorServer) -> None:
    unipile_sim.add_account()
    unipile_sim.fault("provider_error", times=None)
    unipile_sim.control("POST", "/reset")
    state = unipile_sim.control("GET", "/state")
    assert state["accounts"] == [] and state["faults"] == [] and state["webhooks"] == []


def test_concurrent_invites_never_exceed_the_provider_limit(unipile_sim: SimulatorServer) -> None:
    account = unipile_sim.add_account(limits={"invites_per_week": 10})["id"]
    results: list[Any] = []
    lock = threading.Lock()

    def invite(i: int) -> None:
        with UnipileClient(unipile_sim.base_url, unipile_sim.api_key) as c:
            outcome = c.send_invitation(account, f"prospect-{i}")
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=invite, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [r for r in results if isinstance(r, InvitationSent)]
    refused = [r for r in results if isinstance(r, Failure)]
    assert len(sent) == 10 and len(refused) == 14
    assert {r.kind for r in refused} == {"cannot_resend_yet"}
    assert unipile_sim.account(account)["invites_this_week"] == 10


def test_the_weekly_window_rolls(unipile_sim: SimulatorServer) -> None:
    client = unipile_sim.client()
    account = unipile_sim.add_account(limits={"invites_per_week": 2, "invites_per_day": 2})["id"]
    for name in ("a-one", "b-two"):
        assert isinstance(client.send_invitation(account, name), InvitationSent)
    unipile_sim.advance(6 * 86400)
    held = client.send_invitation(account, "c-three")
    assert isinstance(held, Failure) and held.kind == "cannot_resend_yet"
    unipile_sim.advance(86400)
    assert isinstance(client.send_invitation(account, "c-three"), InvitationSent)


def test_a_reconnect_of_an_unknown_account_and_a_checkpoint_for_nobody(
    unipile_sim: SimulatorServer,
) -> None:
    client = unipile_sim.client()
    result = client.reconnect("ghost", CredentialsLogin("x@example.com", "pw"))
    assert isinstance(result, Failure) and result.kind == "account_not_found"
    solved = client.solve_checkpoint("ghost", "123456")
    assert isinstance(solved, Failure) and solved.kind == "checkpoint_failed"


def test_bad_limits_are_refused_whole(unipile_sim: SimulatorServer) -> None:
    account = unipile_sim.add_account(limits={"invites_per_week": 7})["id"]
    answer = httpx.post(
        f"{unipile_sim.base_url}/_sim/accounts/{account}/limits",
        json={"invites_per_week": 3, "mode": "explode"},
    )
    assert answer.status_code == 400 and "mode must be one of" in answer.json()["detail"]
    assert unipile_sim.account(account)["limits"]["invites_per_week"] == 7
    seeded = httpx.post(
        f"{unipile_sim.base_url}/_sim/accounts", json={"limits": {"invites_per_week": -1}}
    )
    assert seeded.status_code == 400 and "non-negative integer" in seeded.json()["detail"]
    assert len(unipile_sim.state.accounts) == 1


def test_webhooks_keep_coming_for_a_disconnected_account(
    unipile_sim: SimulatorServer, webhook_receiver: WebhookReceiver
) -> None:
    account = unipile_sim.add_account()["id"]
    unipile_sim.expire_session(account)
    unipile_sim.register_intake(webhook_receiver.url, SECRET)
    unipile_sim.inbound(account, "late-reply", "Sorry for the delay")
    [message] = webhook_receiver.wait_for(1)
    assert message.json()["event"] == "message_received"
    assert message.json()["account_id"] == account


def test_the_unipile_sim_command_serves_the_simulator() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    child = subprocess.Popen(
        [sys.executable, "-m", "warmysender.cli", "unipile-sim", "--port", str(port)],
        env={**os.environ, "UNIPILE_API_KEY": "cli-key"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def answering() -> bool:
        try:
            return httpx.get(base + "/_sim/state", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answering, timeout=30, what="unipile-sim to listen", process=child)
        with UnipileClient(base, "cli-key") as client:
            made = client.connect(CredentialsLogin("cli@example.com", "pw"))
            assert not isinstance(made, Failure)
            assert client.account_status(made.account_id) == "OK"
        refused = httpx.get(base + "/api/v1/accounts", headers={"X-API-KEY": "other"})
        assert refused.status_code == 401
    finally:
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=15)
    assert f"UNIPILE_DSN={base}" in err and "API key: cli-key" in err


def test_a_bad_webhook_header_option_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "warmysender.cli", "unipile-sim", "--webhook-header", "no-colon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--webhook-header must look like 'Name: value'" in done.stderr


def test_with_a_state_file_the_world_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "unipile-sim.state"
    with SimulatorServer(state_file=state_file) as first:
        client = first.client()
        made = client.connect(CredentialsLogin("ann@example.com", "pw"))
        assert not isinstance(made, Failure)
        first.connect_person(made.account_id, "jane-doe")
        started = client.start_chat(made.account_id, "jane-doe", "Hello Jane")
        assert not isinstance(started, Failure)
        first.fault("provider_error", times=None)
    assert state_file.exists()
    with SimulatorServer(state_file=state_file) as second:
        client = second.client()
        assert client.account_status(made.account_id) == "OK"  # and the fault did not survive
        again = client.start_chat(made.account_id, "jane-doe", "Still there?")
        assert not isinstance(again, Failure) and again.chat_id == started.chat_id
    state_file.write_bytes(b"garbage")
    with SimulatorServer(state_file=state_file) as third:
        assert third.state.accounts == {}
    assert (tmp_path / "unipile-sim.state.bad").read_bytes() == b"garbage"
