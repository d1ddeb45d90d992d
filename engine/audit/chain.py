"""The audit trail: append-only, each entry chained to the previous one and sealed.

21 CFR 11.10(e) / Annex 11 §9: who, server UTC time, action, object, field, old value,
new value, reason; never overwritten. Each entry's hash covers all of these, the record
rows it binds (``binding``) and the previous entry's hash, as an HMAC-SHA256 under the
audit key (``keys``): someone who can write to the database but does not hold the key
cannot recompute a chain that verifies. Appends take a lock on the single ``audit_head``
row, which also records the newest entry, so deleting the newest rows is detected too.
``record`` only queues an entry in the transaction; the head is locked and the queued
entries chained at the commit (``flush_pending``), so every writer takes that one
global lock last and holds it for the commit alone, not for its whole transaction.

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

from sqlalchemy import Table, event, func, insert, select
from sqlalchemy.orm import Session

from ..db import row_locks
from ..models import AuditEvent, AuditHead, utcnow
from ..vocabulary import AuditScheme
from .binding import BOUND_TABLES, bound_text, table_of, utc_text
from .keys import AuditKeyError, AuditKeys

GENESIS = "0" * 64
#: ``Session.info`` keys: the runtime's KeySource, the locked head, anchoring hints
KEYS_INFO = "audit_keys"
HEAD_INFO = "audit_head"
HEAD_START_INFO = "audit_head_start"
HEAD_TX_INFO = "audit_head_transaction"
ANCHOR_NOW_INFO = "audit_anchor_now"
#: the entries recorded in this transaction, chained at its commit: [(entry, bound rows)]
PENDING_INFO = "audit_pending"
_TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]
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
    if head is not None and session.info.get(HEAD_TX_INFO) is session.get_transaction():
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
    session.info[HEAD_TX_INFO] = session.get_transaction()
    session.info[HEAD_START_INFO] = head.last_id
    return head


def _chain(head: AuditHead, keys: AuditKeys, entry: AuditEvent, at: datetime) -> dict[str, Any]:
    """Give one entry its place after the head (id, time, previous hash, seal); its row."""
    entry.id = head.last_id + 1
    entry.at = at
    entry.prev_hash = head.last_hash
    entry.scheme = AuditScheme.KEYED
    entry.hash = keyed_hash(keys, entry)
    head.last_id = entry.id
    head.last_hash = entry.hash
    return {c.key: getattr(entry, c.key) for c in _TABLE.columns}


def _legacy_seal(session: Session, head: AuditHead, bound: list[Any]) -> AuditEvent:
    """The first keyed append on a trail that has unkeyed entries: say, under the key,
    how far the legacy part goes (entries and record rows), so nothing can be added to
    it later. Rows this transaction binds (flushed already) are not legacy."""
    rows = {}
    for name, (model, _own) in BOUND_TABLES.items():
        mine = [r.id for r in bound if r.__table__.name == name]
        stmt = select(func.max(model.id))
        if mine:
            stmt = stmt.where(model.id < min(mine))
        rows[name] = session.scalar(stmt) or 0
    session.info[ANCHOR_NOW_INFO] = True
    return AuditEvent(
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


def flush_pending(session: Session) -> None:
    """Append the entries this transaction recorded to the chain now.

    Called by the ``before_commit`` hook (``install_commit_hook``), so the head row is
    locked only for the transaction's last statements and its commit; a caller that
    needs an entry's id, or reads back ``audit_event`` rows it recorded, calls it first
    (it then holds the head lock until it commits: call it after every other lock)."""
    pending: list[tuple[AuditEvent, list[Any]]] = session.info.get(PENDING_INFO) or []
    if not pending:
        return
    if any(getattr(r, "id", None) is None for _ev, rows in pending for r in rows) or session.new or session.dirty:
        session.flush()  # the bound rows as stored (ids included) are part of each seal
    keys = session_keys(session)
    head = _locked_head(session)
    batch = [ev for ev, _rows in pending]
    for ev, rows in pending:
        ev.bound = bound_text(rows)
    if head.scheme != AuditScheme.KEYED:
        if head.last_id:
            batch.insert(0, _legacy_seal(session, head, [r for _ev, rows in pending for r in rows]))
        head.scheme = AuditScheme.KEYED
        session.info[ANCHOR_NOW_INFO] = True
    at = utcnow()  # taken under the lock: times follow the chain order
    values = [_chain(head, keys, ev, at) for ev in batch]
    session.execute(insert(_TABLE), values)  # one executemany (Core)
    session.flush()  # the head's one UPDATE, under the lock taken above
    pending.clear()


def _before_commit(session: Session) -> None:
    flush_pending(session)


def _forget(session: Session, *_args: Any) -> None:
    """After the transaction ends the head lock is gone: nothing of it may be reused
    (a rolled-back transaction leaves no entry, and its pending entries are dropped)."""
    for key in (PENDING_INFO, HEAD_INFO, HEAD_TX_INFO, HEAD_START_INFO, ANCHOR_NOW_INFO):
        session.info.pop(key, None)


def install_commit_hook() -> None:
    """Chain pending entries at every commit of every ``Session`` (whichever factory
    made it: an entry recorded is never silently dropped by a session without it)."""
    if not event.contains(Session, "before_commit", _before_commit):
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_rollback", _forget)


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
    """Record one audit entry inside the caller's transaction. ``binds``: the ``step``,
    ``signature`` and ``correction`` rows this entry records (bound by their row hash).

    The entry joins the transaction's pending list; it is chained (id, time, previous
    hash, seal, binding) when the transaction commits, in the order entries were
    recorded. The returned entry has its ``id`` and ``hash`` once chained (after the
    commit, or ``flush_pending``)."""
    session_keys(session)  # no key: refused here, not at commit
    rows = list(binds)
    for r in rows:
        table_of(r)  # a table that is not bound: refused here
    entry = AuditEvent(
        user=user,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        field=field,
        old=_text(old),
        new=_text(new),
        reason=reason,
    )
    session.info.setdefault(PENDING_INFO, []).append((entry, rows))
    return entry


install_commit_hook()
