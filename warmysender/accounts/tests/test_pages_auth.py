"""Sign-up, log-in with lock-out, log-out, password reset and the home redirect."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client

from warmysender.accounts.models import LoginThrottle, Membership, Role, User, Workspace
from warmysender.conftest import NOW, PASSWORD, Tenant, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=True):
        yield


def _log_in(client: Client, email: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post("/login/", {"email": email, "password": password}, REMOTE_ADDR=ip)


# --- home ------------------------------------------------------------------------------------


def test_home_sends_anonymous_people_to_log_in() -> None:
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"


def test_home_sends_signed_in_people_to_prospects(tenant: Tenant) -> None:
    response = client_for(tenant.member).get("/")
    assert response.status_code == 302
    assert response["Location"] == "/prospects/"


# --- sign-up ---------------------------------------------------------------------------------


def test_sign_up_creates_the_user_their_workspace_and_owner_membership() -> None:
    client = Client()
    response = client.post(
        "/signup/",
        {"email": "New.Person@Example.com", "password": PASSWORD, "workspace_name": "Rocket Co"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(email="new.person@example.com")
    workspace = Workspace.objects.get(owner=user)
    assert workspace.name == "Rocket Co"
    assert user.current_workspace_id == workspace.pk
    assert Membership.objects.get(user=user, workspace=workspace).role == Role.OWNER
    # Signed in straight away.
    assert client.get("/settings/team/").status_code == 200


def test_sign_up_session_lasts_thirty_days() -> None:
    response = Client().post(
        "/signup/", {"email": "a@example.com", "password": PASSWORD, "workspace_name": "A"}
    )
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == 30 * 24 * 3600
    assert cookie["httponly"]


def test_sign_up_refuses_a_duplicate_email_whatever_its_case(tenant: Tenant) -> None:
    response = Client().post(
        "/signup/",
        {"email": "ACME-OWNER@example.com", "password": PASSWORD, "workspace_name": "Again"},
    )
    assert response.status_code == 200
    assert "An account with this email already exists." in response.content.decode()
    assert User.objects.filter(email="acme-owner@example.com").count() == 1
    assert not Workspace.objects.filter(name="Again").exists()


def test_sign_up_applies_the_password_validators() -> None:
    response = Client().post(
        "/signup/", {"email": "b@example.com", "password": "12345678", "workspace_name": "B"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "too common" in body or "entirely numeric" in body
    assert not User.objects.filter(email="b@example.com").exists()


def test_sign_up_needs_a_workspace_name() -> None:
    response = Client().post("/signup/", {"email": "c@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not User.objects.filter(email="c@example.com").exists()


def test_sign_up_ignores_an_off_site_next() -> None:
    response = Client().post(
        "/signup/",
        {
            "email": "d@example.com",
            "password": PASSWORD,
            "workspace_name": "D",
            "next": "https://evil.example/steal",
        },
    )
    assert response["Location"] == "/"


def test_signed_in_people_are_sent_away_from_sign_up_and_log_in(tenant: Tenant) -> None:
    client = client_for(tenant.owner)
    assert client.get("/signup/")["Location"] == "/"
    assert client.get("/login/")["Location"] == "/"


def test_csrf_is_enforced_on_log_in() -> None:
    User.objects.create_user(email="e@example.com", password=PASSWORD)
    client = Client(enforce_csrf_checks=True)
    refused = client.post("/login/", {"email": "e@example.com", "password": PASSWORD})
    assert refused.status_code == 403
    client.get("/login/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    accepted = client.post(
        "/login/", {"email": "e@example.com", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert accepted.status_code == 302


def test_csrf_is_enforced_on_sign_up() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/signup/", {"email": "f@example.com", "password": PASSWORD, "workspace_name": "F"}
    )
    assert response.status_code == 403
    assert not User.objects.filter(email="f@example.com").exists()


# --- log-in, lock-out, log-out ---------------------------------------------------------------


def test_log_in_with_the_right_password_redirects_to_next(tenant: Tenant) -> None:
    client = Client()
    response = client.post(
        "/login/?next=/settings/team/",
        {"email": "Acme-Owner@Example.com", "password": PASSWORD, "next": "/settings/team/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/settings/team/"
    assert client.get("/settings/team/").status_code == 200


def test_a_wrong_password_is_refused_with_a_message(tenant: Tenant) -> None:
    response = _log_in(Client(), tenant.owner.email, "wrong-password")
    assert response.status_code == 200
    assert "The email or password is incorrect." in response.content.decode()


def test_five_failures_lock_the_email_and_ip_pair_for_fifteen_minutes(tenant: Tenant) -> None:
    email = tenant.owner.email
    for _ in range(settings.LOGIN_LOCKOUT_FAILURES - 1):
        body = _log_in(Client(), email, "wrong").content.decode()
        assert "incorrect" in body
    fifth = _log_in(Client(), email, "wrong").content.decode()
    assert "Too many failed log-ins" in fifth
    assert "Try again at 12:15 UTC" in fifth

    # The lock lives in PostgreSQL: a fresh read of the row sees it, and a brand-new client (as
    # another web process would be) is refused even with the right password.
    row = LoginThrottle.objects.get(email=email, ip="10.0.0.1")
    assert row.failures == settings.LOGIN_LOCKOUT_FAILURES
    assert row.locked_until is not None
    assert row.locked_until - NOW >= timedelta(minutes=15) - timedelta(seconds=5)
    fresh = Client()
    sixth = _log_in(fresh, email, PASSWORD)
    assert sixth.status_code == 200
    assert "Too many failed log-ins" in sixth.content.decode()
    assert "_auth_user_id" not in fresh.session

    # Another IP is not locked.
    other = Client()
    assert _log_in(other, email, PASSWORD, ip="10.0.0.2").status_code == 302

    # After fifteen minutes the right password works again and clears the failures.
    with time_machine.travel(NOW + timedelta(minutes=15, seconds=30), tick=False):
        later = Client()
        assert _log_in(later, email, PASSWORD).status_code == 302
        assert later.get("/settings/team/").status_code == 200
    assert not LoginThrottle.objects.filter(email=email, ip="10.0.0.1").exists()


def test_a_successful_log_in_clears_earlier_failures(tenant: Tenant) -> None:
    email = tenant.member.email
    for _ in range(settings.LOGIN_LOCKOUT_FAILURES - 1):
        _log_in(Client(), email, "wrong")
    assert _log_in(Client(), email, PASSWORD).status_code == 302
    assert not LoginThrottle.objects.filter(email=email).exists()
    # The count starts over: four more failures do not lock.
    for _ in range(settings.LOGIN_LOCKOUT_FAILURES - 1):
        _log_in(Client(), email, "wrong")
    assert _log_in(Client(), email, PASSWORD).status_code == 302


def test_unknown_emails_are_throttled_too() -> None:
    for _ in range(settings.LOGIN_LOCKOUT_FAILURES):
        response = _log_in(Client(), "nobody@example.com", "whatever")
    assert "Too many failed log-ins" in response.content.decode()


def test_log_out_needs_a_post(tenant: Tenant) -> None:
    client = client_for(tenant.owner)
    assert client.get("/logout/").status_code == 405
    assert client.get("/settings/team/").status_code == 200
    response = client.post("/logout/")
    assert response["Location"] == "/login/"
    assert client.get("/settings/team/").status_code == 302


# --- password reset --------------------------------------------------------------------------


def test_password_reset_end_to_end(tenant: Tenant) -> None:
    client = Client()
    response = client.post("/password-reset/", {"email": "ACME-MEMBER@example.com"})
    assert response["Location"] == "/password-reset/sent/"
    assert "Check your email" in client.get(response["Location"]).content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [tenant.member.email]
    assert message.subject == "Reset your WarmySender password"
    match = re.search(r"https?://[^/\s]+(/password-reset/[^\s]+/)", message.body)
    assert match, message.body
    assert match.group(0).startswith(settings.SITE_URL)

    # Django swaps the token for a session marker and redirects to the set-password form.
    form_page = client.get(match.group(1), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_url, {"new_password1": "a-brand-new-secret", "new_password2": "a-brand-new-secret"}
    )
    assert done["Location"] == "/password-reset/done/"
    assert "Password changed" in client.get("/password-reset/done/").content.decode()

    assert _log_in(Client(), tenant.member.email, PASSWORD).status_code == 200
    assert _log_in(Client(), tenant.member.email, "a-brand-new-secret").status_code == 302
    # The link works once.
    reused = Client().get(match.group(1), follow=True)
    assert "This link does not work" in reused.content.decode()


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same() -> None:
    response = Client().post("/password-reset/", {"email": "ghost@example.com"})
    assert response["Location"] == "/password-reset/sent/"
    assert mail.outbox == []
