"""Durable SpiffWorkflow state, one row per task — never one blob per step.

Why: SpiffWorkflow 3.2.0's whole-workflow ``serialize_json`` grows with the task tree,
so saving it after every step is quadratic over a batch (DESIGN.md: 162 s of saving over
a 3,000-step batch). Here a step writes only the task and process rows whose content
changed; task data is stored once per distinct content (SHA-256), specs once per recipe.

Three more things keep a long batch as cheap as a short one:

* **A live tree that stays small.** Spiff scans its whole task tree on every task run.
  Finished iterations of a standard loop or multi-instance activity (and the call
  activities inside them) are *pruned* from the in-memory tree once merged: their rows
  stay in the database with ``live = false`` (history is never deleted), they are just
  not loaded again. The loop's list of merged children becomes a ``MergeLog`` that
  counts pruned entries instead of listing them.
* **A cache of loaded workflows** per process, keyed by batch and checked against
  ``Batch.revision`` under the batch lock, so a step does not reload the workflow.
* **Data that cannot break loading**: a ``typename`` key in user data (which Spiff's
  registry would mistake for a serialized object) is escaped on the way in.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import TaskData, WorkflowProcess, WorkflowSpec, WorkflowState, WorkflowTask

TOP = ""  # process id of the top-level process


# --- data encoding -------------------------------------------------------------------


class MergeLog(list):
    """Spiff's list of merged loop children, with pruned entries counted, not listed.

    Spiff only ever takes ``len()`` of it, appends to it and reads its last entry, so a
    count of the pruned ids plus the recent ids behaves the same at O(1) size.
    """

    def __init__(self, pruned: int = 0, ids: Iterable[str] = ()):
        super().__init__(ids)
        self.pruned = pruned

    def __len__(self) -> int:  # noqa: D105
        return self.pruned + super().__len__()

    def __bool__(self) -> bool:
        return len(self) > 0


ESCAPED = "BatchlineEscapedDict"
MERGE_LOG = "BatchlineMergeLog"


def register_types(registry) -> None:
    """Teach a Spiff registry the two shapes this module writes."""
    registry.register(
        MergeLog,
        lambda v: {"pruned": v.pruned, "ids": list(list.__iter__(v))},
        lambda d: MergeLog(d["pruned"], d["ids"]),
        typename=MERGE_LOG,
    )
    registry.convert_from_dict[ESCAPED] = lambda d, **kw: {k: registry.restore(v) for k, v in d["items"]}


def encode(registry, value: Any) -> Any:
    """Registry conversion, except that user dicts holding a ``typename`` key are escaped."""
    if isinstance(value, dict):
        if "typename" in value:
            return {"typename": ESCAPED, "items": [[k, encode(registry, v)] for k, v in value.items()]}
        return {k: encode(registry, v) for k, v in value.items()}
    if isinstance(value, MergeLog):
        return {"typename": MERGE_LOG, "pruned": value.pruned, "ids": list(list.__iter__(value))}
    if isinstance(value, (list, tuple)):
        return [encode(registry, v) for v in value]
    if type(value) in (str, int, float, bool, type(None)):
        return value
    converted = registry.convert(value)
    return converted


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- the live workflow ---------------------------------------------------------------


@dataclass
class LiveWorkflow:
    """A loaded workflow plus what was last written for it (to find changed rows)."""

    workflow: BpmnWorkflow
    spec_hash: str
    revision: int = 0
    task_rows: dict[str, tuple] = field(default_factory=dict)
    process_rows: dict[str, tuple] = field(default_factory=dict)
    state_row: tuple | None = None
    #: (job kind, task id) pairs already scheduled; None until read from the database
    scheduled: set | None = None
    #: message subscriptions written; None until read from the database
    subscriptions: set | None = None
    #: task id -> assignee (supervisor reassignments); None until read from the database
    assignments: dict | None = None


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


# --- the workflow classes Batchline runs ------------------------------------------


def _update_waiting(process) -> None:
    """Spiff walks the whole task tree (depth-limited to 1000) after every completed task
    to refresh WAITING tasks; the task dictionary holds the same tasks with no depth
    limit and no per-node list building."""
    for task in [t for t in process.tasks.values() if t.state == TaskState.WAITING]:
        if task.state == TaskState.WAITING:
            task.task_spec._update(task)


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


# --- pruning -------------------------------------------------------------------------


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


def _walk(task: Task):
    stack = [task]
    while stack:
        t = stack.pop()
        yield t
        stack.extend(c for c in t.children if c is not None)


# --- saving --------------------------------------------------------------------------


class WorkflowStore:
    """Reads and writes workflow rows for one registry (serializer) configuration."""

    def __init__(self, serializer, make_script_engine):
        self.serializer = serializer
        self.registry = serializer.registry
        register_types(self.registry)
        self.make_script_engine = make_script_engine
        self._specs: dict[str, tuple[Any, dict]] = {}
        self._spec_lock = threading.Lock()

    # specs ------------------------------------------------------------------------
    def store_spec(self, session: Session, parsed) -> str:
        """Store a parsed recipe's specs once, under the hash of their canonical JSON."""
        from .bpmn import spec_to_dict

        body = canonical(spec_to_dict(parsed))
        digest = sha256(body)
        if session.get(WorkflowSpec, digest) is None:
            session.add(WorkflowSpec(hash=digest, body=body))
            session.flush()
        return digest

    def specs(self, session: Session, spec_hash: str):
        """Restored specs, cached: specs are immutable once stored under their hash."""
        cached = self._specs.get(spec_hash)
        if cached is not None:
            return cached
        from .bpmn import spec_from_dict

        with self._spec_lock:
            cached = self._specs.get(spec_hash)
            if cached is None:
                parsed = spec_from_dict(json.loads(session.get(WorkflowSpec, spec_hash).body))
                cached = self._specs[spec_hash] = (parsed.spec, parsed.subprocess_specs)
        return cached

    # rows -------------------------------------------------------------------------
    def _data_ref(self, value: Any, new_data: dict[str, str]) -> str:
        body = canonical(encode(self.registry, value))
        digest = sha256(body)
        new_data.setdefault(digest, body)
        return digest

    def _task_row(self, task: Task, process_id: str, new_data: dict[str, str]) -> tuple:
        return (
            process_id,
            str(task._parent) if task._parent is not None else None,
            tuple(str(c) for c in task._children),
            task.state,
            task.task_spec.name,
            bool(task.triggered),
            float(task.last_state_change),
            canonical(encode(self.registry, task.internal_data)),
            self._data_ref(task.data, new_data),
        )

    def _process_row(self, process, process_id: str, new_data: dict[str, str]) -> tuple:
        attrs = {
            "data": self._data_ref(process.data, new_data),
            "last_task": str(process.last_task.id) if process.last_task is not None else None,
            "success": process.success,
            "completed": process.completed,
            "root": str(process.task_tree.id),
            "correlations": encode(self.registry, process.correlations),
        }
        parent = None
        if process_id != TOP:
            parent_task = process.top_workflow.get_task_from_id(process.parent_task_id)
            wf = parent_task.workflow
            parent = TOP if wf is process.top_workflow else str(wf.parent_task_id)
        return (parent, process.spec.name, canonical(attrs))

    def save(self, session: Session, batch_pk: int, live: LiveWorkflow) -> int:
        """Write the rows that changed since the last save; returns rows written."""
        wf = live.workflow
        new_data: dict[str, str] = {}
        task_rows: dict[str, tuple] = {}
        process_rows: dict[str, tuple] = {}
        for pid, process in all_processes(wf):
            process_rows[pid] = self._process_row(process, pid, new_data)
            for task in process.tasks.values():
                task_rows[str(task.id)] = self._task_row(task, pid, new_data)
        state_row = (live.spec_hash, canonical({"bpmn_events": encode(self.registry, wf.bpmn_events)}))

        changed_tasks = [(k, v) for k, v in task_rows.items() if live.task_rows.get(k) != v]
        gone_tasks = [k for k in live.task_rows if k not in task_rows]
        changed_procs = [(k, v) for k, v in process_rows.items() if live.process_rows.get(k) != v]
        gone_procs = [k for k in live.process_rows if k not in process_rows]

        used = {v[8] for _, v in changed_tasks} | {json.loads(v[2])["data"] for _, v in changed_procs}
        self._insert_data(session, {h: new_data[h] for h in used})
        if changed_tasks:
            self._upsert(
                session,
                WorkflowTask,
                [
                    dict(
                        batch_id=batch_pk,
                        task_id=k,
                        process_id=v[0],
                        parent_id=v[1],
                        children=list(v[2]),
                        state=v[3],
                        spec_name=v[4],
                        triggered=v[5],
                        last_state_change=v[6],
                        internal_data=json.loads(v[7]),
                        data_hash=v[8],
                        live=True,
                    )
                    for k, v in changed_tasks
                ],
                ["batch_id", "task_id"],
            )
        if gone_tasks:
            session.execute(
                update(WorkflowTask)
                .where(WorkflowTask.batch_id == batch_pk, WorkflowTask.task_id.in_(gone_tasks))
                .values(live=False)
            )
        if changed_procs:
            self._upsert(
                session,
                WorkflowProcess,
                [
                    dict(
                        batch_id=batch_pk,
                        process_id=k,
                        parent_process_id=v[0],
                        spec_name=v[1],
                        attributes=json.loads(v[2]),
                        live=True,
                    )
                    for k, v in changed_procs
                ],
                ["batch_id", "process_id"],
            )
        if gone_procs:
            session.execute(
                update(WorkflowProcess)
                .where(WorkflowProcess.batch_id == batch_pk, WorkflowProcess.process_id.in_(gone_procs))
                .values(live=False)
            )
        if live.state_row != state_row:
            self._upsert(
                session,
                WorkflowState,
                [dict(batch_id=batch_pk, spec_hash=state_row[0], attributes=json.loads(state_row[1]))],
                ["batch_id"],
            )
        live.task_rows, live.process_rows, live.state_row = task_rows, process_rows, state_row
        return len(changed_tasks) + len(gone_tasks) + len(changed_procs) + len(gone_procs)

    def _insert_data(self, session: Session, rows: dict[str, str]) -> None:
        if rows:
            stmt = _statement(session, TaskData, ["hash"], update=False)
            session.connection().execute(stmt, [{"hash": h, "body": b} for h, b in rows.items()])

    @staticmethod
    def _upsert(session: Session, model, rows: list[dict], keys: list[str]) -> None:
        session.connection().execute(_statement(session, model, keys), rows)

    # loading ----------------------------------------------------------------------
    def load(self, session: Session, batch_pk: int, revision: int) -> LiveWorkflow:
        """Rebuild the live workflow of a batch from its live rows."""
        state = session.get(WorkflowState, batch_pk)
        spec, subprocess_specs = self.specs(session, state.spec_hash)
        processes = session.scalars(
            select(WorkflowProcess).where(WorkflowProcess.batch_id == batch_pk, WorkflowProcess.live.is_(True))
        ).all()
        tasks = session.scalars(
            select(WorkflowTask).where(WorkflowTask.batch_id == batch_pk, WorkflowTask.live.is_(True))
        ).all()
        hashes = {t.data_hash for t in tasks} | {p.attributes["data"] for p in processes}
        bodies: dict[str, str] = {}
        hash_list = list(hashes)
        for i in range(0, len(hash_list), 500):
            chunk = hash_list[i : i + 500]
            for row in session.execute(select(TaskData.hash, TaskData.body).where(TaskData.hash.in_(chunk))):
                bodies[row.hash] = row.body

        def data(h: str) -> Any:
            return self.registry.restore(json.loads(bodies[h]))

        by_process: dict[str, list[WorkflowTask]] = {}
        for t in tasks:
            by_process.setdefault(t.process_id, []).append(t)
        proc_by_id = {p.process_id: p for p in processes}

        wf = BatchWorkflow(spec, subprocess_specs, script_engine=self.make_script_engine(), deserializing=True)
        self._fill(wf, proc_by_id[TOP], by_process.get(TOP, []), data)
        wf.correlations = self.registry.restore(proc_by_id[TOP].attributes.get("correlations") or {})
        wf.bpmn_events = self.registry.restore(state.attributes.get("bpmn_events") or [])

        # subprocesses, parents before children
        pending = [p for p in processes if p.process_id != TOP]
        built = {TOP}
        while pending:
            progress = False
            for p in list(pending):
                if p.parent_process_id not in built:
                    continue
                parent_task = wf.get_task_from_id(UUID(p.process_id))
                sp_spec = wf.subprocess_specs.get(parent_task.task_spec.spec)
                sp = BatchSubWorkflow(sp_spec, parent_task.id, wf, deserializing=True)
                wf.subprocesses[parent_task.id] = sp
                self._fill(sp, p, by_process.get(p.process_id, []), data)
                sp.completed_event.connect(parent_task.task_spec._on_subworkflow_completed, parent_task)
                built.add(p.process_id)
                pending.remove(p)
                progress = True
            if not progress:
                raise RuntimeError(f"batch {batch_pk}: orphaned subprocess rows {[p.process_id for p in pending]}")

        live = LiveWorkflow(workflow=wf, spec_hash=state.spec_hash, revision=revision)
        # remember what is stored, so the next save writes only differences
        new_data: dict[str, str] = {}
        for pid, process in all_processes(wf):
            live.process_rows[pid] = self._process_row(process, pid, new_data)
            for task in process.tasks.values():
                live.task_rows[str(task.id)] = self._task_row(task, pid, new_data)
        live.state_row = (live.spec_hash, canonical({"bpmn_events": encode(self.registry, wf.bpmn_events)}))
        return live

    def _fill(self, process, prow: WorkflowProcess, rows: list[WorkflowTask], data) -> None:
        attrs = prow.attributes
        process.tasks = {}
        for r in rows:
            spec = process.spec.task_specs.get(r.spec_name)
            task = Task(process, spec, state=r.state, id=UUID(r.task_id))
            task._parent = UUID(r.parent_id) if r.parent_id else None
            task._children = [UUID(c) for c in r.children]
            task.last_state_change = r.last_state_change
            task.triggered = r.triggered
            task.internal_data = self.registry.restore(r.internal_data)
            task.data = data(r.data_hash)
            if isinstance(spec, CatchingEvent) and task.has_state(TaskState.WAITING):
                process.top_workflow.event_manager.add_task(task)
        # a parent pruned from the tree no longer lists its pruned children
        for task in process.tasks.values():
            task._children = [c for c in task._children if c in process.tasks]
        process.task_tree = process.tasks[UUID(attrs["root"])]
        process.success = attrs["success"]
        process.completed = attrs["completed"]
        process.data = data(attrs["data"])
        if attrs.get("last_task"):
            process.last_task = process.tasks.get(UUID(attrs["last_task"]))


_STATEMENTS: dict[tuple, Any] = {}


def _statement(session: Session, model, keys: list[str], update: bool = True):
    """One upsert statement per table and dialect, executed with many parameter sets:
    SQLAlchemy compiles it once instead of once per step (a multi-row VALUES clause
    with a varying row count is compiled anew every time)."""
    dialect = session.get_bind().dialect.name
    cache_key = (dialect, model.__tablename__, tuple(keys), update)
    stmt = _STATEMENTS.get(cache_key)
    if stmt is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        base = insert(model.__table__)
        if update:
            cols = {c.name: base.excluded[c.name] for c in model.__table__.columns if c.name not in keys}
            stmt = base.on_conflict_do_update(index_elements=keys, set_=cols)
        else:
            stmt = base.on_conflict_do_nothing(index_elements=keys)
        _STATEMENTS[cache_key] = stmt
    return stmt
