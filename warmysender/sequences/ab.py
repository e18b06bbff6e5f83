"""A/B auto-optimize: a chi-squared test of reply rates across a step's variants; when the
difference is significant, the variant with the best reply rate gets 100 % of later sends.

The statistic and p-value are computed here with `math` only (scipy is a test-time reference):
a k×2 contingency table (replied / not replied per variant), df = k − 1, p from the regularised
upper incomplete gamma function. With two variants (df = 1) Yates' continuity correction is
applied, as `scipy.stats.chi2_contingency` does by default: it is the conservative choice, so a
winner is declared a little later rather than on noise. See docs/tracking.md.

`decide()` is pure; `run_auto_optimize(now)` is the hourly job that applies the decisions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from warmysender.audit.services import Actor, record_audit

OPTIMIZER = Actor.system("a/b auto-optimize")


@dataclass(frozen=True)
class Arm:
    variant_id: int
    label: str
    sends: int
    replies: int

    @property
    def rate(self) -> float:
        return self.replies / self.sends if self.sends else 0.0


@dataclass(frozen=True)
class ChiSquared:
    statistic: float
    dof: int
    p_value: float


@dataclass(frozen=True)
class Decision:
    winner: Arm | None
    reason: str
    test: ChiSquared | None = None
    arms: tuple[Arm, ...] = ()


# --- the statistics ---------------------------------------------------------------------------


def _lower_gamma_series(a: float, x: float) -> float:
    """P(a, x) by its power series; converges quickly for x < a + 1."""
    term = total = 1.0 / a
    n = a
    for _ in range(10_000):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * 1e-16:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_gamma_fraction(a: float, x: float) -> float:
    """Q(a, x) by its continued fraction (modified Lentz); for x >= a + 1."""
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def upper_regularized_gamma(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a)."""
    if x <= 0:
        return 1.0
    if x < a + 1:
        return max(0.0, 1.0 - _lower_gamma_series(a, x))
    return _upper_gamma_fraction(a, x)


def chi2_survival(statistic: float, dof: int) -> float:
    """P(X ≥ statistic) for X ~ χ²(dof)."""
    return upper_regularized_gamma(dof / 2, statistic / 2)


def chi_squared(arms: Sequence[tuple[int, int]], *, correction: bool = True) -> ChiSquared | None:
    """Pearson's test of independence on (sends, replies) per arm. None when the table has an
    empty row or column (nobody replied, everybody replied, or an arm without sends): there is
    nothing to compare."""
    if len(arms) < 2:
        return None
    rows = [(replies, sends - replies) for sends, replies in arms]
    if any(r < 0 or n < 0 for r, n in rows):
        raise ValueError("replies cannot exceed sends")
    row_totals = [r + n for r, n in rows]
    col_totals = [sum(r for r, _ in rows), sum(n for _, n in rows)]
    total = sum(row_totals)
    if total == 0 or 0 in row_totals or 0 in col_totals:
        return None
    dof = len(rows) - 1
    statistic = 0.0
    for (replied, not_replied), row_total in zip(rows, row_totals, strict=True):
        for observed, col_total in ((replied, col_totals[0]), (not_replied, col_totals[1])):
            expected = row_total * col_total / total
            diff = observed - expected
            if correction and dof == 1:
                diff = math.copysign(max(0.0, abs(diff) - 0.5), diff)
            statistic += diff * diff / expected
    return ChiSquared(statistic, dof, chi2_survival(statistic, dof))


def decide(arms: Sequence[Arm], *, min_sample: int, confidence: float) -> Decision:
    """The winner, if the data already shows one; otherwise why not (shown on the page)."""
    if len(arms) < 2:
        return Decision(None, "only one variant")
    short = [a for a in arms if a.sends < min_sample]
    if short:
        needs = ", ".join(f"{a.label} {a.sends}/{min_sample}" for a in short)
        return Decision(None, f"waiting for {min_sample} sends per variant ({needs})")
    test = chi_squared([(a.sends, a.replies) for a in arms])
    if test is None:
        return Decision(None, "no difference to test yet (no replies, or only replies)")
    alpha = 1 - confidence
    if test.p_value >= alpha:
        return Decision(
            None,
            f"not significant yet: p = {test.p_value:.4f} ≥ {alpha:.4g} "
            f"(χ² = {test.statistic:.3f}, df = {test.dof})",
            test,
        )
    best = max(arms, key=lambda a: a.rate)
    if sum(1 for a in arms if a.rate == best.rate) > 1:
        return Decision(None, "significant, but two variants share the best reply rate", test)
    sizes = ", ".join(
        f"{a.label}: {a.replies}/{a.sends} replied ({100 * a.rate:.1f} %)" for a in arms
    )
    return Decision(
        best,
        f"variant {best.label} wins with p = {test.p_value:.4g} < {alpha:.4g} "
        f"(χ² = {test.statistic:.3f}, df = {test.dof}; {sizes})",
        test,
        tuple(arms),
    )


# --- the hourly job -------------------------------------------------------------------------


def arms_of(step: Any, counts: dict[tuple[int, int | None], Any]) -> list[Arm]:
    return [
        Arm(
            v.pk,
            v.label,
            counts[(step.pk, v.pk)].sent if (step.pk, v.pk) in counts else 0,
            counts[(step.pk, v.pk)].replies if (step.pk, v.pk) in counts else 0,
        )
        for v in step.variants.all()
    ]


