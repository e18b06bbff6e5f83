"""Mailbox services: validation, presets, encryption, quota, the status door, deletion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from warmysender.accounts.models import Plan, Subscription, SubscriptionStatus
from warmysender.accounts.quotas import QuotaExceeded
from warmysender.audit.models import AuditEntry, DomainEvent
from warmysender.audit.services import Actor
from warmysender.conftest import NOW, Tenant
from warmysender.mailboxes import services
from warmysender.mailboxes.models import Mailbox, MailboxStatus, SandboxMessage
from warmysender.mailboxes.services import MailboxError
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
LATER = NOW + timedelta(hours=1)


# --- create ---------------------------------------------------------------------------------


def test_a_preset_fills_the_servers_and_the_username(tenant: Tenant) -> None:
    mailbox = make_mailbox(
        tenant, email="  Sam@Example.COM ", provider="gmail", smtpPassword="abcd efgh ijkl mnop "
    )

    assert mailbox.email == "sam@example.com"
    assert (mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_security) == (
        "smtp.gmail.com",
        587,
        "starttls",
    )
    assert (mailbox.imap_host, mailbox.imap_port, mailbox.imap_security) == (
        "imap.gmail.com",
        993,
        "ssl",
    )
    assert mailbox.smtp_username == mailbox.imap_username == "sam@example.com"
    assert mailbox.kind == "smtp"
    assert mailbox.status == MailboxStatus.DISCONNECTED  # until a connection test passes
    assert not mailbox.is_usable
    assert (mailbox.daily_limit, mailbox.timezone, mailbox.sending_enabled) == (30, "UTC", True)
    # Stored encrypted; the stray space of the paste is gone; IMAP shares the password.
    assert "abcd" not in mailbox.credentials
    assert services.mailbox_passwords(mailbox) == {
        "smtp_password": "abcd efgh ijkl mnop",
        "imap_password": "abcd efgh ijkl mnop",
    }


def test_given_values_win_over_the_preset(tenant: Tenant) -> None:
    mailbox = make_mailbox(
        tenant,
        provider="gmail",
        smtpPassword="pw",
        smtpSecurity="ssl",  # no port given: the port follows the mode
        imapHost="imap.example.net",
        imapUsername="other@example.com",
        imapPassword="imap-pw",
    )
    assert (mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_security) == (
        "smtp.gmail.com",
        465,
        "ssl",
    )
    assert (mailbox.imap_host, mailbox.imap_username) == ("imap.example.net", "other@example.com")
    assert services.mailbox_passwords(mailbox)["imap_password"] == "imap-pw"


def test_a_custom_mailbox_may_have_no_imap_and_no_password(tenant: Tenant) -> None:
    mailbox = make_mailbox(
        tenant, provider="custom", smtpHost="Relay.Example.NET", smtpSecurity="none"
    )

    assert (mailbox.smtp_host, mailbox.smtp_port) == ("relay.example.net", 25)
    assert mailbox.imap_host == "" and mailbox.imap_port is None
    assert mailbox.credentials == ""


def test_imap_settings_without_a_host_use_the_smtp_host(tenant: Tenant) -> None:
    mailbox = make_mailbox(
        tenant, provider="custom", smtpHost="mail.example.net", imapSecurity="starttls"
    )
    assert (mailbox.imap_host, mailbox.imap_port, mailbox.imap_security) == (
        "mail.example.net",
        143,
        "starttls",
    )
    assert mailbox.imap_username == SENDER


def test_a_sandbox_mailbox_is_connected_with_no_servers(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, email="try@example.com", provider="sandbox", fromName="Try Me")

    assert (mailbox.kind, mailbox.provider, mailbox.status) == ("sandbox", "sandbox", "connected")
    assert mailbox.smtp_host == "" and mailbox.credentials == ""
    assert mailbox.is_usable


def test_creating_writes_an_audit_row_and_an_event(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="yahoo", smtpPassword="pw")

    audit = AuditEntry.objects.get(action="mailbox.created")
    assert (audit.workspace_id, audit.object_id, audit.to_state) == (
        tenant.workspace.pk,
        str(mailbox.pk),
        "disconnected",
    )
    assert "pw" not in str(audit.data)
    event = DomainEvent.objects.get(type="mailbox.created")
    assert event.data["mailboxId"] == str(mailbox.pk)


@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({"email": "not-an-address"}, "email", "not a valid email"),
        ({"provider": "gmail"}, "smtpPassword", "App Password"),
        ({"provider": "custom"}, "smtpHost", "SMTP host is required"),
        ({"provider": "custom", "smtpHost": "bad host!"}, "smtpHost", "not a host name"),
        (
            {"provider": "custom", "smtpHost": "h.example.com", "smtpPort": 70000},
            "smtpPort",
            "between 1 and 65535",
        ),
        (
            {"provider": "custom", "smtpHost": "h.example.com", "smtpSecurity": "tls"},
            "smtpSecurity",
            "one of",
        ),
        ({"provider": "sandbox", "smtpHost": "h.example.com"}, "smtpHost", "no server settings"),
        ({"provider": "sandbox", "dailyLimit": 0}, "dailyLimit", "between 1 and 500"),
        ({"provider": "sandbox", "dailyLimit": 501}, "dailyLimit", "hard cap"),
        ({"provider": "sandbox", "dailyLimit": True}, "dailyLimit", "whole number"),
        ({"provider": "sandbox", "timezone": "Mars/Olympus"}, "timezone", "IANA time zone"),
        (
            {"provider": "sandbox", "fromName": "Sam\r\nBcc: x@y.z"},
            "fromName",
            "control characters",
        ),
        ({"provider": "gmail", "smtpPassword": "   "}, "smtpPassword", "must not be empty"),
        ({"provider": "aol"}, "provider", "Unknown provider"),
        ({"provider": "sandbox", "kind": "smtp"}, "provider", "only they do"),
        ({"provider": "sandbox", "colour": "red"}, "colour", "Unknown field"),
    ],
)
def test_invalid_input_names_the_field(
    tenant: Tenant, data: dict[str, Any], field: str, phrase: str
) -> None:
    with pytest.raises(MailboxError) as error:
        make_mailbox(tenant, **data)
    assert error.value.field == field
    assert phrase in error.value.message
    assert error.value.code == "validation_error"
    assert not Mailbox.objects.exists()


def test_the_same_address_twice_is_a_conflict_whatever_the_case(
    tenant: Tenant, outsider: Tenant
) -> None:
    make_mailbox(tenant, email="sam@example.com", provider="sandbox")
    with pytest.raises(MailboxError) as error:
        make_mailbox(tenant, email="SAM@example.com", provider="sandbox")
    assert error.value.code == "conflict"
    # Another workspace may connect the same address.
    make_mailbox(outsider, email="sam@example.com", provider="sandbox")


def test_the_plans_mailbox_limit_holds(tenant: Tenant, settings: Any) -> None:
    settings.BILLING_ENABLED = True
    Subscription.objects.create(
        user=tenant.owner, plan=Plan.objects.get(code="free"), status=SubscriptionStatus.ACTIVE
    )
    make_mailbox(tenant, email="one@example.com", provider="sandbox")

    with pytest.raises(QuotaExceeded) as error:
        make_mailbox(tenant, email="two@example.com", provider="sandbox")
    assert error.value.code == "mailbox_limit_reached"
    assert (error.value.limit, error.value.current) == (1, 1)


def test_the_database_refuses_what_the_services_refuse(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    for values in (
        {"daily_limit": 501},
        {"daily_limit": 0},
        {"status": "bogus"},
        {"email": "Upper@Example.com"},
        {"last_error": "x"},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Mailbox.objects.filter(pk=mailbox.pk).update(**values)


# --- update ---------------------------------------------------------------------------------


def test_settings_change_without_a_reconnect(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")

    result = services.update_mailbox(
        mailbox,
        {
            "dailyLimit": 80,
            "sendingEnabled": False,
            "signature": "<b>Sam</b>",
            "signatureIsHtml": True,
            "timezone": "Europe/Berlin",
            "fromName": "Sam",
        },
        actor=SYSTEM,
        now=LATER,
    )

    assert result.report is None
    assert result.changed == [
        "dailyLimit",
        "fromName",
        "sendingEnabled",
        "signature",
        "signatureIsHtml",
        "timezone",
    ]
    mailbox.refresh_from_db()
    assert (mailbox.daily_limit, mailbox.sending_enabled, mailbox.timezone) == (
        80,
        False,
        "Europe/Berlin",
    )
    assert (mailbox.signature, mailbox.signature_is_html, mailbox.from_name) == (
        "<b>Sam</b>",
        True,
        "Sam",
    )
    assert mailbox.updated_at == LATER
    assert not mailbox.is_usable  # sending switched off
    audit = AuditEntry.objects.get(action="mailbox.updated")
    assert audit.data["before"]["dailyLimit"] == 30


def test_an_update_that_changes_nothing_writes_nothing(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    result = services.update_mailbox(mailbox, {"dailyLimit": 30}, actor=SYSTEM, now=LATER)
    assert result.changed == []
    assert not AuditEntry.objects.filter(action="mailbox.updated").exists()


def test_the_daily_limit_error_names_the_field(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    with pytest.raises(MailboxError) as error:
        services.update_mailbox(mailbox, {"dailyLimit": 1000}, actor=SYSTEM, now=LATER)
    assert error.value.field == "dailyLimit"
    assert "between 1 and 500" in error.value.message
    mailbox.refresh_from_db()
    assert mailbox.daily_limit == 30


def test_server_settings_of_a_sandbox_are_a_conflict(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    with pytest.raises(MailboxError) as error:
        services.update_mailbox(mailbox, {"smtpPassword": "x"}, actor=SYSTEM, now=LATER)
    assert error.value.code == "conflict"


def test_re_entering_the_password_re_tests_and_reconnects(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server, smtpPassword="old-wrong-password")
    services.run_connection_test(mailbox, actor=SYSTEM, now=NOW, timeout=2)
    assert mailbox.status == MailboxStatus.ERROR

    result = services.update_mailbox(
        mailbox, {"smtpPassword": PASSWORD}, actor=SYSTEM, now=LATER, timeout=2
    )

    assert result.changed == ["credentials"]
    assert result.report is not None and result.report.ok
    mailbox.refresh_from_db()
    assert mailbox.status == MailboxStatus.CONNECTED
    assert mailbox.last_error == ""
    assert mailbox.last_checked_at == LATER
    # The IMAP password was the same one, so it follows.
    assert services.mailbox_passwords(mailbox) == {
        "smtp_password": PASSWORD,
        "imap_password": PASSWORD,
    }
    assert "old-wrong" not in str(list(AuditEntry.objects.values_list("data", flat=True)))


def test_changing_the_port_re_tests(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server, smtpPort=1)

    result = services.update_mailbox(
        mailbox, {"smtpPort": auth_server.port}, actor=SYSTEM, now=LATER, timeout=2
    )

    assert result.report is not None and result.report.ok
    assert mailbox.status == MailboxStatus.CONNECTED


def test_a_separate_imap_password_is_kept(tenant: Tenant) -> None:
    mailbox = make_mailbox(
        tenant,
        provider="custom",
        smtpHost="127.0.0.1",
        smtpPort=1,
        smtpPassword="s",
        imapHost="127.0.0.1",
        imapPort=1,
        imapPassword="i",
    )
    services.update_mailbox(mailbox, {"smtpPassword": "s2"}, actor=SYSTEM, now=LATER, timeout=1)
    assert services.mailbox_passwords(mailbox) == {"smtp_password": "s2", "imap_password": "i"}


def test_imap_can_be_added_and_removed(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="custom", smtpHost="127.0.0.1", smtpPort=1)
    services.update_mailbox(
        mailbox, {"imapHost": "imap.example.com"}, actor=SYSTEM, now=LATER, timeout=1
    )
    assert (mailbox.imap_host, mailbox.imap_port, mailbox.imap_security) == (
        "imap.example.com",
        993,
        "ssl",
    )
    services.update_mailbox(mailbox, {"imapHost": None}, actor=SYSTEM, now=LATER, timeout=1)
    assert (mailbox.imap_host, mailbox.imap_port) == ("", None)


# --- status: the one door -------------------------------------------------------------------


def test_set_status_writes_audit_and_event_in_one_go(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="gmail", smtpPassword="pw")

    changed = services.set_status(
        mailbox, "error", error="535 5.7.8 bad password", actor=Actor.system("engine"), now=LATER
    )

    assert changed is True
    mailbox.refresh_from_db()
    assert (mailbox.status, mailbox.last_error) == ("error", "535 5.7.8 bad password")
    audit = AuditEntry.objects.get(action="mailbox.status_changed")
    assert (audit.from_state, audit.to_state, audit.reason, audit.actor_label) == (
        "disconnected",
        "error",
        "535 5.7.8 bad password",
        "system:engine",
    )
    event = DomainEvent.objects.get(type="mailbox.status_changed")
    assert event.data == {
        "mailboxId": str(mailbox.pk),
        "email": SENDER,
        "from": "disconnected",
        "to": "error",
        "error": "535 5.7.8 bad password",
    }
    assert event.occurred_at == LATER


def test_set_status_to_the_same_status_is_not_a_change(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="gmail", smtpPassword="pw")
    services.set_status(mailbox, "error", error="first", actor=SYSTEM, now=NOW)

    assert services.set_status(mailbox, "error", error="second", actor=SYSTEM, now=LATER) is False

    assert mailbox.last_error == "second"
    assert AuditEntry.objects.filter(action="mailbox.status_changed").count() == 1


def test_connected_clears_the_error(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="gmail", smtpPassword="pw")
    services.set_status(mailbox, "error", error="boom", actor=SYSTEM, now=NOW)
    services.set_status(mailbox, "connected", error="ignored", actor=SYSTEM, now=LATER)
    mailbox.refresh_from_db()
    assert (mailbox.status, mailbox.last_error) == ("connected", "")
    assert mailbox.is_usable


def test_an_unknown_status_is_refused(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    with pytest.raises(ValueError):
        services.set_status(mailbox, "paused", actor=SYSTEM, now=NOW)


def test_a_failed_connection_test_stores_error_and_hint(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server, smtpPassword="wrong")

    report = services.run_connection_test(mailbox, actor=SYSTEM, now=LATER, timeout=2)

    assert not report.ok
    mailbox.refresh_from_db()
    assert mailbox.status == MailboxStatus.ERROR
    assert mailbox.last_checked_at == LATER
    assert mailbox.last_error.startswith("SMTP: 535 5.7.8")
    assert "App Password" in mailbox.last_error


def test_a_passing_connection_test_connects(
    tenant: Tenant, auth_server: SmtpServer, trusting: None
) -> None:
    mailbox = smtp_mailbox(tenant, auth_server)
    assert services.run_connection_test(mailbox, actor=SYSTEM, now=LATER, timeout=2).ok
    assert Mailbox.objects.get(pk=mailbox.pk).status == MailboxStatus.CONNECTED


def test_an_unreadable_password_asks_for_it_again(
    tenant: Tenant, auth_server: SmtpServer, settings: Any
) -> None:
    from cryptography.fernet import Fernet

    mailbox = smtp_mailbox(tenant, auth_server)
    settings.CREDENTIALS_KEYS = [Fernet.generate_key().decode()]

    report = services.run_connection_test(mailbox, actor=SYSTEM, now=LATER)

    assert not report.ok
    assert "Enter the password again" in mailbox.last_error


# --- delete -----------------------------------------------------------------------------------


def test_deleting_audits_and_removes_captured_messages(tenant: Tenant) -> None:
    mailbox = make_mailbox(tenant, email="try@example.com", provider="sandbox")
    with open_transport(mailbox) as transport:
        transport.send(message(), now=NOW)

    services.delete_mailbox(mailbox, actor=SYSTEM, now=LATER)

    assert not Mailbox.objects.exists()
    assert not SandboxMessage.objects.exists()
    audit = AuditEntry.objects.get(action="mailbox.deleted")
    assert (audit.object_id, audit.from_state, audit.data["email"]) == (
        str(mailbox.pk),
        "connected",
        "try@example.com",
    )
    assert DomainEvent.objects.filter(type="mailbox.deleted").exists()


def test_delete_hooks_run_inside_the_transaction_and_can_refuse(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox = make_mailbox(tenant, provider="sandbox")
    seen: list[tuple[Any, str]] = []

    def release(locked: Mailbox, actor: Actor, now: Any) -> None:
        seen.append((locked.pk, actor.label))
        assert transaction.get_connection().in_atomic_block
        raise RuntimeError("still in use")

    monkeypatch.setattr(services, "before_mailbox_delete", [release])

    with pytest.raises(RuntimeError):
        services.delete_mailbox(mailbox, actor=SYSTEM, now=LATER)

    assert seen == [(mailbox.pk, "system:test")]
    assert Mailbox.objects.filter(pk=mailbox.pk).exists()
    assert not AuditEntry.objects.filter(action="mailbox.deleted").exists()


def test_a_sender_used_by_the_transport_is_the_mailbox_address(
    tenant: Tenant, smtp_server: SmtpServer
) -> None:
    mailbox = smtp_mailbox(tenant, smtp_server, email="Other@Example.com")
    with open_transport(mailbox) as transport:
        assert transport.send(message(), now=NOW).outcome == "sent"
    assert smtp_server.messages[0].mail_from == "other@example.com"
