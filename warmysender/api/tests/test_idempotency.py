"""`Idempotency-Key` on the creating POSTs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from warmysender.api.models import IdempotencyRecord
from warmysender.api.tests.conftest import error_code, send
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant
from warmysender.prospects import services
from warmysender.prospects.models import Prospect, ProspectList, Suppression

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY = {"Idempotency-Key": "3f0c4a52-6b1e-4a8e-9a51-0d9f6f1c2b7e"}


def test_a_retry_with_the_same_key_and_body_replays_the_first_response(
    client: Client, tenant: Tenant
) -> None:
    body = {"email": "ada@example.com", "firstName": "Ada"}
    first = send(client, "POST", "/api/v1/prospects", body, **KEY)
    second = send(client, "POST", "/api/v1/prospects", body, **KEY)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Prospect.objects.filter(workspace=tenant.workspace).count() == 1


def test_without_a_key_a_retry_is_answered_by_the_email_dedup_instead(client: Client) -> None:
    body = {"email": "ada@example.com"}
    assert send(client, "POST", "/api/v1/prospects", body).status_code == 201
    assert send(client, "POST", "/api/v1/prospects", body).status_code == 200
    assert Prospect.objects.count() == 1


def test_the_same_key_with_a_different_body_is_an_idempotency_conflict(
    client: Client, tenant: Tenant
) -> None:
    send(client, "POST", "/api/v1/prospects", {"email": "ada@example.com"}, **KEY)
    response = send(client, "POST", "/api/v1/prospects", {"email": "grace@example.com"}, **KEY)
    assert response.status_code == 409
    assert error_code(response) == "idempotency_conflict"
    assert list(Prospect.objects.values_list("email", flat=True)) == ["ada@example.com"]


def test_the_same_key_on_another_endpoint_is_an_idempotency_conflict(client: Client) -> None:
    send(client, "POST", "/api/v1/prospects", {"email": "ada@example.com"}, **KEY)
    response = send(client, "POST", "/api/v1/lists", {"name": "ada@example.com"}, **KEY)
    assert response.status_code == 409
    assert error_code(response) == "idempotency_conflict"
    assert not ProspectList.objects.exists()


def test_keys_belong_to_one_workspace(
    client: Client, outsider_client: Client, tenant: Tenant, outsider: Tenant
) -> None:
    body = {"email": "ada@example.com"}
    mine = send(client, "POST", "/api/v1/prospects", body, **KEY)
    theirs = send(outsider_client, "POST", "/api/v1/prospects", body, **KEY)
    assert theirs.status_code == 201
    assert theirs.json()["data"]["id"] != mine.json()["data"]["id"]
    assert Prospect.objects.filter(workspace=outsider.workspace).count() == 1


def test_a_failed_request_does_not_use_up_its_key(client: Client, tenant: Tenant) -> None:
    entry, _ = services.add_suppression(
        workspace=tenant.workspace, value="ada@example.com", actor=Actor.system("t"), now=NOW
    )
    body = {"email": "ada@example.com"}
    refused = send(client, "POST", "/api/v1/prospects", body, **KEY)
    assert refused.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    services.remove_suppression(entry=entry, actor=Actor.system("t"), now=NOW)
    assert send(client, "POST", "/api/v1/prospects", body, **KEY).status_code == 201


def test_a_replayed_200_stays_a_200(client: Client, tenant: Tenant) -> None:
    send(client, "POST", "/api/v1/prospects", {"email": "ada@example.com"})
    body = {"email": "ADA@example.com"}
    first = send(client, "POST", "/api/v1/prospects", body, **KEY)
    second = send(client, "POST", "/api/v1/prospects", body, **KEY)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()


def test_keys_expire_after_24_hours(client: Client, tenant: Tenant) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        send(client, "POST", "/api/v1/prospects", {"email": "ada@example.com"}, **KEY)
        clock.shift(timedelta(hours=23, minutes=59))
        late = send(client, "POST", "/api/v1/prospects", {"email": "grace@example.com"}, **KEY)
        assert error_code(late) == "idempotency_conflict"
        clock.shift(timedelta(minutes=1))
        reused = send(client, "POST", "/api/v1/prospects", {"email": "grace@example.com"}, **KEY)
        assert reused.status_code == 201
    assert Prospect.objects.count() == 2


@pytest.mark.parametrize(
    ("path", "body", "model"),
    [
        ("/api/v1/lists", {"name": "Founders"}, ProspectList),
        ("/api/v1/suppressions", {"value": "spam.org"}, Suppression),
    ],
)
def test_lists_and_suppressions_replay_too(
    client: Client, path: str, body: dict[str, str], model: type[ProspectList | Suppression]
) -> None:
    first = send(client, "POST", path, body, **KEY)
    second = send(client, "POST", path, body, **KEY)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert model.objects.count() == 1


@pytest.mark.parametrize("key", ["has space", "x" * 256, "ünïcode"])
def test_a_malformed_key_is_a_validation_error(client: Client, key: str) -> None:
    response = send(
        client,
        "POST",
        "/api/v1/prospects",
        {"email": "ada@example.com"},
        **{"Idempotency-Key": key},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "Idempotency-Key"
    assert not Prospect.objects.exists()
