"""The workflow classes Batchline runs, and pruning finished loop iterations from the
live tree (their rows stay in the database as history; they are just not loaded)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from .encoding import MergeLog

TOP = ""  # process id of the top-level process


def _update_waiting(process, *, deferred: bool = True) -> None:
    """Spiff walks the whole task tree (depth-limited to 1000) after every completed task
    to refresh WAITING tasks; the task dictionary holds the same tasks with no depth
    limit and no per-node list building. While `engine.runner` runs engine steps it
    defers this (`defer_waiting`) and refreshes once per scan instead: a scan after
    every task made a loop quadratic (a 2,000-iteration gateway loop spent 6 of 7 s
    here)."""
    top = getattr(process, "top_workflow", None) or process
    if deferred and getattr(top, "defer_waiting", False):
        return
    for task in [t for t in process.tasks.values() if t.state == TaskState.WAITING]:
        if task.state == TaskState.WAITING:
            task.task_spec._update(task)


def refresh_waiting(process) -> None:
    """Refresh the WAITING tasks of one process now (what a deferred refresh skipped)."""
    _update_waiting(process, deferred=False)


class BatchSubWorkflow(BpmnSubWorkflow):
    def update_waiting_tasks(self) -> None:
        _update_waiting(self)


class BatchWorkflow(BpmnWorkflow):
    """SpiffWorkflow's BpmnWorkflow with depth-free refreshing of waiting tasks."""

    def update_waiting_tasks(self) -> None:
        _update_waiting(self)

    def create_subprocess(self, my_task, spec_name):
        subprocess = BatchSubWorkflow(self.subprocess_specs[spec_name], parent_task_id=my_task.id, top_workflow=self)
        self.subprocesses[my_task.id] = subprocess
        return subprocess


def all_processes(workflow: BpmnWorkflow) -> list[tuple[str, Any]]:
    return [(TOP, workflow)] + [(str(pid), sp) for pid, sp in workflow.subprocesses.items()]


def prune(workflow: BpmnWorkflow) -> int:
    """Drop finished, merged loop iterations from the live tree; returns tasks pruned."""
    pruned = 0
    for _, process in all_processes(workflow):
        for task in list(process.tasks.values()):
            if not isinstance(task.task_spec, LoopTask):
                continue
            merged = task.internal_data.get("merged")
            if not merged:
                continue
            recent = list(list.__iter__(merged))
            keep = recent[-1]  # Spiff reads the last merged child (completion condition)
            removable = set(recent[:-1])
            if not removable:
                continue
            for child in list(task.children):
                cid = str(child.id)
                if cid in removable and child.state == TaskState.COMPLETED:
                    pruned += _remove_subtree(workflow, process, child)
            base = merged.pruned if isinstance(merged, MergeLog) else 0
            task.internal_data["merged"] = MergeLog(base + len(removable), [keep])
    return pruned


def _remove_subtree(top: BpmnWorkflow, process, task: Task) -> int:
    count = 0
    for desc in list(_walk(task)):
        sp = top.subprocesses.get(desc.id)
        if sp is not None:
            count += _drop_subprocess(top, desc.id)
    count += sum(1 for _ in _walk(task))
    process._remove_task(task.id)
    return count


def _drop_subprocess(top: BpmnWorkflow, task_id: UUID) -> int:
    sp = top.subprocesses.pop(task_id, None)
    if sp is None:
        return 0
    count = len(sp.tasks)
    for inner_id in list(sp.tasks):
        if inner_id in top.subprocesses:
            count += _drop_subprocess(top, inner_id)
    return count


def _walk(task: Task) -> Iterator[Task]:
    stack = [task]
    while stack:
        t = stack.pop()
        yield t
        stack.extend(c for c in t.children if c is not None)
