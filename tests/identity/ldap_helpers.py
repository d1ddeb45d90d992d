"""What the directory tests share besides fixtures."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from engine.models import AuditEvent, AuthFailure, User


def new_uid(prefix: str = "p") -> str:
    """A user id no other test (nor the other database's run) uses in the shared directory."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def account(rt, username: str) -> User | None:
    with rt.transaction() as s:
        u = s.scalars(select(User).where(User.username == username)).first()
        if u is not None:
            s.expunge(u)
        return u


def trail(rt, object_id: str) -> list[AuditEvent]:
    with rt.transaction() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.object_id == object_id).order_by(AuditEvent.id)))
        for r in rows:
            s.expunge(r)
        return rows


def actions(rt, object_id: str) -> list[str]:
    return [e.action for e in trail(rt, object_id)]


def failures_counted(rt) -> int:
    with rt.transaction() as s:
        return s.scalar(select(func.count()).select_from(AuthFailure)) or 0
