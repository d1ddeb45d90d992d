"""The audit trail: append-only, each entry chained to the previous by SHA-256.

21 CFR 11.10(e) / Annex 11 §9: who, server UTC time, action, object, field, old value,
new value, reason; never overwritten. Every entry's hash covers its own fields and the
previous entry's hash, so an edited, deleted or reordered row breaks the chain and
``batchline audit verify`` names the first entry that does not fit. Appends take a lock
on the single ``audit_head`` row, which also records the newest entry, so deleting the
newest rows is detected too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import row_locks
from .models import AuditEvent, AuditHead, utcnow
from .workflow_store import sha256

GENESIS = "0" * 64


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    prev_hash: str,
    at: datetime,
    user: str,
    action: str,
    object_type: str,
    object_id: str,
    field: str | None,
    old: str | None,
    new: str | None,
    reason: str | None,
) -> str:
    payload = json.dumps(
        [prev_hash, _utc(at), user, action, object_type, object_id, field, old, new, reason],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return sha256(payload)


def record(
    session: Session,
    *,
    user: str,
    action: str,
    object_type: str,
    object_id: str,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
    reason: str | None = None,
) -> AuditEvent:
    """Append one audit entry inside the caller's transaction."""
    head = session.info.get("audit_head")  # locked once per transaction
    if head is None:
        stmt = select(AuditHead).where(AuditHead.id == 1)
        if row_locks(session):
            stmt = stmt.with_for_update()
        head = session.scalars(stmt).first()
        if head is None:
            head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
            session.add(head)
            session.flush()
        session.info["audit_head"] = head
    # Microsecond precision, no tz surprises: the hash covers exactly what is stored.
    at = utcnow()
    old_t, new_t = _text(old), _text(new)
    digest = entry_hash(head.last_hash, at, user, action, object_type, object_id, field, old_t, new_t, reason)
    # ids are given here, under the head lock, so no flush is needed to learn them
    event = AuditEvent(
        id=head.last_id + 1,
        at=at,
        user=user,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        field=field,
        old=old_t,
        new=new_t,
        reason=reason,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(event)
    head.last_id = event.id
    head.last_hash = digest
    return event


@dataclass
class VerifyResult:
    ok: bool
    entries: int
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "problems": self.problems}


def verify(session: Session, limit_problems: int = 20) -> VerifyResult:
    """Recompute the chain from the first entry; report every break found."""
    problems: list[str] = []
    prev = GENESIS
    count = 0
    last_id = 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
    for ev in rows:
        count += 1
        if ev.prev_hash != prev:
            problems.append(f"entry {ev.id}: does not follow the entry before it (deleted or reordered rows)")
        expected = entry_hash(
            ev.prev_hash, ev.at, ev.user, ev.action, ev.object_type, ev.object_id, ev.field, ev.old, ev.new, ev.reason
        )
        if expected != ev.hash:
            problems.append(f"entry {ev.id}: content does not match its hash (edited)")
        prev = ev.hash
        last_id = ev.id
        if len(problems) >= limit_problems:
            break
    head = session.get(AuditHead, 1)
    if head is not None and len(problems) < limit_problems:
        if head.last_hash != prev or head.last_id != last_id:
            problems.append(
                f"the newest entry is {last_id} but the trail recorded {head.last_id} (entries removed at the end)"
            )
    elif head is None and count:
        problems.append("audit head missing")
    return VerifyResult(ok=not problems, entries=count, problems=problems)
