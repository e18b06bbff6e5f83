"""Encryption of stored secrets (mailbox passwords) with a MultiFernet key ring.

`CREDENTIALS_KEYS` holds comma-separated Fernet keys: the first encrypts, every one decrypts, so
a key is rotated by putting a new one in front, running `warmysender manage rotate_credentials`,
and removing the old one afterwards. When the variable is unset, a key is generated once into
`$WARMYSENDER_HOME/credentials_key` (single-machine installs need no configuration).

Nothing here reads settings at import time: `settings.py` calls `keys_from_environment`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured

from warmysender.lib.env import env_secret

KEY_FILE_NAME = "credentials_key"


class UnreadableSecret(Exception):
    """A token that none of the configured keys decrypts (wrong key ring, or corrupted data)."""


def parse_keys(raw: str, *, source: str = "CREDENTIALS_KEYS") -> list[str]:
    """The keys of a comma-separated list, each checked to be a valid Fernet key."""
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"{source}: key {position} is not a Fernet key (32 url-safe base64-encoded "
                "bytes; make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from exc
    return keys


def keys_from_environment(home: Path) -> list[str]:
    """`CREDENTIALS_KEYS` (or `CREDENTIALS_KEYS_FILE`), else the key kept in `home`, generated
    on first use."""
    raw = env_secret("CREDENTIALS_KEYS")
    if raw.strip():
        return parse_keys(raw)
    key_file = home / KEY_FILE_NAME
    if key_file.exists():
        return parse_keys(key_file.read_text(), source=str(key_file))
    key = Fernet.generate_key().decode()
    try:
        home.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key)
        key_file.chmod(0o600)
    except OSError:
        # A read-only home still works for this process; the next start generates another key,
        # which is why the README asks anything beyond one machine to set CREDENTIALS_KEYS.
        pass
    return [key]


@lru_cache(maxsize=4)
def _ring(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("CREDENTIALS_KEYS is empty")
    return MultiFernet([Fernet(key) for key in keys])


def key_ring() -> MultiFernet:
    from django.conf import settings

    return _ring(tuple(settings.CREDENTIALS_KEYS))


def encrypt_json(data: dict[str, Any]) -> str:
    """A token holding `data` as JSON, encrypted with the first key."""
    return key_ring().encrypt(json.dumps(data, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str) -> dict[str, Any]:
    try:
        plain = key_ring().decrypt(token.encode())
    except InvalidToken as exc:
        raise UnreadableSecret(
            "The stored secret cannot be decrypted with any key in CREDENTIALS_KEYS."
        ) from exc
    value = json.loads(plain)
    if not isinstance(value, dict):
        raise UnreadableSecret("The stored secret is not a JSON object.")
    return value


def rotate(token: str) -> str:
    """The same secret re-encrypted with the first key (a no-op in meaning, not in bytes)."""
    try:
        return key_ring().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise UnreadableSecret(
            "The stored secret cannot be decrypted with any key in CREDENTIALS_KEYS."
        ) from exc
