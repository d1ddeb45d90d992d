"""The step path: starting a batch, completing an operator task, appending the step
record, and raising the exceptions review by exception reads (limit breaches in the
step's own transaction, out-of-trend findings after it)."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.task import Task
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from .. import audit, duties, equipment_logbook, lot_movements, outbox, runner
from ..bpmn.properties import spec_logbook, spec_quals
from ..errors import Conflict, EngineFault, InvalidInput
from ..master_data import equipment_use
from ..models import Batch, Job, RecipeVersion, Step, utcnow
from ..quality import exceptions as quality_exceptions
from ..quality.participants import check_participant
from ..recipes import RUNNABLE, find_version
from ..runtime import Runtime
from ..step_values import CheckedValues, check_values
from ..users import Person
from ..vocabulary import BatchState, ExceptionCategory, ExceptionSource, JobKind, LimitLevel, StepKind
from ..workflow_store import BatchWorkflow, LiveWorkflow, canonical, sha256
from . import overrides
from .descriptions import describe, describe_exception, describe_step
from .inputs import check_batch_id, check_identifier, check_parameters, check_reference, task_uuid
from .signatures import check_performer, check_signers, sign
from .tasks import (
    acting_person,
    check_assignment,
    describe_task,
    ready_user_task,
    recipe_content,
    task_form_key,
    task_role,
)
from .unit_of_work import (
    ATTEMPTS,
    Idempotency,
    Outcome,
    cache_after_commit,
    lock_for_writing,
    mutate,
    next_revision,
    persist,
    wait_for_writer,
)


def start_batch(
    rt: Runtime,
    recipe: str | int,
    batch_id: str,
    *,
    user: str,
    parameters: dict[str, Any] | None = None,
    version: int | None = None,
    subject: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Start a batch of an approved recipe version. With ``subject`` (type, id) it is a
    quality process about that subject (``engine.quality.processes``)."""
    batch_id = check_batch_id(batch_id)
    parameters = check_parameters(parameters)
    check_reference(recipe, "recipe")
    if version is not None:
        check_reference(version, "version")
    for _attempt in range(ATTEMPTS):
        try:
            return _start_once(rt, recipe, batch_id, user, parameters, version, subject)
        except OperationalError as exc:  # SQLite: another writer committed while the recipe started
            if "locked" not in str(exc):
                raise
            wait_for_writer(rt)
    raise Conflict("the database kept changing while the batch started; repeat the request", code="concurrent_change")


