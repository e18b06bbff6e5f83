"""Fixtures shared by every app's tests."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.test import Client

from warmysender.accounts import services as account_services
from warmysender.accounts.models import Membership, Role, User, Workspace
from warmysender.testing.imap_fixtures import imap_server  # noqa: F401  (for every app's tests)
from warmysender.testing.smtp_fixtures import (  # noqa: F401  (fixtures for every app's tests)
    smtp_server,
    smtp_server_factory,
    smtp_tls_files,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery"


@dataclass
class Tenant:
    """A workspace with its owner, an admin and a plain member."""

    workspace: Workspace
    owner: User
    admin: User
    member: User

    def key(self, *scopes: str) -> str:
        """A raw API key of this workspace's owner holding `scopes`."""
        issued = account_services.create_api_key(
            workspace=self.workspace,
            name="test key",
            scopes=list(scopes),
            actor=self.owner,
            now=NOW,
        )
        return issued.raw


def make_tenant(prefix: str) -> Tenant:
    owner = account_services.sign_up(
        email=f"{prefix}-owner@example.com",
        password=PASSWORD,
        workspace_name=f"{prefix} Inc",
        now=NOW,
    )
    workspace = owner.current_workspace
    assert workspace is not None
    admin = User.objects.create_user(email=f"{prefix}-admin@example.com", password=PASSWORD)
    member = User.objects.create_user(email=f"{prefix}-member@example.com", password=PASSWORD)
    Membership.objects.create(workspace=workspace, user=admin, role=Role.ADMIN)
    Membership.objects.create(workspace=workspace, user=member, role=Role.MEMBER)
    for user in (admin, member):
        user.current_workspace = workspace
        user.save(update_fields=["current_workspace"])
    return Tenant(workspace, owner, admin, member)


@pytest.fixture(autouse=True)
def plans_after_flush(request: pytest.FixtureRequest) -> None:
    """Transactional tests (live servers, child processes) end with a flush that empties every
    table, including the plans a data migration wrote; put them back before each such test."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    )
    if not transactional:
        return
    request.getfixturevalue("transactional_db")
    from django.apps import apps as django_apps

    importlib.import_module("warmysender.accounts.migrations.0002_plans").add_plans(
        django_apps, None
    )


@pytest.fixture
def tenant(db: None) -> Tenant:
    return make_tenant("acme")


@pytest.fixture
def outsider(db: None) -> Tenant:
    """Another workspace: nothing of `tenant` may be visible to it, and the reverse."""
    return make_tenant("other")


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_client(raw_key: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {raw_key}"})


# --- browser tests: Debian's Chromium driven by Playwright (never a downloaded browser) ---------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }
