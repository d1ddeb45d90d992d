"""When a batch's tasks became ready, were first opened, and when its unit procedures
started and ended (``task_time``): the starts the batch record lacks.

A step record holds only its completion time. Its start is not the previous record of
the batch: in parallel branches another branch's step lies in between, and a step that
waited for a timer or a message started when that arrived. So the transaction that
commits a workflow state (``unit_of_work.persist``: a batch start, a step, a timer, a
message) records a ``ready`` time for each operator task that is newly waiting, and a
``started`` / ``ended`` time for each unit procedure (call activity) that began or
finished; opening a task (its page or ``GET /api/batches/{id}/tasks/{task}``) records
``opened`` once. One row per task and kind, append-only, written with
``INSERT … ON CONFLICT DO NOTHING`` so a repeat or a race is a no-op.

Cost on the step path: one ``INSERT … ON CONFLICT DO NOTHING`` of the new times per
commit (none when the live workflow already knows them, ``LiveWorkflow.timed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import runner
from ..db import insert_once
from ..errors import Conflict, NotFound
from ..models import Batch, TaskTime, utcnow
from ..runtime import Runtime
from ..workflow_store import LiveWorkflow
from .inputs import task_uuid
from .tasks import describe_task, find_task, read_assignments, recipe_content

READY, OPENED, STARTED, ENDED = "ready", "opened", "started", "ended"
KEY = ["batch_id", "task_id", "kind"]


def _insert_ignoring(s: Session) -> Any:
    """``INSERT … ON CONFLICT (batch, task, kind) DO NOTHING`` for either database."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(TaskTime.__table__).on_conflict_do_nothing(index_elements=KEY)


