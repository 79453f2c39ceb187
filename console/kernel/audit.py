"""The audit trail: call `audit_record` inside the service's transaction."""

from __future__ import annotations

from typing import Any

from django.db import models

from console.kernel.audit_actions import AuditAction, AuditSource
from console.models import AuditEvent

__all__ = ["AuditAction", "AuditSource", "audit_event", "audit_record", "audit_records"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def audit_event(
    *,
    actor,
    action: AuditAction,
    obj: models.Model,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    source: AuditSource | str = "",
) -> AuditEvent:
    """One audit row, not saved: for audit_records, which writes many in one insert."""
    action = AuditAction(action)
    source = AuditSource(source) if source else ""
    return AuditEvent(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=getattr(actor, "get_username", lambda: "system")() if actor else "system",
        action=action,
        source=source,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=_jsonable(before or {}),
        after=_jsonable(after or {}),
        reason=reason,
    )


def audit_record(**fields) -> AuditEvent:
    """Write one audit row (audit_event's fields). `actor` is a user or None for background tasks;
    `action` is one of the closed list (a free string raises ValueError); `source` says where an
    automatic decision came from."""
    event = audit_event(**fields)
    event.save()
    return event


def audit_records(events: list[AuditEvent]) -> list[AuditEvent]:
    """Write the rows audit_event built, in one insert (a set of decisions made together)."""
    return AuditEvent.objects.bulk_create(events, batch_size=1000)
