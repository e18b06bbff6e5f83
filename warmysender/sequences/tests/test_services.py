"""Campaign services: edits, date rules and enrollment counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warmysender.conftest import Tenant
from warmysender.prospects import services as prospect_services
from warmysender.sequences import services
from warmysender.sequences.models import Variant
from warmysender.sequences.services import CampaignError, StepInput
from warmysender.sequences.tests.flow import ACTOR, make_campaign, sandbox_mailbox

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_step_edit_keeps_exactly_the_variants_given(tenant: Tenant) -> None:
    box = sandbox_mailbox(tenant, "s@acme.com", T0)
    steps = [StepInput(1, "Hi", "<p>a</p>", variants=[("B", "Hey", "<p>b</p>", 50)], weight=70)]
    campaign = make_campaign(tenant, [box], steps, T0)
    assert dict(Variant.objects.values_list("label", "weight")) == {"A": 70, "B": 50}
    services.update_campaign(
        campaign=campaign, settings={}, steps=[StepInput(1, "Hi", "<p>a</p>")], actor=ACTOR, now=T0
    )
    assert list(Variant.objects.values_list("label", flat=True)) == ["A"]


def test_the_date_order_holds_whichever_date_changes(tenant: Tenant) -> None:
    box = sandbox_mailbox(tenant, "s@acme.com", T0)
    campaign = make_campaign(
        tenant, [box], [StepInput(1, "Hi", "<p>a</p>")], T0, end_date=T0 + timedelta(days=5)
    )
    with pytest.raises(CampaignError) as refused:
        services.update_campaign(
            campaign=campaign, settings={"start_date": T0 + timedelta(days=6)}, actor=ACTOR, now=T0
        )
    assert refused.value.field == "startDate"
    services.update_campaign(
        campaign=campaign, settings={"start_date": T0 + timedelta(days=1)}, actor=ACTOR, now=T0
    )


def test_unenroll_counts_each_prospect_once(tenant: Tenant) -> None:
    box = sandbox_mailbox(tenant, "s@acme.com", T0)
    campaign = make_campaign(tenant, [box], [StepInput(1, "Hi", "<p>a</p>")], T0)
    ada = prospect_services.create_prospect(
        workspace=tenant.workspace, data={"email": "ada@example.com"}, actor=ACTOR, now=T0
    ).prospect
    services.enroll(campaign=campaign, prospect_ids=[ada.id], actor=ACTOR, now=T0)
    result = services.unenroll(
        campaign=campaign,
        prospect_ids=[str(ada.id)],
        emails=["ADA@example.com", "nobody@example.com"],
        actor=ACTOR,
        now=T0,
    )
    assert (result.unenrolled, result.processed) == (1, 2)
