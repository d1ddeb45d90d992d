"""Where a running batch stands, mapped onto another version of its recipe — and the move.

SpiffWorkflow 3.2.0 ships a spec diff and ``migrate_workflow`` (``SpiffWorkflow.bpmn.util.
diff``), and the serializer has version migrations; neither is used as is: the serializer
migration crashes for a workflow waiting inside a call activity (docs/architecture.md,
pitfalls), and ``migrate_workflow`` resets every READY/WAITING branch (clearing the
task's internal data, which holds Batchline's pending service-task marks) and walks the
tree with depth-limited iterators. Batchline's workflow rows name each task's spec by BPMN
id (``workflow_task.spec_name``), so the move is done here on the live workflow, process by
process, parents before the subprocesses they called:

* the **position** is every READY, WAITING or STARTED task (a STARTED call activity is the
  unit procedure the batch is inside). Each must have a spec of the same id and the same
  type in the new version (a call activity must still call the same process); finished
  tasks must still exist too, since the tree that holds the record of what ran is kept;
* the process specs are swapped (top process and every running subprocess: the new
  version's spec of the process the call activity calls), every task gets the new
  version's spec of the same id, and each position task's *predicted* children (FUTURE,
  LIKELY, MAYBE: what Spiff expected next) are dropped and predicted again from the new
  spec. Task data, internal data and states are carried over unchanged.

Anything that does not map is refused with the elements named; nothing is half-moved
(the caller works on a borrowed workflow inside one transaction; an error drops it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.util.task import TaskState

from ..workflow_store import TOP, all_processes

POSITION = TaskState.READY | TaskState.WAITING | TaskState.STARTED
PREDICTED = TaskState.PREDICTED_MASK | TaskState.FUTURE


@dataclass
class Mapping:
    """The outcome of mapping a batch's position onto a new version."""

    position: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def unmapped(self) -> list[str]:
        return sorted({p["element"] for p in self.problems})


def _kind(spec) -> str:
    return type(spec).__name__


def _new_process_specs(workflow, new_spec, new_subprocess_specs) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """process id -> the new version's spec of that process; problems for those missing."""
    out: dict[str, Any] = {TOP: new_spec}
    problems: list[dict[str, Any]] = []
    for pid, process in all_processes(workflow):
        if pid == TOP:
            continue
        parent_task = workflow.get_task_from_id(process.parent_task_id)
        called = getattr(parent_task.task_spec, "spec", None) or process.spec.name
        spec = new_subprocess_specs.get(called)
        if spec is None:
            problems.append(
                {
                    "element": parent_task.task_spec.name,
                    "process": called,
                    "reason": f"the new version has no process {called!r}, which the batch is running",
                }
            )
        else:
            out[pid] = spec
    return out, problems


def map_position(workflow, new_spec, new_subprocess_specs) -> Mapping:
    """Check, without changing anything, that the batch's position maps onto the new specs."""
    result = Mapping()
    specs, result.problems = _new_process_specs(workflow, new_spec, new_subprocess_specs)
    for pid, process in all_processes(workflow):
        target = specs.get(pid)
        if target is None:
            continue
        for task in process.tasks.values():
            spec = task.task_spec
            if task.has_state(PREDICTED):
                continue  # what Spiff expected next: predicted again from the new version
            new = target.task_specs.get(spec.name)
            where = {"element": spec.name, "process": process.spec.name, "state": TaskState.get_name(task.state)}
            if new is None:
                if task.has_state(POSITION):
                    reason = "the batch is at this element and the new version does not have it"
                else:
                    reason = "this element already ran and the new version does not have it"
                result.problems.append({**where, "reason": reason})
                continue
            if _kind(new) != _kind(spec):
                result.problems.append(
                    {**where, "reason": f"it is a {_kind(spec)} here and a {_kind(new)} in the new version"}
                )
                continue
            old_called, new_called = getattr(spec, "spec", None), getattr(new, "spec", None)
            if old_called != new_called:
                result.problems.append(
                    {**where, "reason": f"it calls {old_called!r} here and {new_called!r} in the new version"}
                )
                continue
            if task.has_state(POSITION) and spec.bpmn_id is not None:
                result.position.append({**where, "name": spec.bpmn_name})
    result.position.sort(key=lambda p: (p["process"], p["element"]))
    return result


def move(workflow, new_spec, new_subprocess_specs) -> Mapping:
    """Put the workflow on the new specs (only after ``map_position`` said it maps)."""
    mapping = map_position(workflow, new_spec, new_subprocess_specs)
    if not mapping.ok:
        return mapping
    specs, _ = _new_process_specs(workflow, new_spec, new_subprocess_specs)
    workflow.subprocess_specs = new_subprocess_specs
    processes = all_processes(workflow)
    for pid, process in processes:
        process.spec = specs[pid]
        for task in list(process.tasks.values()):
            if task.id not in process.tasks or task.has_state(PREDICTED):
                continue
            task.task_spec = specs[pid].task_specs[task.task_spec.name]
    for _pid, process in processes:
        for task in [t for t in process.tasks.values() if t.has_state(POSITION)]:
            _predict_again(task)
    for pid, process in processes:  # predictions outside the position: realigned or dropped
        for task in list(process.tasks.values()):
            if task.id not in process.tasks or task.task_spec is specs[pid].task_specs.get(task.task_spec.name):
                continue
            new = specs[pid].task_specs.get(task.task_spec.name)
            if new is not None:
                task.task_spec = new
            else:
                process._remove_task(task.id)
    return mapping


def _predict_again(task) -> None:
    """Drop what Spiff predicted after this task and predict it from the new spec."""
    for child in list(task.children):
        if child.has_state(PREDICTED):
            task.workflow._remove_task(child.id)
    task.task_spec._predict_hook(task)
    for child in task.children:
        if child.has_state(PREDICTED):
            child.task_spec._predict(child, mask=PREDICTED)
