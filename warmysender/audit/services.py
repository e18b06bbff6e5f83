"""Writing audit rows and domain events. Callers are services already inside a transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from warmysender.accounts.models import ApiKey, User, Workspace
from warmysender.audit.models import AuditEntry, DomainEvent


@dataclass(frozen=True)
class Actor:
    """Who caused a change, as recorded in the audit trail."""

    label: str
    user: User | None = None

    @classmethod
    def person(cls, user: User) -> Actor:
        return cls(label=f"user:{user.email}", user=user)

    @classmethod
    def api_key(cls, key: ApiKey) -> Actor:
        return cls(label=f"api_key:{key.prefix}", user=None)

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(label=f"system:{what}")


def record_audit(
    *,
    workspace: Workspace,
    actor: Actor,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: str = "",
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: datetime,
) -> AuditEntry:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit rows are written inside the transaction of the change")
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(obj.pk)
    return AuditEntry.objects.create(
        workspace=workspace,
        created_at=now,
        actor_user=actor.user,
        actor_label=actor.label,
        action=action,
        object_type=object_type,
        object_id=object_id,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        data=data or {},
    )


def emit_event(
    *,
    workspace: Workspace,
    type: str,
    data: dict[str, Any],
    now: datetime,
    dedup_key: str | None = None,
) -> bool:
    """Add an event to the outbox. Returns False when an event with the same dedup key exists."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events are written inside the transaction of the change")
    event = DomainEvent(
        workspace=workspace, type=type, data=data, occurred_at=now, dedup_key=dedup_key
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO audit_domainevent (id, workspace_id, type, occurred_at, data, dedup_key)
            VALUES (%s, %s, %s, %s, %s::jsonb, %s)
            ON CONFLICT (workspace_id, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
            """,
            [event.id, workspace.pk, type, now, _json(data), dedup_key],
        )
        return cursor.rowcount == 1


def _json(data: dict[str, Any]) -> str:
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    return json.dumps(data, cls=DjangoJSONEncoder)
