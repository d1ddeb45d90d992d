"""Saving and loading a batch's workflow: specs once per recipe (by hash), then one row
per task and process, written only when its content changed, with task data stored once
per distinct content."""

from __future__ import annotations

import json
import threading
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..bpmn import spec_from_dict, spec_to_dict
from ..models import TaskData, WorkflowProcess, WorkflowSpec, WorkflowState, WorkflowTask
from .encoding import canonical, register_types, sha256
from .live import LiveWorkflow
from .rows import ProcessRow, TaskRow, process_row, state_row, task_row, upsert_statement
from .tree import TOP, BatchSubWorkflow, BatchWorkflow, all_processes


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
        body = canonical(spec_to_dict(parsed))
        digest = sha256(body)
        if session.get(WorkflowSpec, digest) is None:
            session.add(WorkflowSpec(hash=digest, body=body))
            session.flush()
        return digest

    def specs(self, session: Session, spec_hash: str) -> tuple[Any, dict]:
        """Restored specs, cached: specs are immutable once stored under their hash."""
        cached = self._specs.get(spec_hash)
        if cached is not None:
            return cached
        with self._spec_lock:
            cached = self._specs.get(spec_hash)
            if cached is None:
                stored = session.get(WorkflowSpec, spec_hash)
                if stored is None:
                    raise RuntimeError(f"workflow spec {spec_hash} is not stored")
                parsed = spec_from_dict(json.loads(stored.body))
                cached = self._specs[spec_hash] = (parsed.spec, parsed.subprocess_specs)
        return cached

    # saving -----------------------------------------------------------------------
    def _rows(self, wf: BpmnWorkflow, new_data: dict[str, str]) -> tuple[dict[str, TaskRow], dict[str, ProcessRow]]:
        task_rows: dict[str, TaskRow] = {}
        process_rows: dict[str, ProcessRow] = {}
        for pid, process in all_processes(wf):
            process_rows[pid] = process_row(self.registry, process, pid, new_data)
            for task in process.tasks.values():
                task_rows[str(task.id)] = task_row(self.registry, task, pid, new_data)
        return task_rows, process_rows

    def save(self, session: Session, batch_pk: int, live: LiveWorkflow) -> int:
        """Write the rows that changed since the last save; returns rows written."""
        wf = live.workflow
        new_data: dict[str, str] = {}
        task_rows, process_rows = self._rows(wf, new_data)
        state = state_row(self.registry, live.spec_hash, wf)

        changed_tasks = [(k, v) for k, v in task_rows.items() if live.task_rows.get(k) != v]
        gone_tasks = [k for k in live.task_rows if k not in task_rows]
        changed_procs = [(k, v) for k, v in process_rows.items() if live.process_rows.get(k) != v]
        gone_procs = [k for k in live.process_rows if k not in process_rows]

        used = {v.data_hash for _, v in changed_tasks} | {v.data_hash for _, v in changed_procs}
        self._insert_data(session, {h: new_data[h] for h in used})
        if changed_tasks:
            rows = [v.columns(batch_pk, k) for k, v in changed_tasks]
            self._upsert(session, WorkflowTask, rows, ["batch_id", "task_id"])
        if gone_tasks:
            session.execute(
                update(WorkflowTask)
                .where(WorkflowTask.batch_id == batch_pk, WorkflowTask.task_id.in_(gone_tasks))
                .values(live=False)
            )
        if changed_procs:
            rows = [v.columns(batch_pk, k) for k, v in changed_procs]
            self._upsert(session, WorkflowProcess, rows, ["batch_id", "process_id"])
        if gone_procs:
            session.execute(
                update(WorkflowProcess)
                .where(WorkflowProcess.batch_id == batch_pk, WorkflowProcess.process_id.in_(gone_procs))
                .values(live=False)
            )
        if live.state_row != state:
            self._upsert(session, WorkflowState, [state.columns(batch_pk)], ["batch_id"])
        live.task_rows, live.process_rows, live.state_row = task_rows, process_rows, state
        return len(changed_tasks) + len(gone_tasks) + len(changed_procs) + len(gone_procs)

    def _insert_data(self, session: Session, rows: dict[str, str]) -> None:
        if rows:
            stmt = upsert_statement(session, TaskData, ["hash"], update=False)
            session.connection().execute(stmt, [{"hash": h, "body": b} for h, b in rows.items()])

    @staticmethod
    def _upsert(session: Session, model, rows: list[dict], keys: list[str]) -> None:
        session.connection().execute(upsert_statement(session, model, keys), rows)

    # loading ----------------------------------------------------------------------
    def load(self, session: Session, batch_pk: int, revision: int) -> LiveWorkflow:
        """Rebuild the live workflow of a batch from its live rows."""
        state = session.get(WorkflowState, batch_pk)
        if state is None:
            raise RuntimeError(f"batch {batch_pk} has no workflow state")
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
        live.task_rows, live.process_rows = self._rows(wf, {})
        live.state_row = state_row(self.registry, live.spec_hash, wf)
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
