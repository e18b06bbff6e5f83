"""A/B auto-optimize: the hand-written chi-squared test against scipy, the decision rules, and the
hourly job end to end — a variant that wins with significance takes 100 % of later sends, with
the reason on the campaign page."""

from __future__ import annotations

import html
import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import gammaincc
from scipy.stats import chi2_contingency

from warmysender.audit.models import AuditEntry
from warmysender.conftest import Tenant, client_for
from warmysender.prospects.models import Prospect
from warmysender.sequences import ab, services
from warmysender.sequences.models import (
    Action,
    ActionState,
    Campaign,
    CampaignEvent,
    Enrollment,
    EnrollmentStatus,
    Step,
)
from warmysender.sequences.services import StepInput
from warmysender.sequences.tests.flow import ACTOR, drive, make_campaign, sandbox_mailbox

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def scipy_chi2(arms: list[tuple[int, int]], correction: bool) -> tuple[float, float]:
    table = [[replies, sends - replies] for sends, replies in arms]
    result = chi2_contingency(table, correction=correction)
    return float(result.statistic), float(result.pvalue)


def test_the_textbook_two_by_two_matches_scipy_with_yates_correction() -> None:
    ours = ab.chi_squared([(1000, 30), (1000, 52)])
    assert ours is not None and ours.dof == 1
    statistic, p = scipy_chi2([(1000, 30), (1000, 52)], correction=True)
    assert ours.statistic == pytest.approx(statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(p, rel=1e-9)
    assert round(ours.p_value, 4) == 0.0179
    plain = ab.chi_squared([(1000, 30), (1000, 52)], correction=False)
    assert plain is not None and round(plain.p_value, 4) == 0.0131


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.integers(min_value=1, max_value=5000).flatmap(
            lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
        ),
        min_size=2,
        max_size=5,
    ),
    st.booleans(),
)
def test_the_statistic_and_p_value_match_scipy(
    arms: list[tuple[int, int]], correction: bool
) -> None:
    ours = ab.chi_squared(arms, correction=correction)
    replies = sum(r for _, r in arms)
    misses = sum(n - r for n, r in arms)
    if replies == 0 or misses == 0:
        assert ours is None  # scipy refuses such tables (an expected frequency of zero)
        return
    assert ours is not None
    statistic, p = scipy_chi2(arms, correction)
    assert ours.dof == len(arms) - 1
    assert ours.statistic == pytest.approx(statistic, rel=1e-9, abs=1e-9)
    assert ours.p_value == pytest.approx(p, rel=1e-7, abs=1e-12)


@given(st.floats(min_value=0.5, max_value=30), st.floats(min_value=0, max_value=200))
def test_the_regularised_upper_gamma_matches_scipy(a: float, x: float) -> None:
    assert ab.upper_regularized_gamma(a, x) == pytest.approx(
        float(gammaincc(a, x)), rel=1e-8, abs=1e-14
    )


def test_replies_above_sends_are_malformed() -> None:
    with pytest.raises(ValueError, match="replies cannot exceed sends"):
        ab.chi_squared([(10, 11), (10, 1)])


def arms(*pairs: tuple[int, int]) -> list[ab.Arm]:
    return [ab.Arm(i + 1, "ABCDE"[i], sends, replies) for i, (sends, replies) in enumerate(pairs)]


def test_no_decision_before_every_variant_has_the_minimum_sample() -> None:
    decision = ab.decide(arms((150, 30), (99, 1)), min_sample=100, confidence=0.95)
    assert decision.winner is None
    assert decision.reason == "waiting for 100 sends per variant (B 99/100)"


def test_no_decision_without_significance_and_the_reason_says_why() -> None:
    decision = ab.decide(arms((200, 10), (200, 12)), min_sample=100, confidence=0.95)
    assert decision.winner is None and decision.test is not None
    assert decision.reason.startswith("not significant yet: p = ")


