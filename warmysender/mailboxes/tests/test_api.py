"""/api/v1/mailboxes: tenancy, scopes, validation, idempotency, passwords never returned."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from warmysender.accounts.models import Plan, Subscription, SubscriptionStatus
from warmysender.api.tests.conftest import block_subscription, error_code, send
from warmysender.audit.models import AuditEntry
from warmysender.conftest import Tenant, api_client
from warmysender.mailboxes.models import Mailbox
from warmysender.mailboxes.tests.conftest import PASSWORD, SENDER, make_mailbox, smtp_mailbox
from warmysender.testing.smtp import SmtpServer

URL = "/api/v1/mailboxes"
SCOPES = ("mailboxes:read", "mailboxes:write")

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(tenant: Tenant) -> Client:
    return api_client(tenant.key(*SCOPES))


@pytest.fixture
def outsider_client(outsider: Tenant) -> Client:
    return api_client(outsider.key(*SCOPES))


# --- create ---------------------------------------------------------------------------------


def test_post_connects_a_preset_mailbox_and_never_returns_the_password(
    client: Client, tenant: Tenant
) -> None:
    response = send(
        client,
        "POST",
        URL,
        {
            "provider": "gmail",
            "email": "Sam@Example.com",
            "smtpPassword": "abcd efgh ijkl mnop",
            "fromName": "Sam",
        },
    )

    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    mailbox = Mailbox.objects.get(workspace=tenant.workspace)
    assert data["id"] == str(mailbox.pk)
    assert data["email"] == "sam@example.com"
    assert (data["kind"], data["provider"], data["status"], data["usable"]) == (
        "smtp",
        "gmail",
        "disconnected",
        False,
    )
    assert (data["smtpHost"], data["smtpPort"], data["smtpSecurity"]) == (
        "smtp.gmail.com",
        587,
        "starttls",
    )
    assert (data["imapHost"], data["imapPort"], data["imapSecurity"]) == (
        "imap.gmail.com",
        993,
        "ssl",
    )
    assert data["hasPassword"] is True and data["hasImapPassword"] is True
    assert (data["dailyLimit"], data["timezone"], data["sendingEnabled"]) == (30, "UTC", True)
    assert "abcd" not in response.content.decode()
    assert "smtpPassword" not in data and "credentials" not in data
    assert AuditEntry.objects.get(action="mailbox.created").actor_label.startswith("api_key:")


def test_post_a_custom_mailbox_and_a_sandbox(client: Client) -> None:
    custom = send(
        client,
        "POST",
        URL,
        {
            "provider": "custom",
            "email": "a@example.com",
            "smtpHost": "mail.example.net",
            "smtpSecurity": "ssl",
            "imapPort": 993,
            "imapPassword": "imap-pw",
        },
    )
    sandbox = send(
        client,
        "POST",
        URL,
        {
            "provider": "sandbox",
            "email": "b@example.com",
            "dailyLimit": 500,
            "timezone": "Europe/Berlin",
        },
    )

    assert custom.status_code == 201, custom.json()
    c = custom.json()["data"]
    assert (c["smtpHost"], c["smtpPort"], c["imapHost"], c["imapPort"]) == (
        "mail.example.net",
        465,
        "mail.example.net",
        993,
    )
    assert (c["hasPassword"], c["hasImapPassword"]) == (False, True)
    assert sandbox.status_code == 201
    s = sandbox.json()["data"]
    assert (s["kind"], s["status"], s["usable"], s["dailyLimit"], s["timezone"]) == (
        "sandbox",
        "connected",
        True,
        500,
        "Europe/Berlin",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "gmail", "email": "a@example.com"}, "smtpPassword"),
        ({"provider": "custom", "email": "a@example.com"}, "smtpHost"),
        (
            {"provider": "sandbox", "email": "a@example.com", "smtpHost": "h.example.com"},
            "smtpHost",
        ),
        ({"provider": "sandbox", "email": "a@example.com", "dailyLimit": 501}, "dailyLimit"),
        ({"provider": "sandbox", "email": "a@example.com", "dailyLimit": 0}, "dailyLimit"),
        ({"provider": "sandbox", "email": "a@example.com", "dailyLimit": "30"}, "dailyLimit"),
        ({"provider": "sandbox", "email": "a@example.com", "timezone": "Mars/Base"}, "timezone"),
        (
            {"provider": "sandbox", "email": "a@example.com", "fromName": "Sam\nBcc: x@y.z"},
            "fromName",
        ),
        ({"provider": "custom", "email": "a@example.com", "smtpHost": "bad host"}, "smtpHost"),
        (
            {
                "provider": "custom",
                "email": "a@example.com",
                "smtpHost": "h.example.com",
                "smtpPort": 0,
            },
            "smtpPort",
        ),
        (
            {
                "provider": "custom",
                "email": "a@example.com",
                "smtpHost": "h.example.com",
                "smtpPassword": "  ",
            },
            "smtpPassword",
        ),
        ({"provider": "aol", "email": "a@example.com"}, "provider"),
        ({"email": "a@example.com"}, "provider"),
        ({"provider": "sandbox", "email": "nope"}, "email"),
        ({"provider": "sandbox", "email": "a@example.com", "colour": "red"}, "colour"),
    ],
)
def test_post_refuses_malformed_bodies_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = send(client, "POST", URL, body)
    assert response.status_code == 400, response.json()
    assert error_code(response) == "validation_error"
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert not Mailbox.objects.exists()


def test_post_refuses_invalid_json(client: Client) -> None:
    response = send(client, "POST", URL, "{not json")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


def test_the_same_address_twice_is_a_409(client: Client) -> None:
    assert (
        send(client, "POST", URL, {"provider": "sandbox", "email": "a@example.com"}).status_code
        == 201
    )
    response = send(client, "POST", URL, {"provider": "sandbox", "email": "A@example.com"})
    assert response.status_code == 409
    assert error_code(response) == "conflict"
    assert response.json()["error"]["details"][0]["field"] == "email"


def test_idempotency_key_replays_the_first_answer(client: Client) -> None:
    body = {"provider": "sandbox", "email": "a@example.com"}
    first = send(client, "POST", URL, body, **{"Idempotency-Key": "k-1"})
    again = send(client, "POST", URL, body, **{"Idempotency-Key": "k-1"})
    other = send(
        client, "POST", URL, {**body, "email": "b@example.com"}, **{"Idempotency-Key": "k-1"}
    )

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert other.status_code == 409 and error_code(other) == "idempotency_conflict"
    assert Mailbox.objects.count() == 1


def test_the_plan_limit_is_403_quota_exceeded(
    client: Client, tenant: Tenant, settings: Any
) -> None:
    settings.BILLING_ENABLED = True
    Subscription.objects.create(
        user=tenant.owner, plan=Plan.objects.get(code="free"), status=SubscriptionStatus.ACTIVE
    )
    assert (
        send(client, "POST", URL, {"provider": "sandbox", "email": "a@example.com"}).status_code
        == 201
    )
    response = send(client, "POST", URL, {"provider": "sandbox", "email": "b@example.com"})
    assert response.status_code == 403
    assert error_code(response) == "quota_exceeded"
    assert response.json()["error"]["details"]["quota"] == "mailbox_limit_reached"


def test_an_inactive_subscription_blocks_writes(
    client: Client, tenant: Tenant, settings: Any
) -> None:
    block_subscription(tenant, settings)
    response = send(client, "POST", URL, {"provider": "sandbox", "email": "a@example.com"})
    assert response.status_code == 403
    assert error_code(response) == "subscription_blocked"


# --- read -----------------------------------------------------------------------------------


def test_list_pages_newest_first_and_filters(client: Client, tenant: Tenant) -> None:
    for i in range(3):
        make_mailbox(tenant, email=f"s{i}@example.com", provider="sandbox")
    make_mailbox(tenant, email="g@example.com", provider="gmail", smtpPassword="pw")

    first = send(client, "GET", f"{URL}?limit=2").json()
    second = send(client, "GET", f"{URL}?limit=2&cursor={first['nextCursor']}").json()
    sandboxes = send(client, "GET", f"{URL}?kind=sandbox").json()
    disconnected = send(client, "GET", f"{URL}?status=disconnected").json()

    emails = [m["email"] for m in first["data"] + second["data"]]
    assert sorted(emails) == ["g@example.com", "s0@example.com", "s1@example.com", "s2@example.com"]
    assert second["nextCursor"] is None
    assert {m["email"] for m in sandboxes["data"]} == {
        "s0@example.com",
        "s1@example.com",
        "s2@example.com",
    }
    assert [m["email"] for m in disconnected["data"]] == ["g@example.com"]


def test_get_returns_one_mailbox(client: Client, tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    response = send(client, "GET", f"{URL}/{mailbox.pk}")
    assert response.status_code == 200
    assert response.json()["data"]["email"] == SENDER


# --- tenancy and scopes ---------------------------------------------------------------------


def test_another_workspaces_mailbox_is_404_for_every_method(
    outsider_client: Client, tenant: Tenant
) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    path = f"{URL}/{mailbox.pk}"

    for method, url, body in [
        ("GET", path, None),
        ("PATCH", path, {"dailyLimit": 5}),
        ("DELETE", path, None),
        ("POST", f"{path}/test", None),
    ]:
        response = send(outsider_client, method, url, body)
        assert response.status_code == 404, (method, url)
        assert error_code(response) == "not_found"
    assert send(outsider_client, "GET", URL).json()["data"] == []
    mailbox.refresh_from_db()
    assert mailbox.daily_limit == 30


def test_missing_and_malformed_ids_are_404(client: Client) -> None:
    assert send(client, "GET", f"{URL}/{uuid.uuid4()}").status_code == 404
    assert send(client, "GET", f"{URL}/not-a-uuid").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "needed"),
    [
        ("GET", "", None, "mailboxes:read"),
        ("POST", "", {"provider": "sandbox", "email": "a@example.com"}, "mailboxes:write"),
        ("GET", "/{id}", None, "mailboxes:read"),
        ("PATCH", "/{id}", {"dailyLimit": 5}, "mailboxes:write"),
        ("DELETE", "/{id}", None, "mailboxes:write"),
        ("POST", "/{id}/test", None, "mailboxes:write"),
    ],
)
def test_a_key_without_the_scope_is_403(
    tenant: Tenant, method: str, path: str, body: Any, needed: str
) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    other = "mailboxes:read" if needed == "mailboxes:write" else "prospects:read"
    client = api_client(tenant.key(other))

    response = send(client, method, URL + path.format(id=mailbox.pk), body)

    assert response.status_code == 403
    assert error_code(response) == "insufficient_scope"
    assert response.json()["error"]["details"]["required"] == needed
    assert Mailbox.objects.filter(pk=mailbox.pk, daily_limit=30).exists()


def test_no_key_is_401(tenant: Tenant) -> None:
    response = Client().get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


# --- update, delete, test -----------------------------------------------------------------------


def test_patch_changes_only_what_is_sent(client: Client, tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox", fromName="Sam")
    response = send(
        client,
        "PATCH",
        f"{URL}/{mailbox.pk}",
        {
            "dailyLimit": 45,
            "sendingEnabled": False,
            "signature": "-- Sam",
            "timezone": "America/New_York",
        },
    )

    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert (
        data["dailyLimit"],
        data["sendingEnabled"],
        data["signature"],
        data["timezone"],
        data["fromName"],
    ) == (45, False, "-- Sam", "America/New_York", "Sam")
    assert data["usable"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dailyLimit": 501}, "dailyLimit"),
        ({"dailyLimit": None}, "dailyLimit"),
        ({"timezone": "Nowhere"}, "timezone"),
        ({"smtpPort": 99999}, "smtpPort"),
        ({"sendingEnabled": "yes"}, "sendingEnabled"),
        ({"email": "x@example.com"}, "email"),
    ],
)
def test_patch_refuses_malformed_values(
    client: Client, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    mailbox = make_mailbox(tenant, provider="gmail", smtpPassword="pw")
    response = send(client, "PATCH", f"{URL}/{mailbox.pk}", body)
    assert response.status_code == 400, response.json()
    assert field in [d["field"] for d in response.json()["error"]["details"]]


def test_patch_server_settings_of_a_sandbox_is_409(client: Client, tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    response = send(client, "PATCH", f"{URL}/{mailbox.pk}", {"smtpHost": "smtp.example.com"})
    assert response.status_code == 409
    assert error_code(response) == "conflict"


def test_patch_with_a_new_password_reconnects(
    client: Client, tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server, smtpPassword="old")
    response = send(client, "PATCH", f"{URL}/{mailbox.pk}", {"smtpPassword": PASSWORD})
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "connected"
    assert PASSWORD not in response.content.decode()


def test_post_test_reports_each_server_with_a_hint(
    client: Client, tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(
        tenant,
        auth_server,
        smtpPassword="wrong",
        imapHost="127.0.0.1",
        imapPort=1,
        imapPassword="x",
    )

    response = send(client, "POST", f"{URL}/{mailbox.pk}/test")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["ok"] is False
    assert data["smtp"]["ok"] is False and data["smtp"]["error"].startswith("535")
    assert "App Password" in data["smtp"]["hint"] or "password" in data["smtp"]["hint"]
    assert data["imap"]["ok"] is False and "refused" in data["imap"]["error"].lower()
    assert data["mailbox"]["status"] == "error"
    assert data["mailbox"]["lastError"].startswith("SMTP: 535")


def test_post_test_connects_a_good_mailbox(
    client: Client, tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server)
    data = send(client, "POST", f"{URL}/{mailbox.pk}/test").json()["data"]
    assert (data["ok"], data["imap"], data["mailbox"]["status"], data["mailbox"]["usable"]) == (
        True,
        None,
        "connected",
        True,
    )
    assert auth_server.logins == [(SENDER, True)]


def test_delete_removes_it(client: Client, tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    response = send(client, "DELETE", f"{URL}/{mailbox.pk}")
    assert response.status_code == 204
    assert not Mailbox.objects.exists()
    assert send(client, "GET", f"{URL}/{mailbox.pk}").status_code == 404


def test_the_openapi_document_declares_every_mailbox_operation(client: Client) -> None:
    doc = Client().get("/api/v1/openapi.json").json()
    operations = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert {
        "listMailboxes",
        "createMailbox",
        "getMailbox",
        "updateMailbox",
        "deleteMailbox",
        "testMailbox",
    } <= operations
    create = doc["paths"]["/api/v1/mailboxes"]["post"]
    assert {"201", "400", "401", "403", "409", "429"} <= set(create["responses"])
    schema = doc["components"]["schemas"]["MailboxOut"]
    assert "hasPassword" in schema["properties"]
    assert not any(
        "password" in name.lower() and name != "hasPassword" and name != "hasImapPassword"
        for name in schema["properties"]
    )


def test_unreadable_credentials_render_as_no_password(client: Client, tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="gmail", smtpPassword="pw")
    Mailbox.objects.filter(pk=mailbox.pk).update(credentials="garbage")
    data = send(client, "GET", f"{URL}/{mailbox.pk}").json()["data"]
    assert (data["hasPassword"], data["hasImapPassword"]) == (False, False)
