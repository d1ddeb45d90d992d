"""The QMS's deviation for an exception: opened (its number), status changed, closed
(with a CAPA reference). One deviation per exception (``qms_deviation.exception_id`` is
unique); every change is audited against the batch (field ``exception N``) and reported
as the outbox event ``qms.deviation.updated``. Applying the same news twice changes
nothing and records nothing (the QMS may repeat itself; at-least-once both ways).

Closing the deviation closes the exception (``engine.quality.exceptions.close_by_qms``: an
append-only ``close`` disposition with the CAPA reference, audited).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, outbox
from ..errors import Conflict, NotFound
from ..models import Batch, BatchException, EventSubscriber, QmsDeviation, utcnow

OPENED = "deviation.opened"
STATUS_CHANGED = "deviation.status_changed"
CLOSED = "deviation.closed"
TYPES = (OPENED, STATUS_CHANGED, CLOSED)


def describe(row: QmsDeviation) -> dict[str, Any]:
    return {"number": row.number, "status": row.status, "capa": row.capa, "updated_at": row.updated_at.isoformat()}


def for_exceptions(s: Session, exception_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Exception id -> its deviation {number, status, capa, updated_at} (core's describe)."""
    ids = list(exception_ids)
    if not ids:
        return {}
    rows = s.scalars(select(QmsDeviation).where(QmsDeviation.exception_id.in_(ids)))
    return {row.exception_id: describe(row) for row in rows}


def find_exception(s: Session, batch_id: str, exception_id: int) -> tuple[Batch, BatchException]:
    found = s.execute(
        select(Batch, BatchException)
        .join(BatchException, BatchException.batch_id == Batch.id)
        .where(Batch.batch_id == batch_id, BatchException.id == exception_id)
    ).first()
    if found is None:
        raise NotFound(
            f"batch {batch_id} has no exception {exception_id}",
            code="exception_not_found",
            details={"batch_id": batch_id, "exception_id": exception_id},
        )
    return found[0], found[1]


def _audit(s: Session, qms: str, batch: Batch, exc: BatchException, action: str, old: Any, new: Any) -> None:
    audit.record(
        s,
        user=f"qms:{qms}",
        action=action,
        object_type="batch",
        object_id=batch.batch_id,
        field=f"exception {exc.id}",
        old=old,
        new=new,
    )


def _close_exception(s: Session, rt, qms: str, batch: Batch, exc: BatchException, reference: str) -> None:
    """The deviation closed: so does the exception (``engine.quality``, audited there)."""
    from ..quality.exceptions import close_by_qms

    close_by_qms(s, rt, exc, reference, qms=qms)


def apply(s: Session, rt, subscriber: EventSubscriber, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """Apply one verified QMS message; answers what the deviation is now and whether
    anything changed. ``data`` is checked already (web/api/qms.py schemas)."""
    batch, exc = find_exception(s, data["exception"]["batch_id"], data["exception"]["id"])
    row = s.scalars(select(QmsDeviation).where(QmsDeviation.exception_id == exc.id)).one_or_none()
    number = data["deviation"]
    if row is not None and row.number != number:
        raise Conflict(
            f"exception {exc.id} is linked to deviation {row.number}, not {number}",
            code="deviation_mismatch",
            details={"number": row.number},
        )
    now = utcnow()
    changed = False
    if row is None:
        row = QmsDeviation(
            exception_id=exc.id, qms=subscriber.name, number=number, status="open", opened_at=now, updated_at=now
        )
        s.add(row)
        _audit(s, subscriber.name, batch, exc, "qms.deviation.opened", None, {"qms": subscriber.name, "number": number})
        changed = True
    if type_ == STATUS_CHANGED and row.status != data["status"]:
        _audit(s, subscriber.name, batch, exc, "qms.deviation.status_changed", row.status, data["status"])
        row.status, changed = data["status"], True
    if type_ == CLOSED and (row.status != "closed" or row.capa != data["capa"]):
        _audit(
            s,
            subscriber.name,
            batch,
            exc,
            "qms.deviation.closed",
            {"status": row.status, "capa": row.capa},
            {"status": "closed", "capa": data["capa"]},
        )
        row.status, row.capa, changed = "closed", data["capa"], True
        _close_exception(s, rt, subscriber.name, batch, exc, f"{number}, {data['capa']}")
    if changed:
        row.updated_at = now
        s.flush()
        outbox.emit(
            s,
            rt.settings,
            "qms.deviation.updated",
            batch.batch_id,
            {"batch_id": batch.batch_id, "exception": exc.id, "qms": subscriber.name, **describe(row)},
        )
    return {"exception": exc.id, "batch_id": batch.batch_id, "changed": changed, "deviation": describe(row)}