def _start_once(
    rt: Runtime,
    recipe: str | int,
    batch_id: str,
    user: str,
    parameters: dict[str, Any],
    version: int | None,
    subject: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The engine steps up to the first wait run before the first write (deferred
    transaction), so scripts never run while SQLite's write lock is held."""
    try:
        with rt.transaction(deferred=True) as s:
            if s.scalars(select(Batch.id).where(Batch.batch_id == batch_id)).first() is not None:
                raise Conflict(f"batch {batch_id!r} exists already", code="batch_exists")
            rv = find_version(s, recipe, version, approved=True)
            return start_in(rt, s, rv, batch_id, user, parameters, subject)[1]
    except IntegrityError as exc:
        raise Conflict(f"batch {batch_id!r} exists already", code="batch_exists") from exc
    except WorkflowException as exc:
        raise EngineFault(f"the recipe failed at start: {exc}") from exc


def start_in(
    rt: Runtime,
    s: Session,
    rv: RecipeVersion,
    batch_id: str,
    user: str,
    parameters: dict[str, Any],
    subject: tuple[str, str] | None = None,
) -> tuple[Batch, dict[str, Any]]:
    """Start a batch of ``rv`` inside the caller's transaction ``s`` (several batches of
    one ERP schedule commit or roll back together, ``engine.process_orders``): the batch
    row and its description. The caller checked ``batch_id`` is free and catches
    WorkflowException/IntegrityError."""
    if rv.status not in RUNNABLE:
        raise Conflict(
            f"recipe {rv.recipe} version {rv.version} is {rv.status}; only approved and effective versions run",
            code="recipe_not_approved",
        )
    spec, subprocess_specs = rt.store.specs(s, rv.spec_hash)
    wf = BatchWorkflow(spec, subprocess_specs, script_engine=rt.store.make_script_engine())
    wf.task_tree.data.update(parameters)
    wf.task_tree.data.setdefault("batch_id", batch_id)  # recipes may name it (LIMS, ERP)
    runner.run_engine_steps(wf, rt.settings.engine_step_budget, rt.settings.engine_step_seconds)
    batch = Batch(
        batch_id=batch_id,
        recipe_version_id=rv.id,
        recipe_hash=rv.content_hash,
        state=BatchState.RUNNING,
        parameters=parameters,
        created_by=user,
        ready_revision=0,  # its index (none yet) is current: ``persist`` only inserts
    )
    if subject is not None:
        batch.kind, (batch.subject_type, batch.subject_id) = "quality", subject
    s.add(batch)
    s.flush()
    entry = LiveWorkflow(workflow=wf, spec_hash=rv.spec_hash, indexed=set(), assignments={})
    audit.record(
        s,
        user=user,
        action="batch.start",
        object_type="batch",
        object_id=batch_id,
        field="state",
        old=None,
        new=BatchState.RUNNING,
        reason=None,
    )
    outbox.emit(
        s,
        rt.settings,
        "batch.started",
        batch_id,
        {"batch_id": batch_id, "recipe": rv.recipe, "version": rv.version},
    )
    persist(rt, s, batch, entry)
    cache_after_commit(rt, s, batch.id, entry)
    return batch, describe(batch, rv)


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
    actor: Person | None = None,
    override: dict[str, str] | None = None,
    override_signer: Person | None = None,
) -> Outcome:
    """Complete an operator task with its values: the step path.

    A task with a form is signed: ``signer`` is the acting user, re-authenticated just
    now by the caller (password, and user id at a session's first signing); a form that
    requires a witness needs a second, different person holding the witness role. Each
    signature is bound to the SHA-256 of exactly what was signed. ``actor`` is the person
    the caller authenticated as ``user``; the task's role decides whether they may
    complete it (``engine.duties``; without ``actor`` or ``signer`` the user's account
    is read). ``override`` ({field: reason}, signed by ``override_signer``, a supervisor)
    lets failed lot/equipment scan checks through as ``override`` exceptions
    (``engine.batches.overrides``)."""
    if not isinstance(data, dict):
        raise InvalidInput("data must be a JSON object", code="data_invalid")
    uuid = task_uuid(task_id)
    if idempotency_key is not None:
        check_identifier(idempotency_key, "idempotency_key")

    def change(s: Session, batch: Batch, entry: LiveWorkflow) -> dict[str, Any]:
        wf = entry.workflow
        task = ready_user_task(wf, task_id, batch_id)
        rv = recipe_content(rt, s, batch.recipe_version_id)
        check_assignment(s, batch, entry, task, user)
        performer = acting_person(s, user, actor, signer)
        check_performer(task, performer)
        check_participant(s, batch, performer, task_role(task))
        form_key = task_form_key(rv, task)
        form = rv.forms.get(form_key) if form_key else None
        overridden: list[overrides.Overridden] = []
        purpose = spec_logbook(task.task_spec)  # a cleaning or calibration SOP scans differently
        if override is not None:  # (a replay is answered before this, without a signature)
            reasons = overrides.check_request(override, override_signer, user)
            checked, overridden = overrides.check_values_overriding(s, batch.batch_id, form, data, reasons, purpose)
        else:
            checked = check_values(s, batch.batch_id, form, data, purpose=purpose)
        check_signers(task, checked, performer, signer, witness)
        quals = spec_quals(task.task_spec)  # today's training, at every step (engine.duties)
        duties.check_qualified(s, performer.username, quals)
        if witness is not None and checked.validated is not None and checked.validated.witness_required:
            duties.check_qualified(s, witness.username, quals, as_witness=True)
        task.data.update(checked.spiff_data)
        task.run()
        runner.run_engine_steps(wf, rt.settings.engine_step_budget, rt.settings.engine_step_seconds)
        step = append_step(
            rt,
            s,
            batch,
            kind=StepKind.USER_TASK,
            task=task,
            user=user,
            values=checked.values,
            form_id=form_key,
            units=checked.units,
            form_hash=checked.form_hash,
        )
        equipment_logbook.write_entries(s, batch, step, task.task_spec, form)
        lot_movements.record_movements(s, batch, step, task.task_spec, form)
        breach = checked.validated is not None and any(
            f.severity == LimitLevel.ACTION for f in checked.validated.limit_findings
        )
        scope = equipment_use.unit_procedure(task)
        equipment_use.after_step(rt.settings, s, batch, step, task.task_spec, form, breach, scope)
        raised = _limit_exceptions(rt, s, batch, step, checked)
        if overridden and override_signer is not None:
            raised += overrides.raise_overrides(rt, s, batch, step, overridden, override_signer)
        signed = sign(s, batch, step, checked, signer, witness)
        return {
            "step": {**describe_step(step), "signatures": signed},
            "batch": {"batch_id": batch.batch_id, "state": batch.state},
            "exceptions": raised,
            "next_tasks": [describe_task(t, rv) for t in runner.ready_user_tasks(wf)],
        }

    request: dict[str, Any] = {"task_id": str(uuid), "data": data}
    if override is not None:
        request["override"] = override
    idem = Idempotency(user, idempotency_key, request) if idempotency_key else None
    return mutate(rt, batch_id, change, idempotency=idem, status=200)


