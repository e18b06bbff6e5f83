"""Every state change for people, workspaces, roles, invitations and API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.db.models.functions import Lower

from warmysender.accounts.models import (
    ApiKey,
    ApiScope,
    Invitation,
    Membership,
    Plan,
    Role,
    Subscription,
    SubscriptionStatus,
    User,
    Workspace,
)
from warmysender.accounts.quotas import check_member_capacity, check_workspace_capacity
from warmysender.audit.services import Actor, record_audit

TRIAL_DAYS = 7
API_KEY_PREFIX = "ws_"
INVITATION_SALT = "warmysender.invitation"


class AccountError(Exception):
    """A request that cannot be carried out; the message is shown to the person as is."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


# --- people and workspaces -------------------------------------------------------------------


def sign_up(
    *, email: str, password: str, workspace_name: str, now: datetime, name: str = ""
) -> User:
    """Create the user, their first workspace (as owner) and, with billing on, a Pro trial."""
    email = email.strip().lower()
    with transaction.atomic():
        if User.objects.annotate(e=Lower("email")).filter(e=email).exists():
            raise AccountError(
                "An account with this email already exists.", code="conflict", field="email"
            )
        user = User.objects.create_user(email=email, password=password, name=name)
        if settings.BILLING_ENABLED:
            Subscription.objects.create(
                user=user,
                plan=Plan.objects.get(code="pro"),
                status=SubscriptionStatus.TRIALING,
                trial_ends_at=now + timedelta(days=TRIAL_DAYS),
            )
        workspace = _create_workspace(user, workspace_name or "My workspace", now)
        user.current_workspace = workspace
        user.save(update_fields=["current_workspace"])
    return user


def create_workspace(*, user: User, name: str, now: datetime) -> Workspace:
    with transaction.atomic():
        check_workspace_capacity(user, now)
        workspace = _create_workspace(user, name, now)
        user.current_workspace = workspace
        user.save(update_fields=["current_workspace"])
    return workspace


def _create_workspace(user: User, name: str, now: datetime) -> Workspace:
    name = name.strip()
    if not name:
        raise AccountError("A workspace needs a name.", field="name")
    if len(name) > 100:
        raise AccountError("A workspace name has at most 100 characters.", field="name")
    workspace = Workspace.objects.create(name=name, owner=user)
    Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    record_audit(
        workspace=workspace,
        actor=Actor.person(user),
        action="workspace.created",
        obj=workspace,
        to_state="active",
        now=now,
    )
    return workspace


def switch_workspace(*, user: User, workspace: Workspace) -> None:
    if not Membership.objects.filter(user=user, workspace=workspace).exists():
        raise AccountError("You are not a member of that workspace.", code="not_found")
    user.current_workspace = workspace
    user.save(update_fields=["current_workspace"])


# --- roles -----------------------------------------------------------------------------------


def change_role(*, membership: Membership, role: str, actor: User, now: datetime) -> Membership:
    if role not in (Role.ADMIN, Role.MEMBER):
        raise AccountError("The role must be admin or member.", field="role")
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.role == Role.OWNER:
            raise AccountError("The owner's role cannot be changed.", code="forbidden")
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        record_audit(
            workspace=membership.workspace,
            actor=Actor.person(actor),
            action="member.role_changed",
            obj=membership,
            from_state=old,
            to_state=role,
            data={"email": membership.user.email},
            now=now,
        )
    return membership


def remove_member(*, membership: Membership, actor: User, now: datetime) -> None:
    with transaction.atomic():
        if membership.role == Role.OWNER:
            raise AccountError("The owner cannot be removed from the workspace.", code="forbidden")
        record_audit(
            workspace=membership.workspace,
            actor=Actor.person(actor),
            action="member.removed",
            obj=membership,
            from_state=membership.role,
            data={"email": membership.user.email},
            now=now,
        )
        user = membership.user
        membership.delete()
        if user.current_workspace_id == membership.workspace_id:
            user.current_workspace = None
            user.save(update_fields=["current_workspace"])


# --- invitations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str