def _candidates(wf: BpmnWorkflow, known: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(task id, kind) -> BPMN id of what the committed state says happened (unit
    procedures already known to have ended are not looked at again)."""
    out = {(str(t.id), READY): t.task_spec.bpmn_id or t.task_spec.name for t in runner.ready_user_tasks(wf)}
    for parent_id, sp in list(wf.subprocesses.items()):
        if (str(parent_id), ENDED) in known:
            continue
        parent = find_task(wf, parent_id)
        if parent is None:
            continue
        out[(str(parent_id), STARTED)] = sp.spec.name  # the called process: the unit procedure
        if parent.state == TaskState.COMPLETED or sp.completed:
            out[(str(parent_id), ENDED)] = sp.spec.name
    return out


def record(s: Session, batch: Batch, entry: LiveWorkflow) -> None:
    """Record what became ready, started or ended in the state about to be committed
    (called by ``persist``, with the batch locked)."""
    known = entry.timed
    if known is None:
        known = entry.timed = set()
    wanted = _candidates(entry.workflow, known)
    todo = {k: v for k, v in wanted.items() if k not in known}
    if not todo:
        return
    now = utcnow()
    rows = [
        {"batch_id": batch.id, "task_id": task_id, "kind": kind, "bpmn_id": bpmn_id, "at": now, "by": None}
        for (task_id, kind), bpmn_id in todo.items()
    ]
    # one statement, no read first: a time already recorded (a repeat, a race) stays as it was
    s.connection().execute(_insert_ignoring(s), rows)  # Core: no ORM bookkeeping on the step path
    known.update(todo)


def open_task(rt: Runtime, batch_id: str, task_id: str, *, user: str | None) -> dict[str, Any]:
    """A waiting task as its page shows it; with ``user`` (someone who may complete tasks)
    its opening is recorded, the first time only. Returns the task with ``opened_at`` /
    ``opened_by`` (the first opening) and ``first_open`` (this call recorded it)."""
    from .unit_of_work import find_batch, live_workflow  # (unit_of_work calls ``record``)

    uuid = task_uuid(task_id)
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        rv = recipe_content(rt, s, batch.recipe_version_id)
        with live_workflow(rt, s, batch) as entry:
            task = find_task(entry.workflow, uuid)
            if task is None:
                raise NotFound(f"task {task_id} is not part of batch {batch_id}", code="task_not_found")
            if not runner.is_ready_user_task(task):
                raise Conflict(f"task {task_id} is not waiting for completion", code="task_not_ready")
            bpmn_id = task.task_spec.bpmn_id or task.task_spec.name
            described = {**describe_task(task, rv), "assigned_to": read_assignments(s, batch.id).get(str(uuid))}
        first = False
        if user is not None:
            values = {"batch_id": batch.id, "task_id": str(uuid), "kind": OPENED, "bpmn_id": bpmn_id, "by": user[:100]}
            first = insert_once(s, TaskTime, {**values, "at": utcnow()}, KEY) is not None
        row = s.scalars(
            select(TaskTime).where(
                TaskTime.batch_id == batch.id, TaskTime.task_id == str(uuid), TaskTime.kind == OPENED
            )
        ).first()
        return {
            **described,
            "opened_at": row.at.isoformat() if row else None,
            "opened_by": row.by if row else None,
            "first_open": first,
        }


@dataclass
class TaskTimes:
    """A task's times (None where not recorded: steps from before they were)."""

    ready_at: datetime | None = None
    opened_at: datetime | None = None
    opened_by: str | None = None


def times_of(s: Session, batch_pks: list[int]) -> dict[tuple[int, str], TaskTimes]:
    """(batch pk, task id) -> its ready and first-opened times."""
    out: dict[tuple[int, str], TaskTimes] = {}
    if not batch_pks:
        return out
    rows = s.execute(
        select(TaskTime.batch_id, TaskTime.task_id, TaskTime.kind, TaskTime.at, TaskTime.by).where(
            TaskTime.batch_id.in_(batch_pks), TaskTime.kind.in_((READY, OPENED))
        )
    )
    for batch_pk, task_id, kind, at, by in rows:
        t = out.setdefault((batch_pk, task_id), TaskTimes())
        if kind == READY:
            t.ready_at = at
        else:
            t.opened_at, t.opened_by = at, by
    return out


def times_of_task(s: Session, batch_pk: int, task_id: str | None) -> TaskTimes:
    """One task's ready and first-opened times (``times_of`` for a single step)."""
    t = TaskTimes()
    if task_id is None:
        return t
    rows = s.execute(
        select(TaskTime.kind, TaskTime.at, TaskTime.by).where(
            TaskTime.batch_id == batch_pk, TaskTime.task_id == task_id, TaskTime.kind.in_((READY, OPENED))
        )
    )
    for kind, at, by in rows:
        if kind == READY:
            t.ready_at = at
        else:
            t.opened_at, t.opened_by = at, by
    return t


@dataclass
class UnitProcedureRun:
    """One run of a unit procedure (a call activity) in a batch: ``ended_at`` None while it runs."""

    unit_procedure: str
    started_at: datetime
    ended_at: datetime | None


def unit_procedure_runs(
    s: Session, batch: Batch, unit_procedure: str, *, top_process: str | None = None
) -> list[UnitProcedureRun]:
    """The runs of ``unit_procedure`` in the batch, oldest first. The top process (the
    recipe itself, ``top_process``) runs from the batch start to its completion."""
    if unit_procedure == top_process:
        return [UnitProcedureRun(unit_procedure, batch.created_at, batch.completed_at)]
    rows = s.execute(
        select(TaskTime.task_id, TaskTime.kind, TaskTime.at)
        .where(TaskTime.batch_id == batch.id, TaskTime.bpmn_id == unit_procedure, TaskTime.kind.in_((STARTED, ENDED)))
        .order_by(TaskTime.at, TaskTime.id)
    )
    runs: dict[str, UnitProcedureRun] = {}
    for task_id, kind, at in rows:
        if kind == STARTED:
            runs[task_id] = UnitProcedureRun(unit_procedure, at, None)
        elif task_id in runs:
            runs[task_id].ended_at = at
    return list(runs.values())
