"""Reading batches: a batch, the list, its record (steps with their corrections and
signatures), the tasks it waits for, its exceptions, a person's tasks across batches
and the diagram of where it stands. Nothing here changes anything."""

from __future__ import annotations

from typing import Any, NamedTuple

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from .. import duties, qualifications, runner
from ..errors import Conflict
from ..models import Batch, Incident, Job, ReadyTask, RecipeVersion, Signature, Step, TaskAssignment, WorkflowState
from ..permissions import TASK_COMPLETERS
from ..quality.release import disposition_of
from ..record import as_corrected, corrected_value, corrections_by_step, replaced_value
from ..runtime import Runtime
from ..users import Person
from ..vocabulary import BatchState, JobKind, JobState, StepKind
from . import ready_index
from .descriptions import describe, describe_signature, describe_step
from .tasks import describe_task, read_assignments, recipe_content, recorded_task_role, task_meta
from .unit_of_work import find_batch, live_workflow


def get_batch(rt: Runtime, batch_id: str) -> dict[str, Any]:
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        out = describe(batch, s.get(RecipeVersion, batch.recipe_version_id))
        out["incidents"] = _open_incidents(s, batch.id)
        out["release"] = disposition_of(s, batch)
        decided = batch.id if batch.state in (BatchState.RELEASED, BatchState.REJECTED) else None
    out["archive"] = _archive(rt, decided)
    return out


def _archive(rt: Runtime, batch_pk: int | None) -> dict[str, Any] | None:
    """An archived batch's archive (when, by whom, the file and whether it matches the hash
    the audit trail sealed: engine.archive); None for a batch in the live tables. Read
    after the batch's transaction: checking the file's hash holds no database lock."""
    if batch_pk is None:
        return None
    from .. import archive

    return archive.status(rt, batch_pk)


def list_batches(
    rt: Runtime, state: str | None = None, limit: int = 200, kind: str | None = "production"
) -> list[dict[str, Any]]:
    """Production batches (``kind``: ``quality`` lists QA's quality processes, None both)."""
    with rt.transaction() as s:
        stmt = select(Batch).order_by(Batch.id.desc()).limit(limit)
        if kind:
            stmt = stmt.where(Batch.kind == kind)
        if state:
            stmt = stmt.where(Batch.state == state)
        return [describe(b) for b in s.scalars(stmt)]


def steps(rt: Runtime, batch_id: str) -> list[dict[str, Any]]:
    """The batch record: each step with its signatures (superseded ones marked) and its
    corrections; ``values`` is what was entered, ``current_values`` after corrections;
    an operator entry's ``role`` is the role of its task."""
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        rows = list(s.scalars(select(Step).where(Step.batch_id == batch.id).order_by(Step.seq)))
        sigs: dict[int, list[Signature]] = {}
        for sig in s.scalars(select(Signature).where(Signature.batch_id == batch.id).order_by(Signature.id)):
            sigs.setdefault(sig.step_seq, []).append(sig)
        corrs = corrections_by_step(s, [batch.id])
        roles: dict[str, str] = {}
        out = []
        for r in rows:
            d = describe_step(r)
            if r.kind == StepKind.USER_TASK:
                if r.bpmn_id not in roles:
                    roles[r.bpmn_id] = recorded_task_role(rt, s, batch, r.bpmn_id)
                d["role"] = roles[r.bpmn_id]  # who may correct it: engine.duties.may_correct
            step_corrs = corrs.get((batch.id, r.seq), [])
            last_corrected = max((c.corrected_at for c in step_corrs), default=None)
            d["current_values"] = as_corrected(r.values, step_corrs)
            d["corrections"] = [
                {
                    "id": c.id,
                    "field": c.field,
                    "old": replaced_value(c),
                    "new": corrected_value(c),
                    "reason": c.reason,
                    "username": c.username,
                    "corrected_at": c.corrected_at.isoformat(),
                }
                for c in step_corrs
            ]
            # a signature is superseded by any correction of its step made after it
            # (a correction and the recalculations it causes share one time)
            d["signatures"] = [
                describe_signature(sig, superseded=last_corrected is not None and last_corrected > sig.signed_at)
                for sig in sigs.get(r.seq, [])
            ]
            out.append(d)
        return out


def ready_tasks(rt: Runtime, batch_id: str) -> list[dict[str, Any]]:
    """Operator tasks the batch waits for (read-only: loads without locking)."""
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        if BatchState(batch.state).finished:  # an archived batch has no workflow rows left
            return []
        rv = recipe_content(rt, s, batch.recipe_version_id)
        assigned = read_assignments(s, batch.id)
        with live_workflow(rt, s, batch) as entry:
            return [
                {**describe_task(t, rv), "assigned_to": assigned.get(str(t.id))}
                for t in runner.ready_user_tasks(entry.workflow)
            ]


def exceptions(
    rt: Runtime, batch_id: str, *, status: str | None = None, severity: str | None = None
) -> list[dict[str, Any]]:
    """The batch's exceptions with dispositions and deviation (``engine.quality``)."""
    from ..quality import exceptions as qx

    return qx.list_for_batch(rt, batch_id, status=status, severity=severity)


#: how many tasks one page of "my tasks" holds when the caller names no limit, and at most
PAGE_DEFAULT, PAGE_MAX = 50, 200


class TaskPage(NamedTuple):
    """One page of a person's tasks and the cursor of the next (None on the last page)."""

    items: list[dict[str, Any]]
    next_after: int | None


def my_tasks(
    rt: Runtime, person: Person, *, limit: int | None = None, after: int | None = None, batch_id: str | None = None
) -> list[dict[str, Any]]:
    """Ready operator tasks across running and held batches that this person may do —
    quality processes' tasks among them (``batch_kind`` quality, with the ``subject`` they
    are about); all of them unless ``limit`` (see ``task_page``)."""
    return task_page(rt, person, limit=limit, after=after, batch_id=batch_id).items