def invite(
    *, workspace: Workspace, email: str, role: str, actor: User, now: datetime
) -> IssuedInvitation:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise AccountError("Enter a valid email address.", field="email") from exc
    if role not in (Role.ADMIN, Role.MEMBER):
        raise AccountError("The role must be admin or member.", field="role")
    with transaction.atomic():
        # Serialise invitations per workspace so two admins cannot both take the last seat.
        Workspace.objects.select_for_update().get(pk=workspace.pk)
        if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
            raise AccountError(f"{email} is already a member.", code="conflict", field="email")
        Invitation.objects.filter(
            workspace=workspace,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__lte=now,
        ).update(revoked_at=now)
        if Invitation.objects.filter(
            workspace=workspace,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        ).exists():
            raise AccountError(
                f"{email} already has a pending invitation.", code="conflict", field="email"
            )
        check_member_capacity(workspace, now)
        invitation = Invitation.objects.create(
            workspace=workspace,
            email=email,
            role=role,
            invited_by=actor,
            created_at=now,
            expires_at=now + timedelta(days=settings.INVITATION_MAX_AGE_DAYS),
        )
        record_audit(
            workspace=workspace,
            actor=Actor.person(actor),
            action="invitation.created",
            obj=invitation,
            to_state="pending",
            data={"email": email, "role": role},
            now=now,
        )
    token = signing.dumps({"i": invitation.pk, "w": str(workspace.pk)}, salt=INVITATION_SALT)
    transaction.on_commit(lambda: _send_invitation_email(invitation, token))
    return IssuedInvitation(invitation, token)


