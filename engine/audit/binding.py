"""Binding the batch record into the audit chain.

The audit entry that records a ``step``, ``signature`` or ``correction`` row carries the
hash of the whole row (and the row's own content hash: a step's ``values_hash``, a
signature's ``content_hash``). The entry is sealed with the audit key, so a row changed
afterwards — even with its ``values_hash`` recomputed — no longer matches the entry that
recorded it, and a row inserted or deleted behind Batchline's back has no entry, or an
entry without its row. ``verify`` checks every row against its entry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ..models import (
    BatchDisposition,
    Correction,
    EquipmentLogEntry,
    ExceptionDisposition,
    LotMovement,
    Qualification,
    Signature,
    Step,
)
from ..workflow_store import canonical, sha256

#: the record tables bound into the chain, and each one's own content-hash column
BOUND_TABLES: dict[str, tuple[Any, str | None]] = {
    "step": (Step, "values_hash"),
    "signature": (Signature, "content_hash"),
    "correction": (Correction, None),
    "exception_disposition": (ExceptionDisposition, "content_hash"),
    "batch_disposition": (BatchDisposition, "content_hash"),
    "qualification": (Qualification, "content_hash"),
    "equipment_log_entry": (EquipmentLogEntry, None),
    "lot_movement": (LotMovement, None),
}


def utc_text(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_text(value)
    return value.isoformat() if isinstance(value, date) else value  # a qualification's valid_until


def row_hash(row: Any) -> str:
    """SHA-256 of every column of a record row, as stored (dialect-independent text)."""
    table = row.__table__
    return sha256(canonical({"table": table.name, **{c.name: _plain(getattr(row, c.key)) for c in table.columns}}))


def table_of(row: Any) -> str:
    name = row.__table__.name
    if name not in BOUND_TABLES:
        raise ValueError(f"{name} rows are not bound into the audit trail")
    return name


def binding(row: Any) -> dict[str, Any]:
    """What an audit entry carries about one record row (ids are known: flushed)."""
    name = table_of(row)
    own = BOUND_TABLES[name][1]
    out: dict[str, Any] = {"table": name, "id": row.id, "row_hash": row_hash(row)}
    if own is not None:
        out[own] = getattr(row, own)
    return out


def bound_text(rows: list[Any]) -> str | None:
    return canonical([binding(r) for r in rows]) if rows else None
