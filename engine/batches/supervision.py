"""A supervisor's decisions on a running batch: the ISA-88 state changes (hold, resume,
abort) and reassigning an operator task to one person — each with its reason, audited.

The ISA-88 state is Batchline's own layer: SpiffWorkflow has no hold. A held or aborted
batch accepts no step, and its timers and service tasks wait (aborting cancels them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from .. import audit, duties, outbox
from ..errors import Conflict, InvalidInput, NotFound
from ..master_data import equipment_use
from ..models import Job, MessageSubscription, TaskAssignment, User, utcnow
from ..runtime import Runtime
from ..users import Person
from ..vocabulary import BatchState, JobState
from . import ready_index
from .descriptions import describe
from .inputs import require_reason, task_uuid
from .tasks import ready_user_task, task_role
from .unit_of_work import live_workflow, lock_batch

STATES = tuple(BatchState)

#: action -> (the states it may start from, the state it leads to)
TRANSITIONS: dict[str, tuple[tuple[BatchState, ...], BatchState]] = {
    "hold": ((BatchState.RUNNING,), BatchState.HELD),
    "resume": ((BatchState.HELD,), BatchState.RUNNING),
    "abort": ((BatchState.RUNNING, BatchState.HELD), BatchState.ABORTED),
}


def change_state(rt: Runtime, batch_id: str, action: str, *, user: str, reason: str) -> dict[str, Any]:
    if action not in TRANSITIONS:
        raise InvalidInput(f"unknown action {action!r}", code="action_invalid")
    require_reason(reason, action)
    allowed, new_state = TRANSITIONS[action]
    with rt.transaction() as s:
        batch = lock_batch(s, batch_id)
        if batch.state not in allowed:
            raise Conflict(
                f"cannot {action} batch {batch_id}: it is {batch.state}",
                code=f"batch_{batch.state}",
                details={"state": batch.state},
            )
        old = batch.state
        batch.state = new_state
        if new_state == BatchState.HELD:
            batch.held_by, batch.held_at, batch.hold_reason = user, utcnow(), reason.strip()[:500]
        else:
            batch.held_by = batch.held_at = batch.hold_reason = None
        if new_state == BatchState.ABORTED:
            batch.completed_at = utcnow()
            for job in s.scalars(select(Job).where(Job.batch_id == batch.id, Job.state == JobState.PENDING)):
                job.state = JobState.CANCELLED
                job.finished_at = utcnow()
            s.execute(delete(MessageSubscription).where(MessageSubscription.batch_id == batch.id))
            rt.cache.drop(batch.id)
            ready_index.remove_in(s, batch)  # its tasks leave every list
            equipment_use.release(rt.settings, s, batch, user=user)  # what it held is dirty now
        audit.record(
            s,
            user=user,
            action=f"batch.{action}",
            object_type="batch",
            object_id=batch_id,
            field="state",
            old=old,
            new=new_state,
            reason=reason,
        )
        outbox.emit(
            s,
            rt.settings,
            f"batch.{new_state}",
            batch_id,
            {"batch_id": batch_id, "state": new_state, "reason": reason, "user": user},
        )
        return describe(batch)


def reassign(rt: Runtime, batch_id: str, task_id: str, username: str, *, by: str, reason: str) -> dict[str, Any]:
    """Assign a ready task to one person who may complete it (a supervisor's decision, audited)."""
    require_reason(reason, "reassigning")
    task_key = str(task_uuid(task_id))
    with rt.transaction() as s:
        batch = lock_batch(s, batch_id)
        target = s.scalars(select(User).where(User.username == username)).first()
        if target is None or not target.active:
            raise NotFound(f"user {username} not found or inactive", code="user_not_found")
        with live_workflow(rt, s, batch) as entry:
            role = task_role(ready_user_task(entry.workflow, task_id, batch_id))
        # a task is only ever assigned to someone who may complete it
        duties.check_complete(
            Person(target.username, target.printed_name, tuple(target.roles or ())), role, username=username
        )
        current = s.get(TaskAssignment, (batch.id, task_key))
        batch.revision += 1  # every process must re-read the assignments
        rt.cache.drop(batch.id)
        ready_index.assign_in(s, batch, task_key, username)  # the task moves to their list
        audit.record(
            s,
            user=by,
            action="task.reassign",
            object_type="batch",
            object_id=batch_id,
            field=f"task {task_key}",
            old=current.username if current else None,
            new=username,
            reason=reason,
        )
        if current is None:
            s.add(
                TaskAssignment(
                    batch_id=batch.id, task_id=task_key, username=username, assigned_by=by, reason=reason.strip()[:500]
                )
            )
        else:
            current.username, current.assigned_by, current.assigned_at = username, by, utcnow()
            current.reason = reason.strip()[:500]
        return {"batch_id": batch_id, "task_id": task_key, "assigned_to": username}
