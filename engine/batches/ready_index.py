"""The index of ready operator tasks (``ready_task``): what "my tasks" reads.

Why: a person's task list used to load every running batch's workflow (measured: 5–6.5 s
for ``GET /api/tasks`` with 2,019 running batches, the workflow cache holding 256). Now
the transaction that commits a workflow state (``unit_of_work.persist``) also writes which
operator tasks wait — one DELETE of those no longer ready and one INSERT of the new ones —
so the list is one indexed query whatever the number of batches.

The index is derived data and knows which revision it reflects (``batch.ready_revision``).
Every writer keeps it: ``persist`` (steps, starts, timers, messages, completion),
reassignment (the assignee), abort (its rows go). Anything else that changes a batch's
revision — a previous release after an upgrade, the end of a QA flow cancelled from
outside — leaves ``ready_revision`` behind, and ``refresh_stale`` (run before every list)
rebuilds that batch's rows from its workflow. So after an upgrade the first list re-indexes
the running batches once; nothing must be run by hand.

A held batch keeps its rows: its tasks are listed with the hold (who, when, why) instead
of vanishing from the operator's list.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, and_, delete, insert, or_, select, union_all, update
from sqlalchemy.orm import Session

from .. import runner
from ..bpmn.properties import spec_quals
from ..models import Batch, ReadyTask, TaskTime, utcnow
from ..runtime import Runtime
from ..vocabulary import BatchState
from ..workflow_store import LiveWorkflow
from .tasks import read_assignments, recipe_content, task_form_key, task_role

TABLE = cast(Table, ReadyTask.__table__)

#: batch states whose tasks are listed (a held batch's tasks wait, with the hold shown)
LISTED = (BatchState.RUNNING, BatchState.HELD)


def _cut(value: Any, size: int) -> str:
    return str(value)[:size]


def _rows(rt: Runtime, s: Session, batch: Batch, entry: LiveWorkflow) -> dict[str, dict[str, Any]]:
    """Task id -> the index row of each operator task the workflow waits for."""
    out: dict[str, dict[str, Any]] = {}
    tasks = runner.ready_user_tasks(entry.workflow)
    if not tasks:
        return out
    rv = recipe_content(rt, s, batch.recipe_version_id)
    for t in tasks:
        spec = t.task_spec
        bpmn_id = spec.bpmn_id or spec.name
        iteration = t.internal_data.get("iteration")
        form = task_form_key(rv, t)
        out[str(t.id)] = {
            "batch_pk": batch.id,
            "task_id": str(t.id),
            "bpmn_id": _cut(bpmn_id, 200),
            "name": _cut(spec.bpmn_name or bpmn_id, 500),
            "process": _cut(t.workflow.spec.name, 200),
            "process_name": _cut(t.workflow.spec.description or t.workflow.spec.name, 200),
            "role": _cut(task_role(t), 50),
            "qual": list(spec_quals(spec)),
            "form": _cut(form, 200) if form else None,
            "iteration": iteration if isinstance(iteration, int) else None,
            "recipe_version_id": batch.recipe_version_id,
            "batch_id": batch.batch_id,
            "batch_kind": batch.kind or "production",
            "subject_type": batch.subject_type,
            "subject_id": batch.subject_id,
        }
    return out


def update_in(rt: Runtime, s: Session, batch: Batch, entry: LiveWorkflow, *, current: bool = True) -> None:
    """Bring the batch's index rows to the workflow state about to be committed (called by
    ``persist``, batch locked, after the revision bump): at most one DELETE and one
    INSERT, no read when the live workflow knows what it indexed last. ``current``: the
    index reflected the revision this change started from; if not, it is rebuilt."""
    wanted = _rows(rt, s, batch, entry) if batch.state in LISTED else {}
    if not current:
        _sync(s, batch, wanted)
    else:
        have = entry.indexed
        if have is None:
            have = set(s.scalars(select(ReadyTask.task_id).where(ReadyTask.batch_pk == batch.id)))
        gone = have - wanted.keys()
        new = [row for task_id, row in wanted.items() if task_id not in have]
        conn = s.connection()  # Core statements on the connection: no ORM bookkeeping on the step path
        if gone:
            conn.execute(delete(TABLE).where(TABLE.c.batch_pk == batch.id, TABLE.c.task_id.in_(gone)))
        if new:
            assigned = entry.assignments
            if assigned is None:
                assigned = entry.assignments = read_assignments(s, batch.id)
            now = utcnow()
            conn.execute(
                insert(TABLE),
                [{**row, "assigned_to": assigned.get(row["task_id"]), "ready_at": now} for row in new],
            )
    entry.indexed = set(wanted)
    batch.ready_revision = batch.revision


def remove_in(s: Session, batch: Batch) -> None:
    """The batch lists no task any more (aborted, or ended outside ``persist``)."""
    s.execute(delete(ReadyTask).where(ReadyTask.batch_pk == batch.id))
    batch.ready_revision = batch.revision


def assign_in(s: Session, batch: Batch, task_id: str, username: str) -> None:
    """A reassignment moves the task to ``username``'s list (the batch is locked, its
    revision bumped by the caller). A batch whose index is behind is left to
    ``refresh_stale``, which reads the assignment with everything else."""
    if batch.ready_revision is not None and batch.ready_revision == batch.revision - 1:
        s.execute(
            update(ReadyTask)
            .where(ReadyTask.batch_pk == batch.id, ReadyTask.task_id == task_id)
            .values(assigned_to=username)
        )
        batch.ready_revision = batch.revision


def _stale() -> Any:
    listed = Batch.state.in_([str(x) for x in LISTED])
    behind = or_(Batch.ready_revision.is_(None), Batch.ready_revision != Batch.revision)
    return or_(
        and_(listed, behind),
        and_(~listed, Batch.ready_revision.is_not(None), Batch.ready_revision != Batch.revision),
    )


def stale_batches(s: Session) -> list[str]:
    """The batches whose index is behind their revision (after an upgrade, or a change by
    a previous release): one scan of ``batch``, no row when all is well."""
    return list(s.scalars(select(Batch.batch_id).where(_stale()).order_by(Batch.id)))


def refresh_stale(rt: Runtime) -> int:
    """Re-index every batch whose index is behind its revision; the number re-indexed."""
    with rt.transaction() as s:
        stale = stale_batches(s)
    for batch_id in stale:
        rebuild(rt, batch_id)
    return len(stale)


def page_ids(
    s: Session, roles: list[str], username: str, *, limit: int | None, after: int | None, batch_id: str | None
) -> list[int]:
    """The ids of the first ``limit + 1`` index rows after ``after`` that are the person's:
    unassigned with one of ``roles``, or assigned to ``username``. One branch per role
    and one for the assignee, each an ordered walk of its index (``role, id`` /
    ``assigned_to, id``) that stops at ``limit + 1``, so a page costs the same with
    2,000 batches as with 20."""
    branches = [and_(ReadyTask.assigned_to.is_(None), ReadyTask.role == role) for role in roles]
    branches.append(ReadyTask.assigned_to == username)
    parts = []
    for cond in branches:
        q = select(ReadyTask.id).where(cond)
        if after is not None:
            q = q.where(ReadyTask.id > after)
        if batch_id is not None:
            q = q.where(ReadyTask.batch_id == batch_id)
        q = q.order_by(ReadyTask.id)
        if limit is not None:
            q = q.limit(limit + 1)
        parts.append(select(q.subquery().c.id))
    ids = sorted(set(s.scalars(union_all(*parts)))) if len(parts) > 1 else sorted(s.scalars(parts[0]))
    return ids[: limit + 1] if limit is not None else ids


def rebuild(rt: Runtime, batch_id: str) -> None:
    """Rebuild one batch's rows from its workflow. Rows of tasks still ready are kept (with
    their place in the list and their ready time); assignees are re-read."""
    from .unit_of_work import find_batch, live_workflow  # (unit_of_work calls update_in)

    with rt.transaction() as s:
        batch = find_batch(s, batch_id, lock=True)
        if batch.ready_revision == batch.revision:
            return  # someone else did it meanwhile
        if batch.state not in LISTED:
            remove_in(s, batch)
            return
        with live_workflow(rt, s, batch) as entry:
            wanted = _rows(rt, s, batch, entry)
            entry.indexed = None  # the next persist reads what this commits
        _sync(s, batch, wanted)
        batch.ready_revision = batch.revision


def _sync(s: Session, batch: Batch, wanted: dict[str, dict[str, Any]]) -> None:
    """Make the batch's rows exactly ``wanted``, reading what is there: rows of tasks still
    ready keep their place in the list and their ready time; assignees are re-read."""
    assigned = read_assignments(s, batch.id)
    have = {r.task_id: r for r in s.scalars(select(ReadyTask).where(ReadyTask.batch_pk == batch.id))}
    gone = set(have) - set(wanted)
    if gone:
        s.execute(delete(ReadyTask).where(ReadyTask.batch_pk == batch.id, ReadyTask.task_id.in_(gone)))
    for task_id, row in have.items():  # (a batch moved to a new recipe version: forms may differ)
        if task_id in wanted:
            for name, value in {**wanted[task_id], "assigned_to": assigned.get(task_id)}.items():
                if getattr(row, name) != value:
                    setattr(row, name, value)
    new = [row for task_id, row in wanted.items() if task_id not in have]
    if not new:
        return
    ready = dict(
        s.execute(
            select(TaskTime.task_id, TaskTime.at).where(
                TaskTime.batch_id == batch.id,
                TaskTime.kind == "ready",
                TaskTime.task_id.in_([r["task_id"] for r in new]),
            )
        ).all()
    )
    now = utcnow()
    rows = [{**r, "assigned_to": assigned.get(r["task_id"]), "ready_at": ready.get(r["task_id"]) or now} for r in new]
    s.execute(insert(ReadyTask), rows)
