"""The audit trail: append-only, each entry chained to the previous one and sealed.

21 CFR 11.10(e) / Annex 11 §9: who, server UTC time, action, object, field, old value,
new value, reason; never overwritten. Each entry's hash covers all of these, the record
rows it binds (``binding``) and the previous entry's hash, as an HMAC-SHA256 under the
audit key (``keys``): someone who can write to the database but does not hold the key
cannot recompute a chain that verifies. Appends take a lock on the single ``audit_head``
row, which also records the newest entry, so deleting the newest rows is detected too.

Entries written before the key existed (scheme ``sha256``) keep their plain hashes: a
migration cannot re-key them without the key. The first append with the key writes an
``audit.keyed`` entry that seals that legacy part (how many entries, and the highest
record row ids it covers); from then on only keyed entries are accepted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import row_locks
from ..models import AuditEvent, AuditHead, utcnow
from ..vocabulary import AuditScheme
from .binding import BOUND_TABLES, bound_text, utc_text
from .keys import AuditKeyError, AuditKeys

GENESIS = "0" * 64
#: ``Session.info`` keys: the runtime's KeySource, the locked head, anchoring hints
KEYS_INFO = "audit_keys"
HEAD_INFO = "audit_head"
HEAD_START_INFO = "audit_head_start"
ANCHOR_NOW_INFO = "audit_anchor_now"
#: the action of the entry that seals the legacy (unkeyed) part of a trail
KEYED_ACTION = "audit.keyed"


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def legacy_hash(
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
    """The plain SHA-256 of entries written before the audit key (scheme ``sha256``)."""
    payload = json.dumps(
        [prev_hash, utc_text(at), user, action, object_type, object_id, field, old, new, reason],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def keyed_hash(keys: AuditKeys, ev: AuditEvent) -> str:
    """HMAC-SHA256 of every column of an entry but its own hash."""
    payload = json.dumps(
        [
            AuditScheme.KEYED.value,
            ev.id,
            ev.prev_hash,
            utc_text(ev.at),
            ev.user,
            ev.action,
            ev.object_type,
            ev.object_id,
            ev.field,
            ev.old,
            ev.new,
            ev.reason,
            ev.bound,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return keys.seal(payload)


def expected_hash(keys: AuditKeys, ev: AuditEvent) -> str:
    if ev.scheme == AuditScheme.KEYED:
        return keyed_hash(keys, ev)
    return legacy_hash(
        ev.prev_hash, ev.at, ev.user, ev.action, ev.object_type, ev.object_id, ev.field, ev.old, ev.new, ev.reason
    )


def session_keys(session: Session) -> AuditKeys:
    source = session.info.get(KEYS_INFO)
    if source is None:
        raise AuditKeyError("this database session has no audit key: use Runtime.transaction()")
    return source.get()


def _locked_head(session: Session) -> AuditHead:
    head = session.info.get(HEAD_INFO)  # locked once per transaction
    if head is not None:
        return head
    stmt = select(AuditHead).where(AuditHead.id == 1)
    if row_locks(session):
        stmt = stmt.with_for_update()
    head = session.scalars(stmt).first()
    if head is None:
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS, scheme=AuditScheme.KEYED)
        session.add(head)
        session.flush()
        session.info[ANCHOR_NOW_INFO] = True  # a new trail: its first entry is anchored at once
    session.info[HEAD_INFO] = head
    session.info.setdefault(HEAD_START_INFO, head.last_id)
    return head


def _append(session: Session, head: AuditHead, keys: AuditKeys, **columns: Any) -> AuditEvent:
    # ids are given here, under the head lock, so no flush is needed to learn them
    event = AuditEvent(id=head.last_id + 1, at=utcnow(), prev_hash=head.last_hash, scheme=AuditScheme.KEYED, **columns)
    event.hash = keyed_hash(keys, event)
    session.add(event)
    head.last_id = event.id
    head.last_hash = event.hash
    return event


def _seal_legacy(session: Session, head: AuditHead, keys: AuditKeys) -> None:
    """The first keyed append on a trail that has unkeyed entries: say, under the key,
    how far the legacy part goes (entries and record rows), so nothing can be added to
    it later."""
    rows = {name: session.scalar(select(func.max(model.id))) or 0 for name, (model, _own) in BOUND_TABLES.items()}
    _append(
        session,
        head,
        keys,
        user="system",
        action=KEYED_ACTION,
        object_type="audit",
        object_id="trail",
        field=None,
        old=None,
        new=_text({"legacy_entries": head.last_id, "legacy_rows": rows}),
        reason="the audit trail is sealed with the audit key from here on",
        bound=None,
    )
    head.scheme = AuditScheme.KEYED
    session.info[ANCHOR_NOW_INFO] = True


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
    binds: Iterable[Any] = (),
) -> AuditEvent:
    """Append one audit entry inside the caller's transaction. ``binds``: the ``step``,
    ``signature`` and ``correction`` rows this entry records (bound by their row hash)."""
    keys = session_keys(session)
    head = _locked_head(session)
    if head.scheme != AuditScheme.KEYED:
        if head.last_id:
            _seal_legacy(session, head, keys)
        head.scheme = AuditScheme.KEYED
        session.info[ANCHOR_NOW_INFO] = True
    rows = list(binds)
    if any(getattr(r, "id", None) is None for r in rows):
        session.flush()  # the rows' ids are part of what is bound
    return _append(
        session,
        head,
        keys,
        user=user,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        field=field,
        old=_text(old),
        new=_text(new),
        reason=reason,
        bound=bound_text(rows),
    )
