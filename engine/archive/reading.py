"""Reading an archived batch: what the API and the batch page say about its archive, and
its record served from the archive file — only after the file's SHA-256 matched the hash
the audit trail sealed. A missing or changed file is an error the reader sees, never a
record quietly rebuilt from whatever is left in the live tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import ArchivedBatch, Batch
from ..runtime import Runtime
from . import files


def archived_row(s: Session, batch_pk: int) -> ArchivedBatch | None:
    return s.get(ArchivedBatch, batch_pk)


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


def status(rt: Runtime, s: Session, batch_pk: int) -> dict[str, Any] | None:
    """The batch's archive with ``verified`` (the file matches its hash) and, if not, why."""
    row = archived_row(s, batch_pk)
    if row is None:
        return None
    out = describe(row)
    try:
        content = files.read(rt.settings, row.location, row.content_hash)
        out["verified"] = content.get("record", {}).get("content_hash") == row.record_hash
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
        location, digest, record_hash = row.location, row.content_hash, row.record_hash
    content = files.read(rt.settings, location, digest)
    record = dict(content["record"])
    if record.get("content_hash") != record_hash:
        raise files.ArchiveUnreadable(
            f"archive file {location}: its record is not the one archived", code="archive_changed"
        )
    record["generated_at"] = datetime.now(UTC).isoformat()
    return record
