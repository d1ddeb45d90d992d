"""Reading an archived batch: what the API and the batch page say about its archive, and
its record served from the archive file — only after the file's SHA-256 matched the hash
the audit trail sealed. A missing or changed file is an error the reader sees, never a
record quietly rebuilt from whatever is left in the live tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import ArchivedBatch, AuditEvent, Batch
from ..runtime import Runtime
from . import files


def archived_row(s: Session, batch_pk: int) -> ArchivedBatch | None:
    return s.get(ArchivedBatch, batch_pk)


def sealed(s: Session, row: ArchivedBatch) -> tuple[str, str]:
    """(location, SHA-256) as the ``batch.archived`` audit entry holds them, the entry's
    own seal checked under the audit key: a row re-pointed at another file, or an entry
    edited, is refused here, not only by ``audit verify``."""
    from ..audit import expected_hash, session_keys

    entry = s.get(AuditEvent, row.audit_event_id)
    try:
        new = json.loads(entry.new or "{}") if entry is not None else {}
    except ValueError:
        new = {}
    if entry is None or expected_hash(session_keys(s), entry) != entry.hash:
        raise files.ArchiveUnreadable(
            f"the audit entry sealing archive {row.location} is missing or changed", code="archive_changed"
        )
    if new.get("sha256") != row.content_hash or new.get("location") != row.location:
        raise files.ArchiveUnreadable(
            f"archive {row.location}: its row does not match the audit entry {entry.id}", code="archive_changed"
        )
    return row.location, row.content_hash


def describe(row: ArchivedBatch) -> dict[str, Any]:
    return {
        "archived_at": row.archived_at.astimezone(UTC).isoformat(),
        "archived_by": row.archived_by,
        "location": row.location,
        "sha256": row.content_hash,
        "record_content_hash": row.record_hash,
        "size": row.size,
        "audit_event_id": row.audit_event_id,
    }


def status(rt: Runtime, batch_pk: int) -> dict[str, Any] | None:
    """The batch's archive with ``verified`` (the file matches its hash) and, if not, why."""
    with rt.transaction(deferred=True) as s:
        row = archived_row(s, batch_pk)
        if row is None:
            return None
        out = describe(row)
        try:
            location, digest = sealed(s, row)
        except files.ArchiveUnreadable as exc:
            return {**out, "verified": False, "problem": exc.message}
    try:
        content = files.read(rt.settings, location, digest)
        out["verified"] = content.get("record", {}).get("content_hash") == out["record_content_hash"]
        out["problem"] = None if out["verified"] else "the archived record's content hash differs from the row's"
    except files.ArchiveUnreadable as exc:
        out["verified"] = False
        out["problem"] = exc.message
    return out


def archived_record(rt: Runtime, batch_id: str) -> dict[str, Any] | None:
    """The record of an archived batch, from its verified file (``generated_at`` now);
    None for a batch that is not archived; ArchiveUnreadable for a missing or changed file."""
    with rt.transaction(deferred=True) as s:
        pk = s.scalar(select(Batch.id).where(Batch.batch_id == batch_id))
        row = archived_row(s, pk) if pk is not None else None
        if row is None:
            return None
        (location, digest), record_hash = sealed(s, row), row.record_hash
    content = files.read(rt.settings, location, digest)
    record = dict(content["record"])
    if record.get("content_hash") != record_hash:
        raise files.ArchiveUnreadable(
            f"archive file {location}: its record is not the one archived", code="archive_changed"
        )
    record["generated_at"] = datetime.now(UTC).isoformat()
    return record
