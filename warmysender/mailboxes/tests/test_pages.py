"""Mailbox pages through Django's test client: roles, tenancy, htmx partials, presets."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from warmysender.audit.models import AuditEntry
from warmysender.conftest import NOW, Tenant, client_for
from warmysender.mailboxes import services
from warmysender.mailboxes.models import Mailbox, SandboxMessage
from warmysender.mailboxes.tests.conftest import (
    PASSWORD,
    SENDER,
    SYSTEM,
    make_mailbox,
    message,
    smtp_mailbox,
)
from warmysender.mailboxes.transports import open_transport
from warmysender.testing.smtp import SmtpServer

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def sandbox(tenant: Tenant, email: str = "try@example.com") -> Mailbox:
    return make_mailbox(tenant, email=email, provider="sandbox")


# --- list -----------------------------------------------------------------------------------


def test_the_list_shows_status_limit_and_switch_to_admins(tenant: Tenant) -> None:
    make_mailbox(tenant, provider="gmail", smtpPassword="pw")
    sandbox(tenant)

    page = client_for(tenant.admin).get(reverse("mailbox-list"))

    assert page.status_code == 200
    html = page.content.decode()
    assert SENDER in html and "try@example.com" in html
    assert "Disconnected" in html and "Connected" in html
    assert 'name="daily_limit"' in html and 'name="sending_enabled"' in html
    assert reverse("mailbox-create") in html
    assert 'href="/mailboxes/"' in html  # the nav link


def test_members_see_the_list_without_controls(tenant: Tenant) -> None:
    sandbox(tenant)
    html = client_for(tenant.member).get(reverse("mailbox-list")).content.decode()
    assert "try@example.com" in html
    assert 'name="daily_limit"' not in html
    assert reverse("mailbox-create") not in html


def test_the_list_shows_only_this_workspaces_mailboxes(tenant: Tenant, outsider: Tenant) -> None:
    sandbox(outsider, "theirs@example.com")
    html = client_for(tenant.owner).get(reverse("mailbox-list")).content.decode()
    assert "theirs@example.com" not in html
    assert "No mailboxes yet" in html


def test_anonymous_visitors_go_to_the_login_page() -> None:
    response = Client().get(reverse("mailbox-list"))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_daily_limit_is_edited_inline(tenant: Tenant) -> None:
    mailbox = sandbox(tenant)
    url = reverse("mailbox-daily-limit", args=[mailbox.pk])

    response = client_for(tenant.admin).post(url, {"daily_limit": "75"}, headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith(f'<tr id="mailbox-{mailbox.pk}"')
    assert 'value="75"' in html
    assert Mailbox.objects.get(pk=mailbox.pk).daily_limit == 75


def test_an_out_of_range_daily_limit_is_explained_in_the_row(tenant: Tenant) -> None:
    mailbox = sandbox(tenant)
    url = reverse("mailbox-daily-limit", args=[mailbox.pk])

    response = client_for(tenant.admin).post(url, {"daily_limit": "900"}, headers=HTMX)

    assert "from 1 to 500" in response.content.decode()
    assert Mailbox.objects.get(pk=mailbox.pk).daily_limit == 30


def test_the_daily_limit_form_works_without_htmx(tenant: Tenant) -> None:
    mailbox = sandbox(tenant)
    response = client_for(tenant.owner).post(
        reverse("mailbox-daily-limit", args=[mailbox.pk]), {"daily_limit": "12"}, follow=True
    )
    assert "now sends at most 12 a day" in response.content.decode()


def test_the_sending_switch_pauses_and_resumes(tenant: Tenant) -> None:
    mailbox = sandbox(tenant)
    url = reverse("mailbox-sending", args=[mailbox.pk])
    admin = client_for(tenant.admin)

    paused = admin.post(url, {}, headers=HTMX)
    assert "Paused" in paused.content.decode()
    assert Mailbox.objects.get(pk=mailbox.pk).sending_enabled is False

    admin.post(url, {"sending_enabled": "on"}, headers=HTMX)
    assert Mailbox.objects.get(pk=mailbox.pk).sending_enabled is True


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("mailbox-daily-limit", {"daily_limit": "5"}),
        ("mailbox-sending", {}),
        ("mailbox-test", {}),
        ("mailbox-edit", {"daily_limit": "5", "timezone": "UTC"}),
        ("mailbox-delete", {"confirm": "try@example.com"}),
    ],
)
def test_members_cannot_change_a_mailbox(tenant: Tenant, name: str, data: dict[str, str]) -> None:
    mailbox = sandbox(tenant)
    response = client_for(tenant.member).post(reverse(name, args=[mailbox.pk]), data)
    assert response.status_code == 403
    mailbox.refresh_from_db()
    assert (mailbox.daily_limit, mailbox.sending_enabled) == (30, True)
    assert not AuditEntry.objects.filter(action__in=["mailbox.updated", "mailbox.deleted"]).exists()


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("mailbox-detail", "get"),
        ("mailbox-captured", "get"),
        ("mailbox-daily-limit", "post"),
        ("mailbox-sending", "post"),
        ("mailbox-test", "post"),
        ("mailbox-edit", "post"),
        ("mailbox-delete", "post"),
    ],
)
def test_another_workspaces_mailbox_is_404(
    tenant: Tenant, outsider: Tenant, name: str, method: str
) -> None:
    mailbox = sandbox(tenant)
    client = client_for(outsider.owner)
    response = getattr(client, method)(
        reverse(name, args=[mailbox.pk]), {"daily_limit": "5", "confirm": mailbox.email}
    )
    assert response.status_code == 404
    assert Mailbox.objects.filter(pk=mailbox.pk, daily_limit=30).exists()


# --- add ------------------------------------------------------------------------------------


def test_the_add_page_carries_every_preset_for_its_script(tenant: Tenant) -> None:
    page = client_for(tenant.admin).get(reverse("mailbox-create"))
    assert page.status_code == 200
    html = page.content.decode()
    start = html.index('<script id="mailbox-presets" type="application/json">') + len(
        '<script id="mailbox-presets" type="application/json">'
    )
    presets = json.loads(html[start : html.index("</script>", start)])
    assert presets["gmail"]["smtp_host"] == "smtp.gmail.com"
    assert presets["zoho_eu"]["imap_host"] == "imap.zoho.eu"
    assert presets["sandbox"]["sandbox"] is True
    assert 'hx-post="/mailboxes/new/test/"' in html


def test_members_cannot_open_the_add_page(tenant: Tenant) -> None:
    assert client_for(tenant.member).get(reverse("mailbox-create")).status_code == 403
    assert (
        client_for(tenant.member)
        .post(
            reverse("mailbox-create"),
            {
                "provider": "sandbox",
                "email": "a@example.com",
                "daily_limit": "30",
                "timezone": "UTC",
            },
        )
        .status_code
        == 403
    )
    assert not Mailbox.objects.exists()


def test_adding_a_sandbox_mailbox(tenant: Tenant) -> None:
    response = client_for(tenant.admin).post(
        reverse("mailbox-create"),
        {
            "provider": "sandbox",
            "email": "try@example.com",
            "from_name": "Try",
            "daily_limit": "40",
            "timezone": "Europe/Paris",
            "smtp_host": "ignored.example.com",
        },
    )
    mailbox = Mailbox.objects.get(workspace=tenant.workspace)
    assert response.status_code == 302
    assert response["Location"] == reverse("mailbox-detail", args=[mailbox.pk])
    assert (
        mailbox.kind,
        mailbox.status,
        mailbox.daily_limit,
        mailbox.timezone,
        mailbox.smtp_host,
    ) == ("sandbox", "connected", 40, "Europe/Paris", "")


def test_adding_an_smtp_mailbox_tests_it_at_once(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    response = client_for(tenant.admin).post(
        reverse("mailbox-create"),
        {
            "provider": "custom",
            "email": SENDER,
            "smtp_password": PASSWORD,
            "smtp_host": auth_server.host,
            "smtp_port": str(auth_server.port),
            "smtp_security": "starttls",
            "imap_security": "ssl",
            "daily_limit": "30",
            "timezone": "UTC",
        },
        follow=True,
    )
    mailbox = Mailbox.objects.get(workspace=tenant.workspace)
    assert mailbox.status == "connected"
    assert f"Connected {SENDER}." in response.content.decode()
    assert PASSWORD not in response.content.decode()


def test_a_failing_new_mailbox_is_saved_and_shows_the_hint(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    response = client_for(tenant.admin).post(
        reverse("mailbox-create"),
        {
            "provider": "custom",
            "email": SENDER,
            "smtp_password": "wrong",
            "smtp_host": auth_server.host,
            "smtp_port": str(auth_server.port),
            "smtp_security": "starttls",
            "imap_security": "ssl",
            "daily_limit": "30",
            "timezone": "UTC",
        },
        follow=True,
    )
    html = response.content.decode()
    assert Mailbox.objects.get(workspace=tenant.workspace).status == "error"
    assert "The last connection test failed" in html
    assert "535 5.7.8" in html


def test_a_bad_form_comes_back_with_the_error_next_to_the_field(tenant: Tenant) -> None:
    response = client_for(tenant.admin).post(
        reverse("mailbox-create"),
        {
            "provider": "gmail",
            "email": SENDER,
            "daily_limit": "30",
            "timezone": "UTC",
            "smtp_security": "starttls",
            "imap_security": "ssl",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "App Password" in html
    assert 'data-bound="1"' in html  # the script keeps what was typed
    assert not Mailbox.objects.exists()


def test_a_duplicate_address_is_refused_on_the_form(tenant: Tenant) -> None:
    sandbox(tenant, SENDER)
    response = client_for(tenant.admin).post(
        reverse("mailbox-create"),
        {"provider": "sandbox", "email": SENDER.upper(), "daily_limit": "30", "timezone": "UTC"},
    )
    assert response.status_code == 400
    assert "already has the mailbox" in response.content.decode()


def test_test_connection_before_saving_shows_the_hint_and_saves_nothing(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    url = reverse("mailbox-test-unsaved")
    form = {
        "provider": "custom",
        "email": SENDER,
        "smtp_host": auth_server.host,
        "smtp_port": str(auth_server.port),
        "smtp_security": "starttls",
        "imap_security": "ssl",
        "daily_limit": "30",
        "timezone": "UTC",
    }
    admin = client_for(tenant.admin)

    bad = admin.post(url, {**form, "smtp_password": "wrong"}, headers=HTMX).content.decode()
    good = admin.post(url, {**form, "smtp_password": PASSWORD}, headers=HTMX).content.decode()

    assert "SMTP failed." in bad and "535 5.7.8" in bad
    assert "Connected." in good
    assert not Mailbox.objects.exists()
    assert client_for(tenant.member).post(url, form).status_code == 403


def test_testing_an_incomplete_form_says_what_is_missing(tenant: Tenant) -> None:
    response = client_for(tenant.admin).post(
        reverse("mailbox-test-unsaved"), {"provider": "custom"}, headers=HTMX
    )
    assert response.status_code == 400
    assert "Fill in the form first" in response.content.decode()


# --- detail and edit --------------------------------------------------------------------------


def test_the_detail_page_shows_settings_to_admins_only(tenant: Tenant) -> None:
    mailbox = make_mailbox(
        tenant,
        provider="gmail",
        smtpPassword="secret-pass",
        signature="<b>Sam</b><script>x()</script>",
        signatureIsHtml=True,
    )
    admin_html = (
        client_for(tenant.admin).get(reverse("mailbox-detail", args=[mailbox.pk])).content.decode()
    )
    member_html = (
        client_for(tenant.member).get(reverse("mailbox-detail", args=[mailbox.pk])).content.decode()
    )

    assert "Save settings" in admin_html and "Delete this mailbox" in admin_html
    assert "Save settings" not in member_html and "Only admins and owners" in member_html
    assert "smtp.gmail.com:587" in member_html
    for html in (admin_html, member_html):
        assert "secret-pass" not in html
        assert "<script>x()" not in html  # the preview is sanitised (and escaped into srcdoc)
        assert "sandbox srcdoc=" in html


def test_an_error_the_engine_recorded_is_explained_too(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="gmail", smtpPassword="pw")
    services.set_status(
        mailbox,
        "error",
        error="535 5.7.8 Username and Password not accepted",
        actor=SYSTEM,
        now=NOW,
    )
    html = (
        client_for(tenant.member).get(reverse("mailbox-detail", args=[mailbox.pk])).content.decode()
    )
    assert "535 5.7.8" in html
    assert "myaccount.google.com/apppasswords" in html


def test_editing_signature_timezone_and_limit(tenant: Tenant) -> None:
    mailbox = sandbox(tenant)
    response = client_for(tenant.admin).post(
        reverse("mailbox-edit", args=[mailbox.pk]),
        {
            "from_name": "Sam",
            "daily_limit": "55",
            "sending_enabled": "on",
            "timezone": "Asia/Tokyo",
            "signature": "-- \nSam",
            "signature_is_html": "",
        },
    )
    assert response.status_code == 302
    mailbox.refresh_from_db()
    assert (
        mailbox.from_name,
        mailbox.daily_limit,
        mailbox.timezone,
        mailbox.signature,
        mailbox.signature_is_html,
    ) == ("Sam", 55, "Asia/Tokyo", "-- \nSam", False)


def test_an_untouched_settings_form_changes_nothing(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="gmail", smtpPassword="pw")
    form = (
        client_for(tenant.admin).get(reverse("mailbox-detail", args=[mailbox.pk])).context["form"]
    )
    data = {
        name: ("on" if value is True else "" if value in (None, False) else value)
        for name, value in form.initial.items()
        if name in form.fields
    }

    response = client_for(tenant.admin).post(
        reverse("mailbox-edit", args=[mailbox.pk]), data, follow=True
    )

    assert "Nothing changed." in response.content.decode()
    assert not AuditEntry.objects.filter(action="mailbox.updated").exists()


def test_an_invalid_setting_is_shown_on_the_form(tenant: Tenant) -> None:
    mailbox = sandbox(tenant)
    response = client_for(tenant.admin).post(
        reverse("mailbox-edit", args=[mailbox.pk]), {"daily_limit": "0", "timezone": "UTC"}
    )
    assert response.status_code == 400
    assert Mailbox.objects.get(pk=mailbox.pk).daily_limit == 30


def test_re_entering_the_password_on_the_page_reconnects(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server, smtpPassword="old")
    services.run_connection_test(mailbox, actor=SYSTEM, now=NOW, timeout=2)
    form = (
        client_for(tenant.admin).get(reverse("mailbox-detail", args=[mailbox.pk])).context["form"]
    )
    data = {
        name: ("on" if value is True else "" if value in (None, False) else value)
        for name, value in form.initial.items()
        if name in form.fields
    }

    response = client_for(tenant.admin).post(
        reverse("mailbox-edit", args=[mailbox.pk]), {**data, "smtp_password": PASSWORD}, follow=True
    )

    assert "the connection test passed" in response.content.decode()
    assert Mailbox.objects.get(pk=mailbox.pk).status == "connected"


def test_the_test_button_swaps_in_the_result(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server, smtpPassword="wrong")
    response = client_for(tenant.admin).post(
        reverse("mailbox-test", args=[mailbox.pk]), headers=HTMX
    )
    html = response.content.decode()
    assert html.strip().startswith('<div id="test-result"')
    assert "SMTP failed." in html
    assert Mailbox.objects.get(pk=mailbox.pk).status == "error"


# --- delete -----------------------------------------------------------------------------------


def test_delete_needs_the_address_typed(tenant: Tenant) -> None:
    mailbox = sandbox(tenant)
    admin = client_for(tenant.admin)

    admin.post(reverse("mailbox-delete", args=[mailbox.pk]), {"confirm": "nope"})
    assert Mailbox.objects.filter(pk=mailbox.pk).exists()

    response = admin.post(reverse("mailbox-delete", args=[mailbox.pk]), {"confirm": mailbox.email})
    assert response.status_code == 302 and response["Location"] == reverse("mailbox-list")
    assert not Mailbox.objects.exists()


# --- captured messages -----------------------------------------------------------------------


def test_captured_messages_are_listed_and_shown_safely(tenant: Tenant, outsider: Tenant) -> None:
    mailbox = sandbox(tenant)
    with open_transport(mailbox) as transport:
        transport.send(message(subject="Hello from the sandbox"), now=NOW)
    captured = SandboxMessage.objects.get()
    member = client_for(tenant.member)

    listing = member.get(reverse("mailbox-captured", args=[mailbox.pk])).content.decode()
    detail = member.get(
        reverse("mailbox-captured-detail", args=[mailbox.pk, captured.pk])
    ).content.decode()

    assert "Hello from the sandbox" in listing and "lead@example.org" in listing
    assert "Hello there," in detail
    assert "sandbox srcdoc=" in detail
    srcdoc = detail.split('sandbox srcdoc="', 1)[1].split('"', 1)[0]
    assert "&lt;b&gt;there&lt;/b&gt;" in srcdoc  # the HTML part, escaped into the iframe
    assert "alert(1)" not in srcdoc  # its script removed by the sanitiser
    assert "&lt;script&gt;alert(1)" in detail  # the raw source is shown escaped
    outsider_client = client_for(outsider.owner)
    assert (
        outsider_client.get(
            reverse("mailbox-captured-detail", args=[mailbox.pk, captured.pk])
        ).status_code
        == 404
    )


def test_smtp_mailboxes_have_no_captured_messages_page(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="gmail", smtpPassword="pw")
    assert (
        client_for(tenant.admin).get(reverse("mailbox-captured", args=[mailbox.pk])).status_code
        == 404
    )


def test_a_message_of_another_sandbox_is_404_under_this_one(tenant: Tenant) -> None:
    first, second = sandbox(tenant, "one@example.com"), sandbox(tenant, "two@example.com")
    with open_transport(second) as transport:
        transport.send(message(), now=NOW)
    captured = SandboxMessage.objects.get(mailbox=second)
    response = client_for(tenant.admin).get(
        reverse("mailbox-captured-detail", args=[first.pk, captured.pk])
    )
    assert response.status_code == 404
