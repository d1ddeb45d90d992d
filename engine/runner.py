"""Running a loaded SpiffWorkflow: engine steps under a budget, and what the batch is
waiting for (operator tasks, timers, service tasks, messages).

Why not Spiff's own ``do_engine_steps``: its task iterators stop at tree depth 1000, so a
gateway loop of a few hundred iterations stalls while a task is READY (and
``is_completed()`` then says True). Here READY tasks are found through each process's
task dictionary, which has no depth, and the loop stops after a step budget so a
runaway model is reported instead of hanging a request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .errors import EngineFault
from .script_pool import long_script_seconds
from .workflow_store import all_processes
from .workflow_store.tree import refresh_waiting

UNFINISHED = TaskState.READY | TaskState.WAITING | TaskState.STARTED


def tasks(workflow: BpmnWorkflow) -> Iterator[Task]:
    for _, process in all_processes(workflow):
        yield from process.tasks.values()


def run_engine_steps(workflow: BpmnWorkflow, budget: int = 10_000, seconds: float = 1.0) -> int:
    """Run every READY non-manual task until only operator tasks or waits remain.

    Stops a runaway model after ``budget`` steps or ``seconds`` of wall time, whichever
    comes first; script calls of 50 ms or more are not counted (each is bounded by the
    script limits, engine/script_pool.py)."""
    workflow.defer_waiting = True
    try:
        return _run(workflow, budget, seconds)
    finally:
        workflow.defer_waiting = False


def _runaway(ran: int, budget: int, seconds: float, took: float) -> EngineFault:
    return EngineFault(
        f"the recipe ran {ran} engine steps in {took:.1f} s without waiting for anyone "
        f"(at most {budget} steps or {seconds:g} s); check its loops and conditions",
        code="engine_step_budget",
        details={"budget": budget, "seconds": seconds, "steps": ran},
    )


def _run(workflow: BpmnWorkflow, budget: int, seconds: float) -> int:
    ran = 0
    started = time.monotonic()
    scripts_before = long_script_seconds()

    def elapsed() -> float:
        return time.monotonic() - started - (long_script_seconds() - scripts_before)

    def run_ready(process) -> int:
        """Run READY tasks of one process. After a task runs, its children are looked at
        first (they are usually what became READY); a full scan of the task dictionary
        confirms nothing is left, so a long chain costs O(1) per task, not O(tree)."""
        nonlocal ran
        count = 0
        while True:
            refresh_waiting(process)
            work = [t for t in process.tasks.values() if t.state == TaskState.READY and not t.task_spec.manual]
            if not work:
                return count
            while work:
                task = work.pop()
                if task.state != TaskState.READY or task.task_spec.manual or task.workflow is not process:
                    continue
                task.run()
                count += 1
                ran += 1
                if ran > budget or (ran % 16 == 0 and elapsed() > seconds):
                    raise _runaway(ran, budget, seconds, time.monotonic() - started)
                work.extend(c for c in task.children if c is not None and c.state == TaskState.READY)

    while True:
        before = len(workflow.get_active_subprocesses())
        count = 0
        for sp in sorted(workflow.get_active_subprocesses(), key=lambda s: s.depth, reverse=True):
            count += run_ready(sp)
            if sp.parent_task_id is not None:
                parent = workflow.get_task_from_id(sp.parent_task_id)
                parent.task_spec._update(parent)
        count += run_ready(workflow)
        if count == 0:
            # Spiff refreshes WAITING tasks through a depth-limited iterator; do it here too.
            woke = 0
            for task in list(tasks(workflow)):
                if task.state == TaskState.WAITING:
                    task.task_spec._update(task)
                    woke += task.state != TaskState.WAITING
            if woke == 0 and len(workflow.get_active_subprocesses()) == before:
                break
    workflow.refresh_timers()
    return ran


def is_finished(workflow: BpmnWorkflow) -> bool:
    """Finished = the top process reached its end and nothing is READY, WAITING or STARTED."""
    if not workflow.completed:
        return False
    return not any(t.state & UNFINISHED for t in tasks(workflow))


def is_ready_user_task(task: Task) -> bool:
    """An operator task waiting for someone to complete it."""
    return task.state == TaskState.READY and bool(task.task_spec.manual)


def is_waiting_service_task(task: Task) -> bool:
    """A service task the job executor (or an async callback) has yet to complete."""
    return task.state == TaskState.STARTED and isinstance(task.task_spec, ServiceTask)


def ready_user_tasks(workflow: BpmnWorkflow) -> list[Task]:
    return [t for t in tasks(workflow) if is_ready_user_task(t)]


def waiting_service_tasks(workflow: BpmnWorkflow) -> list[Task]:
    return [t for t in tasks(workflow) if is_waiting_service_task(t)]


@dataclass
class TimerWait:
    task_id: str
    due_at: datetime


def waiting_timers(workflow: BpmnWorkflow) -> list[TimerWait]:
    """Timers and when they are due (Spiff stores the due time when it first checks)."""
    out = []
    for task in workflow.event_manager.tasks.values():
        ev = task.task_spec.event_definition
        if not isinstance(ev, TimerEventDefinition) or task.state != TaskState.WAITING:
            continue
        value = task.internal_data.get("event_value")
        due = _due(value)
        if due is not None:
            out.append(TimerWait(str(task.id), due))
    return out


def _due(value: Any) -> datetime | None:
    if isinstance(value, dict):  # cycle timer
        value = value.get("next")
    if isinstance(value, datetime):
        due = value
    elif isinstance(value, str):
        try:
            due = TimerEventDefinition.get_datetime(value)
        except Exception:  # a duration before first evaluation; Spiff fills it in
            return None
    else:
        return None
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return due


@dataclass
class MessageWait:
    task_id: str
    message: str
    correlation: dict[str, Any]


def waiting_messages(workflow: BpmnWorkflow) -> list[MessageWait]:
    """Message catches, with the correlation values this batch expects.

    A correlation property's retrieval expression is evaluated on the waiting task's
    own data (e.g. ``sample_id``), and later on the incoming payload; equal values
    correlate (BPMN's key-based correlation).
    """
    out = []
    for task in workflow.event_manager.tasks.values():
        ev = task.task_spec.event_definition
        if not isinstance(ev, MessageEventDefinition) or task.state != TaskState.WAITING:
            continue
        out.append(MessageWait(str(task.id), ev.name, payload_correlation(workflow, task, task.data)))
    return out


def payload_correlation(workflow: BpmnWorkflow, task: Task, payload: dict) -> dict[str, Any]:
    """The waiting catch event's correlation properties evaluated on ``payload`` (a
    property that cannot be evaluated is None)."""
    engine = workflow.script_engine
    out = {}
    for prop in task.task_spec.event_definition.correlation_properties:
        try:
            out[prop.name] = engine.environment.evaluate(prop.retrieval_expression, dict(payload))
        except Exception:
            out[prop.name] = None
    return out


def deliver_message(workflow: BpmnWorkflow, task: Task, payload: dict) -> None:
    """Hand a correlated message to one waiting catch event.

    Batchline has already matched the correlation key itself, so Spiff's conversation
    bookkeeping (``workflow.correlations``, which would refuse a second sample result
    with another key) is not consulted.
    """
    ev = task.task_spec.event_definition
    event = BpmnEvent(ev, payload=payload, correlations={})
    workflow.correlations = {}
    task.task_spec.catch(task, event)
    task.task_spec._update(task)


def throw_error(workflow: BpmnWorkflow, task: Task, code: str | None, message: str) -> bool:
    """Raise a BPMN error on a task: an attached error boundary event with that code (or
    no code) catches it. Returns False when nothing catches it."""
    parent = task.parent
    if parent is None:
        return False
    for sibling in parent.children:
        spec = sibling.task_spec
        if sibling is task or not isinstance(spec, BoundaryEvent) or sibling.state != TaskState.WAITING:
            continue
        ev = spec.event_definition
        if isinstance(ev, ErrorEventDefinition) and (ev.code in (None, "") or ev.code == code):
            spec.catch(sibling, BpmnEvent(ev, payload={"error_code": code, "error_message": message}))
            spec._update(sibling)
            return True
    return False
