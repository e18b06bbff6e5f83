"""The periodic LinkedIn jobs through the real procrastinate queue: the status check detects an
expired session; the sweeps succeed without a single Unipile call."""

from __future__ import annotations

from typing import Any

import pytest

from warmysender.conftest import make_tenant
from warmysender.linkedin import tasks
from warmysender.linkedin.models import AccountStatus, LinkedInAccount
from warmysender.linkedin.simulator import SimulatorServer
from warmysender.linkedin.tests.factories import connected_account
from warmysender.testing.jobs import run_queued_jobs


@pytest.mark.django_db(transaction=True)
def test_the_jobs_run_and_only_the_status_check_calls_unipile(
    unipile_sim: SimulatorServer, settings: Any
) -> None:
    settings.UNIPILE_DSN = unipile_sim.base_url
    settings.UNIPILE_API_KEY = unipile_sim.api_key
    tenant = make_tenant("jobs")
    remote = unipile_sim.add_account()
    account = connected_account(tenant.workspace, unipile_id=remote["id"])
    unipile_sim.expire_session(remote["id"])
    unipile_sim.clear_requests()

    for sweep in (tasks.link_orphans, tasks.send_reconnect_emails, tasks.monitor_webhooks):
        sweep.defer(timestamp=0)
    ran = run_queued_jobs()
    assert [status for _, status in ran] == ["succeeded"] * 3
    assert unipile_sim.requests() == []
    assert LinkedInAccount.objects.get(pk=account.pk).status == AccountStatus.CONNECTED

    tasks.check_statuses.defer(timestamp=0)
    assert run_queued_jobs() == [(tasks.STATUS_CHECK_ID, "succeeded")]
    assert LinkedInAccount.objects.get(pk=account.pk).status == AccountStatus.NEEDS_VERIFICATION
    assert [r["account_id"] for r in unipile_sim.requests()] == [remote["id"]]


@pytest.mark.django_db(transaction=True)
def test_the_status_check_skips_quietly_when_linkedin_is_not_configured(settings: Any) -> None:
    settings.UNIPILE_DSN = ""
    tenant = make_tenant("unconfigured")
    connected_account(tenant.workspace)
    tasks.check_statuses.defer(timestamp=0)
    assert run_queued_jobs() == [(tasks.STATUS_CHECK_ID, "succeeded")]
