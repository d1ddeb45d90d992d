"""Late or overdue steps: a user task may say how long it may wait (its ``due`` property,
an ISO-8601 duration such as ``PT2H``). When the task becomes ready a ``step_due`` job is
scheduled for then; if the job finds the task still waiting, the step is late and a
``step.late`` exception is raised once — review by exception then shows it to QA. A task
completed (or cancelled) in time leaves the job nothing to do.

Only days, hours, minutes and seconds (and weeks) are accepted: months and years have no
fixed length, and a step that may wait a month is not a step with a due time. A bad value
is refused when the recipe is imported (``engine.bpmn.properties``), never found at run time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import runner
from ..bpmn.properties import parse_due, spec_critical, spec_due
from ..models import Batch, BatchException, Job, utcnow
from ..runtime import Runtime
from ..vocabulary import BatchState, ExceptionCategory, JobKind


def schedule(rt: Runtime, s: Session, batch: Batch, wf: BpmnWorkflow, scheduled: set) -> None:
    """A ``step_due`` job for each ready user task with a ``due`` that has none yet (called
    from ``unit_of_work._schedule``, so a task gets its job in the transaction that made it ready)."""
    for task in runner.ready_user_tasks(wf):
        due = spec_due(task.task_spec)
        if due is None:
            continue
        key = (JobKind.STEP_DUE, str(task.id))
        if key in scheduled:
            continue
        try:
            delta = parse_due(due)
        except ValueError:  # refused at import; a recipe imported before the check runs without
            continue
        now = utcnow()
        s.add(
            Job(
                kind=JobKind.STEP_DUE,
                batch_id=batch.id,
                task_id=str(task.id),
                due_at=now + delta,
                max_attempts=rt.settings.job_max_attempts,
                payload={
                    "task_id": str(task.id),
                    "bpmn_id": task.task_spec.bpmn_id,
                    "name": task.task_spec.bpmn_name or task.task_spec.bpmn_id,
                    "due": due,
                    "ready_at": now.isoformat(),
                    "due_at": (now + delta).isoformat(),
                    "critical": spec_critical(task.task_spec),
                },
            )
        )
        scheduled.add(key)


def step_due(rt: Runtime, batch_id: str, task_id: str, payload: dict) -> None:
    """The job: the task's due time passed. Still waiting -> ``step.late``, once."""
    from ..quality import exceptions as qx
    from .tasks import find_task
    from .unit_of_work import find_batch, live_workflow

    with rt.transaction() as s:
        batch = find_batch(s, batch_id, lock=True)
        if batch.state not in (BatchState.RUNNING, BatchState.HELD):
            return  # a finished batch has no late step
        with live_workflow(rt, s, batch) as entry:
            from .inputs import task_uuid

            task = find_task(entry.workflow, task_uuid(task_id))
            waiting = task is not None and runner.is_ready_user_task(task)
        if not waiting:
            return  # completed (or cancelled) in time
        if _already_raised(s, batch, task_id):
            return
        due_at = _when(payload.get("due_at")) or utcnow()
        overdue = max(0.0, round((utcnow() - due_at).total_seconds() / 60, 1))
        name = payload.get("name") or payload.get("bpmn_id")
        qx.raise_in(
            rt,
            s,
            batch,
            category=ExceptionCategory.STEP_LATE,
            message=f"step {name!r} is overdue: not completed within {payload.get('due')} of becoming ready",
            value=overdue,
            limits={"due": payload.get("due")},
            details={
                "task_id": task_id,
                "bpmn_id": payload.get("bpmn_id"),
                "task_name": name,
                "ready_at": payload.get("ready_at"),
                "due_at": payload.get("due_at"),
            },
            critical=bool(payload.get("critical")),
        )


def _already_raised(s: Session, batch: Batch, task_id: str) -> bool:
    rows = s.scalars(
        select(BatchException).where(
            BatchException.batch_id == batch.id, BatchException.category == ExceptionCategory.STEP_LATE
        )
    )
    return any((e.details or {}).get("task_id") == task_id for e in rows)


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
