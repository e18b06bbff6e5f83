"""LinkedIn pages: pills exactly as described, the banner, the panel, the wizard, the ⋮ menu,
roles and tenancy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant, client_for
from warmysender.linkedin import services
from warmysender.linkedin.models import AccountStatus, LinkedInAccount
from warmysender.linkedin.proxies import parse_proxy
from warmysender.linkedin.simulator import SimulatorServer
from warmysender.linkedin.tests.factories import connected_account
from warmysender.linkedin.views import pill_for

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sim_settings(settings: Any, unipile_sim: SimulatorServer) -> SimulatorServer:
    settings.UNIPILE_DSN = unipile_sim.base_url
    settings.UNIPILE_API_KEY = unipile_sim.api_key
    settings.SITE_URL = "http://testserver"
    return unipile_sim


def test_pills_follow_the_product_copy(tenant: Tenant) -> None:
    account = services.create_account(
        tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW
    )
    assert pill_for(account, NOW + timedelta(minutes=4)).text == "Linking — finishing connection"
    assert pill_for(account, NOW + timedelta(minutes=4)).css == ""  # blue
    slow = pill_for(account, NOW + timedelta(minutes=6))
    assert (slow.text, slow.css) == ("Linking — taking longer than expected", "warn")
    live = connected_account(tenant.workspace)
    assert pill_for(live, NOW).text == "Connected"
    services.record_activity(live, NOW)
    live.refresh_from_db()
    assert (
        pill_for(live, NOW + timedelta(seconds=30)).text == "Connected · last activity moments ago"
    )
    # The soft strike copy never shows the Reconnect pill.
    live.last_error = services.SOFT_STRIKE_COPY.format(n=1)
    assert not pill_for(live, NOW).reconnect
    for status in ("needs_verification", "disconnected", "error"):
        services.flip_account_status(live, status, cause="t", actor=SYSTEM, now=NOW, error="e")
        pill = pill_for(live, NOW)
        assert (pill.text, pill.reconnect) == ("Reconnect needed", True)
    assert pill_for(live, NOW).css == "warn"  # error: amber; disconnected: red
    services.flip_account_status(live, "disconnected", cause="t", actor=SYSTEM, now=NOW, error="e")
    assert pill_for(live, NOW).css == "bad"


def test_the_list_shows_pills_the_banner_and_first_connected_apart(
    tenant: Tenant, outsider: Tenant
) -> None:
    ok = connected_account(tenant.workspace, name="Ada Lovelace")
    broken = connected_account(tenant.workspace, name="Grace Hopper")
    connected_account(outsider.workspace, name="Other Person")
    services.flip_account_status(
        broken, AccountStatus.NEEDS_VERIFICATION, cause="t", actor=SYSTEM, now=NOW, error="x"
    )
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        page = client_for(tenant.member).get("/linkedin/accounts/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Ada Lovelace" in html and "Grace Hopper" in html and "Other Person" not in html
    assert "Reconnect needed</strong> — 1 LinkedIn account requires re-authentication" in html
    assert html.count("First connected on 23/11/2026") == 2
    # A member sees the state but not the buttons.
    assert "Reconnect Account" not in html and str(ok.pk) in html
    admin_html = client_for(tenant.admin).get("/linkedin/accounts/").content.decode()
    assert "Reconnect Account" in admin_html and "Sync status" in admin_html


def test_the_list_links_the_simulator_controls_only_with_the_simulator_backend(
    tenant: Tenant, outsider: Tenant, settings: Any
) -> None:
    connected_account(tenant.workspace, name="Ada Lovelace")
    connected_account(outsider.workspace, name="Other Person")
    link = (
        '<a href="http://127.0.0.1:8765/_sim/" target="_blank" rel="noopener">'
        "Simulator controls</a>"
    )
    settings.LINKEDIN_BACKEND = "simulator"
    settings.UNIPILE_DSN = "http://127.0.0.1:8765/"
    for person in (tenant.member, tenant.admin):  # a tool of the simulator, not a workspace role
        html = client_for(person).get("/linkedin/accounts/").content.decode()
        assert link in html
        assert "Ada Lovelace" in html and "Other Person" not in html
    settings.UNIPILE_DSN = ""
    assert (
        "Simulator controls"
        not in client_for(tenant.admin).get("/linkedin/accounts/").content.decode()
    )
    settings.LINKEDIN_BACKEND = "unipile"
    settings.UNIPILE_DSN = "https://api8.unipile.com:13811"
    html = client_for(tenant.admin).get("/linkedin/accounts/").content.decode()
    assert "Simulator controls" not in html and "/_sim/" not in html
    assert "Ada Lovelace" in html


def test_no_banner_when_every_account_is_connected(tenant: Tenant) -> None:
    connected_account(tenant.workspace)
    html = client_for(tenant.owner).get("/linkedin/accounts/").content.decode()
    assert "require re-authentication" not in html


def test_the_panel_shows_type_strategy_week_caps_usage_and_proxy(
    tenant: Tenant, outsider: Tenant
) -> None:
    account = connected_account(tenant.workspace, account_type="premium", strategy="established")
    later = NOW + timedelta(days=15)
    for i in range(3):
        services.reserve(account, "invite", later + timedelta(minutes=i))
    with time_machine.travel(later + timedelta(minutes=5), tick=False):
        page = client_for(tenant.member).get(f"/linkedin/accounts/{account.pk}/")
    html = page.content.decode()
    assert "Premium" in html and "Established" in html
    assert "Week 3 of 4" in html
    assert "Invites this week: 3/166 — 2% of cap" in html  # ramp week 3 of established
    assert "InMails today: 0/15 — 0% of cap" in html
    assert "Automatic" in html
    assert client_for(outsider.owner).get(f"/linkedin/accounts/{account.pk}/").status_code == 404


def test_the_wizard_refuses_bad_proxies_and_members(tenant: Tenant, sim_settings: Any) -> None:
    admin = client_for(tenant.admin)
    bad = admin.post(
        "/linkedin/accounts/connect/",
        {
            "strategy": "new_account",
            "proxy_mode": "custom",
            "proxy_url": "ftp://x:1",
            "method": "credentials",
        },
    )
    assert bad.status_code == 400
    assert "protocol &#x27;ftp&#x27; is not supported" in bad.content.decode()
    mismatch = admin.post(
        "/linkedin/accounts/connect/",
        {
            "strategy": "new_account",
            "proxy_mode": "country",
            "proxy_country": "DE",
            "method": "hosted",
        },
    )
    assert mismatch.status_code == 400
    assert LinkedInAccount.objects.count() == 0
    member = client_for(tenant.member)
    assert member.get("/linkedin/accounts/connect/").status_code == 403
    assert member.post("/linkedin/accounts/connect/", {"method": "hosted"}).status_code == 403
    assert LinkedInAccount.objects.count() == 0


def test_the_wizard_sends_the_person_to_the_hosted_page(tenant: Tenant, sim_settings: Any) -> None:
    response = client_for(tenant.admin).post(
        "/linkedin/accounts/connect/",
        {"strategy": "veteran", "proxy_mode": "auto", "method": "hosted"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(sim_settings.base_url + "/hosted/")
    account = LinkedInAccount.objects.get()
    assert (account.status, account.strategy) == ("connecting", "veteran")


def test_the_credentials_path_keeps_the_country_proxy(tenant: Tenant, sim_settings: Any) -> None:
    admin = client_for(tenant.admin)
    response = admin.post(
        "/linkedin/accounts/connect/",
        {
            "strategy": "new_account",
            "proxy_mode": "country",
            "proxy_country": "DE",
            "method": "credentials",
        },
    )
    account = LinkedInAccount.objects.get()
    assert response["Location"] == f"/linkedin/accounts/{account.pk}/login/"
    login = admin.post(response["Location"], {"username": "ada+otp@example.com", "password": "pw"})
    assert "OTP" in login.content.decode()
    account.refresh_from_db()
    code = sim_settings.state.accounts[account.unipile_account_id].checkpoint.code
    done = admin.post(response["Location"], {"code": code, "checkpoint": "OTP"})
    assert done.status_code == 302
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert sim_settings.state.accounts[account.unipile_account_id].country == "DE"


def test_menu_sync_and_disconnect_need_admin_and_stay_in_the_workspace(
    tenant: Tenant, outsider: Tenant, sim_settings: Any
) -> None:
    remote = sim_settings.add_account()
    account = connected_account(tenant.workspace, unipile_id=remote["id"])
    for path in ("sync", "disconnect", "reconnect"):
        url = f"/linkedin/accounts/{account.pk}/{path}/"
        assert client_for(tenant.member).post(url).status_code == 403
        assert client_for(outsider.owner).post(url).status_code == 404
    sim_settings.expire_session(remote["id"])
    admin = client_for(tenant.admin)
    admin.post(f"/linkedin/accounts/{account.pk}/sync/")
    account.refresh_from_db()
    assert account.status == AccountStatus.NEEDS_VERIFICATION
    first = admin.post(f"/linkedin/accounts/{account.pk}/reconnect/")
    second = admin.post(f"/linkedin/accounts/{account.pk}/reconnect/")
    assert first["Location"] == second["Location"]  # a double click is one session
    admin.post(f"/linkedin/accounts/{account.pk}/disconnect/")
    account.refresh_from_db()
    assert (account.status, account.disconnected_by) == ("disconnected", "user")


def test_change_proxy_validates(tenant: Tenant) -> None:
    account = connected_account(tenant.workspace)
    admin = client_for(tenant.admin)
    admin.post(
        f"/linkedin/accounts/{account.pk}/proxy/", {"proxy_mode": "custom", "proxy_url": "http://h"}
    )
    account.refresh_from_db()
    assert account.proxy_mode == "auto"
    admin.post(
        f"/linkedin/accounts/{account.pk}/proxy/",
        {"proxy_mode": "custom", "proxy_url": "http://bob:pw@proxy.example.com:3128"},
    )
    account.refresh_from_db()
    assert account.proxy_display == "http://bob:•••@proxy.example.com:3128"
    assert services.account_proxy(account).password == "pw"
    assert "pw@" not in account.proxy_secret


def test_the_cookie_method_needs_the_user_agent_and_connects(
    tenant: Tenant, sim_settings: Any
) -> None:
    account = services.create_account(
        tenant.workspace, proxy=parse_proxy("auto"), actor=SYSTEM, now=NOW
    )
    admin = client_for(tenant.admin)
    url = f"/linkedin/accounts/{account.pk}/login/"
    missing = admin.post(url, {"li_at": "AQEDAR-cookie", "user_agent": " "})
    assert missing.status_code == 400
    assert "user agent" in missing.content.decode()
    done = admin.post(url, {"li_at": "AQEDAR-cookie", "user_agent": "Mozilla/5.0 Test"})
    assert done.status_code == 302
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED
    assert sim_settings.state.accounts[account.unipile_account_id].user_agent == "Mozilla/5.0 Test"