def task_page(
    rt: Runtime, person: Person, *, limit: int | None = None, after: int | None = None, batch_id: str | None = None
) -> TaskPage:
    """A page of ``my_tasks``, read from the ready-task index (``ready_index``), oldest
    first, ``after`` the cursor of the previous page (keyset: a task that stays ready is
    listed exactly once however the list changes between pages).

    Mine: assigned to me, or unassigned with a role I may complete. A task whose
    qualification the person lacks today is listed with ``blocked`` saying why (``needs
    aseptic-gowning (expired 2026-11-30)``), not hidden; a held batch's tasks with
    ``batch_state`` held and the ``hold`` (who, when, why)."""
    roles = [r for r in TASK_COMPLETERS if duties.may_complete(person, r)]
    stmt = (
        select(ReadyTask, Batch.state, Batch.held_by, Batch.held_at, Batch.hold_reason, TaskAssignment.reason)
        .join(Batch, Batch.id == ReadyTask.batch_pk)
        .outerjoin(
            TaskAssignment,
            and_(TaskAssignment.batch_id == ReadyTask.batch_pk, TaskAssignment.task_id == ReadyTask.task_id),
        )
        .where(Batch.state.in_([str(x) for x in ready_index.LISTED]))
        .order_by(ReadyTask.id)
    )
    on = qualifications.today()
    out = []
    for _attempt in range(3):
        with rt.transaction() as s:
            stale = ready_index.stale_batches(s)  # after an upgrade, or a change by an older release
            if not stale:
                ids = ready_index.page_ids(s, roles, person.username, limit=limit, after=after, batch_id=batch_id)
                more = limit is not None and len(ids) > limit
                ids = ids[:limit] if limit is not None else ids
                rows = list(s.execute(stmt.where(ReadyTask.id.in_(ids)))) if ids else []
                held = qualifications.held(s, person.username) if any(r[0].qual for r in rows) else {}
                contents = {rvid: recipe_content(rt, s, rvid) for rvid in {r[0].recipe_version_id for r in rows}}
        if not stale:
            break
        for stale_id in stale:  # each in its own transaction, then read again
            ready_index.rebuild(rt, stale_id)
    else:
        raise Conflict("the task list kept changing; repeat the request", code="concurrent_change")
    for t, state, held_by, held_at, hold_reason, reason in rows:
        rv = contents[t.recipe_version_id]
        missing = duties.missing_qualifications(held, t.qual or (), on)
        out.append(
            {
                "id": t.task_id,
                "bpmn_id": t.bpmn_id,
                "name": t.name,
                "process": t.process,
                "process_name": t.process_name or t.process,
                "form": t.form,
                "form_definition": rv.forms.get(t.form) if t.form else None,
                "instructions": task_meta(rv, t.bpmn_id, t.process).get("instructions"),
                "iteration": t.iteration,
                "role": t.role,
                "qual": list(t.qual or ()),
                "assigned_to": t.assigned_to,
                "assignment_reason": reason if t.assigned_to else None,
                "batch_id": t.batch_id,
                "batch_kind": t.batch_kind,
                "subject": {"type": t.subject_type, "id": t.subject_id} if t.subject_type else None,
                "blocked": "; ".join(duties.describe_missing(m) for m in missing) or None,
                "batch_state": state,
                "hold": (
                    {"by": held_by, "at": held_at.isoformat() if held_at else None, "reason": hold_reason}
                    if state == BatchState.HELD
                    else None
                ),
                "ready_at": t.ready_at.isoformat(),
            }
        )
    return TaskPage(out, ids[-1] if more else None)


def diagram(rt: Runtime, batch_id: str) -> dict[str, Any]:
    """The recipe's BPMN and which elements are done / current, for the batch page."""
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        rv = s.get(RecipeVersion, batch.recipe_version_id)
        assert rv is not None  # a batch pins its recipe version by foreign key
        done = set(s.scalars(select(Step.bpmn_id).where(Step.batch_id == batch.id)))
        out: dict[str, Any] = {"bpmn": rv.bpmn, "process_id": rv.process_id, "done": sorted(done), "current": []}
        if s.get(WorkflowState, batch.id) is None:  # a record imported without workflow state
            return out
        current, finished = set(), set()
        with live_workflow(rt, s, batch) as entry:
            for t in runner.tasks(entry.workflow):
                bpmn_id = getattr(t.task_spec, "bpmn_id", None)
                if not bpmn_id:
                    continue
                if t.state & runner.UNFINISHED:
                    current.add(bpmn_id)
                elif t.state == TaskState.COMPLETED:
                    finished.add(bpmn_id)
        return {
            "bpmn": rv.bpmn,
            "process_id": rv.process_id,
            "done": sorted((done | finished) - current),
            "current": sorted(current),
        }


def _open_incidents(s: Session, batch_pk: int) -> list[dict[str, Any]]:
    rows = s.scalars(select(Incident).where(Incident.batch_id == batch_pk, Incident.resolved_at.is_(None)))
    return [
        {"id": i.id, "job_id": i.job_id, "kind": i.kind, "message": i.message, "created_at": i.created_at.isoformat()}
        for i in rows
    ]


def trend_check_pending(rt: Runtime, batch_id: str, seq: int) -> bool:
    """True while the out-of-trend check of step ``seq`` has not run yet: it runs after
    commit, off the request, so the step page refreshes until it has."""
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        pending = s.scalars(
            select(Job.payload).where(
                Job.batch_id == batch.id, Job.kind == JobKind.SCORE_STEP, Job.state == JobState.PENDING
            )
        )
        return any((payload or {}).get("seq") == seq for payload in pending)