def test_a_significant_difference_names_the_best_variant_with_sizes_and_p() -> None:
    decision = ab.decide(arms((200, 8), (200, 30), (200, 12)), min_sample=100, confidence=0.95)
    assert decision.winner is not None and decision.winner.label == "B"
    assert decision.test is not None and decision.test.p_value < 0.05
    assert "B: 30/200 replied (15.0 %)" in decision.reason
    assert "df = 2" in decision.reason
    # A stricter confidence waits longer on the same data.
    strict = ab.decide(arms((200, 8), (200, 30), (200, 12)), min_sample=100, confidence=0.99999)
    assert strict.winner is None


def test_no_replies_at_all_or_one_variant_decides_nothing() -> None:
    assert ab.decide(arms((300, 0), (300, 0)), min_sample=100, confidence=0.95).winner is None
    assert ab.decide(arms((300, 9)), min_sample=100, confidence=0.95).reason == "only one variant"


def test_a_tie_for_best_is_not_a_winner() -> None:
    decision = ab.decide(arms((200, 30), (200, 30), (200, 2)), min_sample=100, confidence=0.95)
    assert decision.winner is None and "share the best" in decision.reason


# --- the hourly job, end to end ------------------------------------------------------------


def sent_history(
    tenant: Tenant,
    campaign: Campaign,
    step: Step,
    plan: dict[str, tuple[int, int]],
    start: int = 0,
) -> None:
    """Sent step-1 emails per variant label (sends, replies), with `reply` events for replies."""
    variants = {v.label: v for v in step.variants.all()}
    n = start
    for label, (sends, replies) in plan.items():
        for i in range(sends):
            n += 1
            at = T0 - timedelta(days=3, minutes=n)
            prospect = Prospect.objects.create(
                workspace=tenant.workspace, email=f"p{n}@example.com", created_at=at, updated_at=at
            )
            enrollment = Enrollment.objects.create(
                workspace=tenant.workspace,
                campaign=campaign,
                prospect=prospect,
                next_step_index=2,
                enrolled_at=at,
                updated_at=at,
                variants={"1": variants[label].pk},
            )
            Action.objects.create(
                workspace=tenant.workspace,
                enrollment=enrollment,
                step=step,
                campaign=campaign,
                variant=variants[label],
                state=ActionState.SENT,
                to_email=prospect.email,
                created_at=at,
                finished_at=at,
            )
            if i < replies:
                CampaignEvent.objects.create(
                    workspace=tenant.workspace,
                    campaign=campaign,
                    type="reply",
                    message=f"reply from {prospect.email}",
                    data={"prospectId": str(prospect.pk)},
                    created_at=at + timedelta(hours=5),
                )


