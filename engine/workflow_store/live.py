"""A loaded workflow with what was last written for it, and the per-process cache of
loaded workflows (checked against ``Batch.revision`` under the batch lock)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from .rows import ProcessRow, StateRow, TaskRow


@dataclass
class LiveWorkflow:
    """A loaded workflow plus what was last written for it (to find changed rows)."""

    workflow: BpmnWorkflow
    spec_hash: str
    revision: int = 0
    task_rows: dict[str, TaskRow] = field(default_factory=dict)
    process_rows: dict[str, ProcessRow] = field(default_factory=dict)
    state_row: StateRow | None = None
    #: (job kind, task id) pairs already scheduled; None until read from the database
    scheduled: set[tuple[str, str | None]] | None = None
    #: (task id, message, canonical correlation) of the message subscriptions written;
    #: None until read from the database
    subscriptions: set[tuple[str, str, str]] | None = None
    #: task ids in the ready-task index (``engine.batches.ready_index``); None until read
    indexed: set[str] | None = None
    #: task id -> assignee (supervisor reassignments); None until read from the database
    assignments: dict[str, str] | None = None
    #: (task id, kind) whose time is recorded (``engine.batches.task_times``); None until used
    timed: set[tuple[str, str]] | None = None


class WorkflowCache:
    """Per-process LRU of loaded workflows. An entry is *taken* while a transaction uses
    it and put back only after commit, so a failed step can never leave a half-changed
    workflow behind for the next request."""

    def __init__(self, size: int = 256):
        self.size = size
        self._entries: OrderedDict[int, LiveWorkflow] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, batch_pk: int, revision: int) -> LiveWorkflow | None:
        with self._lock:
            entry = self._entries.pop(batch_pk, None)
        if entry is not None and entry.revision == revision:
            return entry
        return None

    def put(self, batch_pk: int, entry: LiveWorkflow) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._entries[batch_pk] = entry
            self._entries.move_to_end(batch_pk)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def drop(self, batch_pk: int) -> None:
        with self._lock:
            self._entries.pop(batch_pk, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
