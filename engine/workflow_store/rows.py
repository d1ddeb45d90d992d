"""The shape of each stored row, built from the live workflow and compared with what was
last written, so a save writes only the rows whose content changed; and the upsert
statements that write them."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from SpiffWorkflow.task import Task
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .encoding import canonical, encode, sha256
from .tree import TOP


class TaskRow(NamedTuple):
    """One Spiff task as stored (``workflow_task``); JSON columns kept as canonical text
    so two rows compare equal exactly when the stored content would be the same."""

    process_id: str
    parent_id: str | None
    children: tuple[str, ...]
    state: int
    spec_name: str
    triggered: bool
    last_state_change: float
    internal_data: str
    data_hash: str

    def columns(self, batch_pk: int, task_id: str) -> dict[str, Any]:
        return dict(
            batch_id=batch_pk,
            task_id=task_id,
            process_id=self.process_id,
            parent_id=self.parent_id,
            children=list(self.children),
            state=self.state,
            spec_name=self.spec_name,
            triggered=self.triggered,
            last_state_change=self.last_state_change,
            internal_data=json.loads(self.internal_data),
            data_hash=self.data_hash,
            live=True,
        )


class ProcessRow(NamedTuple):
    """One (sub)process as stored (``workflow_process``)."""

    parent_process_id: str | None
    spec_name: str
    attributes: str

    @property
    def data_hash(self) -> str:
        return json.loads(self.attributes)["data"]

    def columns(self, batch_pk: int, process_id: str) -> dict[str, Any]:
        return dict(
            batch_id=batch_pk,
            process_id=process_id,
            parent_process_id=self.parent_process_id,
            spec_name=self.spec_name,
            attributes=json.loads(self.attributes),
            live=True,
        )


class StateRow(NamedTuple):
    """The top-level workflow attributes as stored (``workflow_state``)."""

    spec_hash: str
    attributes: str

    def columns(self, batch_pk: int) -> dict[str, Any]:
        return dict(batch_id=batch_pk, spec_hash=self.spec_hash, attributes=json.loads(self.attributes))


def data_ref(registry, value: Any, new_data: dict[str, str]) -> str:
    """The hash task data is stored under; its body joins ``new_data`` to be written."""
    body = canonical(encode(registry, value))
    digest = sha256(body)
    new_data.setdefault(digest, body)
    return digest


def task_row(registry, task: Task, process_id: str, new_data: dict[str, str]) -> TaskRow:
    return TaskRow(
        process_id=process_id,
        parent_id=str(task._parent) if task._parent is not None else None,
        children=tuple(str(c) for c in task._children),
        state=task.state,
        spec_name=task.task_spec.name,
        triggered=bool(task.triggered),
        last_state_change=float(task.last_state_change),
        internal_data=canonical(encode(registry, task.internal_data)),
        data_hash=data_ref(registry, task.data, new_data),
    )


def process_row(registry, process, process_id: str, new_data: dict[str, str]) -> ProcessRow:
    attrs = {
        "data": data_ref(registry, process.data, new_data),
        "last_task": str(process.last_task.id) if process.last_task is not None else None,
        "success": process.success,
        "completed": process.completed,
        "root": str(process.task_tree.id),
        "correlations": encode(registry, process.correlations),
    }
    parent = None
    if process_id != TOP:
        parent_task = process.top_workflow.get_task_from_id(process.parent_task_id)
        wf = parent_task.workflow
        parent = TOP if wf is process.top_workflow else str(wf.parent_task_id)
    return ProcessRow(parent_process_id=parent, spec_name=process.spec.name, attributes=canonical(attrs))


def state_row(registry, spec_hash: str, workflow) -> StateRow:
    return StateRow(spec_hash, canonical({"bpmn_events": encode(registry, workflow.bpmn_events)}))


_STATEMENTS: dict[tuple, Any] = {}


def upsert_statement(session: Session, model, keys: list[str], update: bool = True):
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
