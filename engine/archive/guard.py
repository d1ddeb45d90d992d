"""Nothing is added to an archived batch's record: no step, signature, correction,
exception, disposition or release decision, and no exception changes status.

Why a flush hook and not a check in each path: every path that changes a record
(the step path, corrections, QA's dispositions, release, the jobs) writes through the
ORM; one hook on every session of the runtime refuses all of them alike, including
paths added later, with one clear message. The archive file is the record now, sealed
by its hash; a change to the live rows would make the two disagree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..errors import Conflict
from ..models import (
    ArchivedBatch,
    Batch,
    BatchDisposition,
    BatchException,
    Correction,
    ExceptionDisposition,
    Signature,
    Step,
)
from ..vocabulary import BatchState

if TYPE_CHECKING:
    from ..runtime import Runtime

_BY_BATCH = (Step, Signature, Correction, BatchException, BatchDisposition)
_DECIDED = (BatchState.RELEASED.value, BatchState.REJECTED.value)


def _batch_pks(session: Session) -> set[int]:
    pks: set[int] = set()
    for obj in session.new:
        if isinstance(obj, _BY_BATCH) and obj.batch_id is not None:
            pks.add(obj.batch_id)
        elif isinstance(obj, ExceptionDisposition) and obj.exception_id is not None:
            exc = session.get(BatchException, obj.exception_id)
            if exc is not None:
                pks.add(exc.batch_id)
    for obj in session.dirty:
        if isinstance(obj, BatchException) and session.is_modified(obj):
            pks.add(obj.batch_id)
    return pks


def _refuse_archived(session: Session, _context: Any, _instances: Any) -> None:
    pks = _batch_pks(session)
    if not pks:
        return
    with session.no_autoflush:
        # only a batch QA decided can be archived, and a decision is final: a batch the
        # session holds in another state needs no query (the step path holds its batch)
        decided = [pk for pk in pks if (b := session.get(Batch, pk)) is not None and b.state in _DECIDED]
        if not decided:
            return
        archived = session.scalars(
            select(Batch.batch_id).join(ArchivedBatch, ArchivedBatch.batch_id == Batch.id).where(Batch.id.in_(decided))
        ).first()
    if archived is not None:
        raise Conflict(
            f"batch {archived} is archived: its record is sealed in the archive and cannot be changed "
            "(no steps, corrections, dispositions or decisions)",
            code="batch_archived",
        )


def install(rt: Runtime) -> None:
    event.listen(rt.sessions, "before_flush", _refuse_archived)
