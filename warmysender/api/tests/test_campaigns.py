"""/api/v1/campaigns: create, read, change, start and pause campaigns; enroll and unenroll
prospects; decide on sends whose outcome is unknown."""

from __future__ import annotations

import typing
import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from warmysender.api.campaign_schemas import CampaignStatusName, EnrollmentStatusName
from warmysender.api.tests.conftest import block_subscription, error_code, make_prospect, send
from warmysender.audit.models import AuditEntry
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, api_client
from warmysender.email.models import TrackingHit
from warmysender.mailboxes.models import Mailbox
from warmysender.prospects import services as prospect_services
from warmysender.prospects.models import Prospect
from warmysender.sequences import services
from warmysender.sequences.models import (
    Action,
    ActionState,
    Campaign,
    CampaignMailbox,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
)

URL = "/api/v1/campaigns"
SYSTEM = Actor.system("test")
SCOPES = ("campaigns:read", "campaigns:write", "enrollments:write")


@pytest.fixture
def client(tenant: Tenant) -> Client:
    return api_client(tenant.key(*SCOPES))


@pytest.fixture
def outsider_client(outsider: Tenant) -> Client:
    return api_client(outsider.key(*SCOPES))


def make_mailbox(tenant: Tenant, email: str, **fields: Any) -> Mailbox:
    values: dict[str, Any] = {
        "kind": "sandbox",
        "provider": "sandbox",
        "status": "connected",
        **fields,
    }
    return Mailbox.objects.create(
        workspace=tenant.workspace, email=email, created_at=NOW, updated_at=NOW, **values
    )


@pytest.fixture
def mailbox(tenant: Tenant) -> Mailbox:
    return make_mailbox(tenant, "sender@acme.example.com")


def step(index: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "stepIndex": index,
        "subject": f"Step {index} for {{{{firstName | default: 'you'}}}}",
        "bodyHtml": f"<p>Hello, this is step {index}.</p>",
        **fields,
    }


def campaign_body(mailbox: Mailbox, **fields: Any) -> dict[str, Any]:
    return {"name": "Launch", "steps": [step(1)], "mailboxIds": [str(mailbox.pk)], **fields}


def create(client: Client, mailbox: Mailbox, **fields: Any) -> dict[str, Any]:
    response = send(client, "POST", URL, campaign_body(mailbox, **fields))
    assert response.status_code == 201, response.json()
    data: dict[str, Any] = response.json()["data"]
    return data


def soon(**delta: float) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


# --- the whole lifecycle ------------------------------------------------------------------------


