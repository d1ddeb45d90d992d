"""Batches: starting them, completing their steps, holding, resuming, aborting.

One step is ONE transaction (DESIGN.md "one step, end to end"): lock the batch, append
the step record, advance the workflow, write the changed task rows, audit entries and
outbox events, commit — then answer. Either all of it exists or none of it does.

The ISA-88 state (idle/running/held/complete/aborted) is Batchline's own audited layer:
SpiffWorkflow has no hold. A held or aborted batch accepts no step, and its timers and
service tasks wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit, outbox, runner
from .db import row_locks
from .errors import Conflict, EngineFault, InvalidInput, NotFound
from .models import (
    Batch,
    BatchException,
    Correction,
    IdempotentRequest,
    Job,
    MessageSubscription,
    RecipeVersion,
    Signature,
    Step,
    TaskAssignment,
    User,
    WorkflowState,
    utcnow,
)
from .permissions import Forbidden
from .recipes import find_version
from .runtime import Runtime
from .step_values import CheckedValues, check_values
from .users import Person
from .workflow_store import BatchWorkflow, LiveWorkflow, canonical, prune, sha256

STATES = ("idle", "running", "held", "complete", "aborted")
MAX_ID_LEN = 100
SCALARS = (str, int, float, bool, type(None))


# --- reading -------------------------------------------------------------------------


def describe(batch: Batch, rv: RecipeVersion | None = None) -> dict[str, Any]:
    out = {
        "batch_id": batch.batch_id,
        "state": batch.state,
        "recipe_version_id": batch.recipe_version_id,
        "recipe_hash": batch.recipe_hash,
        "parameters": batch.parameters,
        "steps": batch.step_count,
        "created_at": batch.created_at.isoformat(),
        "created_by": batch.created_by,
        "completed_at": batch.completed_at.isoformat() if batch.completed_at else None,
        "reviewed_at": batch.reviewed_at.isoformat() if batch.reviewed_at else None,
    }
    if rv is not None:
        out["recipe"] = {"id": rv.id, "recipe": rv.recipe, "version": rv.version, "name": rv.name}
    return out


def describe_step(step: Step) -> dict[str, Any]:
    return {
        "seq": step.seq,
        "kind": step.kind,
        "task_id": step.task_id,
        "bpmn_id": step.bpmn_id,
        "task_name": step.task_name,
        "form": step.form_id,
        "user": step.user,
        "recorded_at": step.recorded_at.isoformat(),
        "values": step.values,
        "values_hash": step.values_hash,
        "recipe_version_id": step.recipe_version_id,
        "units": step.units,
        "form_hash": step.form_hash,
    }


def _get(s: Session, batch_id: str) -> Batch:
    batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
    if batch is None:
        raise NotFound(f"batch {batch_id!r} not found", code="batch_not_found")
    return batch


def _lock(s: Session, batch_id: str) -> Batch:
    stmt = select(Batch).where(Batch.batch_id == batch_id)
    if row_locks(s):
        stmt = stmt.with_for_update()
    batch = s.scalars(stmt).first()
    if batch is None:
        raise NotFound(f"batch {batch_id!r} not found", code="batch_not_found")
    return batch


def get_batch(rt: Runtime, batch_id: str) -> dict[str, Any]:
    with rt.transaction() as s:
        batch = _get(s, batch_id)
        out = describe(batch, s.get(RecipeVersion, batch.recipe_version_id))
        out["incidents"] = _open_incidents(s, batch.id)
        return out


def list_batches(rt: Runtime, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        stmt = select(Batch).order_by(Batch.id.desc()).limit(limit)
        if state:
            stmt = stmt.where(Batch.state == state)
        return [describe(b) for b in s.scalars(stmt)]


def steps(rt: Runtime, batch_id: str) -> list[dict[str, Any]]:
    """The batch record: each step with its signatures (superseded ones marked) and its
    corrections; ``values`` is what was entered, ``current_values`` after corrections."""
    with rt.transaction() as s:
        batch = _get(s, batch_id)
        rows = list(s.scalars(select(Step).where(Step.batch_id == batch.id).order_by(Step.seq)))
        sigs: dict[int, list[Signature]] = {}
        for sig in s.scalars(select(Signature).where(Signature.batch_id == batch.id).order_by(Signature.id)):
            sigs.setdefault(sig.step_seq, []).append(sig)
        corrs: dict[int, list[Correction]] = {}
        for c in s.scalars(select(Correction).where(Correction.batch_id == batch.id).order_by(Correction.id)):
            corrs.setdefault(c.step_seq, []).append(c)
        out = []
        for r in rows:
            d = describe_step(r)
            step_corrs = corrs.get(r.seq, [])
            last_corrected = max((c.corrected_at for c in step_corrs), default=None)
            current = dict(r.values)
            for c in step_corrs:
                current[c.field] = json.loads(c.new)
            d["current_values"] = current
            d["corrections"] = [
                {
                    "id": c.id,
                    "field": c.field,
                    "old": json.loads(c.old),
                    "new": json.loads(c.new),
                    "reason": c.reason,
                    "username": c.username,
                    "corrected_at": c.corrected_at.isoformat(),
                }
                for c in step_corrs
            ]
            # a signature is superseded by any correction of its step made after it
            # (a correction and the recalculations it causes share one time)
            d["signatures"] = [
                _describe_signature(sig, superseded=last_corrected is not None and last_corrected > sig.signed_at)
                for sig in sigs.get(r.seq, [])
            ]
            out.append(d)
        return out


def ready_tasks(rt: Runtime, batch_id: str) -> list[dict[str, Any]]:
    """Operator tasks the batch waits for (read-only: loads without locking)."""
    with rt.transaction() as s:
        batch = _get(s, batch_id)
        if batch.state in ("complete", "aborted"):
            return []
        rv = _recipe(rt, s, batch.recipe_version_id)
        assigned = {
            a.task_id: a.username for a in s.scalars(select(TaskAssignment).where(TaskAssignment.batch_id == batch.id))
        }
        entry = rt.cache.take(batch.id, batch.revision) or rt.store.load(s, batch.id, batch.revision)
        try:
            return [
                {**_describe_task(t, rv), "assigned_to": assigned.get(str(t.id))}
                for t in runner.ready_user_tasks(entry.workflow)
            ]
        finally:
            rt.cache.put(batch.id, entry)


@dataclass(frozen=True)
class RecipeContent:
    """The immutable part of a recipe version the step path reads (forms, task list)."""

    id: int
    forms: dict
    tasks: list


def _recipe(rt: Runtime, s: Session, recipe_version_id: int) -> RecipeContent:
    """A recipe version's forms and tasks, read once per process: a version's content
    never changes (a change is a new version), only its status does."""
    content = rt.recipe_content.get(recipe_version_id)
    if content is None:
        rv = s.get(RecipeVersion, recipe_version_id)
        content = rt.recipe_content[recipe_version_id] = RecipeContent(rv.id, rv.forms, rv.tasks)
    return content


def _task_meta(rv: RecipeVersion, bpmn_id: str, process: str | None = None) -> dict[str, Any]:
    """A task's form and instructions, by BPMN id within its process (ids may repeat
    across the files of one recipe)."""
    fallback = {}
    for t in rv.tasks:
        if t.get("bpmn_id") == bpmn_id:
            if process is None or t.get("process") in (None, process):
                return t
            fallback = fallback or t
    return fallback


def _describe_task(task, rv: RecipeVersion) -> dict[str, Any]:
    meta = _task_meta(rv, task.task_spec.bpmn_id, task.workflow.spec.name)
    form_key = meta.get("form")
    return {
        "id": str(task.id),
        "bpmn_id": task.task_spec.bpmn_id,
        "name": task.task_spec.bpmn_name or task.task_spec.bpmn_id,
        "process": task.workflow.spec.name,
        "form": form_key,
        "form_definition": rv.forms.get(form_key) if form_key else None,
        "instructions": meta.get("instructions"),
        "iteration": task.internal_data.get("iteration"),
        "role": task_role(task),
    }


def _open_incidents(s: Session, batch_pk: int) -> list[dict[str, Any]]:
    from .models import Incident

    rows = s.scalars(select(Incident).where(Incident.batch_id == batch_pk, Incident.resolved_at.is_(None)))
    return [
        {"id": i.id, "job_id": i.job_id, "kind": i.kind, "message": i.message, "created_at": i.created_at.isoformat()}
        for i in rows
    ]


# --- changing a batch ----------------------------------------------------------------


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def _mutate(
    rt: Runtime,
    batch_id: str,
    change: Callable[[Session, Batch, LiveWorkflow], dict[str, Any]],
    *,
    idempotency: tuple[str, dict[str, Any]] | None = None,
    allow_states=("running",),
    status: int = 200,
) -> Outcome:
    """Run ``change`` on the locked batch's live workflow and persist it, all in one
    transaction. The cached workflow is taken out of the cache for the duration and put
    back only after commit, so a failure can never leave a half-changed copy behind."""
    batch_pk = None
    entry = None
    try:
        with rt.transaction() as s:
            batch = _lock(s, batch_id)
            batch_pk = batch.id
            if idempotency is not None:
                replay = _replay(s, f"batch:{batch_id}", *idempotency)
                if replay is not None:
                    return replay
            if batch.state not in allow_states:
                raise Conflict(
                    f"batch {batch_id} is {batch.state}", code=f"batch_{batch.state}", details={"state": batch.state}
                )
            entry = rt.cache.take(batch.id, batch.revision) or rt.store.load(s, batch.id, batch.revision)
            body = change(s, batch, entry)
            _persist(rt, s, batch, entry)
            if isinstance(body.get("batch"), dict):
                body["batch"]["state"] = batch.state  # the step may have completed the batch
            if idempotency is not None:
                key, request = idempotency
                s.add(
                    IdempotentRequest(
                        scope=f"batch:{batch_id}",
                        key=key,
                        request_hash=_request_hash(request),
                        status=status,
                        response=body,
                    )
                )
        rt.cache.put(batch_pk, entry)
        return Outcome(status, body)
    except IntegrityError as exc:
        if batch_pk is not None:
            rt.cache.drop(batch_pk)
        raise Conflict("the batch changed at the same time; repeat the request", code="concurrent_change") from exc
    except WorkflowException as exc:
        if batch_pk is not None:
            rt.cache.drop(batch_pk)
        raise EngineFault(
            f"the recipe failed: {exc}", details={"task": getattr(getattr(exc, "task_spec", None), "bpmn_id", None)}
        ) from exc
    except BaseException:
        if batch_pk is not None:
            rt.cache.drop(batch_pk)
        raise


def _request_hash(request: dict[str, Any]) -> str:
    return sha256(canonical(request))


def _replay(s: Session, scope: str, key: str, request: dict[str, Any]) -> Outcome | None:
    prior = s.get(IdempotentRequest, (scope, key))
    if prior is None:
        return None
    if prior.request_hash != _request_hash(request):
        raise InvalidInput(
            "this Idempotency-Key was already used for a different request", code="idempotency_key_reused"
        )
    return Outcome(prior.status, prior.response, replayed=True)


def _persist(rt: Runtime, s: Session, batch: Batch, entry: LiveWorkflow) -> None:
    """Everything that follows an advance of the workflow, in the same transaction."""
    wf = entry.workflow
    prune(wf)
    _schedule(rt, s, batch, entry)
    if batch.state == "running" and runner.is_finished(wf):
        batch.state = "complete"
        batch.completed_at = utcnow()
        audit.record(
            s,
            user="system",
            action="batch.complete",
            object_type="batch",
            object_id=batch.batch_id,
            field="state",
            old="running",
            new="complete",
        )
        outbox.emit(s, rt.settings, "batch.completed", batch.batch_id, {"batch_id": batch.batch_id})
    rt.store.save(s, batch.id, entry)
    batch.revision += 1
    entry.revision = batch.revision


def _schedule(rt: Runtime, s: Session, batch: Batch, entry: LiveWorkflow) -> None:
    """Create the jobs and message subscriptions the workflow now waits on."""
    wf = entry.workflow
    scheduled = entry.scheduled
    if scheduled is None:
        scheduled = entry.scheduled = set(
            s.execute(
                select(Job.kind, Job.task_id).where(
                    Job.batch_id == batch.id, Job.state == "pending", Job.kind.in_(("timer", "service_task"))
                )
            ).all()
        )
    for timer in runner.waiting_timers(wf):
        key = ("timer", timer.task_id)
        if key not in scheduled:
            s.add(
                Job(
                    kind="timer",
                    batch_id=batch.id,
                    task_id=timer.task_id,
                    due_at=timer.due_at,
                    max_attempts=rt.settings.job_max_attempts,
                )
            )
            scheduled.add(key)
    for task in runner.waiting_service_tasks(wf):
        key = ("service_task", str(task.id))
        if key not in scheduled and not task.internal_data.get("batchline_pending"):
            s.add(
                Job(
                    kind="service_task",
                    batch_id=batch.id,
                    task_id=str(task.id),
                    max_attempts=rt.settings.job_max_attempts,
                )
            )
            scheduled.add(key)
    live_ids = {str(t.id) for t in runner.tasks(wf)}
    for key in [k for k in scheduled if k[1] not in live_ids]:
        scheduled.discard(key)

    wanted = {(m.task_id, m.message, canonical(m.correlation)) for m in runner.waiting_messages(wf)}
    have = entry.subscriptions
    if have is None:
        have = {
            (r.task_id, r.message, canonical(r.correlation))
            for r in s.scalars(select(MessageSubscription).where(MessageSubscription.batch_id == batch.id))
        }
    if wanted != have:
        for task_id, _, _ in have - wanted:
            s.execute(
                delete(MessageSubscription).where(
                    MessageSubscription.batch_id == batch.id, MessageSubscription.task_id == task_id
                )
            )
        for task_id, message, corr in wanted - have:
            s.add(
                MessageSubscription(batch_id=batch.id, task_id=task_id, message=message, correlation=json.loads(corr))
            )
    entry.subscriptions = wanted


def _append_step(
    rt: Runtime,
    s: Session,
    batch: Batch,
    *,
    kind: str,
    task,
    user: str,
    values: dict[str, Any],
    form_id: str | None = None,
    units: dict[str, Any] | None = None,
    form_hash: str | None = None,
) -> Step:
    batch.step_count += 1
    step = Step(
        batch_id=batch.id,
        seq=batch.step_count,
        kind=kind,
        task_id=str(task.id),
        bpmn_id=task.task_spec.bpmn_id or task.task_spec.name,
        task_name=task.task_spec.bpmn_name or task.task_spec.bpmn_id or task.task_spec.name,
        form_id=form_id,
        recipe_version_id=batch.recipe_version_id,
        user=user,
        recorded_at=utcnow(),
        values=values,
        units=units or {},
        form_hash=form_hash,
        values_hash=sha256(canonical(values)),
    )
    s.add(step)
    audit.record(
        s,
        user=user,
        action=f"step.{kind}",
        object_type="batch",
        object_id=batch.batch_id,
        field=step.bpmn_id,
        new=values,
    )
    outbox.emit(
        s,
        rt.settings,
        "batch.step.completed",
        batch.batch_id,
        {
            "batch_id": batch.batch_id,
            "seq": step.seq,
            "kind": kind,
            "bpmn_id": step.bpmn_id,
            "task_id": step.task_id,
            "user": user,
        },
    )
    if kind == "user_task" and "score_step" in rt.job_handlers:
        # scored after commit, off the operator's request (out-of-trend analytics)
        s.add(Job(kind="score_step", batch_id=batch.id, payload={"seq": step.seq}, max_attempts=3))
    return step


def _limit_exceptions(rt: Runtime, s: Session, batch: Batch, step: Step, checked: CheckedValues) -> list[dict]:
    """Alert/action limit breaches: the step IS stored and an exception is raised with it."""
    if checked.validated is None:
        return []
    out = []
    for f in checked.validated.limit_findings:
        exc = BatchException(
            batch_id=batch.id,
            step_seq=step.seq,
            source="limit",
            severity=f.severity,
            parameter=f.key,
            message=f.message,
            details=f.to_dict(),
        )
        s.add(exc)
        s.flush()
        audit.record(
            s,
            user=step.user,
            action="exception.raised",
            object_type="batch",
            object_id=batch.batch_id,
            field=f.key,
            new={"severity": f.severity, "message": f.message},
        )
        outbox.emit(
            s,
            rt.settings,
            "batch.exception.raised",
            batch.batch_id,
            {
                "batch_id": batch.batch_id,
                "exception": exc.id,
                "severity": f.severity,
                "parameter": f.key,
                "critical": f.critical,
                "message": f.message,
            },
        )
        out.append(describe_exception(exc))
    return out


def raise_exception(
    rt: Runtime,
    batch_id: str,
    *,
    source: str,
    severity: str,
    message: str,
    parameter: str | None = None,
    step_seq: int | None = None,
    details: dict[str, Any] | None = None,
    deviation: bool = False,
) -> dict[str, Any]:
    """Raise an exception for review by exception from outside the step path (e.g. an
    out-of-trend finding scored after commit). ``deviation`` also asks the QMS to open a
    deviation (an outbox event a QMS connector or webhook subscriber acts on)."""
    if severity not in ("alert", "action"):
        raise InvalidInput("severity is alert or action", code="severity_invalid")
    with rt.transaction() as s:
        batch = _get(s, batch_id)
        exc = BatchException(
            batch_id=batch.id,
            step_seq=step_seq,
            source=source,
            severity=severity,
            parameter=parameter,
            message=message,
            details=details or {},
        )
        s.add(exc)
        s.flush()
        audit.record(
            s,
            user="system",
            action="exception.raised",
            object_type="batch",
            object_id=batch_id,
            field=parameter,
            new={"source": source, "severity": severity, "message": message},
        )
        outbox.emit(
            s,
            rt.settings,
            "batch.exception.raised",
            batch_id,
            {
                "batch_id": batch_id,
                "exception": exc.id,
                "source": source,
                "severity": severity,
                "parameter": parameter,
                "message": message,
            },
        )
        if deviation:
            outbox.emit(
                s,
                rt.settings,
                "qms.deviation.requested",
                batch_id,
                {
                    "batch_id": batch_id,
                    "exception": exc.id,
                    "parameter": parameter,
                    "message": message,
                    "details": details or {},
                },
            )
        return describe_exception(exc)


def describe_exception(exc: BatchException) -> dict[str, Any]:
    return {
        "id": exc.id,
        "step_seq": exc.step_seq,
        "source": exc.source,
        "severity": exc.severity,
        "parameter": exc.parameter,
        "message": exc.message,
        "details": exc.details,
        "status": exc.status,
        "created_at": exc.created_at.isoformat(),
    }


def _scalar_data(values: dict[str, Any]) -> dict[str, Any]:
    """What goes into Spiff's task data: ids and scalars only (the record is in ``Step``)."""
    return {k: v for k, v in values.items() if isinstance(v, SCALARS)}


