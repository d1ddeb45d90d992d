"""What the floor must see about a batch and a task besides the task itself: that a
supervisor held the batch (who, when, why), and that a task was reassigned (to whom, by
whom, when, why).

Why: an operator whose batch was held used to see their task list simply empty, and a
reassigned task said only "assigned to op.ben" — nobody knew who decided it or why. The
decision is in the audit trail; these are the same facts where people work. Names are
printed names (the user id stays in the record and in the API).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from engine import batches, duties
from engine.models import Batch, TaskAssignment, User
from engine.users import Person
from engine.vocabulary import BatchState

from ..runtime import runtime
from .pages import bp

__all__ = ["assignment_notes", "held_tasks_for", "printed_names"]


def held_tasks_for(person: Person) -> list[dict[str, Any]]:
    """The waiting tasks of held batches that ``person`` would otherwise do, each with
    ``batch_state`` "held" and ``hold`` ({by, at, reason}): the operator's list shows them
    greyed instead of emptying.

    Interim: read batch by batch through ``engine.batches.ready_tasks``; when my_tasks
    answers from the index of ready tasks with ``batch_state`` / ``hold`` itself, the home
    page takes them from there and this function goes."""
    with runtime().transaction() as s:
        held = list(
            s.execute(
                select(Batch.batch_id, Batch.kind, Batch.held_by, Batch.held_at, Batch.hold_reason)
                .where(Batch.state == BatchState.HELD)
                .order_by(Batch.id)
            )
        )
    out: list[dict[str, Any]] = []
    for batch_id, kind, held_by, held_at, reason in held:
        hold = {"by": held_by, "at": held_at.isoformat() if held_at else None, "reason": reason}
        for task in batches.ready_tasks(runtime(), batch_id):
            assignee = task.get("assigned_to")
            if assignee == person.username or (not assignee and duties.may_complete(person, task["role"])):
                out.append({**task, "batch_id": batch_id, "batch_kind": kind, "batch_state": "held", "hold": hold})
    return out


def printed_names(usernames: Iterable[str | None]) -> dict[str, str]:
    """User id -> printed name (an unknown id stays itself)."""
    wanted = sorted({u for u in usernames if u})
    if not wanted:
        return {}
    with runtime().transaction() as s:
        found = dict(s.execute(select(User.username, User.printed_name).where(User.username.in_(wanted))).all())
    return {u: found.get(u) or u for u in wanted}


def assignment_notes(batch_ids: Iterable[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(batch id, task id) -> {to, by, at, reason} of every reassigned task of these batches."""
    ids = sorted(set(batch_ids))
    if not ids:
        return {}
    with runtime().transaction() as s:
        rows = s.execute(
            select(Batch.batch_id, TaskAssignment)
            .join(TaskAssignment, TaskAssignment.batch_id == Batch.id)
            .where(Batch.batch_id.in_(ids))
        ).all()
        notes = {
            (batch_id, a.task_id): {
                "to": a.username,
                "by": a.assigned_by,
                "at": a.assigned_at.isoformat() if a.assigned_at else None,
                "reason": a.reason,
            }
            for batch_id, a in rows
        }
    return notes


def people_named(notes: Iterable[dict[str, Any] | None]) -> dict[str, str]:
    """Printed names of everyone a set of holds / assignments names."""
    return printed_names(name for n in notes if n for name in (n.get("by"), n.get("to")))


@bp.app_template_global("task_notices")
def task_notices(batch: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """For the task page: its reassignment (if any) and the printed names its notices use.
    A template global, so the task page's view stays as it is (one read, only on that page)."""
    notes = assignment_notes([batch["batch_id"]]) if task.get("assigned_to") else {}
    assignment = notes.get((batch["batch_id"], task["id"]))
    return {"assignment": assignment, "names": people_named([batch.get("hold"), assignment])}