def append_step(
    rt: Runtime,
    s: Session,
    batch: Batch,
    *,
    kind: StepKind,
    task: Task,
    user: str,
    values: dict[str, Any],
    form_id: str | None = None,
    units: dict[str, Any] | None = None,
    form_hash: str | None = None,
) -> Step:
    """Append one entry to the batch record, with its audit entry and outbox event."""
    # the first write of a change (engine work is done): the same statement counts the
    # step and bumps the revision (``persist`` then writes no second UPDATE of the batch)
    lock_for_writing(s, batch, step_count=batch.step_count + 1, **next_revision(s, batch))
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
        binds=[step],  # the row and its values_hash, sealed into the chain
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
    if kind == StepKind.USER_TASK and JobKind.SCORE_STEP in rt.job_handlers:
        # scored after commit, off the operator's request (out-of-trend analytics)
        s.add(Job(kind=JobKind.SCORE_STEP, batch_id=batch.id, payload={"seq": step.seq}, max_attempts=3))
    return step


def _limit_exceptions(
    rt: Runtime, s: Session, batch: Batch, step: Step, checked: CheckedValues
) -> list[dict[str, Any]]:
    """Alert/action limit breaches: the step IS stored and an exception is raised with it."""
    if checked.validated is None:
        return []
    out = []
    for f in checked.validated.limit_findings:
        exc = quality_exceptions.raise_in(
            rt,
            s,
            batch,
            category=f"limit.{f.severity}",
            message=f.message,
            raised_by=step.user,
            step_seq=step.seq,
            parameter=f.key,
            value=f.value,
            limits={**f.limits, "unit": f.unit},
            details=f.to_dict(),
            critical=f.critical,
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
    finding_key: str | None = None,
) -> dict[str, Any]:
    """Raise an out-of-trend finding or incident from outside the step path (scored after
    commit). ``severity`` is the finding's level (alert / action); the category and the
    rule set decide the exception's severity. ``deviation`` marks the finding critical
    (a critical out-of-trend finding asks the QMS for a deviation under the default rules).
    ``finding_key`` makes the finding raised once (``engine.quality.exceptions.raise_in``)."""
    if severity not in tuple(LimitLevel):
        raise InvalidInput("severity is alert or action", code="severity_invalid")
    details = details or {}
    if source == ExceptionSource.TREND:
        category = ExceptionCategory.OOT_DURATION if details.get("rule") == "duration" else ExceptionCategory.OOT_VALUE
    elif source == ExceptionSource.INCIDENT:
        category = ExceptionCategory.INCIDENT
    else:
        category = ExceptionCategory.LIMIT_ACTION if severity == LimitLevel.ACTION else ExceptionCategory.LIMIT_ALERT
    value = details.get("value")
    limits = {k: details[k] for k in ("lower", "upper", "centre", "limit", "unit") if k in details} or None
    return quality_exceptions.raise_exception(
        rt,
        batch_id,
        category=category,
        source=source,
        message=message,
        parameter=parameter,
        step_seq=step_seq,
        value=value,
        limits=limits,
        details={**details, "level": severity},
        critical=bool(deviation or (severity == LimitLevel.ACTION and details.get("critical"))),
        finding_key=finding_key,
    )
