"""``audit verify``: recompute the chain under the key, check the record against it, and
(on request) the anchors outside the database.

What each check catches: an edited entry (any column) no longer matches its HMAC; a
deleted, inserted or reordered entry breaks ``prev_hash``; entries cut at the end no
longer reach the head; a re-chained trail (every hash recomputed, with plain SHA-256 or
a wrong key) fails the HMAC; an unkeyed entry after the first keyed one is a downgrade;
a ``step``, ``signature`` or ``correction`` row changed after it was recorded (a step's
``values_hash`` recomputed included) no longer matches its entry, and a row without an
entry (inserted behind Batchline's back) or an entry without its row (deleted) is named;
an anchored head missing or changed shows a rollback or truncation; an archived batch's
file missing or changed, or its row or entry gone, is named (``engine.archive.check``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..models import AuditEvent, AuditHead, Batch
from ..vocabulary import AuditScheme
from ..workflow_store import canonical, sha256
from .anchors import AnchorCheck, compare, read_anchors
from .binding import BOUND_TABLES, row_hash
from .chain import GENESIS, KEYED_ACTION, expected_hash, session_keys


@dataclass
class VerifyResult:
    ok: bool
    entries: int
    problems: list[str]
    #: entries written before the audit key (plain SHA-256), accepted only before the first keyed one
    legacy_entries: int = 0
    #: record rows checked against their entries, and older rows the legacy part covers
    record_rows: int = 0
    legacy_rows: int = 0
    key: str = ""
    anchors: dict[str, Any] | None = None
    signatures: dict[str, Any] | None = None
    #: archived batches whose file was checked against the trail (engine.archive)
    archives: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "entries": self.entries,
            "problems": self.problems,
            "legacy_entries": self.legacy_entries,
            "record_rows": self.record_rows,
            "legacy_rows": self.legacy_rows,
            "key": self.key,
            "archives": self.archives,
        }
        if self.anchors is not None:
            out["anchors"] = self.anchors
        if self.signatures is not None:
            out["signatures"] = self.signatures
        return out


@dataclass
class _Walk:
    problems: list[str] = field(default_factory=list)
    count: int = 0
    legacy: int = 0
    keyed: int = 0
    last_id: int = 0
    prev: str = GENESIS
    #: (table, row id) -> (entry id, binding)
    bound: dict[tuple[str, int], tuple[int, dict[str, Any]]] = field(default_factory=dict)
    legacy_rows: dict[str, int] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)


def _walk_chain(session: Session, wanted: set[int], limit: int) -> _Walk:
    keys = session_keys(session)
    w = _Walk()
    for ev in session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars():
        w.count += 1
        if ev.prev_hash != w.prev:
            w.problems.append(f"entry {ev.id}: does not follow the entry before it (deleted or reordered rows)")
        if ev.scheme == AuditScheme.KEYED:
            w.keyed += 1
        elif ev.scheme == AuditScheme.LEGACY and not w.keyed:
            w.legacy += 1
        else:
            w.problems.append(
                f"entry {ev.id}: not sealed with the audit key (scheme {ev.scheme!r} after keyed entries)"
            )
        if expected_hash(keys, ev) != ev.hash:
            w.problems.append(f"entry {ev.id}: content does not match its hash (edited, or sealed with another key)")
        if ev.scheme == AuditScheme.KEYED:
            # a broken entry is reported above; its rows are still compared with what it
            # says (only keyed entries bind: a trail downgraded to legacy binds nothing)
            _collect(w, ev)
        if ev.id in wanted:
            w.hashes[ev.id] = ev.hash
        w.prev = ev.hash
        w.last_id = ev.id
        if len(w.problems) >= limit:
            break
    return w


def _collect(w: _Walk, ev: AuditEvent) -> None:
    """The record rows a keyed entry binds (and, from the first keyed entry only, the
    legacy seal's row ids)."""
    try:
        if ev.action == KEYED_ACTION and ev.object_type == "audit" and ev.new and w.keyed == 1:
            w.legacy_rows = dict(json.loads(ev.new).get("legacy_rows") or {})
        items = json.loads(ev.bound) if ev.bound else []
        keys = [((item["table"], int(item["id"])), item) for item in items]
    except (ValueError, TypeError, KeyError, AttributeError):
        w.problems.append(f"entry {ev.id}: its record binding is not readable (edited)")
        return
    for key, item in keys:
        if key in w.bound:
            w.problems.append(f"entry {ev.id}: {key[0]} row {key[1]} is bound already by entry {w.bound[key][0]}")
        w.bound[key] = (ev.id, item)


def _check_head(session: Session, w: _Walk) -> None:
    head = session.get(AuditHead, 1)
    if head is None:
        if w.count:
            w.problems.append("audit head missing")
    elif head.last_hash != w.prev or head.last_id != w.last_id:
        w.problems.append(
            f"the newest entry is {w.last_id} but the trail recorded {head.last_id} (entries removed at the end)"
        )


def _where(table: str, row: Any, names: dict[int, str]) -> str:
    """How a problem names a record row: its batch and step where the row has them."""
    seq = row.seq if table == "step" else getattr(row, "step_seq", None)
    batch_pk = getattr(row, "batch_id", None)
    if batch_pk is None:
        return f"{table} {row.id}"
    return f"{table} {row.id} (batch {names.get(batch_pk, batch_pk)}" + (f", step {seq})" if seq is not None else ")")


def _check_record(session: Session, w: _Walk, limit: int) -> tuple[int, int]:
    """Every record row against the entry that recorded it; returns (rows checked, legacy rows)."""
    names = {pk: name for pk, name in session.execute(select(Batch.id, Batch.batch_id))}
    checked = legacy = 0
    for table, (model, own) in BOUND_TABLES.items():
        for row in session.execute(select(model).order_by(model.id)).scalars():
            where = _where(table, row, names)
            found = w.bound.pop((table, row.id), None)
            if table == "step" and sha256(canonical(row.values)) != row.values_hash:
                w.problems.append(f"{where}: values_hash does not match its values (edited)")
            if found is None:
                if row.id <= int(w.legacy_rows.get(table, 0)):
                    legacy += 1
                else:
                    w.problems.append(f"{where}: recorded by no audit entry (inserted outside Batchline)")
            else:
                checked += 1
                entry_id, item = found
                if item["row_hash"] != row_hash(row) or (own is not None and item.get(own) != getattr(row, own)):
                    w.problems.append(f"{where}: does not match audit entry {entry_id} (edited after it was recorded)")
            if len(w.problems) >= limit:
                return checked, legacy
    for (table, row_id), (entry_id, _item) in sorted(w.bound.items()):
        w.problems.append(f"audit entry {entry_id}: its {table} row {row_id} is missing (deleted)")
    return checked, legacy


def verify(
    session: Session,
    limit_problems: int = 50,
    *,
    settings: Settings | None = None,
    anchors: bool = False,
    signatures: bool = False,
) -> VerifyResult:
    """Recompute the chain from the first entry and check the record against it; with
    ``anchors`` (needs ``settings``) also every anchored head; with ``signatures`` every
    signature's content hash recomputed from the record."""
    keys = session_keys(session)
    check: AnchorCheck | None = None
    if anchors:
        if settings is None:
            raise ValueError("verify(anchors=True) needs the settings (where the anchor file is)")
        check = read_anchors(settings, keys)
    w = _walk_chain(session, set(check.heads) if check else set(), limit_problems)
    if len(w.problems) < limit_problems:
        _check_head(session, w)
    rows, legacy_rows = _check_record(session, w, limit_problems) if len(w.problems) < limit_problems else (0, 0)
    result = VerifyResult(
        ok=False,
        entries=w.count,
        problems=w.problems,
        legacy_entries=w.legacy,
        record_rows=rows,
        legacy_rows=legacy_rows,
        key=keys.fingerprint,
    )
    from ..quality import integrity  # exception rows: fingerprint and status against the trail

    result.problems += [p["message"] for p in integrity.problems(session)]
    result.problems += integrity.rule_set_problems(session) + integrity.disposition_problems(session)
    if settings is not None:  # each archived batch's file against the hash the trail sealed
        from ..archive.check import problems as archive_problems

        result.archives, found = archive_problems(session, settings)
        result.problems += found
    if check is not None:
        compare(check, w.hashes, w.keyed)
        result.anchors = check.to_dict()
        result.problems += check.problems
    if signatures:
        from ..batches.signature_check import check_signatures

        sig = check_signatures(session)
        result.signatures = sig
        result.problems += sig["problems"]
    result.ok = not result.problems
    return result