def run_auto_optimize(now: datetime) -> int:
    """Check every auto-optimized step without a winner in campaigns that are sending; give the
    significant winners 100 %. Returns how many winners were chosen."""
    from warmysender.email.stats import counts_by_variant
    from warmysender.sequences.models import CampaignStatus, Step

    steps = (
        Step.objects.filter(
            auto_optimize=True,
            winner_variant__isnull=True,
            campaign__status__in=[
                CampaignStatus.RUNNING,
                CampaignStatus.PAUSED,
                CampaignStatus.COOLDOWN,
                CampaignStatus.SCHEDULED,
            ],
        )
        .select_related("campaign")
        .prefetch_related("variants")
        .order_by("campaign_id", "step_index")
    )
    chosen = 0
    counts_cache: dict[Any, dict[tuple[int, int | None], Any]] = {}
    for step in steps:
        if step.campaign_id not in counts_cache:
            counts_cache[step.campaign_id] = counts_by_variant(step.campaign_id)
        arms = arms_of(step, counts_cache[step.campaign_id])
        decision = decide(arms, min_sample=step.ab_min_sample, confidence=step.ab_confidence)
        if decision.winner is not None and choose_winner(step, decision, now=now):
            chosen += 1
    return chosen


def choose_winner(step: Any, decision: Decision, *, now: datetime) -> bool:
    """Record the winner and why, once: a step that already has a winner is left alone."""
    from warmysender.sequences.models import Step
    from warmysender.sequences.services import log_event

    winner = decision.winner
    assert winner is not None and decision.test is not None
    with transaction.atomic():
        updated = Step.objects.filter(pk=step.pk, winner_variant__isnull=True).update(
            winner_variant_id=winner.variant_id
        )
        if not updated:
            return False
        data = {
            "stepId": step.pk,
            "stepIndex": step.step_index,
            "winnerVariantId": winner.variant_id,
            "winnerLabel": winner.label,
            "pValue": decision.test.p_value,
            "chiSquared": decision.test.statistic,
            "dof": decision.test.dof,
            "confidence": step.ab_confidence,
            "minSample": step.ab_min_sample,
            "arms": [
                {
                    "variantId": a.variant_id,
                    "label": a.label,
                    "sends": a.sends,
                    "replies": a.replies,
                }
                for a in decision.arms
            ],
        }
        log_event(
            step.campaign,
            "ab_winner",
            f"Step {step.step_index}: {decision.reason}. It now gets 100 % of sends.",
            now=now,
            reason="ab_significant",
            data=data,
        )
        record_audit(
            workspace=step.campaign.workspace,
            actor=OPTIMIZER,
            action="step.winner_chosen",
            object_type="step",
            object_id=str(step.pk),
            to_state=winner.label,
            reason=decision.reason,
            data=data,
            now=now,
        )
    return True


# --- the step's settings --------------------------------------------------------------------

MIN_SAMPLE_RANGE = (10, 1_000_000)
CONFIDENCE_RANGE = (0.80, 0.999)


class AbSettingsError(Exception):
    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def set_auto_optimize(
    *,
    step: Any,
    enabled: bool,
    min_sample: int,
    confidence: float,
    actor: Actor,
    now: datetime,
) -> None:
    """Turn auto-optimize on or off for a step and set its thresholds. Turning it off also
    clears a chosen winner: the variants' weights apply again."""
    from warmysender.sequences.models import Step
    from warmysender.sequences.services import log_event

    low, high = MIN_SAMPLE_RANGE
    if not low <= min_sample <= high:
        raise AbSettingsError(
            f"The minimum sample is between {low:,} and {high:,} sends per variant, not {min_sample:,}.",
            field="ab_min_sample",
        )
    low_c, high_c = CONFIDENCE_RANGE
    if not (low_c <= confidence <= high_c) or math.isnan(confidence):
        raise AbSettingsError(
            f"The confidence is between {100 * low_c:g} % and {100 * high_c:g} %, "
            f"not {100 * confidence:g} %.",
            field="ab_confidence",
        )
    with transaction.atomic():
        locked = Step.objects.select_for_update().select_related("campaign").get(pk=step.pk)
        before = {
            "autoOptimize": locked.auto_optimize,
            "minSample": locked.ab_min_sample,
            "confidence": locked.ab_confidence,
            "winnerVariantId": locked.winner_variant_id,
        }
        locked.auto_optimize = enabled
        locked.ab_min_sample = min_sample
        locked.ab_confidence = confidence
        if not enabled:
            locked.winner_variant = None
        locked.save(
            update_fields=["auto_optimize", "ab_min_sample", "ab_confidence", "winner_variant"]
        )
        after = {
            "autoOptimize": enabled,
            "minSample": min_sample,
            "confidence": confidence,
            "winnerVariantId": locked.winner_variant_id,
        }
        record_audit(
            workspace=locked.campaign.workspace,
            actor=actor,
            action="step.auto_optimize_set",
            object_type="step",
            object_id=str(locked.pk),
            from_state="on" if before["autoOptimize"] else "off",
            to_state="on" if enabled else "off",
            data={"before": before, "after": after, "stepIndex": locked.step_index},
            now=now,
        )
        if before["winnerVariantId"] and not locked.winner_variant_id:
            log_event(
                locked.campaign,
                "ab_reset",
                f"Step {locked.step_index}: auto-optimize turned off; the variants' weights "
                "apply again.",
                now=now,
                data={"stepId": locked.pk},
            )
    step.auto_optimize, step.ab_min_sample, step.ab_confidence = enabled, min_sample, confidence