def _send_invitation_email(invitation: Invitation, token: str) -> None:
    from django.core.mail import send_mail

    link = f"{settings.SITE_URL}/invitations/{token}/"
    send_mail(
        subject=f"You are invited to {invitation.workspace.name} on WarmySender",
        message=(
            f"{invitation.invited_by.email if invitation.invited_by else 'A teammate'} invited you "
            f"to join the workspace {invitation.workspace.name} as {invitation.role}.\n\n"
            f"Accept the invitation: {link}\n\n"
            f"The link expires in {settings.INVITATION_MAX_AGE_DAYS} days."
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


def invitation_from_token(token: str, now: datetime) -> Invitation:
    max_age = timedelta(days=settings.INVITATION_MAX_AGE_DAYS)
    try:
        payload = signing.loads(token, salt=INVITATION_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise AccountError(
            "This invitation has expired; ask for a new one.", code="expired"
        ) from exc
    except signing.BadSignature as exc:
        raise AccountError("This invitation link is not valid.", code="invalid") from exc
    invitation = (
        Invitation.objects.select_related("workspace")
        .filter(pk=payload.get("i"), workspace_id=payload.get("w"))
        .first()
    )
    if invitation is None or invitation.revoked_at is not None:
        raise AccountError("This invitation was withdrawn.", code="invalid")
    if invitation.accepted_at is not None:
        raise AccountError("This invitation was already used.", code="used")
    if invitation.expires_at <= now:
        raise AccountError("This invitation has expired; ask for a new one.", code="expired")
    return invitation


def accept_invitation(*, invitation: Invitation, user: User, now: datetime) -> Membership:
    if user.email.lower() != invitation.email.lower():
        raise AccountError(
            f"This invitation is for {invitation.email}; log in with that address to accept it.",
            code="forbidden",
        )
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at is not None or invitation.revoked_at is not None:
            raise AccountError("This invitation is no longer valid.", code="used")
        invitation.accepted_at = now
        invitation.save(update_fields=["accepted_at"])
        membership, _ = Membership.objects.get_or_create(
            workspace=invitation.workspace, user=user, defaults={"role": invitation.role}
        )
        user.current_workspace = invitation.workspace
        user.save(update_fields=["current_workspace"])
        record_audit(
            workspace=invitation.workspace,
            actor=Actor.person(user),
            action="invitation.accepted",
            obj=invitation,
            from_state="pending",
            to_state="accepted",
            now=now,
        )
    return membership


def revoke_invitation(*, invitation: Invitation, actor: User, now: datetime) -> None:
    with transaction.atomic():
        updated = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=now)
        if updated:
            record_audit(
                workspace=invitation.workspace,
                actor=Actor.person(actor),
                action="invitation.revoked",
                obj=invitation,
                from_state="pending",
                to_state="revoked",
                now=now,
            )


# --- API keys --------------------------------------------------------------------------------


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    raw: str  # shown once, never stored


def create_api_key(
    *, workspace: Workspace, name: str, scopes: list[str], actor: User, now: datetime
) -> IssuedKey:
    name = name.strip()
    if not name:
        raise AccountError("Give the key a name.", field="name")
    if len(name) > 100:
        raise AccountError("A key name has at most 100 characters.", field="name")
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown:
        raise AccountError(f"Unknown scope(s): {', '.join(unknown)}.", field="scopes")
    if not scopes:
        raise AccountError("Choose at least one scope.", field="scopes")
    raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        key = ApiKey.objects.create(
            workspace=workspace,
            name=name,
            prefix=raw[:10],
            key_hash=hash_api_key(raw),
            scopes=sorted(set(scopes)),
            created_by=actor,
            created_at=now,
        )
        record_audit(
            workspace=workspace,
            actor=Actor.person(actor),
            action="api_key.created",
            obj=key,
            to_state="active",
            data={"name": name, "scopes": key.scopes, "prefix": key.prefix},
            now=now,
        )
    return IssuedKey(key, raw)


def revoke_api_key(*, key: ApiKey, actor: User, now: datetime) -> None:
    with transaction.atomic():
        if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
            record_audit(
                workspace=key.workspace,
                actor=Actor.person(actor),
                action="api_key.revoked",
                obj=key,
                from_state="active",
                to_state="revoked",
                data={"prefix": key.prefix},
                now=now,
            )


# --- log-in throttling -----------------------------------------------------------------------


def login_locked_until(email: str, ip: str, now: datetime) -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT locked_until FROM accounts_loginthrottle WHERE email = %s AND ip = %s",
            [email.strip().lower(), ip],
        )
        row = cursor.fetchone()
    if row and row[0] and row[0] > now:
        return row[0]
    return None


def register_login_failure(email: str, ip: str, now: datetime) -> datetime | None:
    """Count a failure; the Nth within the window locks the pair. Returns the lock end, if any.

    One statement, so concurrent failures on several web processes count exactly.
    """
    window = timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    params: dict[str, Any] = {
        "email": email.strip().lower(),
        "ip": ip,
        "now": now,
        "window": window,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO accounts_loginthrottle (email, ip, failures, first_failure_at, locked_until)
            VALUES (%(email)s, %(ip)s, 1, %(now)s, NULL)
            ON CONFLICT (email, ip) DO UPDATE SET
                failures = CASE
                    WHEN accounts_loginthrottle.first_failure_at <= %(now)s - %(window)s
                         OR accounts_loginthrottle.locked_until <= %(now)s
                    THEN 1 ELSE accounts_loginthrottle.failures + 1 END,
                first_failure_at = CASE
                    WHEN accounts_loginthrottle.first_failure_at <= %(now)s - %(window)s
                         OR accounts_loginthrottle.locked_until <= %(now)s
                    THEN %(now)s ELSE accounts_loginthrottle.first_failure_at END,
                locked_until = CASE
                    WHEN accounts_loginthrottle.locked_until <= %(now)s THEN NULL
                    ELSE accounts_loginthrottle.locked_until END
            RETURNING failures, locked_until
            """,
            params,
        )
        failures, locked_until = cursor.fetchone()
        if failures >= settings.LOGIN_LOCKOUT_FAILURES and locked_until is None:
            locked_until = now + window
            cursor.execute(
                "UPDATE accounts_loginthrottle SET locked_until = %s WHERE email = %s AND ip = %s",
                [locked_until, email.strip().lower(), ip],
            )
    return locked_until


def clear_login_failures(email: str, ip: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM accounts_loginthrottle WHERE email = %s AND ip = %s",
            [email.strip().lower(), ip],
        )
