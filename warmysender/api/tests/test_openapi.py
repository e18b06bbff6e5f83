"""The OpenAPI document and the interactive docs."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from warmysender.api.tests.conftest import error_code, send

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
def document(db: None) -> dict[str, Any]:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def all_operations(document: dict[str, Any]) -> list[Operation]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_the_document_is_openapi_3_1_with_bearer_auth(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert set(document["paths"]) == {
        "/api/v1/prospects",
        "/api/v1/prospects/{id}",
        "/api/v1/lists",
        "/api/v1/lists/{id}",
        "/api/v1/lists/{id}/prospects",
        "/api/v1/suppressions",
        "/api/v1/suppressions/{id}",
        "/api/v1/mailboxes",
        "/api/v1/mailboxes/{id}",
        "/api/v1/mailboxes/{id}/test",
        "/api/v1/campaigns",
        "/api/v1/campaigns/{id}",
        "/api/v1/campaigns/{id}/start",
        "/api/v1/campaigns/{id}/pause",
        "/api/v1/campaigns/{id}/enrollments",
        "/api/v1/campaigns/{id}/mailboxes/{mailboxId}",
        "/api/v1/campaigns/{id}/actions/{actionId}/resolve",
        "/api/v1/linkedin/accounts",
        "/api/v1/linkedin/accounts/{id}",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/{id}/test",
        "/api/v1/webhooks/{id}/deliveries",
    }


def test_every_operation_is_named_summarised_scoped_and_secured(document: dict[str, Any]) -> None:
    ids = []
    for method, path, operation in all_operations(document):
        ids.append(operation["operationId"])
        assert operation["summary"], (method, path)
        assert re.match(r"\*\*Scope:\*\* `[a-z]+:(read|write)`", operation["description"])
        assert operation["security"] == [{"ApiKeyAuth": []}]
        assert operation["tags"]
    assert len(ids) == len(set(ids)) == 41


def test_every_operation_declares_its_errors_with_the_envelope(document: dict[str, Any]) -> None:
    for method, path, operation in all_operations(document):
        responses = operation["responses"]
        expected = {"400", "401", "403", "429"}
        if "{id}" in path or (path == "/api/v1/prospects" and method == "get"):
            expected.add("404")
        if (method == "post" and path.count("/") == 3) or method == "patch":
            expected.add("409")
        assert expected <= set(responses), (method, path)
        for status in expected:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}
        assert "Retry-After" in responses["429"]["headers"]
        assert any(s.startswith("2") for s in responses), (method, path)


def test_creating_posts_document_the_idempotency_key(document: dict[str, Any]) -> None:
    for path in ("/api/v1/prospects", "/api/v1/lists", "/api/v1/suppressions"):
        parameters = document["paths"][path]["post"]["parameters"]
        assert [p["name"] for p in parameters if p["in"] == "header"] == ["Idempotency-Key"]


def test_the_docs_page_loads_its_assets_from_this_server(db: None) -> None:
    client = Client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/api/v1/openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset
    assert "cdn" not in html.lower()


def test_an_undeclared_method_is_405(client: Client) -> None:
    response = send(client, "PUT", "/api/v1/prospects", {})
    assert response.status_code == 405
    assert "GET" in response["Allow"] and "POST" in response["Allow"]


def test_an_unexpected_failure_is_a_500_in_the_envelope(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warmysender.prospects import services

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "search_prospects", broken)
    response = send(client, "GET", "/api/v1/prospects")
    assert response.status_code == 500
    assert error_code(response) == "internal_error"
    assert "fire" not in response.content.decode()
