"""What a batch waits for besides people — correlated messages, timers and service
tasks — completed by the API and the job executor, each in a step of its own."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import runner
from ..connectors import ServiceCall
from ..errors import EngineFault, InvalidInput, NotFound
from ..finite import check_finite
from ..models import Batch, MessageSubscription
from ..runtime import Runtime
from ..vocabulary import BatchState, StepKind
from ..workflow_store import LiveWorkflow
from .descriptions import describe_step
from .inputs import scalar_data, task_uuid
from .step_path import append_step
from .tasks import find_task, waiting_service_task
from .unit_of_work import Idempotency, Outcome, find_batch, live_workflow, mutate


def deliver_message(rt: Runtime, name: str, payload: dict[str, Any], *, user: str) -> list[dict[str, Any]]:
    """Deliver a correlated message to every batch waiting for it with matching keys."""
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object", code="payload_invalid")
    check_finite(payload, "payload")
    with rt.transaction() as s:
        subs = s.execute(
            select(MessageSubscription, Batch.batch_id)
            .join(Batch, Batch.id == MessageSubscription.batch_id)
            .where(MessageSubscription.message == name)
        ).all()
    delivered = []
    for sub, batch_id in subs:

        def change(s: Session, batch: Batch, entry: LiveWorkflow, sub: MessageSubscription = sub) -> dict[str, Any]:
            wf = entry.workflow
            task = find_task(wf, UUID(sub.task_id))
            if task is None or task.state != TaskState.WAITING:
                return {}
            got = runner.payload_correlation(wf, task, payload)
            if got != sub.correlation:
                return {}
            runner.deliver_message(wf, task, payload)
            runner.run_engine_steps(wf, rt.settings.engine_step_budget, rt.settings.engine_step_seconds)
            step = append_step(
                rt, s, batch, kind=StepKind.MESSAGE, task=task, user=user, values={"message": name, "payload": payload}
            )
            return {"batch_id": batch.batch_id, "seq": step.seq}

        if sub.correlation and not _matches(sub.correlation, payload):
            continue
        outcome = mutate(rt, batch_id, change, allow_states=(BatchState.RUNNING, BatchState.HELD))
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


def fire_timer(rt: Runtime, batch_id: str, task_id: str) -> bool | None:
    """Fire a due timer: True when it fired, False when there is nothing left to fire (the
    timer is gone or fired already), None when SpiffWorkflow's clock says it is not due
    yet — the job's clock ran ahead (another node's clock, a skew): try again shortly."""

    def change(s: Session, batch: Batch, entry: LiveWorkflow) -> dict[str, Any]:
        wf = entry.workflow
        task = find_task(wf, UUID(task_id))
        if task is None or task.state != TaskState.WAITING:
            return {"fired": False, "waiting": False}
        task.task_spec._update(task)
        wf.refresh_timers()
        fired = task.state != TaskState.WAITING
        runner.run_engine_steps(wf, rt.settings.engine_step_budget, rt.settings.engine_step_seconds)
        if fired:
            append_step(
                rt,
                s,
                batch,
                kind=StepKind.TIMER,
                task=task,
                user="system",
                values={"due": task.internal_data.get("event_value")},
            )
        return {"fired": fired, "waiting": not fired}

    body = mutate(rt, batch_id, change).body
    return None if body.get("waiting") else bool(body.get("fired"))


def service_task_call(rt: Runtime, batch_id: str, task_id: str) -> tuple[ServiceCall | None, str]:
    """What the job executor needs to call a connector (read without locking), and the
    batch's state. Its parameter expressions are recipe scripts: a deferred transaction
    keeps SQLite's write lock free while they run."""
    with rt.transaction(deferred=True) as s:
        batch = find_batch(s, batch_id)
        with live_workflow(rt, s, batch) as entry:
            task = find_task(entry.workflow, UUID(task_id))
            if task is None or not runner.is_waiting_service_task(task):
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
    check_finite(result, "result")
    task_uuid(task_id)

    def change(s: Session, batch: Batch, entry: LiveWorkflow) -> dict[str, Any]:
        wf = entry.workflow
        task = waiting_service_task(wf, task_id, batch_id)
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
            runner.run_engine_steps(wf, rt.settings.engine_step_budget, rt.settings.engine_step_seconds)
            step = append_step(
                rt,
                s,
                batch,
                kind=StepKind.SERVICE_TASK,
                task=task,
                user=user,
                values={"error_code": code, "error": message},
            )
            return {"step": describe_step(step)}
        task.internal_data.pop("batchline_pending", None)
        if getattr(task.task_spec, "result_variable", None):
            task.data[task.task_spec.result_variable] = scalar_data(result)
        else:
            task.data.update(scalar_data(result))
        task.complete()
        runner.run_engine_steps(wf, rt.settings.engine_step_budget, rt.settings.engine_step_seconds)
        step = append_step(rt, s, batch, kind=StepKind.SERVICE_TASK, task=task, user=user, values=result)
        return {"step": describe_step(step)}

    request = {"task_id": task_id, "result": result}
    idem = Idempotency(user, idempotency_key, request) if idempotency_key else None
    return mutate(rt, batch_id, change, idempotency=idem)
