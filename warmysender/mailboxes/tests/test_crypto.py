"""lib/crypto: the key ring for stored passwords, its configuration and its rotation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from warmysender.audit.models import AuditEntry
from warmysender.conftest import Tenant
from warmysender.lib import crypto
from warmysender.mailboxes.models import Mailbox
from warmysender.mailboxes.services import mailbox_passwords
from warmysender.mailboxes.tests.conftest import make_mailbox


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_a_secret_round_trips_and_is_not_stored_in_clear(settings: Any) -> None:
    settings.CREDENTIALS_KEYS = [new_key()]
    token = crypto.encrypt_json({"smtp_password": "hunter2-app-pass"})

    assert "hunter2" not in token
    assert crypto.decrypt_json(token) == {"smtp_password": "hunter2-app-pass"}


def test_the_first_key_encrypts_and_every_key_decrypts(settings: Any) -> None:
    old, new = new_key(), new_key()
    settings.CREDENTIALS_KEYS = [old]
    token = crypto.encrypt_json({"p": "x"})

    settings.CREDENTIALS_KEYS = [new, old]
    assert crypto.decrypt_json(token) == {"p": "x"}
    fresh = crypto.encrypt_json({"p": "y"})
    settings.CREDENTIALS_KEYS = [new]
    assert crypto.decrypt_json(fresh) == {"p": "y"}
    with pytest.raises(crypto.UnreadableSecret):
        crypto.decrypt_json(token)


def test_rotate_re_encrypts_with_the_first_key(settings: Any) -> None:
    old, new = new_key(), new_key()
    settings.CREDENTIALS_KEYS = [old]
    token = crypto.encrypt_json({"p": "x"})
    settings.CREDENTIALS_KEYS = [new, old]

    rotated = crypto.rotate(token)

    settings.CREDENTIALS_KEYS = [new]
    assert crypto.decrypt_json(rotated) == {"p": "x"}


def test_a_token_no_key_reads_is_unreadable(settings: Any) -> None:
    settings.CREDENTIALS_KEYS = [new_key()]
    with pytest.raises(crypto.UnreadableSecret):
        crypto.decrypt_json("not-a-token")
    with pytest.raises(crypto.UnreadableSecret):
        crypto.rotate("not-a-token")


def test_a_bad_key_in_the_list_fails_loudly_naming_its_position() -> None:
    with pytest.raises(ImproperlyConfigured, match="key 2 is not a Fernet key"):
        crypto.parse_keys(f"{new_key()}, nope")


def test_keys_come_from_the_environment_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = new_key(), new_key()
    monkeypatch.setenv("CREDENTIALS_KEYS", f" {first} ,{second},")
    assert crypto.keys_from_environment(tmp_path) == [first, second]
    assert not (tmp_path / crypto.KEY_FILE_NAME).exists()


def test_keys_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = new_key()
    secret = tmp_path / "keys"
    secret.write_text(key + "\n")
    monkeypatch.delenv("CREDENTIALS_KEYS", raising=False)
    monkeypatch.setenv("CREDENTIALS_KEYS_FILE", str(secret))
    assert crypto.keys_from_environment(tmp_path / "home") == [key]


def test_without_configuration_one_key_is_generated_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CREDENTIALS_KEYS", raising=False)
    monkeypatch.delenv("CREDENTIALS_KEYS_FILE", raising=False)
    home = tmp_path / "home"

    first = crypto.keys_from_environment(home)
    again = crypto.keys_from_environment(home)

    assert first == again and len(first) == 1
    key_file = home / crypto.KEY_FILE_NAME
    assert key_file.read_text() == first[0]
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.django_db
def test_rotate_credentials_command_re_encrypts_every_mailbox(
    tenant: Tenant, outsider: Tenant, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = new_key(), new_key()
    settings.CREDENTIALS_KEYS = [old]
    mine = make_mailbox(tenant, provider="gmail", smtpPassword="pw-one")
    theirs = make_mailbox(outsider, email="o@example.com", provider="yahoo", smtpPassword="pw-two")
    sandbox = make_mailbox(tenant, email="s@example.com", provider="sandbox")

    settings.CREDENTIALS_KEYS = [new, old]
    call_command("rotate_credentials")

    assert "Re-encrypted the credentials of 2 mailboxes." in capsys.readouterr().out
    settings.CREDENTIALS_KEYS = [new]  # the old key can go now
    for mailbox, password in ((mine, "pw-one"), (theirs, "pw-two")):
        mailbox.refresh_from_db()
        assert mailbox_passwords(mailbox) == {"smtp_password": password, "imap_password": password}
    assert Mailbox.objects.get(pk=sandbox.pk).credentials == ""
    assert AuditEntry.objects.filter(action="mailbox.credentials_rotated").count() == 2


@pytest.mark.django_db
def test_rotate_credentials_reports_what_no_key_can_read(tenant: Tenant, settings: Any) -> None:
    settings.CREDENTIALS_KEYS = [new_key()]
    lost = make_mailbox(tenant, provider="gmail", smtpPassword="pw")
    token = Mailbox.objects.get(pk=lost.pk).credentials
    settings.CREDENTIALS_KEYS = [new_key()]

    with pytest.raises(CommandError, match=str(lost.pk)):
        call_command("rotate_credentials")

    assert Mailbox.objects.get(pk=lost.pk).credentials == token  # left as it was