def _check_identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string", code=f"{what}_invalid")
    if len(value) > MAX_ID_LEN:
        raise InvalidInput(f"{what} is longer than {MAX_ID_LEN} characters", code=f"{what}_invalid")
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{what} contains control characters", code=f"{what}_invalid")
    return value


def start_batch(
    rt: Runtime,
    recipe: str | int,
    batch_id: str,
    *,
    user: str,
    parameters: dict[str, Any] | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    _check_identifier(batch_id, "batch_id")
    parameters = parameters or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters must be an object", code="parameters_invalid")
    bad = [k for k, v in parameters.items() if not isinstance(k, str) or not isinstance(v, SCALARS)]
    if bad:
        raise InvalidInput(
            "parameters must map names to scalar values",
            code="parameters_invalid",
            details={"keys": [str(k) for k in bad]},
        )
    try:
        with rt.transaction() as s:
            if s.scalars(select(Batch.id).where(Batch.batch_id == batch_id)).first() is not None:
                raise Conflict(f"batch {batch_id!r} exists already", code="batch_exists")
            rv = find_version(s, recipe, version, approved=True)
            if rv.status != "approved":
                raise Conflict(
                    f"recipe {rv.recipe} version {rv.version} is {rv.status}; only approved versions run",
                    code="recipe_not_approved",
                )
            spec, subprocess_specs = rt.store.specs(s, rv.spec_hash)
            wf = BatchWorkflow(spec, subprocess_specs, script_engine=rt.store.make_script_engine())
            wf.task_tree.data.update(parameters)
            wf.task_tree.data.setdefault("batch_id", batch_id)  # recipes may name it (LIMS, ERP)
            batch = Batch(
                batch_id=batch_id,
                recipe_version_id=rv.id,
                recipe_hash=rv.content_hash,
                state="running",
                parameters=parameters,
                created_by=user,
            )
            s.add(batch)
            s.flush()
            runner.run_engine_steps(wf, rt.settings.engine_step_budget)
            entry = LiveWorkflow(workflow=wf, spec_hash=rv.spec_hash)
            audit.record(
                s,
                user=user,
                action="batch.start",
                object_type="batch",
                object_id=batch_id,
                field="state",
                old=None,
                new="running",
                reason=None,
            )
            outbox.emit(
                s,
                rt.settings,
                "batch.started",
                batch_id,
                {"batch_id": batch_id, "recipe": rv.recipe, "version": rv.version},
            )
            _persist(rt, s, batch, entry)
            out = describe(batch, rv)
        rt.cache.put(batch.id, entry)
        return out
    except IntegrityError as exc:
        raise Conflict(f"batch {batch_id!r} exists already", code="batch_exists") from exc
    except WorkflowException as exc:
        raise EngineFault(f"the recipe failed at start: {exc}") from exc


def complete_task(
    rt: Runtime,
    batch_id: str,
    task_id: str,
    data: dict[str, Any],
    *,
    user: str,
    idempotency_key: str | None = None,
    signer: Person | None = None,
    witness: Person | None = None,
) -> Outcome:
    """Complete an operator task with its values: the step path.

    A task with a form is signed: ``signer`` is the acting user, re-authenticated just
    now by the caller (password, and user id at a session's first signing); a form that
    requires a witness needs a second, different person holding the witness role. Each
    signature is bound to the SHA-256 of exactly what was signed."""
    if not isinstance(data, dict):
        raise InvalidInput("data must be a JSON object", code="data_invalid")
    task_uuid = _task_uuid(task_id)
    if idempotency_key is not None:
        _check_identifier(idempotency_key, "idempotency_key")

    def change(s: Session, batch: Batch, entry: LiveWorkflow) -> dict[str, Any]:
        wf = entry.workflow
        task = _find_task(wf, task_uuid)
        if task is None:
            raise NotFound(f"task {task_id} is not part of batch {batch_id}", code="task_not_found")
        if task.state != TaskState.READY or not task.task_spec.manual:
            raise Conflict(
                f"task {task_id} is not waiting for completion (it is {TaskState.get_name(task.state)})",
                code="task_not_ready",
                details={"state": TaskState.get_name(task.state)},
            )
        rv = _recipe(rt, s, batch.recipe_version_id)
        _check_assignment(s, batch, entry, task, user)
        form_key = _task_meta(rv, task.task_spec.bpmn_id, task.workflow.spec.name).get("form")
        checked = check_values(s, batch.batch_id, rv.forms.get(form_key) if form_key else None, data)
        _check_signers(task, checked, user, signer, witness)
        task.data.update(checked.spiff_data)
        task.run()
        runner.run_engine_steps(wf, rt.settings.engine_step_budget)
        step = _append_step(
            rt,
            s,
            batch,
            kind="user_task",
            task=task,
            user=user,
            values=checked.values,
            form_id=form_key,
            units=checked.units,
            form_hash=checked.form_hash,
        )
        raised = _limit_exceptions(rt, s, batch, step, checked)
        signed = _sign(s, batch, step, checked, signer, witness)
        return {
            "step": {**describe_step(step), "signatures": signed},
            "batch": {"batch_id": batch.batch_id, "state": batch.state},
            "exceptions": raised,
            "next_tasks": [_describe_task(t, rv) for t in runner.ready_user_tasks(wf)],
        }

    request = {"task_id": str(task_uuid), "data": data}
    idem = (idempotency_key, request) if idempotency_key else None
    return _mutate(rt, batch_id, change, idempotency=idem, status=200)


def _task_uuid(task_id: str) -> UUID:
    try:
        return UUID(str(task_id))
    except ValueError:
        raise NotFound(f"task {task_id!r} not found", code="task_not_found") from None


def _find_task(wf: BpmnWorkflow, task_uuid: UUID):
    try:
        return wf.get_task_from_id(task_uuid)
    except Exception:
        return None


# --- signatures, assignments, corrections ------------------------------------------


def task_role(task) -> str:
    """The role a user task needs: its ``role`` property, else its lane, else operator."""
    props = (getattr(task.task_spec, "extensions", None) or {}).get("properties") or {}
    return str(props.get("role") or getattr(task.task_spec, "lane", None) or "operator").lower()


def _assignments(s: Session, batch: Batch, entry: LiveWorkflow) -> dict[str, str]:
    """Task id -> assignee, read once per loaded workflow (a reassignment bumps the
    batch revision, so every process reloads it)."""
    if entry.assignments is None:
        entry.assignments = {
            a.task_id: a.username for a in s.scalars(select(TaskAssignment).where(TaskAssignment.batch_id == batch.id))
        }
    return entry.assignments


def _check_assignment(s: Session, batch: Batch, entry: LiveWorkflow, task, user: str) -> None:
    assignee = _assignments(s, batch, entry).get(str(task.id))
    if assignee is not None and assignee != user:
        raise Forbidden(
            f"this task is assigned to {assignee}", code="task_assigned_elsewhere", details={"assigned_to": assignee}
        )


def _check_signers(task, checked: CheckedValues, user: str, signer: Person | None, witness: Person | None) -> None:
    needed = task_role(task)
    if signer is not None and not signer.has(needed, "supervisor"):
        raise Forbidden(f"this task is for the {needed} role", code="task_role", details={"role": needed})
    if checked.validated is None:
        return
    if signer is None:
        raise InvalidInput("this step must be signed: give your password", code="signature_required")
    if signer.username != user:
        raise Forbidden("a signature can only be given by the person completing the step", code="sign_for_other")
    if checked.validated.witness_required:
        if witness is None:
            raise InvalidInput("this step needs a witness signature", code="witness_required")
        if witness.username == signer.username:
            raise Forbidden("the witness must be another person than the performer", code="self_witness")
        role = (checked.validated.witness_role or "").strip().lower()
        allowed = (role,) if role else ("operator", "supervisor", "qa")
        if not witness.has(*allowed):
            raise Forbidden(
                f"the witness needs the role {' or '.join(allowed)}",
                code="witness_role",
                details={"roles": list(allowed)},
            )


def signed_content(batch_id: str, step: Step, meaning: str) -> str:
    """SHA-256 of exactly what a signature covers (21 CFR 11.70)."""
    return sha256(
        canonical(
            {
                "batch": batch_id,
                "seq": step.seq,
                "task_id": step.task_id,
                "bpmn_id": step.bpmn_id,
                "form_hash": step.form_hash,
                "values": step.values,
                "units": step.units,
                "meaning": meaning,
            }
        )
    )


def _sign(
    s: Session, batch: Batch, step: Step, checked: CheckedValues, signer: Person | None, witness: Person | None
) -> list[dict[str, Any]]:
    out = []
    if checked.validated is None or signer is None:
        return out
    parties = [("performer", signer, checked.validated.signature_meaning)]
    if checked.validated.witness_required and witness is not None:
        parties.append(("witness", witness, "Verified"))
    for role, who, meaning in parties:
        sig = Signature(
            batch_id=batch.id,
            step_seq=step.seq,
            role=role,
            username=who.username,
            printed_name=who.printed_name,
            meaning=meaning,
            signed_at=utcnow(),
            content_hash=signed_content(batch.batch_id, step, meaning),
        )
        s.add(sig)
        audit.record(
            s,
            user=who.username,
            action="signature",
            object_type="batch",
            object_id=batch.batch_id,
            field=f"step {step.seq}",
            new={"meaning": meaning, "role": role, "hash": sig.content_hash},
        )
        out.append(_describe_signature(sig, superseded=False))
    return out


def _describe_signature(sig: Signature, superseded: bool) -> dict[str, Any]:
    return {
        "role": sig.role,
        "username": sig.username,
        "printed_name": sig.printed_name,
        "meaning": sig.meaning,
        "signed_at": sig.signed_at.isoformat(),
        "content_hash": sig.content_hash,
        "superseded": superseded,
    }


def reassign(rt: Runtime, batch_id: str, task_id: str, username: str, *, by: str, reason: str) -> dict[str, Any]:
    """Assign a ready operator task to one person (a supervisor's decision, audited)."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("reassigning needs a reason", code="reason_required")
    task_uuid = _task_uuid(task_id)
    with rt.transaction() as s:
        batch = _lock(s, batch_id)
        target = s.scalars(select(User).where(User.username == username)).first()
        if target is None or not target.active:
            raise NotFound(f"user {username} not found or inactive", code="user_not_found")
        entry = rt.cache.take(batch.id, batch.revision) or rt.store.load(s, batch.id, batch.revision)
        try:
            task = _find_task(entry.workflow, task_uuid)
            if task is None:
                raise NotFound(f"task {task_id} is not part of batch {batch_id}", code="task_not_found")
            if task.state != TaskState.READY or not task.task_spec.manual:
                raise Conflict(f"task {task_id} is not waiting", code="task_not_ready")
            role = task_role(task)
            if role not in (target.roles or []) and "supervisor" not in (target.roles or []):
                raise Forbidden(f"{username} does not hold the role {role} this task needs", code="task_role")
        finally:
            rt.cache.put(batch.id, entry)
        current = s.get(TaskAssignment, (batch.id, str(task_uuid)))
        batch.revision += 1  # every process must re-read the assignments
        rt.cache.drop(batch.id)
        audit.record(
            s,
            user=by,
            action="task.reassign",
            object_type="batch",
            object_id=batch_id,
            field=f"task {task_uuid}",
            old=current.username if current else None,
            new=username,
            reason=reason,
        )
        if current is None:
            s.add(TaskAssignment(batch_id=batch.id, task_id=str(task_uuid), username=username, assigned_by=by))
        else:
            current.username, current.assigned_by, current.assigned_at = username, by, utcnow()
        return {"batch_id": batch_id, "task_id": str(task_uuid), "assigned_to": username}


def correct_step(
    rt: Runtime, batch_id: str, seq: int, field: str, value: Any, *, reason: str, signer: Person
) -> dict[str, Any]:
    """Correct one recorded value until the batch is reviewed. The original stays
    visible; the audit trail holds old value, new value and reason; the step's earlier
    signatures show as superseded and the corrector signs the corrected content."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("a correction needs a reason", code="reason_required")
    if len(reason) > 2000:
        raise InvalidInput("reason is longer than 2000 characters", code="reason_invalid")
    with rt.transaction() as s:
        batch = _lock(s, batch_id)
        if batch.reviewed_at is not None:
            raise Conflict("the batch record has been reviewed; it can no longer be corrected", code="batch_reviewed")
        step = s.scalars(select(Step).where(Step.batch_id == batch.id, Step.seq == seq)).first()
        if step is None:
            raise NotFound(f"step {seq} not found in batch {batch_id}", code="step_not_found")
        if step.kind != "user_task":
            raise Conflict("only operator entries can be corrected", code="step_not_correctable")
        current = _current_values(s, batch.id, step)
        if not isinstance(field, str) or field not in current:
            raise InvalidInput(f"step {seq} has no field {field!r}", code="field_unknown")
        rv = s.get(RecipeVersion, batch.recipe_version_id)
        form = rv.forms.get(step.form_id) if step.form_id else None
        proposed = {k: v for k, v in current.items() if v is not None}
        proposed[field] = value
        if form is not None:  # the corrected entry must pass the same form checks
            calculated = _calculated_fields(form)
            proposed = {k: v for k, v in proposed.items() if k not in calculated}
        checked = check_values(s, batch.batch_id, form, proposed)
        new_value = checked.values.get(field)
        old_value = current.get(field)
        if new_value == old_value:
            raise InvalidInput("the corrected value equals the recorded one", code="correction_unchanged")
        corr = Correction(
            batch_id=batch.id,
            step_seq=seq,
            field=field,
            old=_text(old_value),
            new=_text(new_value),
            reason=reason,
            username=signer.username,
            corrected_at=utcnow(),
        )
        s.add(corr)
        # calculated fields that depend on the corrected value are recomputed by the form
        # and corrected with it, so the record never holds a stale derived value
        derived = _calculated_fields(form) if form is not None else set()
        for key in sorted(derived):
            if key != field and checked.values.get(key) != current.get(key):
                s.add(
                    Correction(
                        batch_id=batch.id,
                        step_seq=seq,
                        field=key,
                        old=_text(current.get(key)),
                        new=_text(checked.values.get(key)),
                        reason=f"recalculated after correcting {field}: {reason}",
                        username=signer.username,
                        corrected_at=corr.corrected_at,
                    )
                )
                audit.record(
                    s,
                    user=signer.username,
                    action="step.correct",
                    object_type="batch",
                    object_id=batch_id,
                    field=f"step {seq}.{key}",
                    old=current.get(key),
                    new=checked.values.get(key),
                    reason=f"recalculated after correcting {field}",
                )
        s.flush()
        content = sha256(
            canonical(
                {
                    "batch": batch_id,
                    "seq": seq,
                    "correction": corr.id,
                    "field": field,
                    "old": old_value,
                    "new": new_value,
                    "reason": reason,
                }
            )
        )
        sig = Signature(
            batch_id=batch.id,
            step_seq=seq,
            role="corrector",
            username=signer.username,
            printed_name=signer.printed_name,
            meaning="Corrected",
            signed_at=corr.corrected_at,
            content_hash=content,
            correction_id=corr.id,
        )
        s.add(sig)
        audit.record(
            s,
            user=signer.username,
            action="step.correct",
            object_type="batch",
            object_id=batch_id,
            field=f"step {seq}.{field}",
            old=old_value,
            new=new_value,
            reason=reason,
        )
        outbox.emit(
            s,
            rt.settings,
            "batch.step.corrected",
            batch_id,
            {"batch_id": batch_id, "seq": seq, "field": field, "user": signer.username},
        )
        return {
            "seq": seq,
            "field": field,
            "old": old_value,
            "new": new_value,
            "reason": reason,
            "signature": _describe_signature(sig, superseded=False),
        }


def _calculated_fields(form: dict[str, Any]) -> set[str]:
    from forms import load_form

    return {f.key for f in load_form(form).fields if f.is_calculated}


def _text(value: Any) -> str:
    """Corrections keep values as canonical JSON text, so any type comes back exactly."""
    return canonical(value)


def _current_values(s: Session, batch_pk: int, step: Step) -> dict[str, Any]:
    values = dict(step.values)
    for corr in s.scalars(
        select(Correction)
        .where(Correction.batch_id == batch_pk, Correction.step_seq == step.seq)
        .order_by(Correction.id)
    ):
        values[corr.field] = json.loads(corr.new)
    return values


def exceptions(rt: Runtime, batch_id: str) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        batch = _get(s, batch_id)
        rows = s.scalars(select(BatchException).where(BatchException.batch_id == batch.id).order_by(BatchException.id))
        return [describe_exception(e) for e in rows]


def my_tasks(rt: Runtime, person: Person) -> list[dict[str, Any]]:
    """Ready operator tasks across running batches that this person may do."""
    out = []
    with rt.transaction() as s:
        running = list(s.scalars(select(Batch.batch_id).where(Batch.state == "running").order_by(Batch.id)))
    for batch_id in running:
        for t in ready_tasks(rt, batch_id):
            if t["assigned_to"]:
                mine = t["assigned_to"] == person.username
            else:
                mine = person.has(t["role"], "supervisor")
            if mine:
                out.append({**t, "batch_id": batch_id})
    return out


def diagram(rt: Runtime, batch_id: str) -> dict[str, Any]:
    """The recipe's BPMN and which elements are done / current, for the batch page."""
    with rt.transaction() as s:
        batch = _get(s, batch_id)
        rv = s.get(RecipeVersion, batch.recipe_version_id)
        done = set(s.scalars(select(Step.bpmn_id).where(Step.batch_id == batch.id)))
        out = {"bpmn": rv.bpmn, "process_id": rv.process_id, "done": sorted(done), "current": []}
        if s.get(WorkflowState, batch.id) is None:  # a record imported without workflow state
            return out
        entry = rt.cache.take(batch.id, batch.revision) or rt.store.load(s, batch.id, batch.revision)
        try:
            current, finished = set(), set()
            for t in runner.tasks(entry.workflow):
                bpmn_id = getattr(t.task_spec, "bpmn_id", None)
                if not bpmn_id:
                    continue
                if t.state & runner.UNFINISHED:
                    current.add(bpmn_id)
                elif t.state == TaskState.COMPLETED:
                    finished.add(bpmn_id)
        finally:
            rt.cache.put(batch.id, entry)
        return {
            "bpmn": rv.bpmn,
            "process_id": rv.process_id,
            "done": sorted((done | finished) - current),
            "current": sorted(current),
        }


# --- supervisor actions --------------------------------------------------------------

TRANSITIONS = {"hold": ("running", "held"), "resume": ("held", "running"), "abort": (("running", "held"), "aborted")}


def change_state(rt: Runtime, batch_id: str, action: str, *, user: str, reason: str) -> dict[str, Any]:
    if action not in TRANSITIONS:
        raise InvalidInput(f"unknown action {action!r}", code="action_invalid")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(f"{action} needs a reason", code="reason_required")
    if len(reason) > 2000:
        raise InvalidInput("reason is longer than 2000 characters", code="reason_invalid")
    allowed, new_state = TRANSITIONS[action]
    allowed = allowed if isinstance(allowed, tuple) else (allowed,)
    with rt.transaction() as s:
        batch = _lock(s, batch_id)
        if batch.state not in allowed:
            raise Conflict(
                f"cannot {action} batch {batch_id}: it is {batch.state}",
                code=f"batch_{batch.state}",
                details={"state": batch.state},
            )
        old = batch.state
        batch.state = new_state
        if action == "abort":
            batch.completed_at = utcnow()
            for job in s.scalars(select(Job).where(Job.batch_id == batch.id, Job.state == "pending")):
                job.state = "cancelled"
                job.finished_at = utcnow()
            s.execute(delete(MessageSubscription).where(MessageSubscription.batch_id == batch.id))
            rt.cache.drop(batch.id)
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


# --- messages, timers, service tasks (called by the API and the job executor) --------


def deliver_message(rt: Runtime, name: str, payload: dict[str, Any], *, user: str) -> list[dict[str, Any]]:
    """Deliver a correlated message to every batch waiting for it with matching keys."""
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object", code="payload_invalid")
    with rt.transaction() as s:
        subs = s.execute(
            select(MessageSubscription, Batch.batch_id)
            .join(Batch, Batch.id == MessageSubscription.batch_id)
            .where(MessageSubscription.message == name)
        ).all()
    delivered = []
    for sub, batch_id in subs:

        def change(s, batch, entry, sub=sub):
            wf = entry.workflow
            task = _find_task(wf, UUID(sub.task_id))
            if task is None or task.state != TaskState.WAITING:
                return {}
            got = runner.payload_correlation(wf, task, payload)
            if got != sub.correlation:
                return {}
            runner.deliver_message(wf, task, payload)
            runner.run_engine_steps(wf, rt.settings.engine_step_budget)
            step = _append_step(
                rt, s, batch, kind="message", task=task, user=user, values={"message": name, "payload": payload}
            )
            return {"batch_id": batch.batch_id, "seq": step.seq}

        if sub.correlation and not _matches(sub.correlation, payload):
            continue
        outcome = _mutate(rt, batch_id, change, allow_states=("running", "held"))
        if outcome.body:
            delivered.append(outcome.body)
    if not delivered:
        raise NotFound(
            f"no batch is waiting for message {name!r} with these correlation keys", code="message_not_correlated"
        )
    return delivered


def _matches(correlation: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Cheap pre-filter before loading a workflow: property names that are plain payload
    keys must be equal; anything else is checked exactly inside the transaction."""
    for name, expected in correlation.items():
        if name in payload and payload[name] != expected:
            return False
    return True


def fire_timer(rt: Runtime, batch_id: str, task_id: str) -> bool:
    """Fire a due timer; False when the batch is held (the job is retried later)."""

    def change(s, batch, entry):
        wf = entry.workflow
        task = _find_task(wf, UUID(task_id))
        if task is None or task.state != TaskState.WAITING:
            return {"fired": False}
        task.task_spec._update(task)
        wf.refresh_timers()
        fired = task.state != TaskState.WAITING
        runner.run_engine_steps(wf, rt.settings.engine_step_budget)
        if fired:
            _append_step(
                rt,
                s,
                batch,
                kind="timer",
                task=task,
                user="system",
                values={"due": task.internal_data.get("event_value")},
            )
        return {"fired": fired}

    return _mutate(rt, batch_id, change).body.get("fired", False)


def service_task_call(rt: Runtime, batch_id: str, task_id: str):
    """What the job executor needs to call a connector (read without locking)."""
    from .connectors import ServiceCall

    with rt.transaction() as s:
        batch = _get(s, batch_id)
        entry = rt.cache.take(batch.id, batch.revision) or rt.store.load(s, batch.id, batch.revision)
        try:
            task = _find_task(entry.workflow, UUID(task_id))
            if task is None or task.state != TaskState.STARTED:
                return None, batch.state
            spec = task.task_spec
            params = {}
            for name, p in (getattr(spec, "operation_params", None) or {}).items():
                value = p.get("value") if isinstance(p, dict) else p
                try:
                    params[name] = (
                        entry.workflow.script_engine.evaluate(task, value) if isinstance(value, str) else value
                    )
                except Exception as exc:
                    raise EngineFault(f"service task {spec.bpmn_id}: parameter {name}: {exc}") from exc
            call = ServiceCall(
                batch_id=batch_id,
                task_id=task_id,
                bpmn_id=spec.bpmn_id,
                operator=getattr(spec, "operation_name", None) or "",
                params=params,
                callback_token=f"{batch_id}:{task_id}",
            )
            return call, batch.state
        finally:
            rt.cache.put(batch.id, entry)


def complete_service_task(
    rt: Runtime,
    batch_id: str,
    task_id: str,
    result: dict[str, Any],
    *,
    user: str = "system",
    pending: bool = False,
    error: tuple[str | None, str] | None = None,
    idempotency_key: str | None = None,
) -> Outcome:
    """Finish a service task with its result (or mark it pending an async callback, or
    raise a BPMN error on it). Used by the job executor and the callback endpoint."""
    if not isinstance(result, dict):
        raise InvalidInput("result must be a JSON object", code="data_invalid")
    task_uuid = _task_uuid(task_id)

    def change(s, batch, entry):
        wf = entry.workflow
        task = _find_task(wf, task_uuid)
        if task is None:
            raise NotFound(f"task {task_id} is not part of batch {batch_id}", code="task_not_found")
        if task.state != TaskState.STARTED or not isinstance(task.task_spec, ServiceTask):
            raise Conflict(f"service task {task_id} is not waiting", code="task_not_ready")
        if pending:
            task.internal_data["batchline_pending"] = True
            return {"pending": True}
        if error is not None:
            code, message = error
            if not runner.throw_error(wf, task, code, message):
                raise EngineFault(
                    f"service task {task.task_spec.bpmn_id} failed and no error boundary event "
                    f"catches {code!r}: {message}",
                    code="unhandled_bpmn_error",
                )
            runner.run_engine_steps(wf, rt.settings.engine_step_budget)
            step = _append_step(
                rt, s, batch, kind="service_task", task=task, user=user, values={"error_code": code, "error": message}
            )
            return {"step": describe_step(step)}
        task.internal_data.pop("batchline_pending", None)
        if getattr(task.task_spec, "result_variable", None):
            task.data[task.task_spec.result_variable] = _scalar_data(result)
        else:
            task.data.update(_scalar_data(result))
        task.complete()
        runner.run_engine_steps(wf, rt.settings.engine_step_budget)
        step = _append_step(rt, s, batch, kind="service_task", task=task, user=user, values=result)
        return {"step": describe_step(step)}

    request = {"task_id": task_id, "result": result}
    idem = (idempotency_key, request) if idempotency_key else None
    return _mutate(rt, batch_id, change, idempotency=idem, allow_states=("running",))
