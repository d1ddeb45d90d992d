"""``archive verify`` and the archive part of ``audit verify``: every archived batch's
file against the hash the audit trail sealed.

For each ``batch.archived`` entry (keyed and chained: its hash cannot be changed without
the audit key) and each ``archived_batch`` row: the row agrees with its entry; the file
exists and its SHA-256 is the sealed one; the record in it still has its content hash;
each entry of its audit slice is the live chain's entry of that id, unchanged. A row
without an entry, an entry without a row, a missing or changed file: each is named.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..exports.record import content_hash
from ..models import ArchivedBatch, AuditEvent, Batch
from . import files
from .moving import ARCHIVE_OBJECT, ARCHIVED_ACTION

_CHUNK = 500


def _entries(s: Session, batch_id: str | None) -> dict[int, AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.object_type == ARCHIVE_OBJECT, AuditEvent.action == ARCHIVED_ACTION)
    if batch_id is not None:
        stmt = stmt.where(AuditEvent.object_id == batch_id)
    return {ev.id: ev for ev in s.scalars(stmt)}


def _slice_problems(s: Session, name: str, entries: list[dict[str, Any]]) -> list[str]:
    problems = []
    ids = [int(e["id"]) for e in entries]
    live: dict[int, str] = {}
    for i in range(0, len(ids), _CHUNK):
        rows = s.execute(select(AuditEvent.id, AuditEvent.hash).where(AuditEvent.id.in_(ids[i : i + _CHUNK])))
        live.update({entry_id: digest for entry_id, digest in rows})
    for e in entries:
        if live.get(int(e["id"])) != e.get("hash"):
            problems.append(f"archive of {name}: audit entry {e['id']} differs from the live audit trail")
    return problems


def check_one(
    s: Session, settings: Settings, row: ArchivedBatch | None, entry: AuditEvent | None, name: str
) -> list[str]:
    if entry is None:
        return [
            f"archive of {name}: no batch.archived audit entry records it (archived_batch row added outside Batchline)"
        ]
    try:
        sealed = json.loads(entry.new or "{}")
    except ValueError:
        return [f"archive of {name}: audit entry {entry.id} is not readable"]
    if row is None:
        return [
            f"archive of {name}: audit entry {entry.id} archived it but its archived_batch row is missing (deleted)"
        ]
    if row.content_hash != sealed.get("sha256") or row.location != sealed.get("location"):
        return [f"archive of {name}: archived_batch row does not match audit entry {entry.id} (edited)"]
    try:
        content = files.read(settings, row.location, sealed["sha256"])
    except files.ArchiveUnreadable as exc:
        return [f"archive of {name}: {exc.message}"]
    record = content.get("record") or {}
    if content_hash(record) != record.get("content_hash") or record.get("content_hash") != row.record_hash:
        return [f"archive of {name}: the archived record does not match its content hash"]
    return _slice_problems(s, name, content.get("audit_slice") or [])


def problems(s: Session, settings: Settings, batch_id: str | None = None) -> tuple[int, list[str]]:
    """(archives checked, problems) for every archived batch, or the one named."""
    entries = _entries(s, batch_id)
    stmt = select(ArchivedBatch, Batch.batch_id).join(Batch, Batch.id == ArchivedBatch.batch_id)
    if batch_id is not None:
        stmt = stmt.where(Batch.batch_id == batch_id)
    out: list[str] = []
    checked = 0
    seen: set[int] = set()
    for row, name in s.execute(stmt):
        checked += 1
        entry = entries.get(row.audit_event_id)
        if entry is not None and entry.object_id != name:
            entry = None
        seen.add(row.audit_event_id)
        out += check_one(s, settings, row, entry, name)
    for entry_id, entry in sorted(entries.items()):
        if entry_id not in seen:
            checked += 1
            out += check_one(s, settings, None, entry, entry.object_id)
    return checked, out
