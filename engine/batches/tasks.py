"""The tasks of a batch's live workflow as people meet them: finding one by id, whether
it waits for completion, its form and instructions (from the recipe version's content),
the role it needs and whom a supervisor assigned it to."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import duties, runner
from ..bpmn.properties import spec_quals
from ..errors import Conflict, NotFound
from ..models import Batch, RecipeVersion, TaskAssignment, User
from ..permissions import Forbidden
from ..runtime import RecipeContent, Runtime
from ..users import Person
from ..workflow_store import LiveWorkflow
from .inputs import task_uuid


def recipe_content(rt: Runtime, s: Session, recipe_version_id: int) -> RecipeContent:
    """A recipe version's forms and tasks, read once per process: a version's content
    never changes (a change is a new version), only its status does."""
    content = rt.recipe_content.get(recipe_version_id)
    if content is None:
        rv = s.get(RecipeVersion, recipe_version_id)
        if rv is None:
            raise NotFound(f"recipe version {recipe_version_id} not found", code="recipe_not_found")
        content = rt.recipe_content[recipe_version_id] = RecipeContent(rv.id, rv.forms, rv.tasks)
    return content


def task_meta(rv: RecipeContent, bpmn_id: str, process: str | None = None) -> dict[str, Any]:
    """A task's form and instructions, by BPMN id within its process (ids may repeat
    across the files of one recipe)."""
    fallback: dict[str, Any] = {}
    for t in rv.tasks:
        if t.get("bpmn_id") == bpmn_id:
            if process is None or t.get("process") in (None, process):
                return t
            fallback = fallback or t
    return fallback


def task_form_key(rv: RecipeContent, task: Task) -> str | None:
    return task_meta(rv, task.task_spec.bpmn_id, task.workflow.spec.name).get("form")


def describe_task(task: Task, rv: RecipeContent) -> dict[str, Any]:
    meta = task_meta(rv, task.task_spec.bpmn_id, task.workflow.spec.name)
    form_key = meta.get("form")
    return {
        "id": str(task.id),
        "bpmn_id": task.task_spec.bpmn_id,
        "name": task.task_spec.bpmn_name or task.task_spec.bpmn_id,
        "process": task.workflow.spec.name,
        # the BPMN process's name, as people read it (the id when it has none)
        "process_name": task.workflow.spec.description or task.workflow.spec.name,
        "form": form_key,
        "form_definition": rv.forms.get(form_key) if form_key else None,
        "instructions": meta.get("instructions"),
        "iteration": task.internal_data.get("iteration"),
        "role": task_role(task),
        "qual": list(spec_quals(task.task_spec)),
    }


def spec_role(task_spec: Any) -> str:
    """The role a user task needs: its ``role`` property, else its lane, else operator.
    Who holds it is ``engine.duties``' decision."""
    props = (getattr(task_spec, "extensions", None) or {}).get("properties") or {}
    return str(props.get("role") or getattr(task_spec, "lane", None) or "operator").strip().lower()


def task_role(task: Task) -> str:
    return spec_role(task.task_spec)


def recorded_task_role(rt: Runtime, s: Session, batch: Batch, bpmn_id: str) -> str:
    """The role of the task a recorded step came from, read from the batch's pinned
    recipe specs. An id used by several tasks of different roles yields the strictest
    (the role fewest may complete), and an id not found a role nobody holds: a correction
    never gets easier through ambiguity."""
    rv = s.get(RecipeVersion, batch.recipe_version_id)
    if rv is None:
        raise NotFound(f"recipe version {batch.recipe_version_id} not found", code="recipe_not_found")
    spec, subprocess_specs = rt.store.specs(s, rv.spec_hash)
    roles = {
        spec_role(ts)
        for process in [spec, *[p for p in subprocess_specs.values() if p is not None]]
        for ts in process.task_specs.values()
        if getattr(ts, "bpmn_id", None) == bpmn_id
    }
    return min(roles or {"unknown"}, key=lambda r: (len(duties.completers(r)), r))


def find_task(wf: BpmnWorkflow, uuid: UUID) -> Task | None:
    try:
        return wf.get_task_from_id(uuid)
    except Exception:  # Spiff raises its own TaskNotFoundException (and KeyError in subprocesses)
        return None


def _task_of_batch(wf: BpmnWorkflow, task_id: str, batch_id: str) -> Task:
    task = find_task(wf, task_uuid(task_id))
    if task is None:
        raise NotFound(f"task {task_id} is not part of batch {batch_id}", code="task_not_found")
    return task


def ready_user_task(wf: BpmnWorkflow, task_id: str, batch_id: str) -> Task:
    """The operator task ``task_id`` of the batch, refused unless it waits for completion."""
    task = _task_of_batch(wf, task_id, batch_id)
    if not runner.is_ready_user_task(task):
        state = TaskState.get_name(task.state)
        raise Conflict(
            f"task {task_id} is not waiting for completion (it is {state})",
            code="task_not_ready",
            details={"state": state},
        )
    return task


def waiting_service_task(wf: BpmnWorkflow, task_id: str, batch_id: str) -> Task:
    """The service task ``task_id`` of the batch, refused unless it waits for its result."""
    task = _task_of_batch(wf, task_id, batch_id)
    if not runner.is_waiting_service_task(task):
        raise Conflict(f"service task {task_id} is not waiting", code="task_not_ready")
    return task


def read_assignments(s: Session, batch_pk: int) -> dict[str, str]:
    """Task id -> assignee of one batch."""
    return {a.task_id: a.username for a in s.scalars(select(TaskAssignment).where(TaskAssignment.batch_id == batch_pk))}


def check_assignment(s: Session, batch: Batch, entry: LiveWorkflow, task: Task, user: str) -> None:
    """A task a supervisor assigned to one person is done by that person only. The
    assignments are read once per loaded workflow (a reassignment bumps the batch
    revision, so every process reloads them)."""
    if entry.assignments is None:
        entry.assignments = read_assignments(s, batch.id)
    assignee = entry.assignments.get(str(task.id))
    if assignee is not None and assignee != user:
        raise Forbidden(
            f"this task is assigned to {assignee}", code="task_assigned_elsewhere", details={"assigned_to": assignee}
        )


def acting_person(s: Session, user: str, actor: Person | None, signer: Person | None) -> Person:
    """Whose roles decide a completion: the person the caller authenticated (``actor``),
    else the signer when they are the user, else the user's own account. Without any of
    them nobody is acting, and nothing is completed: a task without a form is checked
    like one with a form."""
    if actor is not None:
        if actor.username != user:
            raise Forbidden("the acting person is not the user recorded as performer", code="sign_for_other")
        return actor
    if signer is not None and signer.username == user:
        return signer
    account = s.scalars(select(User).where(User.username == user)).first()
    if account is None or not account.active:
        raise Forbidden(f"{user} is not an active user: nobody may complete a task as them", code="actor_unknown")
    return Person(account.username, account.printed_name, tuple(account.roles or ()), account.kind)