@pytest.mark.django_db
def test_a_significant_winner_takes_every_later_send_with_the_reason_shown(
    tenant: Tenant, outsider: Tenant
) -> None:
    mailbox = sandbox_mailbox(tenant, "s@acme.com", T0)
    campaign = make_campaign(
        tenant,
        [mailbox],
        [
            StepInput(
                step_index=1,
                subject="A subject",
                body_html="<p>A</p>",
                weight=50,
                variants=[("B", "B subject", "<p>B</p>", 50)],
            )
        ],
        T0,
    )
    step = campaign.steps.get()
    Step.objects.filter(pk=step.pk).update(auto_optimize=True, ab_min_sample=40)
    step.refresh_from_db()
    services.start_campaign(campaign=campaign, actor=ACTOR, now=T0)
    # Not enough sends yet: nothing happens.
    sent_history(tenant, campaign, step, {"A": (40, 2), "B": (39, 12)})
    assert ab.run_auto_optimize(T0) == 0
    step.refresh_from_db()
    assert step.winner_variant_id is None
    sent_history(tenant, campaign, step, {"B": (1, 0)}, start=200)  # B reaches 40 sends
    assert ab.run_auto_optimize(T0) == 1
    step.refresh_from_db()
    b = step.variants.get(label="B")
    assert step.winner_variant_id == b.pk
    event = CampaignEvent.objects.get(campaign=campaign, type="ab_winner")
    assert event.data["winnerLabel"] == "B" and event.data["pValue"] < 0.05
    assert {a["label"]: (a["sends"], a["replies"]) for a in event.data["arms"]} == {
        "A": (40, 2),
        "B": (40, 12),
    }
    assert AuditEntry.objects.filter(action="step.winner_chosen", to_state="B").count() == 1
    # The job is idempotent: a second run changes nothing.
    assert ab.run_auto_optimize(T0 + timedelta(hours=1)) == 0
    assert CampaignEvent.objects.filter(type="ab_winner").count() == 1

    # Later sends all use the winner.
    newcomers = [
        Prospect.objects.create(
            workspace=tenant.workspace, email=f"new{i}@example.com", created_at=T0, updated_at=T0
        )
        for i in range(8)
    ]
    services.enroll(campaign=campaign, prospect_ids=[p.pk for p in newcomers], actor=ACTOR, now=T0)
    for minute in range(0, 60, 3):
        drive(T0 + timedelta(minutes=minute), seed=minute)
    later = Action.objects.filter(to_email__startswith="new")
    assert later.count() == 8
    assert set(later.values_list("variant_id", flat=True)) == {b.pk}

    # The page shows the decision and why; members see it, outsiders do not.
    url = reverse("campaign-detail", args=[campaign.pk])
    page = client_for(tenant.member).get(url).content.decode()
    assert 'data-testid="ab-winner"' in page
    reason = re.search(r'data-testid="ab-reason">([^<]+)<', page)
    assert reason and "variant B wins with p = " in reason.group(1)
    assert "B: 12/40 replied (30.0 %)" in reason.group(1)
    assert client_for(outsider.owner).get(url).status_code == 404


@pytest.mark.django_db
def test_replies_are_credited_to_the_variant_that_was_sent(tenant: Tenant) -> None:
    from warmysender.email.stats import counts_by_variant

    campaign = make_campaign(
        tenant,
        [sandbox_mailbox(tenant, "s@acme.com", T0)],
        [
            StepInput(
                step_index=1,
                subject="A",
                body_html="<p>A</p>",
                variants=[("B", "B", "<p>B</p>", 50)],
                weight=50,
            )
        ],
        T0,
    )
    step = campaign.steps.get()
    sent_history(tenant, campaign, step, {"A": (3, 1), "B": (2, 2)})
    # A prospect who replied with stop-on-reply is counted from its status, once.
    # (p1 replied with an event; p2 — also variant A — only has the status.)
    Enrollment.objects.filter(prospect__email="p2@example.com").update(
        status=EnrollmentStatus.REPLIED, finished_at=T0
    )
    CampaignEvent.objects.create(  # and an event for p1 again: still one reply
        workspace=tenant.workspace,
        campaign=campaign,
        type="reply",
        message="second reply",
        data={"enrollmentId": str(Enrollment.objects.get(prospect__email="p1@example.com").pk)},
        created_at=T0,
    )
    # Bounces as inbox sync logs them: a hard one counts, a soft one does not.
    for email, kind in (("p4@example.com", "hard"), ("p5@example.com", "soft")):
        CampaignEvent.objects.create(
            workspace=tenant.workspace,
            campaign=campaign,
            type="bounce",
            reason=kind,
            message=f"{kind} bounce",
            data={"prospectId": str(Prospect.objects.get(email=email).pk)},
            created_at=T0,
        )
    counts = counts_by_variant(campaign.pk)
    a = step.variants.get(label="A")
    b = step.variants.get(label="B")
    assert (counts[(step.pk, a.pk)].sent, counts[(step.pk, a.pk)].replies) == (3, 2)
    assert (counts[(step.pk, b.pk)].sent, counts[(step.pk, b.pk)].replies) == (2, 2)
    assert math.isclose(counts[(step.pk, b.pk)].reply_rate, 100.0)
    assert counts[(step.pk, b.pk)].bounces == 1 and counts[(step.pk, a.pk)].bounces == 0
    from warmysender.email.stats import campaign_totals

    total = campaign_totals(campaign.pk)
    assert (total.sent, total.replies, total.bounces) == (5, 4, 1)
    assert total.reply_rate == 80.0


