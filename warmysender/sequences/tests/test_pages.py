"""Campaign pages through the Django test client: the list, the builder and its editor status,
the preview, the campaign page with its lifecycle buttons, enrollments and reviews."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, client_for
from warmysender.mailboxes import services as mailbox_services
from warmysender.mailboxes.models import Mailbox
from warmysender.prospects import services as prospect_services
from warmysender.prospects.models import Prospect
from warmysender.sequences import services
from warmysender.sequences.models import (
    Action,
    ActionState,
    Campaign,
    CampaignEvent,
    CampaignMailbox,
    CampaignStatus,
    Enrollment,
    EnrollmentStatus,
    Step,
    Variant,
)
from warmysender.sequences.services import StepInput
from warmysender.sequences.views import _rate

SYSTEM = Actor.system("test")
ALL_DAY = {"schedule_days": [0, 1, 2, 3, 4, 5, 6], "window_start_hour": 0, "window_end_hour": 24}
GREETING = "{Hi|Hello} {{firstName | default: 'there'}}"


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    # Monday 23 Nov 2026, 12:00 UTC: inside a Mon–Fri 9–17 window in UTC.
    with time_machine.travel(NOW, tick=False):
        yield


def text(response: Any) -> str:
    return response.content.decode()


def plain(response: Any) -> str:
    """The page as text, with entities decoded (`'` is `&#x27;` in the HTML)."""
    return html.unescape(text(response))


def make_mailbox(tenant: Tenant, email: str = "sales@acme.example") -> Mailbox:
    return mailbox_services.create_mailbox(
        tenant.workspace, {"email": email, "kind": "sandbox"}, actor=SYSTEM, now=NOW
    )


def make_prospect(tenant: Tenant, email: str, **fields: Any) -> Prospect:
    return prospect_services.create_prospect(
        workspace=tenant.workspace, data={"email": email, **fields}, actor=SYSTEM, now=NOW
    ).prospect


def make_campaign(
    tenant: Tenant,
    mailboxes: list[Mailbox],
    steps: list[StepInput] | None = None,
    name: str = "Autumn outreach",
    **settings: Any,
) -> Campaign:
    return services.create_campaign(
        workspace=tenant.workspace,
        name=name,
        steps=steps
        or [
            StepInput(step_index=1, subject=GREETING, body_html="<p>About {{company}}.</p>"),
            StepInput(step_index=2, subject="", body_html="<p>Following up.</p>", delay_days=3),
        ],
        mailbox_ids=[m.pk for m in mailboxes],
        settings={**ALL_DAY, **settings},
        actor=SYSTEM,
        now=NOW,
        require_mailboxes=bool(mailboxes),
    )


def unknown_send(campaign: Campaign, prospect: Prospect) -> Action:
    """What the sender leaves when it cannot tell whether the server took an email."""
    enrollment = Enrollment.objects.create(
        workspace=campaign.workspace,
        campaign=campaign,
        prospect=prospect,
        status=EnrollmentStatus.NEEDS_REVIEW,
        wait_reason="the server may have accepted the last email; mark it as sent or send it again",
        enrolled_at=NOW,
        updated_at=NOW,
    )
    return Action.objects.create(
        workspace=campaign.workspace,
        enrollment=enrollment,
        step=campaign.steps.get(step_index=1),
        campaign=campaign,
        state=ActionState.UNKNOWN,
        to_email=prospect.email,
        subject="Hi Ada",
        message_id="<m1@acme.example>",
        created_at=NOW,
    )


@pytest.fixture
def world(tenant: Tenant) -> dict[str, Any]:
    mailbox = make_mailbox(tenant)
    ada = make_prospect(tenant, "ada@lovelace.dev", firstName="Ada", company="Engines Ltd")
    grace = make_prospect(tenant, "grace@hopper.dev", firstName="Grace", company="US Navy")
    campaign = make_campaign(tenant, [mailbox])
    services.enroll(campaign=campaign, prospect_ids=[grace.pk], actor=SYSTEM, now=NOW)
    action = unknown_send(campaign, ada)
    prospect_list = prospect_services.create_list(
        workspace=tenant.workspace, name="Pioneers", color="#10b981", actor=SYSTEM, now=NOW
    )
    return {
        "mailbox": mailbox,
        "ada": ada,
        "grace": grace,
        "campaign": campaign,
        "action": action,
        "list": prospect_list,
    }


def state(tenant: Tenant) -> tuple[Any, ...]:
    """Everything a campaign page could change, to prove that a refused request changed nothing."""
    ws = tenant.workspace
    return (
        sorted(Campaign.objects.filter(workspace=ws).values_list("name", "status", "updated_at")),
        sorted(Step.objects.filter(workspace=ws).values_list("step_index", "delay_days")),
        sorted(Variant.objects.filter(workspace=ws).values_list("label", "subject", "body_html")),
        sorted(
            CampaignMailbox.objects.filter(workspace=ws).values_list(
                "mailbox__email", "max_sends_per_day"
            )
        ),
        sorted(
            Enrollment.objects.filter(workspace=ws).values_list(
                "prospect__email", "status", "next_action_at"
            )
        ),
        sorted(Action.objects.filter(workspace=ws).values_list("to_email", "state")),
        CampaignEvent.objects.filter(workspace=ws).count(),
    )


def builder_data(mailbox: Mailbox | None = None, **overrides: Any) -> dict[str, Any]:
    """A complete builder submission: two steps, variant B on the first, one mailbox."""
    data: dict[str, Any] = {
        "name": "Winter outreach",
        "daily_send_limit": "40",
        "timezone": "Europe/Berlin",
        "schedule_days": ["0", "1", "2", "3", "4"],
        "window_start_hour": "8",
        "window_end_hour": "18",
        "randomize_within_window": "on",
        "min_minutes_between_sends": "5",
        "stop_on_reply": "on",
        "stop_on_bounce": "on",
        "track_opens": "on",
        "start_date": "",
        "end_date": "",
        "steps-TOTAL_FORMS": "2",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "1",
        "steps-MAX_NUM_FORMS": "50",
        "steps-0-delay_days": "0",
        "steps-0-delay_hours": "0",
        "steps-0-same_thread": "on",
        "steps-0-subject": GREETING,
        "steps-0-body_html": "<p>{Quick|Short} question about {{company}}.</p>",
        "steps-0-ab": "on",
        "steps-0-b_label": "B",
        "steps-0-b_weight": "50",
        "steps-0-b_subject": "A question for {{company | default: 'your team'}}",
        "steps-0-b_body_html": "<p>Variant B body.</p>",
        "steps-1-delay_days": "2",
        "steps-1-delay_hours": "6",
        "steps-1-same_thread": "on",
        "steps-1-subject": "",
        "steps-1-body_html": "<p>Following up, {{firstName | default: 'there'}}.</p>",
        "steps-1-b_label": "B",
        "steps-1-b_weight": "100",
    }
    if mailbox is not None:
        data[f"mailbox_{mailbox.pk}"] = "on"
        data[f"cap_{mailbox.pk}"] = "12"
    data.update(overrides)
    return data


def field_errors(response: Any) -> str:
    """The text of every error list on the page."""
    return " ".join(
        html.unescape(m)
        for m in re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', text(response), re.S)
    )


# --- guards ---------------------------------------------------------------------------------


def get_pages(world: dict[str, Any]) -> list[str]:
    c = world["campaign"]
    return [
        reverse("campaign-detail", args=[c.pk]),
        reverse("campaign-stats", args=[c.pk]),
        reverse("campaign-preview", args=[c.pk]),
        reverse("campaign-edit", args=[c.pk]),
    ]


def post_actions(world: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    c, action = world["campaign"], world["action"]
    return [
        (reverse("campaign-edit", args=[c.pk]), builder_data(world["mailbox"])),
        (reverse("campaign-start", args=[c.pk]), {}),
        (reverse("campaign-pause", args=[c.pk]), {}),
        (reverse("campaign-enroll", args=[c.pk]), {"emails": world["ada"].email}),
        (reverse("campaign-template-fixed", args=[c.pk]), {}),
        (reverse("campaign-resolve", args=[c.pk, action.pk]), {"decision": "mark_sent"}),
    ]


def test_campaign_pages_send_anonymous_visitors_to_login(
    world: dict[str, Any], tenant: Tenant
) -> None:
    anonymous = Client()
    before = state(tenant)
    for target in [reverse("campaign-list"), reverse("campaign-create"), *get_pages(world)]:
        response = anonymous.get(target)
        assert response.status_code == 302, target
        assert response["Location"].startswith(f"{reverse('login')}?next="), target
    for target, data in post_actions(world):
        assert anonymous.post(target, data).status_code == 302, target
    assert state(tenant) == before


def test_campaign_pages_render_for_owner_and_member(world: dict[str, Any], tenant: Tenant) -> None:
    c = world["campaign"]
    for user in (tenant.owner, tenant.member):
        client = client_for(user)
        for target in [reverse("campaign-list"), *get_pages(world)[:3]]:
            response = client.get(target)
            assert response.status_code == 200, (user.email, target)
            assert "Autumn outreach" in text(response) or target.endswith("/stats/"), target
    owner = client_for(tenant.owner)
    assert owner.get(reverse("campaign-create")).status_code == 200
    assert owner.get(reverse("campaign-edit", args=[c.pk])).status_code == 200


def test_campaign_pages_answer_404_for_another_workspaces_ids(
    world: dict[str, Any], tenant: Tenant, outsider: Tenant
) -> None:
    client = client_for(outsider.owner)
    before = state(tenant)
    for target in get_pages(world):
        assert client.get(target).status_code == 404, target
    for target, data in post_actions(world):
        assert client.post(target, data).status_code == 404, target
    # The outsider's own campaign with the tenant's action id is a 404 too.
    own = make_campaign(outsider, [])
    foreign_action = reverse("campaign-resolve", args=[own.pk, world["action"].pk])
    assert client.post(foreign_action, {"decision": "mark_sent"}).status_code == 404
    assert state(tenant) == before


def test_campaign_pages_of_an_outsider_never_show_tenant_rows(
    world: dict[str, Any], outsider: Tenant
) -> None:
    client = client_for(outsider.owner)
    listing = text(client.get(reverse("campaign-list")))
    assert "Autumn outreach" not in listing
    builder = text(client.get(reverse("campaign-create")))
    assert world["mailbox"].email not in builder
    own = make_campaign(outsider, [])
    preview = client.get(
        reverse("campaign-preview", args=[own.pk]), {"prospect": str(world["ada"].pk)}
    )
    assert preview.status_code == 400
    assert "There is no such prospect in this workspace." in text(preview)
    assert "Ada" not in text(preview)


def test_a_member_is_refused_every_change(world: dict[str, Any], tenant: Tenant) -> None:
    client = client_for(tenant.member)
    before = state(tenant)
    refused = [
        (reverse("campaign-create"), builder_data(world["mailbox"])),
        (reverse("campaign-editor-status"), {"prefix": "steps-0-", "steps-0-subject": "x"}),
        *post_actions(world),
    ]
    for target, data in refused:
        response = client.post(target, data)
        assert response.status_code == 403, target
        assert "needs the admin role or higher" in text(response), target
    assert client.get(reverse("campaign-create")).status_code == 403
    assert state(tenant) == before


def test_a_member_sees_no_controls_that_would_be_refused(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c = world["campaign"]
    listing = text(client_for(tenant.member).get(reverse("campaign-list")))
    assert reverse("campaign-create") not in listing
    page = text(client_for(tenant.member).get(reverse("campaign-detail", args=[c.pk])))
    for hidden in ("campaign-start", "campaign-edit", "campaign-enroll", "campaign-resolve"):
        args = [c.pk, world["action"].pk] if hidden == "campaign-resolve" else [c.pk]
        assert reverse(hidden, args=args) not in page, hidden
    assert "an owner or admin decides" in page
    owner_page = text(client_for(tenant.owner).get(reverse("campaign-detail", args=[c.pk])))
    assert reverse("campaign-start", args=[c.pk]) in owner_page
    assert reverse("campaign-resolve", args=[c.pk, world["action"].pk]) in owner_page


# --- the list -------------------------------------------------------------------------------


def test_the_list_shows_status_schedule_and_counts(world: dict[str, Any], tenant: Tenant) -> None:
    c = world["campaign"]
    Action.objects.filter(pk=world["action"].pk).update(state=ActionState.SENT)
    services.start_campaign(campaign=c, actor=SYSTEM, now=NOW)
    services.pause_campaign(campaign=c, reason="manual", actor=SYSTEM, now=NOW)
    other = make_campaign(tenant, [], name="Berlin only", timezone="Europe/Berlin")
    Campaign.objects.filter(pk=other.pk).update(status=CampaignStatus.COOLDOWN)

    page = text(client_for(tenant.member).get(reverse("campaign-list")))
    row = re.search(r"<tr>\s*<td><a[^>]*>Autumn outreach</a>.*?</tr>", page, re.S)
    assert row is not None
    cells = [
        re.sub(r"<[^>]+>", " ", td).split()
        for td in re.findall(r"<td[^>]*>(.*?)</td>", row[0], re.S)
    ]
    assert cells[1] == ["paused", "Paused", "by", "a", "person"]
    assert " ".join(cells[2]) == "Mon Tue Wed Thu Fri Sat Sun 0-24 UTC"
    assert cells[3:6] == [["1"], ["2"], ["1"]]  # mailboxes, enrolled (grace and ada), sent
    assert 'class="pill cooldown" data-status="cooldown"' in page
    assert "Mon Tue Wed Thu Fri Sat Sun 0-24 Europe/Berlin" in page


def test_the_list_invites_to_create_the_first_campaign(tenant: Tenant) -> None:
    page = text(client_for(tenant.owner).get(reverse("campaign-list")))
    assert "No campaigns yet." in page
    assert reverse("campaign-create") in page


# --- the builder ----------------------------------------------------------------------------


def test_the_builder_creates_a_draft_with_two_steps_and_a_variant(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant)
    client = client_for(tenant.admin)
    response = client.post(reverse("campaign-create"), builder_data(mailbox))

    campaign = Campaign.objects.get(workspace=tenant.workspace)
    assert response.status_code == 302
    assert response["Location"] == reverse("campaign-detail", args=[campaign.pk])
    assert campaign.name == "Winter outreach"
    assert campaign.status == CampaignStatus.DRAFT
    assert campaign.created_by == tenant.admin
    assert (campaign.daily_send_limit, campaign.timezone, campaign.schedule_days) == (
        40,
        "Europe/Berlin",
        [0, 1, 2, 3, 4],
    )
    assert (campaign.window_start_hour, campaign.window_end_hour) == (8, 18)
    assert campaign.min_minutes_between_sends == 5
    assert (campaign.track_opens, campaign.track_clicks) == (True, False)
    steps = list(campaign.steps.order_by("step_index"))
    assert [(s.step_index, s.delay_days, s.delay_hours, s.same_thread) for s in steps] == [
        (1, 0, 0, True),
        (2, 2, 6, True),
    ]
    first = {v.label: v for v in steps[0].variants.all()}
    assert first["A"].subject == GREETING
    assert first["A"].body_html == "<p>{Quick|Short} question about {{company}}.</p>"
    assert (first["B"].subject, first["B"].weight) == (
        "A question for {{company | default: 'your team'}}",
        50,
    )
    second = list(steps[1].variants.all())
    assert [(v.label, v.subject) for v in second] == [("A", "")]
    pool = list(campaign.pool.all())
    assert [(e.mailbox_id, e.max_sends_per_day, e.is_active) for e in pool] == [
        (mailbox.pk, 12, True)
    ]

    detail = plain(client.get(response["Location"]))
    assert "Saved Winter outreach as a draft." in detail
    assert "Mon Tue Wed Thu Fri 8-18 Europe/Berlin" in detail


def test_the_builder_saves_a_draft_without_mailboxes(tenant: Tenant) -> None:
    response = client_for(tenant.owner).post(reverse("campaign-create"), builder_data())
    assert response.status_code == 302
    assert not Campaign.objects.get().pool.exists()


def test_the_builder_edits_a_draft_and_keeps_the_form_filled_in(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c = world["campaign"]
    client = client_for(tenant.owner)
    page = plain(client.get(reverse("campaign-edit", args=[c.pk])))
    assert 'value="Autumn outreach"' in page
    assert GREETING in page
    assert "Following up." in page

    data = builder_data(world["mailbox"], name="Autumn, second try")
    data[f"cap_{world['mailbox'].pk}"] = ""
    response = client.post(reverse("campaign-edit", args=[c.pk]), data)
    assert response.status_code == 302
    c.refresh_from_db()
    assert (c.name, c.timezone) == ("Autumn, second try", "Europe/Berlin")
    assert c.steps.get(step_index=2).delay_hours == 6
    assert c.pool.get().max_sends_per_day is None


def test_a_template_syntax_error_is_shown_with_line_and_column_and_nothing_is_saved(
    tenant: Tenant,
) -> None:
    data = builder_data(**{"steps-1-body_html": "<p>Hello</p>\n<p>About {{company}</p>"})
    response = client_for(tenant.owner).post(reverse("campaign-create"), data)
    assert response.status_code == 400
    errors = field_errors(response)
    assert "Body line 2, column" in errors
    assert not Campaign.objects.exists()
    # The page shows what was typed, so it can be fixed in place.
    assert "About {{company}</p>" in plain(response)


def test_a_broken_variant_b_subject_is_reported_on_its_field(tenant: Tenant) -> None:
    data = builder_data(**{"steps-0-b_subject": "Hi {{ firstName | nope }}"})
    response = client_for(tenant.owner).post(reverse("campaign-create"), data)
    assert response.status_code == 400
    assert re.search(r"Subject line 1, column \d+", field_errors(response))
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "Unknown time zone Mars/Olympus_Mons"),
        (
            {"window_start_hour": "17", "window_end_hour": "9"},
            "The window must end after it starts",
        ),
        ({"daily_send_limit": "0"}, "greater than or equal to 1"),
        ({"daily_send_limit": "10001"}, "less than or equal to 10000"),
        ({"schedule_days": []}, "Choose at least one active day."),
        ({"name": ""}, "This field is required."),
        ({"steps-0-subject": ""}, "The first step needs a subject."),
        ({"steps-1-same_thread": ""}, "A step that starts a new thread needs a subject"),
        ({"steps-0-b_label": "a"}, "Variant A is the first variant"),
        ({"steps-0-delay_hours": "24"}, "less than or equal to 23"),
        (
            {"start_date": "2027-01-10T09:00", "end_date": "2027-01-05T09:00"},
            "The end date must be after the start date.",
        ),
    ],
)
def test_malformed_builder_input_gives_field_errors(
    tenant: Tenant, overrides: dict[str, Any], expected: str
) -> None:
    response = client_for(tenant.owner).post(reverse("campaign-create"), builder_data(**overrides))
    assert response.status_code == 400
    assert expected in field_errors(response)
    assert not Campaign.objects.exists()


def test_a_service_refusal_is_shown_on_the_field_it_names(tenant: Tenant) -> None:
    # The form accepts a past end date (it cannot know "now" better than the service).
    data = builder_data(end_date="2026-01-01T09:00")
    response = client_for(tenant.owner).post(reverse("campaign-create"), data)
    assert response.status_code == 400
    assert "endDate must be in the future." in field_errors(response)
    assert not Campaign.objects.exists()


def test_a_mailbox_that_is_no_longer_usable_is_not_offered(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant)
    data = builder_data(mailbox)
    Mailbox.objects.filter(pk=mailbox.pk).update(sending_enabled=False)
    client = client_for(tenant.owner)
    assert mailbox.email not in text(client.get(reverse("campaign-create")))
    # Ticked on a page loaded before sending was switched off: ignored, the draft has none.
    assert client.post(reverse("campaign-create"), data).status_code == 302
    assert not Campaign.objects.get().pool.exists()


def test_keeping_an_unusable_mailbox_in_the_pool_is_refused(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c, mailbox = world["campaign"], world["mailbox"]
    Mailbox.objects.filter(pk=mailbox.pk).update(sending_enabled=False)
    client = client_for(tenant.owner)
    page = text(client.get(reverse("campaign-edit", args=[c.pk])))
    assert mailbox.email in page and "sending off" in page  # still shown: it is in the pool
    before = state(tenant)
    response = client.post(reverse("campaign-edit", args=[c.pk]), builder_data(mailbox))
    assert response.status_code == 400
    assert "Mailboxes: Every mailbox must exist in this workspace, be connected" in plain(response)
    assert state(tenant) == before


def test_start_and_end_dates_are_read_in_the_campaigns_zone(tenant: Tenant) -> None:
    data = builder_data(start_date="2027-01-10T09:00", end_date="2027-02-01T18:30")
    assert client_for(tenant.owner).post(reverse("campaign-create"), data).status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.start_date is not None and campaign.end_date is not None
    assert campaign.start_date.isoformat() == "2027-01-10T08:00:00+00:00"  # 09:00 in Berlin
    assert campaign.end_date.isoformat() == "2027-02-01T17:30:00+00:00"
    page = text(client_for(tenant.owner).get(reverse("campaign-edit", args=[campaign.pk])))
    assert 'value="2027-01-10T09:00"' in page


def test_adding_and_removing_steps_saves_nothing(tenant: Tenant) -> None:
    client = client_for(tenant.owner)
    added = client.post(reverse("campaign-create"), {**builder_data(), "op": "add"})
    assert added.status_code == 200
    page = plain(added)
    assert 'name="steps-TOTAL_FORMS" value="3"' in page
    assert "Step 3" in page
    assert 'name="steps-2-delay_days" value="3"' in page  # a follow-up three days later
    assert "Following up, {{firstName | default: 'there'}}." in page  # step 2 kept as typed
    assert 'value="Winter outreach"' in page  # the settings too
    assert "errorlist" not in page  # nothing is checked yet

    removed = client.post(
        reverse("campaign-create"), {**builder_data(), "op": "remove-1"}, HTTP_HX_REQUEST="true"
    )
    fragment = plain(removed)
    assert fragment.lstrip().startswith('<section id="steps"')  # htmx gets the steps only
    assert 'name="steps-TOTAL_FORMS" value="1"' in fragment
    assert 'name="steps-0-delay_days" value="2"' in fragment  # the old step 2 is now step 1
    assert "Remove step" not in fragment  # the last step cannot go
    assert not Campaign.objects.exists()


def test_running_campaigns_are_not_edited(world: dict[str, Any], tenant: Tenant) -> None:
    c = world["campaign"]
    services.start_campaign(campaign=c, actor=SYSTEM, now=NOW)
    client = client_for(tenant.owner)
    response = client.get(reverse("campaign-edit", args=[c.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("campaign-detail", args=[c.pk])
    assert "only draft or paused campaigns can be edited" in plain(client.get(response["Location"]))
    before = state(tenant)
    client.post(reverse("campaign-edit", args=[c.pk]), builder_data(world["mailbox"]))
    assert state(tenant) == before


# --- the editor status line -----------------------------------------------------------------


def editor_status(client: Client, prefix: str, subject: str, body: str) -> Any:
    return client.post(
        reverse("campaign-editor-status"),
        {"prefix": prefix, f"{prefix}subject": subject, f"{prefix}body_html": body},
        HTTP_HX_REQUEST="true",
    )


def test_the_editor_status_counts_spintax_variations(tenant: Tenant) -> None:
    client = client_for(tenant.owner)
    response = editor_status(
        client,
        "steps-0-",
        "{Hi|Hello|Hey} {{firstName | default: 'there'}}",
        "<p>{Quick|Short} question {about|regarding} {{company}}.</p>",
    )
    assert response.status_code == 200
    assert 'data-variations="12"' in text(response)
    assert "12 variations" in text(response)
    assert "(subject 3 × body 4)" in text(response)
    plain_text = editor_status(client, "steps-3-b_", "Hello", "<p>No spin.</p>")
    assert "1 variation</span>" in text(plain_text)


def test_the_editor_status_reports_a_syntax_error_with_line_and_column(tenant: Tenant) -> None:
    response = editor_status(
        client_for(tenant.owner), "steps-1-", "Fine", "<p>One</p>\n<p>Two {{company}</p>"
    )
    assert response.status_code == 200
    assert 'role="alert"' in text(response)
    assert re.search(r"Body line 2, column \d+", plain(response))


def test_the_editor_status_refuses_unknown_editors(tenant: Tenant) -> None:
    response = client_for(tenant.owner).post(reverse("campaign-editor-status"), {"prefix": "name"})
    assert response.status_code == 400


def test_the_builder_shows_the_status_line_on_first_load(
    world: dict[str, Any], tenant: Tenant
) -> None:
    page = text(client_for(tenant.owner).get(reverse("campaign-edit", args=[world["campaign"].pk])))
    # Step 1: subject {Hi|Hello} → 2, body without spintax → 1.
    assert "2 variations</span> <span>(subject 2 × body 1)" in page
    assert f'hx-post="{reverse("campaign-editor-status")}"' in page


# --- preview --------------------------------------------------------------------------------


def test_the_preview_renders_the_chosen_prospects_values(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c = world["campaign"]
    client = client_for(tenant.member)
    response = client.get(reverse("campaign-preview", args=[c.pk]), {"prospect": world["ada"].pk})
    assert response.status_code == 200
    page = plain(response)
    subjects = re.findall(r'data-testid="preview-subject"><strong>(.*?)</strong>', page)
    assert subjects[0] in ("Hi Ada", "Hello Ada")
    assert subjects[1] == f"Re: {subjects[0]}"  # the follow-up replies in the thread
    assert "<p>About Engines Ltd.</p>" in page  # inside the iframe's srcdoc
    assert 'sandbox title="Step 1 as HTML"' in page
    assert "About Engines Ltd." in page
    assert "Grace" not in page.split("<h1>")[1].split("</h1>")[0]

    # By email too; a prospect without a first name gets the fallback.
    nameless = make_prospect(tenant, "someone@example.org", company="Somewhere")
    response = client.get(reverse("campaign-preview", args=[c.pk]), {"email": nameless.email})
    subjects = re.findall(r'data-testid="preview-subject"><strong>(.*?)</strong>', plain(response))
    assert subjects[0] in ("Hi there", "Hello there")


def test_the_preview_defaults_to_the_first_enrolled_prospect(
    world: dict[str, Any], tenant: Tenant
) -> None:
    Enrollment.objects.filter(prospect=world["ada"]).update(enrolled_at=NOW + timedelta(minutes=1))
    page = plain(
        client_for(tenant.owner).get(reverse("campaign-preview", args=[world["campaign"].pk]))
    )
    assert "Preview for Grace" in page
    assert "<p>About US Navy.</p>" in page


def test_the_preview_shows_template_problems_with_line_and_column(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c = world["campaign"]
    # Saved before syntax was checked (or changed behind the builder's back).
    Variant.objects.filter(step__campaign=c, step__step_index=1).update(
        body_html="<p>Hello,</p><p>{{custom.industry_news}}</p>"
    )
    Variant.objects.filter(step__campaign=c, step__step_index=2).update(
        body_html="<p>Fine</p>\n<p>{% if company %}Broken</p>"
    )
    nameless = make_prospect(tenant, "nobody@example.org")  # without custom fields
    response = client_for(tenant.owner).get(
        reverse("campaign-preview", args=[c.pk]), {"prospect": nameless.pk}
    )
    problems = re.findall(r'data-testid="preview-problem">(.*?)</div>', plain(response), re.S)
    assert len(problems) == 2
    assert re.match(
        r"body, line 1, column \d+: \{\{custom.industry_news\}\} has no value", problems[0]
    )
    assert re.match(r"body, line 2, column \d+: ", problems[1])


def test_the_preview_uses_the_sender_of_the_pool(world: dict[str, Any], tenant: Tenant) -> None:
    mailbox = world["mailbox"]
    Mailbox.objects.filter(pk=mailbox.pk).update(from_name="Sam Seller", signature="Sam\nAcme")
    Variant.objects.filter(step__campaign=world["campaign"], step__step_index=2).update(
        body_html="<p>Bye</p><p>{{signature}}</p><p>{{sender_name}}</p>"
    )
    page = plain(
        client_for(tenant.owner).get(reverse("campaign-preview", args=[world["campaign"].pk]))
    )
    assert f"come from {mailbox.email}" in page
    assert "<p>Sam<br>\nAcme</p><p>Sam Seller</p>" in page


# --- the campaign page ----------------------------------------------------------------------


def test_the_campaign_page_shows_stats_enrollments_and_the_event_log(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c = world["campaign"]
    Campaign.objects.filter(pk=c.pk).update(timezone="Asia/Kolkata")
    services.log_event(c, "error", "Stuck three times", now=NOW, reason="stuck_processing_loop")
    response = client_for(tenant.member).get(reverse("campaign-detail", args=[c.pk]))
    page = plain(response)
    assert re.search(r'data-testid="stat-sent">0<', page)
    assert f'hx-get="{reverse("campaign-stats", args=[c.pk])}" hx-trigger="every 30s"' in page
    grace_row = re.search(r'<tr data-prospect="grace@hopper.dev">.*?</tr>', page, re.S)
    assert grace_row is not None
    assert "pending" in grace_row[0]
    assert "1 of 2" in grace_row[0]
    assert "Mon 23 Nov, 17:30" in grace_row[0]  # enrolled at 12:00 UTC, shown in Kolkata
    ada_row = re.search(r'<tr data-prospect="ada@lovelace.dev">.*?</tr>', page, re.S)
    assert ada_row is not None
    assert "needs review" in ada_row[0]
    assert "mark it as sent or send it again" in ada_row[0]
    assert "Stuck three times" in page and "stuck_processing_loop" in page
    assert "1 send needs a decision" in page


def test_the_stats_count_sent_actions_and_rates_never_pass_100_percent(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c = world["campaign"]
    Action.objects.filter(pk=world["action"].pk).update(state=ActionState.SENT)
    response = client_for(tenant.member).get(reverse("campaign-stats", args=[c.pk]))
    assert response.status_code == 200
    assert text(response).lstrip().startswith('<section id="campaign-stats"')
    assert 'data-testid="stat-sent">1<' in text(response)
    assert _rate(150, 100) == 100.0
    assert _rate(1, 3) == 33.3
    assert _rate(5, 0) == 0.0


def test_the_enrollment_table_filters_by_status(world: dict[str, Any], tenant: Tenant) -> None:
    c = world["campaign"]
    response = client_for(tenant.member).get(
        reverse("campaign-detail", args=[c.pk]),
        {"status": "needs_review"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="enrollment-table",
    )
    fragment = text(response)
    assert fragment.lstrip().startswith('<div id="enrollment-table">')
    assert "ada@lovelace.dev" in fragment
    assert "grace@hopper.dev" not in fragment


def test_the_enrollment_table_pages_through_many_prospects(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c = world["campaign"]
    emails = [f"p{i:02d}@example.com" for i in range(55)]
    for email in emails:
        make_prospect(tenant, email)
    services.enroll(campaign=c, emails=emails, actor=SYSTEM, now=NOW)
    client = client_for(tenant.member)
    first = text(client.get(reverse("campaign-detail", args=[c.pk])))
    assert first.count("<tr data-prospect=") == 50
    after = re.search(r'rel="next" href="\?after=([^"&]+)"', first)
    assert after is not None
    second = text(client.get(reverse("campaign-detail", args=[c.pk]), {"after": after[1]}))
    assert second.count("<tr data-prospect=") == 7  # 55 + grace + ada
    assert not set(re.findall(r'data-prospect="([^"]+)"', first)) & set(
        re.findall(r'data-prospect="([^"]+)"', second)
    )


def test_start_refused_shows_the_launch_problem(world: dict[str, Any], tenant: Tenant) -> None:
    c = world["campaign"]
    Variant.objects.filter(step__campaign=c, step__step_index=1).update(
        body_html="<p>{{custom.industry_news}}</p>"
    )
    before = state(tenant)
    response = client_for(tenant.owner).post(reverse("campaign-start", args=[c.pk]))
    assert response.status_code == 400
    problem = re.search(r'data-testid="launch-problem">(.*?)</div>', plain(response), re.S)
    assert problem is not None
    assert "The campaign cannot start." in problem[1]
    assert "industry_news" in problem[1]
    assert "Existing custom fields: none." in problem[1]
    assert state(tenant) == before


def test_start_without_a_mailbox_says_so(tenant: Tenant) -> None:
    campaign = make_campaign(tenant, [])
    response = client_for(tenant.owner).post(reverse("campaign-start", args=[campaign.pk]))
    assert response.status_code == 400
    assert "The campaign has no active mailbox." in text(response)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_start_pause_and_resume(world: dict[str, Any], tenant: Tenant) -> None:
    c = world["campaign"]
    client = client_for(tenant.owner)
    detail = reverse("campaign-detail", args=[c.pk])

    response = client.post(reverse("campaign-start", args=[c.pk]))
    assert response.status_code == 302 and response["Location"] == detail
    c.refresh_from_db()
    assert c.status == CampaignStatus.RUNNING
    page = plain(client.get(detail))
    assert "Started Autumn outreach." in page
    assert reverse("campaign-pause", args=[c.pk]) in page
    assert reverse("campaign-start", args=[c.pk]) not in page
    assert "The campaign is running." in page

    client.post(reverse("campaign-pause", args=[c.pk]))
    c.refresh_from_db()
    assert (c.status, c.paused_reason) == (CampaignStatus.PAUSED, "manual")
    page = plain(client.get(detail))
    assert '<span class="chip" title="Why it is paused">Paused by a person</span>' in page
    assert ">Resume</button>" in page
    assert "running → paused (manual)" in page  # the event log

    client.post(reverse("campaign-start", args=[c.pk]))
    c.refresh_from_db()
    assert (c.status, c.paused_reason) == (CampaignStatus.RUNNING, "")
    assert "Resumed Autumn outreach." in plain(client.get(detail))

    # Pausing a paused campaign twice, or starting a running one, is refused politely.
    response = client.post(reverse("campaign-start", args=[c.pk]))
    assert response.status_code == 400
    assert "The campaign is already running." in text(response)


def test_enroll_from_a_list_and_by_pasting_emails(world: dict[str, Any], tenant: Tenant) -> None:
    c = world["campaign"]
    lovelace = make_prospect(tenant, "byron@lovelace.dev")
    prospect_services.add_to_list(
        prospect_list=world["list"], prospect_ids=[lovelace.pk], actor=SYSTEM, now=NOW
    )
    client = client_for(tenant.owner)
    response = client.post(
        reverse("campaign-enroll", args=[c.pk]), {"prospect_list": str(world["list"].pk)}
    )
    assert response.status_code == 302
    assert Enrollment.objects.filter(campaign=c, prospect=lovelace).exists()
    assert "Enrolled 1 prospect." in plain(client.get(response["Location"]))

    extra = make_prospect(tenant, "turing@bletchley.dev")
    response = client.post(
        reverse("campaign-enroll", args=[c.pk]),
        {"emails": "Turing@Bletchley.dev,\ngrace@hopper.dev"},
    )
    assert Enrollment.objects.filter(campaign=c, prospect=extra).exists()
    page = plain(client.get(response["Location"]))
    assert "Enrolled 1 prospect. Skipped 1: grace@hopper.dev (already enrolled)." in page


def test_enroll_names_emails_that_are_not_prospects(world: dict[str, Any], tenant: Tenant) -> None:
    c = world["campaign"]
    before = state(tenant)
    client = client_for(tenant.owner)
    response = client.post(
        reverse("campaign-enroll", args=[c.pk]), {"emails": "ada@lovelace.dev nobody@nowhere.dev"}
    )
    assert response.status_code == 400
    assert "Not prospects of this workspace: nobody@nowhere.dev." in field_errors(response)
    response = client.post(reverse("campaign-enroll", args=[c.pk]), {"emails": "not-an-address"})
    assert "Not an email address: not-an-address." in field_errors(response)
    response = client.post(reverse("campaign-enroll", args=[c.pk]), {})
    assert "Choose a list or paste at least one email address." in plain(response)
    assert state(tenant) == before


def test_marking_an_unknown_send_as_sent_moves_the_prospect_on(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c, action = world["campaign"], world["action"]
    client = client_for(tenant.owner)
    response = client.post(
        reverse("campaign-resolve", args=[c.pk, action.pk]), {"decision": "mark_sent"}
    )
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.state == ActionState.SENT
    enrollment = action.enrollment
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.next_step_index) == (EnrollmentStatus.PENDING, 2)
    page = plain(client.get(response["Location"]))
    assert "Marked the email to ada@lovelace.dev as sent." in page
    assert 'data-testid="stat-sent">1<' in page

    # Deciding twice is refused: it is no longer unknown.
    response = client.post(
        reverse("campaign-resolve", args=[c.pk, action.pk]), {"decision": "send_again"}
    )
    assert "This send is sent, not unknown." in plain(client.get(response["Location"]))


def test_sending_an_unknown_send_again_queues_it(world: dict[str, Any], tenant: Tenant) -> None:
    c, action = world["campaign"], world["action"]
    client_for(tenant.owner).post(
        reverse("campaign-resolve", args=[c.pk, action.pk]), {"decision": "send_again"}
    )
    action.refresh_from_db()
    assert action.state == ActionState.PLANNED
    action.enrollment.refresh_from_db()
    assert action.enrollment.status == EnrollmentStatus.PENDING


def test_a_bad_decision_changes_nothing(world: dict[str, Any], tenant: Tenant) -> None:
    c, action = world["campaign"], world["action"]
    before = state(tenant)
    client = client_for(tenant.owner)
    response = client.post(reverse("campaign-resolve", args=[c.pk, action.pk]), {"decision": "x"})
    assert "Choose “Mark as sent” or “Send again”." in plain(client.get(response["Location"]))
    assert state(tenant) == before


def test_the_template_fix_banner_retries_parked_prospects(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c = world["campaign"]
    Enrollment.objects.filter(campaign=c, prospect=world["grace"]).update(
        status=EnrollmentStatus.PENDING_TEMPLATE_FIX,
        wait_reason="template needs a fix: body, line 1, column 4: {{company}} has no value",
    )
    client = client_for(tenant.owner)
    page = plain(client.get(reverse("campaign-detail", args=[c.pk])))
    assert "1 prospect is waiting for a template fix." in page
    assert "Retry after fixing the template" in page
    assert "pending template fix" in page

    response = client.post(reverse("campaign-template-fixed", args=[c.pk]))
    enrollment = Enrollment.objects.get(campaign=c, prospect=world["grace"])
    assert (enrollment.status, enrollment.wait_reason) == (EnrollmentStatus.PENDING, "")
    page = plain(client.get(response["Location"]))
    assert "1 prospect will be retried on the next tick." in page
    assert "waiting for a template fix" not in page


def test_the_sending_checklist_names_what_blocks_sending(
    world: dict[str, Any], tenant: Tenant
) -> None:
    c = world["campaign"]
    Campaign.objects.filter(pk=c.pk).update(schedule_days=[5, 6], window_start_hour=9)
    Mailbox.objects.filter(pk=world["mailbox"].pk).update(sending_enabled=False)
    page = plain(client_for(tenant.member).get(reverse("campaign-detail", args=[c.pk])))
    checks = {item: cls for cls, item in re.findall(r'<li class="(ok|no)">(.*?)</li>', page)}
    assert checks["The campaign is draft, not running."] == "no"
    assert checks["No connected mailbox with sending enabled."] == "no"
    assert checks["0 of 50 daily sends used today."] == "ok"
    assert checks["outside sending window, next 09:00 UTC (Sat 28 Nov)"] == "no"
    assert checks["1 prospect waiting for a step."] == "ok"
