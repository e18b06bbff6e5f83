"""Campaign numbers as shown on its page: sent, opens, clicks, replies and bounces with their
rates, for the campaign, each step and each variant. Each count is of emails (an email opened
five times is one open), scanners are left out, and a rate never exceeds 100 %."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from warmysender.email.models import TrackingHit
from warmysender.lib.sql import load


def rate(count: int, sent: int) -> float:
    """Percent of `sent`, one decimal, within 0–100 whatever the inputs."""
    if sent <= 0 or count <= 0:
        return 0.0
    return min(100.0, round(100 * count / sent, 1))


@dataclass
class Counts:
    sent: int = 0
    opens: int = 0
    clicks: int = 0
    replies: int = 0
    bounces: int = 0

    def add(self, other: Counts) -> None:
        self.sent += other.sent
        self.opens += other.opens
        self.clicks += other.clicks
        self.replies += other.replies
        self.bounces += other.bounces

    @property
    def open_rate(self) -> float:
        return rate(self.opens, self.sent)

    @property
    def click_rate(self) -> float:
        return rate(self.clicks, self.sent)

    @property
    def reply_rate(self) -> float:
        return rate(self.replies, self.sent)

    @property
    def bounce_rate(self) -> float:
        return rate(self.bounces, self.sent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "opens": self.opens,
            "clicks": self.clicks,
            "replies": self.replies,
            "bounces": self.bounces,
            "open_rate": self.open_rate,
            "click_rate": self.click_rate,
            "reply_rate": self.reply_rate,
            "bounce_rate": self.bounce_rate,
        }


@dataclass
class VariantStats:
    variant: Any  # a Variant, or None for sends whose variant was since deleted
    label: str
    counts: Counts
    is_winner: bool = False


@dataclass
class StepStats:
    step: Any
    counts: Counts
    variants: list[VariantStats] = field(default_factory=list)
    decision: Any = None  # the latest A/B decision event of this step, if any


@dataclass
class CampaignStats:
    counts: Counts
    steps: list[StepStats]
    scanner_hits: int


def counts_by_variant(campaign_id: Any) -> dict[tuple[int, int | None], Counts]:
    """{(step id, variant id): Counts} of the emails sent so far."""
    with connection.cursor() as cursor:
        cursor.execute(load("warmysender.email", "campaign_stats"), {"campaign": campaign_id})
        return {
            (step_id, variant_id): Counts(sent, opened, clicked, replied, bounced)
            for step_id, variant_id, sent, opened, clicked, replied, bounced in cursor.fetchall()
        }


def campaign_totals(campaign_id: Any) -> Counts:
    """The campaign's all-time Counts (for the API's `stats`): one query."""
    total = Counts()
    for counts in counts_by_variant(campaign_id).values():
        total.add(counts)
    return total


def campaign_stats(campaign: Any) -> CampaignStats:
    from warmysender.sequences.models import CampaignEvent

    by_variant = counts_by_variant(campaign.pk)
    decisions: dict[int, Any] = {}
    for event in CampaignEvent.objects.filter(campaign=campaign, type="ab_winner").order_by(
        "created_at", "id"
    ):
        step_id = event.data.get("stepId")
        if isinstance(step_id, int):
            decisions[step_id] = event
    total = Counts()
    steps: list[StepStats] = []
    seen: set[tuple[int, int | None]] = set()
    for step in campaign.steps.prefetch_related("variants").order_by("step_index"):
        step_counts = Counts()
        variants: list[VariantStats] = []
        for variant in step.variants.all():
            counts = by_variant.get((step.pk, variant.pk), Counts())
            seen.add((step.pk, variant.pk))
            step_counts.add(counts)
            variants.append(
                VariantStats(variant, variant.label, counts, step.winner_variant_id == variant.pk)
            )
        orphan = by_variant.get((step.pk, None))
        if orphan is not None:
            seen.add((step.pk, None))
            step_counts.add(orphan)
            variants.append(VariantStats(None, "removed", orphan))
        total.add(step_counts)
        decision = decisions.get(step.pk)
        if decision is not None and decision.data.get("winnerVariantId") != step.winner_variant_id:
            decision = None  # reset since (auto-optimize turned off): the weights apply again
        steps.append(StepStats(step, step_counts, variants, decision))
    leftovers: dict[int, Counts] = defaultdict(Counts)
    for key, counts in by_variant.items():
        if key not in seen:  # a step deleted since: still part of the campaign's totals
            leftovers[key[0]].add(counts)
    for counts in leftovers.values():
        total.add(counts)
    scanner_hits = TrackingHit.objects.filter(campaign=campaign, is_scanner=True).count()
    return CampaignStats(total, steps, scanner_hits)
