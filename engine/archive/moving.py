"""Archiving one batch: seal its whole record into a file and remove its bulky live rows.

What moves and what stays (docs/archive.md):

* into the file: the complete record exactly as ``engine.exports.record`` builds it (the
  PDF, BatchML and ``record.json`` are made from it, so they stay the same after
  archiving), the batch's audit slice with its chain fields (re-checked entry by entry
  against the live chain), and the batch's workflow state (tasks, processes, task data),
  so nothing the system held about the batch is lost;
* removed from the live tables, in the same transaction that records the archive: the
  workflow rows (``workflow_task``, ``workflow_process``, ``workflow_state``, task data
  no other batch uses), message subscriptions, task assignments, finished jobs without
  an incident — the rows that make up most of a batch;
* kept live: the batch row (its id is never reused; lists and genealogy find it), and
  the append-only record rows (``step``, ``signature``, ``correction``, dispositions,
  ``task_time``) and every audit entry. They are small, the keyed chain binds them, and
  removing them would need the append-only triggers opened: Batchline never does that.

The archive is recorded by an ``archived_batch`` row and a ``batch.archived`` audit entry
carrying the file's SHA-256 (object type ``batch_archive``, like exports' ``batch_record``,
so the batch's own record — and its content hash — does not change by being archived).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from .. import audit, exports
from ..batches.unit_of_work import find_batch
from ..db import row_locks
from ..errors import Conflict
from ..models import (
    ArchivedBatch,
    AuditEvent,
    Batch,
    BatchDisposition,
    BatchException,
    Incident,
    Job,
    MessageSubscription,
    TaskAssignment,
    TaskData,
    WorkflowProcess,
    WorkflowState,
    WorkflowTask,
    utcnow,
)
from ..runtime import Runtime
from ..vocabulary import BatchState, ExceptionStatus, JobState
from . import files

#: the audit object type of archive entries (kept apart from the batch's own entries)
ARCHIVE_OBJECT = "batch_archive"
ARCHIVED_ACTION = "batch.archived"
#: QA's decisions after which a batch may be archived
DECIDED = (BatchState.RELEASED, BatchState.REJECTED)
_CHUNK = 500


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def check_archivable(s: Session, batch: Batch) -> None:
    """Only a finished production batch with QA's decision recorded, no exception still
    waiting (an escalated one's deviation may yet close it), not archived yet."""
    if s.get(ArchivedBatch, batch.id) is not None:
        raise Conflict(f"batch {batch.batch_id} is archived already", code="batch_archived")
    if batch.kind != "production":
        raise Conflict(f"{batch.batch_id} is a quality process, not a production batch", code="batch_not_archivable")
    decided = s.scalar(select(func.count()).where(BatchDisposition.batch_id == batch.id))
    if batch.state not in DECIDED or not decided or batch.completed_at is None:
        raise Conflict(
            f"batch {batch.batch_id} is {batch.state}: only a complete batch QA released or rejected is archived",
            code="batch_not_archivable",
        )
    unresolved = s.scalar(select(func.count()).where(*unresolved_exceptions(batch.id)))
    if unresolved:
        raise Conflict(
            f"batch {batch.batch_id} has {unresolved} exception(s) open or escalated: "
            "it is archived once they are resolved (a deviation closed)",
            code="batch_exceptions_open",
        )


def unresolved_exceptions(batch_pk: Any) -> tuple[Any, ...]:
    """The conditions of a batch's exceptions still waiting for QA or the QMS."""
    return (
        BatchException.batch_id == batch_pk,
        BatchException.status.in_([ExceptionStatus.OPEN.value, ExceptionStatus.ESCALATED.value]),
    )


def _stamp(s: Session, batch: Batch) -> tuple[Any, ...]:
    last = s.scalar(
        select(func.max(AuditEvent.id)).where(AuditEvent.object_type == "batch", AuditEvent.object_id == batch.batch_id)
    )
    return (batch.state, batch.revision, batch.step_count, last)


def audit_slice(s: Session, batch_id: str) -> list[dict[str, Any]]:
    """The batch's audit entries with every chain field, to be checked link by link."""
    rows = s.scalars(
        select(AuditEvent)
        .where(AuditEvent.object_type == "batch", AuditEvent.object_id == batch_id)
        .order_by(AuditEvent.id)
    )
    return [
        {
            "id": ev.id,
            "at": _iso(ev.at),
            "user": ev.user,
            "action": ev.action,
            "object_type": ev.object_type,
            "object_id": ev.object_id,
            "field": ev.field,
            "old": ev.old,
            "new": ev.new,
            "reason": ev.reason,
            "prev_hash": ev.prev_hash,
            "hash": ev.hash,
            "scheme": ev.scheme,
            "bound": ev.bound,
        }
        for ev in rows
    ]


def _workflow(s: Session, pk: int) -> dict[str, Any]:
    state = s.get(WorkflowState, pk)
    procs = list(s.scalars(select(WorkflowProcess).where(WorkflowProcess.batch_id == pk)))
    tasks = list(s.scalars(select(WorkflowTask).where(WorkflowTask.batch_id == pk).order_by(WorkflowTask.task_id)))
    hashes = sorted({t.data_hash for t in tasks} | {str(p.attributes.get("data")) for p in procs})
    bodies: dict[str, str] = {}
    for i in range(0, len(hashes), _CHUNK):
        for h, body in s.execute(select(TaskData.hash, TaskData.body).where(TaskData.hash.in_(hashes[i : i + _CHUNK]))):
            bodies[h] = body
    return {
        "state": {"spec_hash": state.spec_hash, "attributes": state.attributes} if state else None,
        "processes": sorted(
            (
                {
                    "process_id": p.process_id,
                    "parent_process_id": p.parent_process_id,
                    "spec_name": p.spec_name,
                    "live": p.live,
                    "attributes": p.attributes,
                }
                for p in procs
            ),
            key=lambda p: p["process_id"],
        ),
        "tasks": [
            {
                "task_id": t.task_id,
                "process_id": t.process_id,
                "parent_id": t.parent_id,
                "children": t.children,
                "state": t.state,
                "spec_name": t.spec_name,
                "triggered": t.triggered,
                "last_state_change": t.last_state_change,
                "internal_data": t.internal_data,
                "data_hash": t.data_hash,
                "live": t.live,
            }
            for t in tasks
        ],
        "task_data": bodies,
    }


def _remove_live_rows(s: Session, pk: int) -> dict[str, int]:
    """Delete the batch's workflow rows and the task data nobody else uses; counts."""
    own = set(s.scalars(select(WorkflowTask.data_hash).where(WorkflowTask.batch_id == pk).distinct()))
    own |= {
        str(a.get("data")) for a in s.scalars(select(WorkflowProcess.attributes).where(WorkflowProcess.batch_id == pk))
    }
    if row_locks(s):
        # a writer of another batch may have just found one of these hashes stored (its
        # insert did nothing) and not committed yet: wait for it, then see its rows
        s.execute(text("LOCK TABLE task_data IN SHARE ROW EXCLUSIVE MODE"))
    hashes = sorted(own)
    shared: set[str] = set()
    for i in range(0, len(hashes), _CHUNK):
        chunk = hashes[i : i + _CHUNK]
        shared |= set(
            s.scalars(
                select(WorkflowTask.data_hash).where(WorkflowTask.data_hash.in_(chunk), WorkflowTask.batch_id != pk)
            )
        )
        data_ref = WorkflowProcess.attributes["data"].as_string()
        shared |= {
            str(h) for h in s.scalars(select(data_ref).where(data_ref.in_(chunk), WorkflowProcess.batch_id != pk))
        }
    unused = [h for h in hashes if h not in shared]

    def gone(stmt: Any) -> int:
        return int(getattr(s.execute(stmt), "rowcount", 0) or 0)

    finished_jobs = (JobState.DONE.value, JobState.CANCELLED.value)
    counts = {
        "workflow_task": gone(delete(WorkflowTask).where(WorkflowTask.batch_id == pk)),
        "workflow_process": gone(delete(WorkflowProcess).where(WorkflowProcess.batch_id == pk)),
        "workflow_state": gone(delete(WorkflowState).where(WorkflowState.batch_id == pk)),
        "message_subscription": gone(delete(MessageSubscription).where(MessageSubscription.batch_id == pk)),
        "task_assignment": gone(delete(TaskAssignment).where(TaskAssignment.batch_id == pk)),
        "job": gone(
            delete(Job).where(Job.batch_id == pk, Job.state.in_(finished_jobs), Job.id.not_in(select(Incident.job_id)))
        ),
        "task_data": 0,
    }
    for i in range(0, len(unused), _CHUNK):
        counts["task_data"] += gone(delete(TaskData).where(TaskData.hash.in_(unused[i : i + _CHUNK])))
    return counts


def archive_batch(rt: Runtime, batch_id: str, *, by: str, attempts: int = 3) -> dict[str, Any]:
    """Archive one batch (Conflict when it may not be, or is archived already)."""
    for _ in range(attempts):
        with rt.transaction() as s:
            batch = find_batch(s, batch_id)
            check_archivable(s, batch)
            before = _stamp(s, batch)
        # built outside the writing transaction: reading the record takes its own
        # transactions (on SQLite each would wait for our write lock)
        record = exports.build(rt, batch_id)
        record.pop("generated_at", None)
        with rt.transaction() as s:
            batch = find_batch(s, batch_id, lock=True)
            check_archivable(s, batch)  # a concurrent run archived it: refused here, once
            if _stamp(s, batch) != before:
                continue  # the record changed while it was read: read it again
            slice_ = audit_slice(s, batch.batch_id)
            workflow = _workflow(s, batch.id)
            content: dict[str, Any] = {
                "format": files.FILE_FORMAT,
                "batch": {"pk": batch.id, "batch_id": batch.batch_id, "state": batch.state, "kind": batch.kind},
                "record": record,
                "audit_slice": slice_,
                "workflow": workflow,
            }
            data = files.encode(content)
            now = utcnow()
            location = files.location_for(batch.id, batch.batch_id, now)
            digest = files.sha256_bytes(data)
            files.write(rt.settings, location, data)
            # recorded here, chained below after task data is locked: the audit head is
            # locked last, in the order every step takes them (no deadlock with a writer)
            entry = audit.record(
                s,
                user=by,
                action=ARCHIVED_ACTION,
                object_type=ARCHIVE_OBJECT,
                object_id=batch.batch_id,
                field="archive",
                new={
                    "location": location,
                    "sha256": digest,
                    "record_content_hash": record["content_hash"],
                    "size": len(data),
                    "audit_entries": len(slice_),
                    "workflow_tasks": len(workflow["tasks"]),
                    "workflow_processes": len(workflow["processes"]),
                },
                reason="retention: the batch record moves to the archive",
            )
            removed = _remove_live_rows(s, batch.id)
            audit.flush_pending(s)  # the entry's id, for the row below
            s.add(
                ArchivedBatch(
                    batch_id=batch.id,
                    location=location,
                    content_hash=digest,
                    record_hash=record["content_hash"],
                    size=len(data),
                    archived_at=now,
                    archived_by=by,
                    audit_event_id=entry.id,
                )
            )
            pk = batch.id
        rt.cache.drop(pk)
        return {
            "batch_id": batch_id,
            "location": location,
            "sha256": digest,
            "record_content_hash": record["content_hash"],
            "size": len(data),
            "archived_at": _iso(now),
            "removed": removed,
        }
    raise Conflict(f"batch {batch_id} kept changing while it was archived", code="concurrent_change")
