"""The embedded simulator backend: started, wired into the environment, webhooks to our intake."""

from __future__ import annotations

from typing import Any

import pytest

from warmysender.conftest import make_tenant
from warmysender.linkedin import intake
from warmysender.linkedin.backend import start_embedded_simulator
from warmysender.linkedin.models import AccountStatus, LinkedInAccount
from warmysender.linkedin.tests.factories import connected_account
from warmysender.testing.processes import wait_for


@pytest.mark.django_db(transaction=True)
def test_the_embedded_simulator_is_wired_to_the_intake(live_server: Any, settings: Any) -> None:
    env: dict[str, str] = {"UNIPILE_API_KEY": "kept-key"}
    sim = start_embedded_simulator(live_server.url, env)
    try:
        assert env["UNIPILE_DSN"] == sim.base_url
        assert env["UNIPILE_API_KEY"] == "kept-key" == sim.api_key
        settings.UNIPILE_WEBHOOK_SECRET = env["UNIPILE_WEBHOOK_SECRET"]
        tenant = make_tenant("embedded")
        remote = sim.add_account()
        account = connected_account(tenant.workspace, unipile_id=remote["id"])
        sim.set_status(remote["id"], "STOPPED")

        def flipped() -> bool:
            return LinkedInAccount.objects.get(pk=account.pk).status == AccountStatus.ERROR

        wait_for(flipped, what="the STOPPED webhook", timeout=10)
        assert intake.SECRET_HEADER == "X-Unipile-Secret"
    finally:
        sim.stop()
