"""Periodic jobs of tracking and A/B testing."""

from __future__ import annotations

from django.utils import timezone
from procrastinate.contrib.django import app

from warmysender.sequences import ab

AB_ID = "sequences.ab_auto_optimize"


@app.periodic(cron="17 * * * *", periodic_id=AB_ID)
@app.task(name=AB_ID, queue="scheduler", queueing_lock=AB_ID)
def ab_auto_optimize(timestamp: int) -> int:
    """Every hour: give significant A/B winners 100 % of later sends (idempotent)."""
    return ab.run_auto_optimize(timezone.now())