def test_the_whole_lifecycle_runs_through_the_api_alone(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    ada = make_prospect(tenant, "ada@example.com", firstName="Ada")
    grace = make_prospect(tenant, "grace@example.com")
    alan = make_prospect(tenant, "alan@example.com")
    founders = prospect_services.create_list(
        workspace=tenant.workspace, name="Founders", actor=SYSTEM, now=NOW
    )
    prospect_services.add_to_list(
        prospect_list=founders, prospect_ids=[grace.pk], actor=SYSTEM, now=NOW
    )

    created = create(client, mailbox, steps=[step(1), step(2, delayDays=3, subject="")])
    assert created["status"] == "draft"
    campaign_url = f"{URL}/{created['id']}"

    enrolled = send(
        client,
        "POST",
        f"{campaign_url}/enrollments",
        {
            "prospectIds": [str(ada.pk)],
            "listIds": [str(founders.pk)],
            "emails": ["ALAN@example.com"],
        },
    )
    assert enrolled.status_code == 201, enrolled.json()
    assert enrolled.json() == {"data": {"enrolledCount": 3, "skipped": []}}

    started = send(client, "POST", f"{campaign_url}/start")
    assert started.status_code == 200, started.json()
    assert started.json()["data"]["status"] == "running"
    assert started.json()["data"]["startedAt"] is not None

    paused = send(client, "POST", f"{campaign_url}/pause")
    assert paused.status_code == 200, paused.json()
    assert paused.json()["data"]["status"] == "paused"
    assert paused.json()["data"]["pausedReason"] == "api"

    patched = send(
        client,
        "PATCH",
        campaign_url,
        {"name": "Launch v2", "dailySendLimit": 120, "steps": [step(1), step(2), step(3)]},
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["data"]["name"] == "Launch v2"
    assert patched.json()["data"]["settings"]["dailySendLimit"] == 120
    assert [s["stepIndex"] for s in patched.json()["data"]["steps"]] == [1, 2, 3]

    resumed = send(client, "POST", f"{campaign_url}/start")
    assert resumed.status_code == 200, resumed.json()
    data = resumed.json()["data"]
    assert data["status"] == "running"
    assert data["pausedReason"] is None
    assert data["enrollments"]["total"] == 3
    assert data["enrollments"]["byStatus"]["pending"] == 3

    listed = send(client, "GET", f"{campaign_url}/enrollments").json()["data"]
    assert {e["prospect"]["email"] for e in listed} == {ada.email, grace.email, alan.email}
    assert all(e["status"] == "pending" and e["currentStep"] == 1 for e in listed)

    campaign = Campaign.objects.get(pk=created["id"])
    assert campaign.status == CampaignStatus.RUNNING
    changes = AuditEntry.objects.filter(action="campaign.status_changed").order_by("created_at")
    assert [(a.from_state, a.to_state) for a in changes] == [
        ("draft", "running"),
        ("running", "paused"),
        ("paused", "running"),
    ]
    assert all(a.actor_label.startswith("api_key:") for a in changes)


# --- create -------------------------------------------------------------------------------------


def test_create_stores_and_echoes_every_setting_step_and_mailbox(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    other = make_mailbox(tenant, "second@acme.example.com")
    start, end = soon(days=2), soon(days=30)
    body = campaign_body(
        mailbox,
        name="  Q1 outreach  ",
        mailboxIds=[str(mailbox.pk), str(other.pk)],
        steps=[
            step(2, delayDays=3, delayHours=4, sameThread=False, subject="Following up"),
            step(
                1,
                variants=[
                    {"subject": "B subject", "bodyHtml": "<p>B</p>", "weight": 50},
                    {"subject": "C subject", "bodyHtml": "<p>C</p>"},
                ],
            ),
        ],
        dailySendLimit=250,
        timezone="Europe/Berlin",
        scheduleDays=[4, 0, 2, 2],
        sendingWindowStart=8,
        sendingWindowEnd=18,
        minutesBetweenSends=7,
        trackOpens=False,
        trackClicks=False,
        stopOnReply=False,
        stopOnBounce=False,
        startDate=start,
        endDate=end,
    )
    response = send(client, "POST", URL, body)
    assert response.status_code == 201, response.json()
    data = response.json()["data"]
    assert data["name"] == "Q1 outreach"
    assert data["type"] == "email"
    assert data["status"] == "draft"
    assert data["pausedReason"] is None
    settings = data["settings"]
    assert settings == {
        "dailySendLimit": 250,
        "timezone": "Europe/Berlin",
        "scheduleDays": [0, 2, 4],
        "sendingWindowStart": 8,
        "sendingWindowEnd": 18,
        "minutesBetweenSends": 7,
        "stopOnReply": False,
        "stopOnBounce": False,
        "trackOpens": False,
        "trackClicks": False,
        "startDate": settings["startDate"],
        "endDate": settings["endDate"],
    }
    campaign = Campaign.objects.get(pk=data["id"])
    assert campaign.start_date is not None and campaign.start_date.isoformat() == start
    assert campaign.end_date is not None and campaign.end_date.isoformat() == end
    first, second = data["steps"]
    assert first["stepIndex"] == 1
    assert first["variants"] == [
        {"label": "B", "subject": "B subject", "bodyHtml": "<p>B</p>", "weight": 50},
        {"label": "C", "subject": "C subject", "bodyHtml": "<p>C</p>", "weight": 100},
    ]
    assert second == {
        "stepIndex": 2,
        "subject": "Following up",
        "bodyHtml": "<p>Hello, this is step 2.</p>",
        "delayDays": 3,
        "delayHours": 4,
        "sameThread": False,
        "variants": [],
    }
    assert data["mailboxes"] == [
        {
            "id": str(mailbox.pk),
            "email": mailbox.email,
            "active": True,
            "maxSendsPerMailboxPerDay": None,
        },
        {
            "id": str(other.pk),
            "email": other.email,
            "active": True,
            "maxSendsPerMailboxPerDay": None,
        },
    ]
    assert data["stats"]["sent"] == 0
    assert data["enrollments"]["total"] == 0
    assert set(data["enrollments"]["byStatus"]) == set(EnrollmentStatus.values)
    assert send(client, "GET", f"{URL}/{data['id']}").json() == response.json()


def test_whole_numbers_written_as_floats_are_integers(client: Client, mailbox: Mailbox) -> None:
    # JSON Schema's "integer" includes 120.0, and some encoders write whole numbers that way.
    data = create(client, mailbox, dailySendLimit=120.0, steps=[step(1, delayDays=2.0)])
    assert data["settings"]["dailySendLimit"] == 120
    assert data["steps"][0]["delayDays"] == 2


def test_create_uses_the_documented_defaults(client: Client, mailbox: Mailbox) -> None:
    settings = create(client, mailbox)["settings"]
    assert settings == {
        "dailySendLimit": 50,
        "timezone": "UTC",
        "scheduleDays": [0, 1, 2, 3, 4],
        "sendingWindowStart": 9,
        "sendingWindowEnd": 17,
        "minutesBetweenSends": 0,
        "stopOnReply": True,
        "stopOnBounce": True,
        "trackOpens": True,
        "trackClicks": True,
        "startDate": None,
        "endDate": None,
    }


def test_create_enrolls_the_prospect_ids_it_is_given(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    data = create(client, mailbox, prospectIds=[str(ada.pk)])
    assert data["enrollments"]["byStatus"]["pending"] == 1
    assert Enrollment.objects.get(campaign_id=data["id"]).prospect == ada


def test_create_refuses_an_outsiders_prospect_ids_with_404(
    client: Client, outsider: Tenant, mailbox: Mailbox
) -> None:
    theirs = make_prospect(outsider, "theirs@example.com")
    response = send(client, "POST", URL, campaign_body(mailbox, prospectIds=[str(theirs.pk)]))
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert response.json()["error"]["details"] == {"prospectIds": [str(theirs.pk)]}
    assert not Campaign.objects.exists()


def _steps(count: int) -> list[dict[str, Any]]:
    return [step(i) for i in range(1, count + 1)]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 7}, "name"),
        ({"steps": []}, "steps"),
        ({"steps": _steps(51)}, "steps"),
        ({"steps": [step(1), step(1)]}, "steps"),
        ({"steps": [step(0)]}, "steps.0.stepIndex"),
        ({"steps": [step(51)]}, "steps.0.stepIndex"),
        ({"steps": [{"stepIndex": 1, "bodyHtml": "x"}]}, "steps.0.subject"),
        ({"steps": [step(1, subject="   ")]}, "steps"),
        ({"steps": [step(1), step(2, subject="", sameThread=False)]}, "steps"),
        ({"steps": [step(1, delayHours=24)]}, "steps.0.delayHours"),
        ({"steps": [step(1, delayDays=-1)]}, "steps.0.delayDays"),
        (
            {"steps": [step(1, variants=[{"subject": "s", "bodyHtml": "b", "weight": 101}])]},
            "steps.0.variants.0.weight",
        ),
        ({"steps": [step(1, bodyHtml="Hi {{ company }")]}, "steps.1"),
        ({"steps": [step(1, color="red")]}, "steps.0.color"),
        ({"mailboxIds": []}, "mailboxIds"),
        ({"mailboxIds": ["not-a-uuid"]}, "mailboxIds.0"),
        ({"dailySendLimit": 0}, "dailySendLimit"),
        ({"dailySendLimit": 10_001}, "dailySendLimit"),
        ({"dailySendLimit": "50"}, "dailySendLimit"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"scheduleDays": []}, "scheduleDays"),
        ({"scheduleDays": [7]}, "scheduleDays.0"),
        ({"sendingWindowStart": 24}, "sendingWindowStart"),
        ({"sendingWindowEnd": 0}, "sendingWindowEnd"),
        ({"sendingWindowStart": 17, "sendingWindowEnd": 9}, "sendingWindowStart"),
        ({"trackOpens": "yes"}, "trackOpens"),
        ({"startDate": "2027-01-01T00:00:00"}, "startDate"),
        ({"startDate": "1700000000"}, "startDate"),
        ({"startDate": 1700000000}, "startDate"),
        ({"startDate": "9999-12-31T23:00:00-05:00"}, "startDate"),
        ({"startDate": "0001-01-01T01:00:00+05:00"}, "startDate"),
        ({"dailySendLimit": 50.5}, "dailySendLimit"),
        ({"dailySendLimit": True}, "dailySendLimit"),
        ({"endDate": "2020-01-01T00:00:00Z"}, "endDate"),
        ({"startDate": "2027-03-01T00:00:00Z", "endDate": "2027-02-01T00:00:00Z"}, "endDate"),
        ({"nickname": "x"}, "nickname"),
    ],
)
def test_create_rejects_invalid_input_naming_the_field(
    client: Client, mailbox: Mailbox, fields: dict[str, Any], field: str
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = send(client, "POST", URL, campaign_body(mailbox, **fields))
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [d["field"] for d in error["details"]], error
    assert all(d["in"] == "body" for d in error["details"])
    assert not Campaign.objects.exists()


def test_a_template_syntax_error_says_where_it_is(client: Client, mailbox: Mailbox) -> None:
    response = send(
        client,
        "POST",
        URL,
        campaign_body(mailbox, steps=[step(1, bodyHtml="<p>\nHi {{ company }</p>")]),
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "Step 1 variant A" in error["message"]
    assert error["details"][0]["line"] == 2


@pytest.mark.parametrize("missing", ["name", "steps", "mailboxIds"])
def test_create_requires_name_steps_and_mailboxes(
    client: Client, mailbox: Mailbox, missing: str
) -> None:
    body = campaign_body(mailbox)
    del body[missing]
    response = send(client, "POST", URL, body)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == [
        {"field": missing, "in": "body", "message": "This field is required."}
    ]


@pytest.mark.parametrize(
    "problem", ["disconnected", "sending disabled", "of another workspace", "missing"]
)
def test_create_with_a_mailbox_that_cannot_send_is_unusable_mailboxes(
    client: Client, tenant: Tenant, outsider: Tenant, mailbox: Mailbox, problem: str
) -> None:
    if problem == "disconnected":
        bad_id = str(make_mailbox(tenant, "off@acme.example.com", status="disconnected").pk)
    elif problem == "sending disabled":
        bad_id = str(make_mailbox(tenant, "quiet@acme.example.com", sending_enabled=False).pk)
    elif problem == "of another workspace":
        bad_id = str(make_mailbox(outsider, "theirs@other.example.com").pk)
    else:
        bad_id = str(uuid.uuid4())
    response = send(
        client, "POST", URL, campaign_body(mailbox, mailboxIds=[str(mailbox.pk), bad_id])
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unusable_mailboxes"
    assert bad_id in error["details"]["missing"] + error["details"]["unusable"]
    assert str(mailbox.pk) not in error["details"]["missing"] + error["details"]["unusable"]
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("raw", ["{bad json", "", "[1, 2]", '"just a string"', "null"])
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_body_that_is_not_a_json_object_is_refused(
    client: Client, mailbox: Mailbox, raw: str, method: str
) -> None:
    path = URL if method == "POST" else f"{URL}/{create(client, mailbox)['id']}"
    call = client.post if method == "POST" else client.patch
    response = call(path, raw, content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert Campaign.objects.count() == (0 if method == "POST" else 1)


@pytest.mark.parametrize("path", ["/enrollments"])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_malformed_enrollment_body_is_refused(
    client: Client, mailbox: Mailbox, path: str, method: str
) -> None:
    url = f"{URL}/{create(client, mailbox)['id']}{path}"
    response = getattr(client, method.lower())(url, "{bad json", content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


def test_writes_are_subscription_blocked_when_the_trial_expired(
    client: Client, tenant: Tenant, mailbox: Mailbox, settings: Any
) -> None:
    draft = create(client, mailbox)
    running = create(client, mailbox, name="Running")
    assert send(client, "POST", f"{URL}/{running['id']}/start").status_code == 200
    block_subscription(tenant, settings)
    for method, path, body in [
        ("POST", URL, campaign_body(mailbox)),
        ("PATCH", f"{URL}/{draft['id']}", {"name": "x"}),
        ("POST", f"{URL}/{draft['id']}/start", None),
        ("POST", f"{URL}/{draft['id']}/enrollments", {"emails": ["a@example.com"]}),
    ]:
        response = send(client, method, path, body)
        assert response.status_code == 403, (method, path, response.json())
        assert error_code(response) == "subscription_blocked"
        assert response.json()["error"]["details"] == {"status": "expired"}
    assert Campaign.objects.get(pk=draft["id"]).status == CampaignStatus.DRAFT
    # Stopping is always possible, and reading too.
    paused = send(client, "POST", f"{URL}/{running['id']}/pause")
    assert paused.status_code == 200
    assert send(client, "GET", URL).status_code == 200
    assert Campaign.objects.count() == 2


# --- idempotency --------------------------------------------------------------------------------


def test_create_with_an_idempotency_key_runs_once(client: Client, mailbox: Mailbox) -> None:
    body = campaign_body(mailbox)
    first = send(client, "POST", URL, body, **{"Idempotency-Key": "launch-1"})
    again = send(client, "POST", URL, body, **{"Idempotency-Key": "launch-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Campaign.objects.count() == 1

    other = send(client, "POST", URL, {**body, "name": "Other"}, **{"Idempotency-Key": "launch-1"})
    assert other.status_code == 409
    assert error_code(other) == "idempotency_conflict"
    assert Campaign.objects.count() == 1


def test_a_refused_create_stores_nothing_under_its_idempotency_key(
    client: Client, mailbox: Mailbox
) -> None:
    body = campaign_body(mailbox, mailboxIds=[str(uuid.uuid4())])
    assert send(client, "POST", URL, body, **{"Idempotency-Key": "k"}).status_code == 400
    fixed = campaign_body(mailbox)
    retried = send(client, "POST", URL, fixed, **{"Idempotency-Key": "k2"})
    assert retried.status_code == 201
    assert send(client, "POST", URL, body, **{"Idempotency-Key": "k"}).status_code == 400


# --- read ---------------------------------------------------------------------------------------


def test_stats_count_sent_actions_and_rates_stay_within_100(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    data = create(client, mailbox, steps=[step(1), step(2)])
    campaign = Campaign.objects.get(pk=data["id"])
    steps = list(campaign.steps.all())
    actions = []
    for i, state in enumerate(["sent", "sent", "sent", "failed", "unknown", "reserved"]):
        prospect = make_prospect(tenant, f"p{i}@example.com")
        enrollment = Enrollment.objects.create(
            workspace=tenant.workspace,
            campaign=campaign,
            prospect=prospect,
            # The first prospect answered (the inbox sync stopped its sequence).
            status="replied" if i == 0 else "pending",
            enrolled_at=NOW,
            updated_at=NOW,
            finished_at=NOW + timedelta(hours=2) if i == 0 else None,
        )
        actions.append(
            Action.objects.create(
                workspace=tenant.workspace,
                enrollment=enrollment,
                step=steps[0],
                campaign=campaign,
                state=state,
                to_email=prospect.email,
                created_at=NOW,
                finished_at=NOW + timedelta(hours=1),
            )
        )
    # The second email was opened twice by a person; the third only by a security scanner.
    for action, scanner in [(actions[1], ""), (actions[1], ""), (actions[2], "Mimecast")]:
        TrackingHit.objects.create(
            workspace=tenant.workspace,
            action=action,
            campaign=campaign,
            kind="open",
            at=NOW + timedelta(hours=3),
            is_scanner=bool(scanner),
            scanner_reason=scanner,
        )
    stats = send(client, "GET", f"{URL}/{data['id']}").json()["data"]["stats"]
    assert stats == {
        "sent": 3,
        "opens": 1,
        "clicks": 0,
        "replies": 1,
        "bounces": 0,
        "openRate": 33.3,
        "clickRate": 0.0,
        "replyRate": 33.3,
        "bounceRate": 0.0,
    }
    listed = send(client, "GET", URL).json()["data"]
    assert [c["stats"]["sent"] for c in listed] == [3]


def test_rates_are_percentages_clamped_to_100() -> None:
    from warmysender.api.campaign_schemas import StatsOut
    from warmysender.email.stats import Counts

    stats = StatsOut.of(Counts(sent=8, opens=10, clicks=2, replies=1, bounces=0))
    assert (stats.openRate, stats.clickRate, stats.replyRate, stats.bounceRate) == (
        100.0,
        25.0,
        12.5,
        0.0,
    )
    assert StatsOut.of(Counts(sent=0, opens=3)).openRate == 0.0


def test_list_pages_newest_first_and_filters_by_status(
    client: Client, outsider_client: Client, mailbox: Mailbox
) -> None:
    ids = []
    for i in range(5):
        with time_machine.travel(NOW + timedelta(minutes=i), tick=False):
            ids.append(create(client, mailbox, name=f"C{i}")["id"])
    send(client, "POST", f"{URL}/{ids[1]}/start")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = send(client, "GET", f"{URL}?{query}").json()
        pages += 1
        seen.extend(c["id"] for c in body["data"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))
    running = send(client, "GET", f"{URL}?status=running").json()["data"]
    assert [c["id"] for c in running] == [ids[1]]
    assert send(outsider_client, "GET", URL).json() == {"data": [], "nextCursor": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("cursor=garbage", "cursor"), ("status=sleeping", "status")],
)
def test_list_rejects_bad_query_parameters(client: Client, query: str, field: str) -> None:
    response = send(client, "GET", f"{URL}?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == field


# --- update -------------------------------------------------------------------------------------


def test_patch_changes_only_what_is_sent_and_can_clear_the_end_date(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    other = make_mailbox(tenant, "second@acme.example.com")
    data = create(client, mailbox, endDate=soon(days=10), trackOpens=False)
    response = send(
        client,
        "PATCH",
        f"{URL}/{data['id']}",
        {
            "endDate": None,
            "sendingWindowStart": 6,
            "sendingWindowEnd": 20,
            "scheduleDays": [5, 6],
            "timezone": "Asia/Kolkata",
            "trackClicks": False,
            "stopOnReply": False,
            "mailboxIds": [str(other.pk)],
        },
    )
    assert response.status_code == 200, response.json()
    patched = response.json()["data"]
    assert patched["name"] == "Launch"
    assert patched["settings"]["endDate"] is None
    assert patched["settings"]["trackOpens"] is False
    assert patched["settings"]["trackClicks"] is False
    assert patched["settings"]["stopOnReply"] is False
    assert patched["settings"]["timezone"] == "Asia/Kolkata"
    assert patched["settings"]["scheduleDays"] == [5, 6]
    assert (patched["settings"]["sendingWindowStart"], patched["settings"]["sendingWindowEnd"]) == (
        6,
        20,
    )
    assert [m["id"] for m in patched["mailboxes"]] == [str(other.pk)]
    assert AuditEntry.objects.filter(action="campaign.updated").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"dailySendLimit": None}, "dailySendLimit"),
        ({"steps": None}, "steps"),
        ({"sendingWindowEnd": 9}, "sendingWindowEnd"),
        ({"endDate": "2020-01-01T00:00:00Z"}, "endDate"),
        ({"status": "running"}, "status"),
    ],
)
def test_patch_rejects_invalid_input(
    client: Client, mailbox: Mailbox, body: dict[str, Any], field: str
) -> None:
    data = create(client, mailbox)
    response = send(client, "PATCH", f"{URL}/{data['id']}", body)
    assert response.status_code == 400, response.json()
    assert error_code(response) == "validation_error"
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert send(client, "GET", f"{URL}/{data['id']}").json()["data"] == data


def test_patch_with_an_unusable_mailbox_is_refused(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    data = create(client, mailbox)
    off = make_mailbox(tenant, "off@acme.example.com", status="error")
    response = send(client, "PATCH", f"{URL}/{data['id']}", {"mailboxIds": [str(off.pk)]})
    assert response.status_code == 400
    assert error_code(response) == "unusable_mailboxes"
    assert response.json()["error"]["details"]["unusable"] == [str(off.pk)]


def test_patch_of_a_running_campaign_is_invalid_status(client: Client, mailbox: Mailbox) -> None:
    data = create(client, mailbox)
    send(client, "POST", f"{URL}/{data['id']}/start")
    response = send(client, "PATCH", f"{URL}/{data['id']}", {"name": "Renamed"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_status"
    assert error["details"] == {"status": "running"}
    assert Campaign.objects.get(pk=data["id"]).name == "Launch"


# --- start and pause ----------------------------------------------------------------------------


def test_start_with_a_future_start_date_schedules(client: Client, mailbox: Mailbox) -> None:
    data = create(client, mailbox, startDate=soon(days=3))
    response = send(client, "POST", f"{URL}/{data['id']}/start")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "scheduled"
    paused = send(client, "POST", f"{URL}/{data['id']}/pause")
    assert paused.json()["data"]["status"] == "paused"


def test_start_after_the_end_date_passed_is_end_date_expired(
    client: Client, mailbox: Mailbox
) -> None:
    with time_machine.travel(NOW, tick=False):
        data = create(client, mailbox, endDate=(NOW + timedelta(days=2)).isoformat())
    with time_machine.travel(NOW + timedelta(days=2, seconds=1), tick=False):
        response = send(client, "POST", f"{URL}/{data['id']}/start")
    assert response.status_code == 400
    assert error_code(response) == "end_date_expired"
    assert Campaign.objects.get(pk=data["id"]).status == CampaignStatus.DRAFT


def test_start_without_steps_is_a_validation_error(client: Client, tenant: Tenant) -> None:
    # The API cannot create a campaign without steps; other doors (the web editor) can.
    campaign = services.create_campaign(
        workspace=tenant.workspace,
        name="Empty",
        steps=(),
        mailbox_ids=(),
        settings={},
        actor=SYSTEM,
        now=timezone.now(),
        require_mailboxes=False,
    )
    response = send(client, "POST", f"{URL}/{campaign.pk}/start")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "steps"


def test_start_when_every_mailbox_went_away_is_unusable_mailboxes(
    client: Client, mailbox: Mailbox
) -> None:
    data = create(client, mailbox)
    Mailbox.objects.filter(pk=mailbox.pk).update(status="disconnected")
    response = send(client, "POST", f"{URL}/{data['id']}/start")
    assert response.status_code == 400
    assert error_code(response) == "unusable_mailboxes"


def test_start_is_subscription_blocked(
    client: Client, tenant: Tenant, mailbox: Mailbox, settings: Any
) -> None:
    data = create(client, mailbox)
    block_subscription(tenant, settings)
    response = send(client, "POST", f"{URL}/{data['id']}/start")
    assert response.status_code == 403
    assert error_code(response) == "subscription_blocked"


@pytest.mark.parametrize("status", ["running", "scheduled", "completed", "errored"])
def test_start_from_a_status_that_cannot_start_is_invalid_status(
    client: Client, mailbox: Mailbox, status: str
) -> None:
    data = create(client, mailbox)
    Campaign.objects.filter(pk=data["id"]).update(status=status)
    response = send(client, "POST", f"{URL}/{data['id']}/start")
    assert response.status_code == 400
    assert error_code(response) == "invalid_status"
    assert Campaign.objects.get(pk=data["id"]).status == status


@pytest.mark.parametrize("status", ["draft", "paused", "completed"])
def test_pause_from_a_status_that_cannot_pause_is_invalid_status(
    client: Client, mailbox: Mailbox, status: str
) -> None:
    data = create(client, mailbox)
    if status != "draft":
        Campaign.objects.filter(pk=data["id"]).update(status=status, paused_reason="manual")
    response = send(client, "POST", f"{URL}/{data['id']}/pause")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_status"
    assert error["details"] == {"status": status}


def test_launch_is_refused_when_a_custom_field_is_missing_from_every_prospect(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    ada = make_prospect(tenant, "ada@example.com", customFields={"tier": "gold", "city": "x"})
    data = create(
        client,
        mailbox,
        steps=[step(1, bodyHtml="<p>About {{custom.pain_point}} at {{custom.tier}}</p>")],
        prospectIds=[str(ada.pk)],
    )
    response = send(client, "POST", f"{URL}/{data['id']}/start")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "pain_point" in error["message"]
    assert "city, tier" in error["message"]
    assert error["details"][0]["missing"] == ["pain_point"]
    assert error["details"][0]["existing"] == ["city", "tier"]
    assert Campaign.objects.get(pk=data["id"]).status == CampaignStatus.DRAFT

    fixed = step(1, bodyHtml="<p>About {{custom.pain_point | default: 'growth'}}</p>")
    assert send(client, "PATCH", f"{URL}/{data['id']}", {"steps": [fixed]}).status_code == 200
    assert send(client, "POST", f"{URL}/{data['id']}/start").json()["data"]["status"] == "running"


# --- enrollments --------------------------------------------------------------------------------


def test_enrolling_a_prospect_twice_is_409_and_enrolls_nothing(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    grace = make_prospect(tenant, "grace@example.com")
    data = create(client, mailbox, prospectIds=[str(ada.pk)])
    response = send(
        client,
        "POST",
        f"{URL}/{data['id']}/enrollments",
        {"prospectIds": [str(grace.pk)], "emails": ["ada@example.com"]},
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["details"] == {"prospectIds": [str(ada.pk)]}
    assert Enrollment.objects.filter(campaign_id=data["id"]).count() == 1


def test_enrolling_skips_suppressed_and_bounced_prospects_saying_why(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    ok = make_prospect(tenant, "ok@example.com")
    bounced = make_prospect(tenant, "bounced@example.com")
    Prospect.objects.filter(pk=bounced.pk).update(global_status="bounced")
    blocked = make_prospect(tenant, "someone@blocked.example.com")
    prospect_services.add_suppression(
        workspace=tenant.workspace, value="blocked.example.com", actor=SYSTEM, now=NOW
    )
    data = create(client, mailbox)
    response = send(
        client,
        "POST",
        f"{URL}/{data['id']}/enrollments",
        {"prospectIds": [str(ok.pk), str(bounced.pk), str(blocked.pk)]},
    )
    assert response.status_code == 201, response.json()
    body = response.json()["data"]
    assert body["enrolledCount"] == 1
    assert sorted(body["skipped"], key=lambda s: s["email"]) == [
        {"email": "bounced@example.com", "reason": "bounced"},
        {"email": "someone@blocked.example.com", "reason": "suppressed"},
    ]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prospectIds": []},
        {"emails": []},
        {"emails": None, "prospectIds": None},
        {"listIds": ["nope"]},
        {"emails": ["x"] * 1001},
    ],
)
def test_enrolling_needs_at_least_one_well_formed_selector(
    client: Client, mailbox: Mailbox, body: dict[str, Any]
) -> None:
    data = create(client, mailbox)
    response = send(client, "POST", f"{URL}/{data['id']}/enrollments", body)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


@pytest.mark.parametrize("selector", ["prospectIds", "listIds", "emails"])
def test_enrolling_what_is_not_here_is_404(
    client: Client, tenant: Tenant, outsider: Tenant, mailbox: Mailbox, selector: str
) -> None:
    mine = make_prospect(tenant, "mine@example.com")
    theirs = make_prospect(outsider, "theirs@example.com")
    their_list = prospect_services.create_list(
        workspace=outsider.workspace, name="Theirs", actor=SYSTEM, now=NOW
    )
    value = {
        "prospectIds": [str(mine.pk), str(theirs.pk)],
        "listIds": [str(their_list.pk)],
        "emails": ["mine@example.com", "theirs@example.com"],
    }[selector]
    data = create(client, mailbox)
    response = send(client, "POST", f"{URL}/{data['id']}/enrollments", {selector: value})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["details"] == {selector: [value[-1]]}
    assert not Enrollment.objects.exists()


def test_enrolling_with_an_idempotency_key_is_safe_to_retry(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    data = create(client, mailbox)
    url = f"{URL}/{data['id']}/enrollments"
    body = {"prospectIds": [str(ada.pk)]}
    first = send(client, "POST", url, body, **{"Idempotency-Key": "e1"})
    again = send(client, "POST", url, body, **{"Idempotency-Key": "e1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() == {"data": {"enrolledCount": 1, "skipped": []}}
    assert send(client, "POST", url, body).status_code == 409


def test_unenrolling_counts_what_was_enrolled_and_what_was_looked_at(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    grace = make_prospect(tenant, "grace@example.com")
    stranger = make_prospect(tenant, "stranger@example.com")
    data = create(client, mailbox, prospectIds=[str(ada.pk), str(grace.pk)])
    url = f"{URL}/{data['id']}/enrollments"
    response = send(
        client,
        "DELETE",
        url,
        {"prospectIds": [str(ada.pk), str(stranger.pk)], "emails": ["nobody@example.com"]},
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {"data": {"unenrolledCount": 1, "totalProcessed": 3}}
    statuses = dict(Enrollment.objects.values_list("prospect__email", "status"))
    assert statuses == {"ada@example.com": "unenrolled", "grace@example.com": "pending"}
    # Unenrolled prospects may join again.
    again = send(client, "POST", url, {"emails": ["ada@example.com"]})
    assert again.status_code == 201
    assert again.json()["data"]["enrolledCount"] == 1


@pytest.mark.parametrize("body", [{}, {"listIds": [str(uuid.uuid4())]}, {"prospectIds": []}])
def test_unenrolling_needs_prospect_ids_or_emails(
    client: Client, mailbox: Mailbox, body: dict[str, Any]
) -> None:
    data = create(client, mailbox)
    response = send(client, "DELETE", f"{URL}/{data['id']}/enrollments", body)
    assert response.status_code == 400
    assert error_code(response) == "validation_error"


def test_enrollments_page_newest_first_and_filter_by_status(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    data = create(client, mailbox)
    url = f"{URL}/{data['id']}/enrollments"
    emails = []
    for i in range(7):
        prospect = make_prospect(tenant, f"p{i}@example.com", firstName=f"P{i}")
        emails.append(prospect.email)
        with time_machine.travel(NOW + timedelta(minutes=i // 2), tick=False):
            assert send(client, "POST", url, {"prospectIds": [str(prospect.pk)]}).status_code == 201
    Enrollment.objects.filter(prospect__email="p3@example.com").update(
        status=EnrollmentStatus.FAILED, failure_reason="stuck"
    )
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = send(client, "GET", f"{url}?{query}").json()
        pages += 1
        seen.extend(body["data"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(e["prospect"]["email"] for e in seen) == sorted(emails)
    assert len({e["id"] for e in seen}) == 7
    times = [e["enrolledAt"] for e in seen]
    assert times == sorted(times, reverse=True)
    first = seen[-1]
    assert first["prospect"]["firstName"] in {"P0", "P1"}
    assert set(first) == {
        "id",
        "prospect",
        "status",
        "currentStep",
        "nextActionAt",
        "waitingReason",
        "mailboxId",
        "lastSentAt",
        "failureReason",
        "enrolledAt",
    }
    failed = send(client, "GET", f"{url}?status=failed").json()["data"]
    assert [(e["prospect"]["email"], e["failureReason"]) for e in failed] == [
        ("p3@example.com", "stuck")
    ]


# --- unknown outcomes ---------------------------------------------------------------------------


def unknown_send(tenant: Tenant, campaign_id: str, email: str = "ada@example.com") -> Action:
    campaign = Campaign.objects.get(pk=campaign_id)
    prospect = make_prospect(tenant, email)
    enrollment = Enrollment.objects.create(
        workspace=tenant.workspace,
        campaign=campaign,
        prospect=prospect,
        status=EnrollmentStatus.NEEDS_REVIEW,
        enrolled_at=NOW,
        updated_at=NOW,
    )
    return Action.objects.create(
        workspace=tenant.workspace,
        enrollment=enrollment,
        step=campaign.steps.get(step_index=1),
        campaign=campaign,
        state=ActionState.UNKNOWN,
        to_email=prospect.email,
        subject="Hello",
        message_id="<m1@acme.example.com>",
        created_at=NOW,
    )


def test_marking_an_unknown_send_as_sent_moves_the_prospect_on(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    data = create(client, mailbox, steps=[step(1), step(2, delayDays=2)])
    action = unknown_send(tenant, data["id"])
    url = f"{URL}/{data['id']}/actions/{action.pk}/resolve"
    response = send(client, "POST", url, {"decision": "mark_sent"})
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["state"] == "sent"
    assert response.json()["data"]["stepIndex"] == 1
    enrollment = Enrollment.objects.get(pk=action.enrollment_id)
    assert enrollment.next_step_index == 2
    again = send(client, "POST", url, {"decision": "send_again"})
    assert again.status_code == 400
    assert error_code(again) == "invalid_status"


def test_sending_an_unknown_send_again_queues_it(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    data = create(client, mailbox)
    action = unknown_send(tenant, data["id"])
    url = f"{URL}/{data['id']}/actions/{action.pk}/resolve"
    response = send(client, "POST", url, {"decision": "send_again"})
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["state"] == "planned"
    enrollment = Enrollment.objects.get(pk=action.enrollment_id)
    assert enrollment.status == EnrollmentStatus.PENDING
    assert AuditEntry.objects.filter(action="action.unknown_resolved").count() == 1


@pytest.mark.parametrize("body", [{"decision": "maybe"}, {}, {"decision": None}])
def test_resolving_needs_a_known_decision(
    client: Client, tenant: Tenant, mailbox: Mailbox, body: dict[str, Any]
) -> None:
    data = create(client, mailbox)
    action = unknown_send(tenant, data["id"])
    response = send(client, "POST", f"{URL}/{data['id']}/actions/{action.pk}/resolve", body)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "decision"
    assert Action.objects.get(pk=action.pk).state == ActionState.UNKNOWN


def test_resolving_an_action_of_another_campaign_is_404(
    client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    first = create(client, mailbox)
    second = create(client, mailbox, name="Second")
    action = unknown_send(tenant, first["id"])
    url = f"{URL}/{second['id']}/actions/{action.pk}/resolve"
    response = send(client, "POST", url, {"decision": "mark_sent"})
    assert response.status_code == 404
    assert Action.objects.get(pk=action.pk).state == ActionState.UNKNOWN


# --- tenancy, scopes, authentication ------------------------------------------------------------


def every_endpoint(campaign_id: Any, action_id: Any) -> list[tuple[str, str, Any]]:
    base = f"{URL}/{campaign_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"name": "Mallory"}),
        ("POST", f"{base}/start", None),
        ("POST", f"{base}/pause", None),
        ("POST", f"{base}/enrollments", {"emails": ["ada@example.com"]}),
        ("DELETE", f"{base}/enrollments", {"emails": ["ada@example.com"]}),
        ("GET", f"{base}/enrollments", None),
        ("POST", f"{base}/actions/{action_id}/resolve", {"decision": "mark_sent"}),
    ]


def test_an_outsider_gets_404_for_everything_of_the_tenants_campaign(
    client: Client, outsider_client: Client, tenant: Tenant, mailbox: Mailbox
) -> None:
    data = create(client, mailbox)
    action = unknown_send(tenant, data["id"])
    for method, path, body in every_endpoint(data["id"], action.pk):
        response = send(outsider_client, method, path, body)
        assert response.status_code == 404, (method, path, response.json())
        assert error_code(response) == "not_found"
    campaign = Campaign.objects.get(pk=data["id"])
    assert (campaign.name, campaign.status) == ("Launch", CampaignStatus.DRAFT)
    assert Enrollment.objects.get().status == EnrollmentStatus.NEEDS_REVIEW
    assert Action.objects.get().state == ActionState.UNKNOWN


@pytest.mark.parametrize("bad_id", ["nope", str(uuid.uuid4())])
def test_missing_or_malformed_campaign_ids_are_404(client: Client, bad_id: str) -> None:
    for method, path, body in every_endpoint(bad_id, uuid.uuid4()):
        response = send(client, method, path, body)
        assert response.status_code == 404, (method, path, response.json())
        assert error_code(response) == "not_found"


def test_a_read_only_key_cannot_change_campaigns_or_enrollments(
    tenant: Tenant, client: Client, mailbox: Mailbox
) -> None:
    data = create(client, mailbox)
    action = unknown_send(tenant, data["id"])
    reader = api_client(tenant.key("campaigns:read"))
    assert send(reader, "GET", URL).status_code == 200
    assert send(reader, "GET", f"{URL}/{data['id']}").status_code == 200
    assert send(reader, "GET", f"{URL}/{data['id']}/enrollments").status_code == 200
    writes = [("POST", URL, campaign_body(mailbox))] + [
        e for e in every_endpoint(data["id"], action.pk) if e[0] != "GET"
    ]
    for method, path, body in writes:
        response = send(reader, method, path, body)
        assert response.status_code == 403, (method, path)
        error = response.json()["error"]
        assert error["code"] == "insufficient_scope"
        required = "enrollments:write" if path.endswith("/enrollments") else "campaigns:write"
        assert error["details"]["required"] == required
    assert Campaign.objects.count() == 1


def test_campaigns_write_does_not_grant_enrollments_write(
    tenant: Tenant, client: Client, mailbox: Mailbox
) -> None:
    ada = make_prospect(tenant, "ada@example.com")
    data = create(client, mailbox)
    writer = api_client(tenant.key("campaigns:read", "campaigns:write"))
    url = f"{URL}/{data['id']}/enrollments"
    for method in ("POST", "DELETE"):
        response = send(writer, method, url, {"prospectIds": [str(ada.pk)]})
        assert response.status_code == 403
        assert response.json()["error"]["details"]["required"] == "enrollments:write"
    assert not Enrollment.objects.exists()
    enroller = api_client(tenant.key("enrollments:write"))
    assert send(enroller, "POST", url, {"prospectIds": [str(ada.pk)]}).status_code == 201
    assert send(enroller, "GET", url).status_code == 403


def test_every_endpoint_needs_a_key(client: Client, tenant: Tenant, mailbox: Mailbox) -> None:
    data = create(client, mailbox)
    action = unknown_send(tenant, data["id"])
    anonymous = Client()
    endpoints = [("GET", URL, None), ("POST", URL, campaign_body(mailbox))]
    for method, path, body in endpoints + every_endpoint(data["id"], action.pk):
        response = send(anonymous, method, path, body)
        assert response.status_code == 401, (method, path)
        assert error_code(response) == "unauthorized"
        assert response["WWW-Authenticate"] == "Bearer"
    assert Campaign.objects.count() == 1


# --- the document and the models agree ----------------------------------------------------------


def test_the_documented_statuses_are_the_models() -> None:
    assert set(typing.get_args(CampaignStatusName)) == set(CampaignStatus.values)
    assert set(typing.get_args(EnrollmentStatusName)) == set(EnrollmentStatus.values)


# --- one mailbox of a campaign's pool ------------------------------------------------------

POOL_WRITE_SCOPES = ("campaigns:read", "campaigns:write", "enrollments:write", "prospects:write")


def pool_url(campaign_id: str, mailbox_id: object) -> str:
    return f"/api/v1/campaigns/{campaign_id}/mailboxes/{mailbox_id}"


def test_a_running_campaigns_mailbox_can_be_switched_off_and_capped(
    client: Client, mailbox: Mailbox, tenant: Tenant
) -> None:
    other = make_mailbox(tenant, "second@acme.com")
    campaign = create(client, mailbox, mailboxIds=[str(mailbox.id), str(other.id)])
    assert send(client, "POST", f"/api/v1/campaigns/{campaign['id']}/start").status_code == 200

    off = send(client, "PATCH", pool_url(campaign["id"], other.id), {"active": False})
    assert off.status_code == 200
    pool = {m["id"]: m for m in off.json()["data"]["mailboxes"]}
    assert pool[str(other.id)]["active"] is False
    assert pool[str(mailbox.id)]["active"] is True

    capped = send(
        client, "PATCH", pool_url(campaign["id"], mailbox.id), {"maxSendsPerMailboxPerDay": 7}
    )
    assert capped.status_code == 200
    assert CampaignMailbox.objects.get(mailbox=mailbox).max_sends_per_day == 7
    cleared = send(
        client, "PATCH", pool_url(campaign["id"], mailbox.id), {"maxSendsPerMailboxPerDay": None}
    )
    assert cleared.status_code == 200
    assert CampaignMailbox.objects.get(mailbox=mailbox).max_sends_per_day is None
    # Switching a mailbox off keeps its cap; a later PATCH of the pool keeps the switch.
    assert CampaignMailbox.objects.get(mailbox=other).is_active is False


def test_bad_values_and_foreign_mailboxes_are_refused(
    client: Client, mailbox: Mailbox, tenant: Tenant, outsider: Tenant
) -> None:
    campaign = create(client, mailbox)
    for body in (
        {"maxSendsPerMailboxPerDay": 0},
        {"maxSendsPerMailboxPerDay": 501},
        {"active": None},
        {"nope": 1},
    ):
        response = send(client, "PATCH", pool_url(campaign["id"], mailbox.id), body)
        assert response.status_code == 400, body
        assert error_code(response) == "validation_error"
    not_in_pool = make_mailbox(tenant, "spare@acme.com")
    assert (
        error_code(
            send(client, "PATCH", pool_url(campaign["id"], not_in_pool.id), {"active": False})
        )
        == "not_found"
    )
    outsiders = api_client(outsider.key(*POOL_WRITE_SCOPES))
    assert (
        send(
            outsiders, "PATCH", pool_url(campaign["id"], mailbox.id), {"active": False}
        ).status_code
        == 404
    )
    read_only = api_client(tenant.key("campaigns:read"))
    refused = send(read_only, "PATCH", pool_url(campaign["id"], mailbox.id), {"active": False})
    assert refused.status_code == 403 and error_code(refused) == "insufficient_scope"
    assert CampaignMailbox.objects.get(mailbox=mailbox).is_active is True
