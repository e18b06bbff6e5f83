"""The Unipile webhook intake: the secret header, normalisation, idempotent redelivery, the
hosted-auth callback and the 15-minute monitor. Fixture payloads are in payloads/; one test has
the simulator POST to a live server."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, make_tenant
from warmysender.linkedin import connection, intake, services
from warmysender.linkedin.models import (
    AccountStatus,
    AdminAlert,
    LinkedInAccount,
    WebhookReceipt,
)
from warmysender.linkedin.proxies import parse_proxy
from warmysender.linkedin.simulator import SimulatorServer
from warmysender.linkedin.tests.factories import connected_account
from warmysender.testing.processes import wait_for

PAYLOADS = Path(__file__).parent / "payloads"
SECRET = "s3cret-header-value"
URL = "/linkedin/hooks/unipile/"


@pytest.fixture(autouse=True)
def webhook_secret(settings: Any) -> None:
    settings.UNIPILE_WEBHOOK_SECRET = SECRET


def payload(name: str, **replace: str) -> str:
    text = (PAYLOADS / f"{name}.json").read_text()
    for key, value in replace.items():
        text = text.replace(key, value)
    return text


def post(body: str, secret: str | None = SECRET) -> Any:
    headers = {intake.SECRET_HEADER: secret} if secret is not None else {}
    return Client().post(URL, body, content_type="application/json", headers=headers)


@pytest.mark.django_db
@pytest.mark.parametrize("secret", [None, "", "wrong"])
def test_a_webhook_without_the_secret_is_refused(tenant: Tenant, secret: str | None) -> None:
    account = connected_account(tenant.workspace)
    response = post(
        payload("account_status_credentials", ACCOUNT_ID=account.unipile_account_id), secret
    )
    assert response.status_code == 401
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert WebhookReceipt.objects.count() == 0


@pytest.mark.django_db
def test_webhooks_are_refused_when_no_secret_is_configured(tenant: Tenant, settings: Any) -> None:
    settings.UNIPILE_WEBHOOK_SECRET = ""
    response = post("{}", "anything")
    assert response.status_code == 503
    assert "UNIPILE_WEBHOOK_SECRET" in response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"AccountStatus": {"message": "OK"}}', "no account_id"),
        ('{"event": "message_received", "account_id": "a"}', "no message_id"),
        ('{"hello": "world"}', "Unknown Unipile webhook"),
    ],
)
def test_malformed_webhooks_get_a_clear_400(tenant: Tenant, body: str, message: str) -> None:
    response = post(body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert WebhookReceipt.objects.count() == 0


@pytest.mark.django_db
def test_a_status_webhook_flips_once_and_its_redelivery_is_a_no_op(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    body = payload("account_status_credentials", ACCOUNT_ID=account.unipile_account_id)
    assert post(body).json()["duplicate"] is False
    account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_VERIFICATION
    assert account.disconnected_by == "webhook"
    changed_at = account.status_changed_at
    for _ in range(3):
        assert post(body).status_code == 200
    account.refresh_from_db()
    assert account.status_changed_at == changed_at
    assert account.audit.filter(action="status_changed").count() == 2  # connect, then this one
    # The account comes back: OK connects it, markers cleared.
    post(payload("account_status_ok", ACCOUNT_ID=account.unipile_account_id))
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED and account.disconnected_at is None


@pytest.mark.django_db
def test_message_and_relation_webhooks_are_recorded_once_as_internal_events(
    tenant: Tenant,
) -> None:
    account = connected_account(tenant.workspace)
    message = payload("message_received", ACCOUNT_ID=account.unipile_account_id)
    relation = payload("new_relation", ACCOUNT_ID=account.unipile_account_id)
    with time_machine.travel(NOW, tick=False):
        assert post(message).json() == {
            "ok": True,
            "event": "message_received",
            "duplicate": False,
            "ignored": "",
        }
        assert post(message).json()["duplicate"] is True
        assert post(relation).json()["event"] == "new_relation"
        assert post(relation).json()["duplicate"] is True
    assert WebhookReceipt.objects.filter(account=account).count() == 2
    event = intake.normalise(json.loads(message))
    assert event.data["senderProviderId"] == "ACoAAB-grace"
    account.refresh_from_db()
    assert account.last_activity_at == NOW


@pytest.mark.django_db
def test_a_webhook_for_an_unknown_account_is_acknowledged_and_ignored(tenant: Tenant) -> None:
    response = post(payload("account_status_credentials", ACCOUNT_ID="nobody"))
    assert response.status_code == 200
    assert response.json()["ignored"] == "unknown account"


@pytest.mark.django_db
def test_the_hosted_callback_links_only_the_account_its_token_names(
    tenant: Tenant, outsider: Tenant
) -> None:
    mine = services.create_account(
        tenant.workspace, proxy=parse_proxy("auto"), actor=Actor.system("t"), now=NOW
    )
    theirs = services.create_account(
        outsider.workspace, proxy=parse_proxy("auto"), actor=Actor.system("t"), now=NOW
    )
    token = connection.hosted_token(mine)
    url = f"/linkedin/hooks/hosted/{token}/"
    forged = payload("hosted_creation_success", ACCOUNT_ID="u-1", OUR_ID=str(theirs.pk))
    assert Client().post(url, forged, content_type="application/json").status_code == 400
    assert (
        Client()
        .post("/linkedin/hooks/hosted/forged/", "{}", content_type="application/json")
        .status_code
        == 404
    )
    good = payload("hosted_creation_success", ACCOUNT_ID="u-1", OUR_ID=str(mine.pk))
    for _ in range(2):  # redelivered
        assert Client().post(url, good, content_type="application/json").status_code == 200
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, mine.unipile_account_id) == (AccountStatus.CONNECTED, "u-1")
    assert theirs.status == AccountStatus.CONNECTING


@pytest.mark.django_db
def test_the_monitor_alerts_once_when_webhooks_stop_while_accounts_are_connected(
    tenant: Tenant, outsider: Tenant
) -> None:
    account = connected_account(tenant.workspace)
    services.create_account(
        outsider.workspace, proxy=parse_proxy("auto"), actor=Actor.system("t"), now=NOW
    )
    assert intake.monitor_webhooks(NOW + timedelta(minutes=10)) == 0
    assert intake.monitor_webhooks(NOW + timedelta(minutes=16)) == 1
    assert intake.monitor_webhooks(NOW + timedelta(minutes=31)) == 0  # one alert per stall
    alert = AdminAlert.objects.get(kind="webhooks_stalled")
    assert alert.workspace_id == tenant.workspace.pk
    # A webhook resolves it; the next stall raises a new one.
    with time_machine.travel(NOW + timedelta(minutes=40)):
        post(payload("message_received", ACCOUNT_ID=account.unipile_account_id))
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert intake.monitor_webhooks(NOW + timedelta(minutes=50)) == 0
    assert intake.monitor_webhooks(NOW + timedelta(minutes=60)) == 1


@pytest.mark.django_db(transaction=True)
def test_the_simulator_delivers_a_session_expiry_to_the_live_intake(
    live_server: Any, unipile_sim: SimulatorServer, settings: Any
) -> None:
    tenant = make_tenant("live")
    remote = unipile_sim.add_account()
    account = connected_account(tenant.workspace, unipile_id=remote["id"])
    unipile_sim.register_intake(live_server.url + URL, {intake.SECRET_HEADER: SECRET})
    unipile_sim.expire_session(remote["id"])
    unipile_sim.wait_for_webhooks()

    def flipped() -> bool:
        return LinkedInAccount.objects.get(pk=account.pk).status == AccountStatus.NEEDS_VERIFICATION

    wait_for(flipped, what="the expiry webhook to flip the account", timeout=10)


@pytest.mark.django_db
def test_a_storm_of_disconnect_webhooks_is_held_after_five(tenant: Tenant) -> None:
    accounts = [connected_account(tenant.workspace) for _ in range(8)]
    with time_machine.travel(NOW, tick=False):
        codes = [
            post(payload("account_status_credentials", ACCOUNT_ID=a.unipile_account_id)).status_code
            for a in accounts
        ]
    assert codes == [200] * 5 + [503] * 3  # Unipile delivers the held ones again later
    statuses = [LinkedInAccount.objects.get(pk=a.pk).status for a in accounts]
    assert statuses.count(AccountStatus.NEEDS_VERIFICATION) == 5
    assert statuses.count(AccountStatus.CONNECTED) == 3
    assert AdminAlert.objects.filter(kind="mass_disconnect_aborted").count() == 3
    # Unipile's redelivery, outside the window, acts.
    with time_machine.travel(NOW + timedelta(minutes=11), tick=False):
        post(payload("account_status_credentials", ACCOUNT_ID=accounts[5].unipile_account_id))
    assert LinkedInAccount.objects.get(pk=accounts[5].pk).status == AccountStatus.NEEDS_VERIFICATION
