"""Quality processes: QA's BPMN flows (``workflows/qa/``) run about a subject — a batch,
an exception, a recipe version.

A quality process is a ``batch`` row of kind ``quality`` with ``subject_type`` /
``subject_id``: it takes the whole step path of a batch — its user tasks are in the My
tasks list of the role they name, completed with forms and Part 11 signatures, it has its
own record and audit entries, and it pins its recipe version like any batch, so a new
approved version of a flow never changes a process already running. Production lists
(batches page, API list, analytics) leave quality processes out.

The flows start off the transaction that calls for them, through the job executor: a
batch completing schedules its release flow (``qa_batch_release``, in ``persist``); an
exception escalated schedules its deviation flow (``qa_deviation``, in
``dispositions``); a recipe version submitted for review schedules its approval flow
(``qa_recipe_approval``, in ``engine.recipe_lifecycle``). The job starts the *effective*
version of the flow (for a recipe approval: the one effective at submission); without
one no process starts (audited), and QA decides through the API as before.

What a flow may do to its subject goes through the engine's own operations
(``engine.quality.operations``), which apply the release rules whatever the BPMN says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from .. import audit, outbox
from ..errors import Conflict, NotFound
from ..models import Batch, BatchException, Job, MessageSubscription, RecipeVersion, utcnow
from ..recipes import effective_version
from ..runtime import Runtime
from ..vocabulary import BatchState, JobKind, JobState

QUALITY = "quality"
RELEASE_FLOW = "qa_batch_release"
DEVIATION_FLOW = "qa_deviation"
RECIPE_APPROVAL_FLOW = "qa_recipe_approval"
#: the flow each scheduled start names (the job payload's ``flow``)
FLOWS = {"release": RELEASE_FLOW, "deviation": DEVIATION_FLOW, "recipe_approval": RECIPE_APPROVAL_FLOW}
#: states in which a quality process still has work to do
RUNNING = (BatchState.IDLE, BatchState.RUNNING, BatchState.HELD)
MAX_ID_LEN = 100

#: the quality process whose own operation is acting now (its release must not cancel it)
_acting: ContextVar[str | None] = ContextVar("batchline_quality_process_acting", default=None)


@contextmanager
def acting(process_id: str) -> Iterator[None]:
    token = _acting.set(process_id)
    try:
        yield
    finally:
        _acting.reset(token)


def release_process_id(batch: Batch) -> str:
    """``QP-REL-<batch>``: readable where the process shows up (My tasks, audit trail)."""
    name = f"QP-REL-{batch.batch_id}"
    return name if len(name) <= MAX_ID_LEN else f"QP-REL-{batch.id}"


def deviation_process_id(batch: Batch, exception_id: int) -> str:
    name = f"QP-DEV-{batch.batch_id}-{exception_id}"
    return name if len(name) <= MAX_ID_LEN else f"QP-DEV-{batch.id}-{exception_id}"


def schedule_deviation_flow(rt: Runtime, s: Session, batch: Batch, exc: BatchException) -> None:
    """An exception was escalated: start its deviation flow once this transaction commits."""
    s.add(
        Job(
            kind=JobKind.START_QUALITY_PROCESS,
            batch_id=batch.id,
            payload={"flow": "deviation", "batch": batch.batch_id, "exception": exc.id},
            max_attempts=rt.settings.job_max_attempts,
        )
    )


def start_scheduled(rt: Runtime, batch_id: str, _task_id: Any, payload: dict[str, Any]) -> None:
    """The job handler of ``START_QUALITY_PROCESS``: start the flow about its subject.
    Running it twice starts one process (the process id is derived from the subject)."""
    from ..batches import start_batch
    from ..batches.unit_of_work import find_batch

    flow = payload.get("flow")
    key = FLOWS.get(str(flow))
    if key is None:
        raise Conflict(f"no quality flow named {flow!r}", code="quality_flow_unknown")
    if flow == "recipe_approval":
        return _start_recipe_approval(rt, payload)
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        if flow == "deviation":
            exc_id = int(payload["exception"])
            pid = deviation_process_id(batch, exc_id)
            subject = ("exception", str(exc_id))
            parameters: dict[str, Any] = {"subject_batch": batch.batch_id, "exception_id": exc_id}
        else:
            pid = release_process_id(batch)
            subject = ("batch", batch.batch_id)
            parameters = {"subject_batch": batch.batch_id}
        if s.scalars(select(Batch.id).where(Batch.batch_id == pid)).first() is not None:
            return  # started already (the job ran before and its completion was lost)
        rv = effective_version(s, key)
        if rv is None:
            audit.record(
                s,
                user="system",
                action="quality_process.not_started",
                object_type="batch",
                object_id=batch.batch_id,
                field=key,
                new={"flow": key, "subject": list(subject)},
                reason=f"no effective version of {key}: no quality process runs; QA decides through the API",
            )
            return
        version = rv.version
    try:
        start_batch(rt, key, pid, user="system", parameters=parameters, version=version, subject=subject)
    except Conflict as exc:
        if exc.code != "batch_exists":
            raise


def _start_recipe_approval(rt: Runtime, payload: dict[str, Any]) -> None:
    """A recipe version was submitted: start the approval flow version that was effective
    then (the job payload names it), about the recipe version."""
    from ..batches import start_batch
    from ..recipe_lifecycle import approval_parameters

    pid = str(payload["process"])
    with rt.transaction() as s:
        if s.scalars(select(Batch.id).where(Batch.batch_id == pid)).first() is not None:
            return  # started already
        rv = s.get(RecipeVersion, int(payload["recipe_version"]))
        if rv is None:
            raise NotFound(f"recipe version {payload['recipe_version']} not found", code="recipe_not_found")
        parameters = approval_parameters(rv)
        subject = ("recipe_version", str(rv.id))
    try:
        start_batch(
            rt,
            RECIPE_APPROVAL_FLOW,
            pid,
            user="system",
            parameters=parameters,
            version=int(payload["version"]),
            subject=subject,
        )
    except Conflict as exc:
        if exc.code != "batch_exists":
            raise


# --- reading -------------------------------------------------------------------------


def _about(s: Session, batch: Batch) -> list[tuple[Batch, str]]:
    """Quality processes about ``batch`` or one of its exceptions, still running, with
    their flow's recipe key."""
    exc_ids = [str(i) for i in s.scalars(select(BatchException.id).where(BatchException.batch_id == batch.id))]
    about: ColumnElement[bool] = (Batch.subject_type == "batch") & (Batch.subject_id == batch.batch_id)
    if exc_ids:
        about = or_(about, (Batch.subject_type == "exception") & Batch.subject_id.in_(exc_ids))
    stmt = (
        select(Batch, RecipeVersion.recipe)
        .join(RecipeVersion, RecipeVersion.id == Batch.recipe_version_id)
        .where(Batch.kind == QUALITY, Batch.state.in_([str(x) for x in RUNNING]), about)
        .order_by(Batch.id)
    )
    return [(row, key) for row, key in s.execute(stmt)]