@pytest.mark.django_db
def test_admins_set_auto_optimize_per_step_on_the_campaign_page(
    tenant: Tenant, outsider: Tenant
) -> None:
    campaign = make_campaign(
        tenant,
        [sandbox_mailbox(tenant, "s@acme.com", T0)],
        [
            StepInput(
                step_index=1,
                subject="A",
                body_html="<p>A</p>",
                variants=[("B", "B", "<p>B</p>", 50)],
                weight=50,
            )
        ],
        T0,
    )
    step = campaign.steps.get()
    url = reverse("step-auto-optimize", args=[campaign.pk, step.pk])
    admin = client_for(tenant.admin)
    page = admin.get(reverse("campaign-detail", args=[campaign.pk])).content.decode()
    assert 'name="ab_min_sample"' in page and 'value="95"' in page

    def post(client: object, **data: str) -> str:
        response = client.post(url, data, follow=True)  # type: ignore[attr-defined]
        return html.unescape(response.content.decode())

    done = post(admin, auto_optimize="on", ab_min_sample="250", ab_confidence="99.5")
    assert "auto-optimize on (at least 250 sends per variant, 99.5 % confidence)" in done
    step.refresh_from_db()
    assert (step.auto_optimize, step.ab_min_sample, step.ab_confidence) == (True, 250, 0.995)
    assert 'value="99.5"' in done
    assert AuditEntry.objects.filter(action="step.auto_optimize_set", to_state="on").exists()

    for data, problem in [
        ({"ab_min_sample": "many", "ab_confidence": "95"}, "whole number of sends, not 'many'"),
        ({"ab_min_sample": "5", "ab_confidence": "95"}, "between 10 and 1,000,000 sends"),
        ({"ab_min_sample": "100", "ab_confidence": "150"}, "between 80 % and 99.9 %, not 150 %"),
        ({"ab_min_sample": "100", "ab_confidence": "nan"}, "between 80 % and 99.9 %"),
        ({"ab_min_sample": "100", "ab_confidence": "high"}, "a percentage such as 95"),
    ]:
        assert problem in post(admin, auto_optimize="on", **data), data
    step.refresh_from_db()
    assert (step.ab_min_sample, step.ab_confidence) == (250, 0.995)

    # A member cannot change it; an outsider cannot find the campaign or its step.
    member = client_for(tenant.member)
    assert member.post(url, {"ab_min_sample": "100", "ab_confidence": "95"}).status_code == 403
    assert "On: at least 250 sends per variant, 99.5 % confidence." in html.unescape(
        member.get(reverse("campaign-detail", args=[campaign.pk])).content.decode()
    )
    assert (
        client_for(outsider.owner)
        .post(url, {"ab_min_sample": "100", "ab_confidence": "95"})
        .status_code
        == 404
    )
    # Off again: a chosen winner is cleared and the weights apply.
    Step.objects.filter(pk=step.pk).update(winner_variant=step.variants.get(label="B"))
    post(admin, ab_min_sample="250", ab_confidence="99.5")
    step.refresh_from_db()
    assert not step.auto_optimize and step.winner_variant_id is None
    assert CampaignEvent.objects.filter(campaign=campaign, type="ab_reset").count() == 1


@pytest.mark.django_db
def test_the_command_runs_the_job_at_a_given_instant_and_refuses_a_naive_one() -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("ab_optimize", "--now", "2026-12-01T10:00:00+00:00", stdout=out)
    assert out.getvalue().strip() == "winners=0"
    with pytest.raises(CommandError, match="needs a UTC offset"):
        call_command("ab_optimize", "--now", "2026-12-01T10:00:00")