def _is_release_flow(process: Batch, key: str) -> bool:
    return process.subject_type == "batch" and key == RELEASE_FLOW


def running_about(s: Session, batch: Batch) -> list[dict[str, Any]]:
    """Quality processes about ``batch`` still running, other than its release flow
    (release blocking items of kind ``quality_process``): a deviation still under
    investigation stands between the batch and its release."""
    return [
        {
            "kind": "quality_process",
            "id": process.batch_id,
            "flow": key,
            "subject_type": process.subject_type,
            "subject_id": process.subject_id,
            "state": process.state,
            "message": f"quality process {process.batch_id} ({key}) is still {process.state}",
        }
        for process, key in _about(s, batch)
        if not _is_release_flow(process, key)
    ]


def process_of(s: Session, process_id: str) -> Batch:
    """A quality process by id; refused for a production batch."""
    process = s.scalars(select(Batch).where(Batch.batch_id == process_id)).first()
    if process is None:
        raise NotFound(f"quality process {process_id!r} not found", code="batch_not_found")
    if process.kind != QUALITY or not process.subject_type:
        raise Conflict(
            f"{process_id} is not a quality process: it has no subject to act on", code="not_quality_process"
        )
    return process


def describe_subject(process: Batch) -> dict[str, Any] | None:
    if process.kind != QUALITY:
        return None
    return {"type": process.subject_type, "id": process.subject_id}


# --- ending ----------------------------------------------------------------------------


def finish_release_flows(rt: Runtime, s: Session, batch: Batch, *, user: str) -> None:
    """The batch was released or rejected outside its release flow (the API): the flow
    has nothing left to do. Its remaining tasks are cancelled and it ends, audited. The
    flow whose own ``batch.release`` / ``batch.reject`` is acting goes on to its end."""
    from ..batches.unit_of_work import find_batch, live_workflow

    me = _acting.get()
    for process, key in _about(s, batch):
        if not _is_release_flow(process, key) or process.batch_id == me:
            continue
        process = find_batch(s, process.batch_id, lock=True)
        with live_workflow(rt, s, process, changing=True) as entry:
            cancelled = [t for t in entry.workflow.cancel() if getattr(t.task_spec, "bpmn_id", None)]
            rt.store.save(s, process.id, entry)
            process.revision += 1
            entry.revision = process.revision
        s.execute(delete(MessageSubscription).where(MessageSubscription.batch_id == process.id))
        for job in s.scalars(select(Job).where(Job.batch_id == process.id, Job.state == JobState.PENDING)):
            job.state = JobState.DONE
            job.finished_at = utcnow()
        old = process.state
        process.state = BatchState.COMPLETE
        process.completed_at = utcnow()
        audit.record(
            s,
            user=user,
            action="quality_process.cancelled",
            object_type="batch",
            object_id=process.batch_id,
            field="state",
            old=old,
            new={"state": BatchState.COMPLETE, "cancelled": sorted({t.task_spec.bpmn_id for t in cancelled})},
            reason=f"batch {batch.batch_id} was {batch.state} by {user} outside the flow",
        )
        outbox.emit(
            s,
            rt.settings,
            "batch.completed",
            process.batch_id,
            {"batch_id": process.batch_id, "cancelled": True, "subject": describe_subject(process)},
        )
