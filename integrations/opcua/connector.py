"""The ``opcua`` connector type: a recipe's service tasks read, write, call methods and
run phases on equipment over OPC UA, naming the instance and an operation
(``BR-101.read``, ``BR-101.write``, ``BR-101.call``, ``BR-101.run_phase``).

What each operation puts in the batch record (the step's values) carries the node ids,
the device (equipment) and the server's source timestamps, so a value in the record can
be traced to the instrument that gave it (21 CFR 11.10(h)); the task's data gets the
scalars a later gateway or form needs.

``run_phase`` starts the phase with the task's idempotency key as its ``request_id`` (a
retry after a lost answer gets the same run back, never a second phase), then answers
``Pending``: a phase watcher job (``integrations.opcua.phases``) completes the task with
the equipment's phase report once the phase is complete.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from engine.connectors import Completed, ConnectorConfig, ConnectorError, Pending, ServiceCall
from engine.db import row_locks
from engine.models import Batch, Job

from . import settings as settings_mod
from .approval import approval_fields, required_approval
from .link import EquipmentLink

OPERATIONS = ("read", "write", "call", "run_phase")
PHASE_JOB = "opcua_phase"
MAX_NAMES = 100
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]{0,199}$")


def key_of(name: str) -> str:
    """A node name as a task data key: ``BAL-01.Weight`` -> ``BAL_01_Weight``."""
    return re.sub(r"\W", "_", name)


class OpcUaConnector:
    """``factory(config, runtime)`` of the ``opcua`` connector type. One session per
    instance (``EquipmentLink``), reused by every task, watcher and monitor."""

    type_name = "opcua"
    endpoint_schemes = ("opc.tcp",)

    def __init__(self, config: ConnectorConfig, runtime: Any = None):
        self.config = config
        self.name = config.name
        self.runtime = runtime
        self.settings = settings_mod.parse(config)
        self.link = EquipmentLink(config.name, self.settings, timeout=config.timeout_seconds, secret=config.secret)

    def close(self) -> None:
        self.link.close()

    def __del__(self) -> None:  # a registry that rebuilds a changed instance drops the old one
        link = getattr(self, "link", None)
        if link is not None:
            link.abandon()

    # --- the connector interface ---------------------------------------------------
    def call(self, call: ServiceCall) -> Completed | Pending:
        operation = call.operation or str(call.params.get("operation") or "")
        if operation not in OPERATIONS:
            raise ConnectorError(
                f"OPC UA connector {self.name!r} has no operation {operation!r} (one of: {', '.join(OPERATIONS)})",
                retry=False,
            )
        return getattr(self, f"_{operation}")(call)

    # --- operations --------------------------------------------------------------
    def _names(self, call: ServiceCall) -> list[tuple[str, str]]:
        """(the name as the task gives it, the node name with its equipment)."""
        raw = call.params.get("nodes", call.params.get("node"))
        if isinstance(raw, str):
            raw = [n.strip() for n in raw.split(",") if n.strip()]
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_NAMES:
            raise ConnectorError(f"read needs nodes: 1 to {MAX_NAMES} node names", retry=False)
        for n in raw:
            if not isinstance(n, str) or not NAME.match(n):
                raise ConnectorError(f"{str(n)[:60]!r} is not a node name (e.g. BR-101.Temperature)", retry=False)
        return [(n, self.link.qualify(n, call.params.get("equipment"))) for n in raw]

    def _read(self, call: ServiceCall) -> Completed:
        names = self._names(call)
        got = self.link.read([full for _, full in names])
        data: dict[str, Any] = {"device": self._device(names[0][1]), "endpoint": self.settings.endpoint}
        for given, full in names:
            reading, key = got[full], key_of(given)
            data[key] = reading["value"]
            data[f"{key}_node_id"] = reading["node_id"]
            data[f"{key}_source_timestamp"] = reading["source_timestamp"]
        return Completed(data)

    def _write(self, call: ServiceCall) -> Completed:
        node = call.params.get("node")
        if not isinstance(node, str) or not NAME.match(node):
            raise ConnectorError("write needs node (a node name, e.g. BR-101.TemperatureSetpoint)", retry=False)
        if "value" not in call.params:
            raise ConnectorError(f"write of {node} needs a value", retry=False)
        name = self.link.qualify(node, call.params.get("equipment"))
        value = call.params["value"]
        approval = required_approval(self.runtime, call, f"writing {name}")
        self.link.write(name, value)  # idempotent: writing the same value again changes nothing
        (after,) = self.link.read([name]).values()
        data = {
            "node": name,
            "node_id": after["node_id"],
            "device": self._device(name),
            "value": after["value"],
            "written_at": datetime.now(UTC).isoformat(),
            "source_timestamp": after["source_timestamp"],
        }
        data.update(approval_fields(approval))
        return Completed(data)

    def _call(self, call: ServiceCall) -> Completed:
        method = call.params.get("method")
        if not isinstance(method, str) or not NAME.match(method):
            raise ConnectorError("call needs method (e.g. BR-101.Hold or BAL-01.Weigh)", retry=False)
        args = call.params.get("args", [])
        if args is None:
            args = []
        if not isinstance(args, list) or len(args) > 20:
            raise ConnectorError("call args must be a list of up to 20 values", retry=False)
        name = self.link.qualify(method, call.params.get("equipment"))
        approval = required_approval(self.runtime, call, f"calling {name}")
        outputs = self.link.call(name, args)
        data: dict[str, Any] = {
            "method": name,
            "device": self._device(name),
            "called_at": datetime.now(UTC).isoformat(),
            "result": outputs[0] if len(outputs) == 1 else (outputs or None),
        }
        if len(outputs) > 1:
            data["outputs"] = outputs
        data.update(approval_fields(approval))
        return Completed(data)

    def _run_phase(self, call: ServiceCall) -> Pending:
        equipment = call.params.get("equipment") or self.settings.equipment
        phase = call.params.get("phase")
        if not isinstance(equipment, str) or not NAME.match(equipment):
            raise ConnectorError("run_phase needs equipment (e.g. BR-101)", retry=False)
        if not isinstance(phase, str) or not phase:
            raise ConnectorError("run_phase needs phase (e.g. Production)", retry=False)
        parameters = call.params.get("parameters") or {}
        if isinstance(parameters, str):
            try:
                parameters = json.loads(parameters)
            except ValueError as exc:
                raise ConnectorError(f"run_phase parameters are not JSON: {exc}", retry=False) from None
        if not isinstance(parameters, dict):
            raise ConnectorError("run_phase parameters must be an object", retry=False)
        watching = self._watcher(call)
        if watching is not None:  # a retry of a task whose phase runs already
            return Pending(reference=watching)
        approval = required_approval(self.runtime, call, f"starting phase {phase} on {equipment}")
        sent = {**parameters, "request_id": call.idempotency_key, "batch_id": call.batch_id}
        self.link.watch_state(equipment)
        (run_id,) = self.link.call(f"{equipment}.StartPhase", [phase, json.dumps(sent)])
        self._start_watcher(call, equipment, phase, str(run_id), approval)
        return Pending(reference=str(run_id))

    # --- helpers -----------------------------------------------------------------
    def _device(self, name: str) -> str:
        return name.split(".", 1)[0] if "." in name and not name.startswith("ns=") else self.settings.equipment

    def _watcher(self, call: ServiceCall) -> str | None:
        with self.runtime.transaction() as s:
            batch = s.scalars(select(Batch).where(Batch.batch_id == call.batch_id)).one()
            job = s.scalars(
                select(Job).where(Job.kind == PHASE_JOB, Job.batch_id == batch.id, Job.task_id == call.task_id)
            ).first()
            return None if job is None else str(job.payload.get("run_id"))

    def _start_watcher(self, call: ServiceCall, equipment: str, phase: str, run_id: str, approval) -> None:
        """One watcher per task, even when two calls of the same task race (the batch row
        is locked on PostgreSQL; SQLite's write lock serialises them)."""
        with self.runtime.transaction() as s:
            stmt = select(Batch).where(Batch.batch_id == call.batch_id)
            batch = s.scalars(stmt.with_for_update() if row_locks(s) else stmt).one()
            exists = s.scalar(
                select(Job.id).where(Job.kind == PHASE_JOB, Job.batch_id == batch.id, Job.task_id == call.task_id)
            )
            if exists is not None:
                return
            s.add(
                Job(
                    kind=PHASE_JOB,
                    batch_id=batch.id,
                    task_id=call.task_id,
                    payload={
                        "connector": self.name,
                        "equipment": equipment,
                        "phase": phase,
                        "run_id": run_id,
                        "request_id": call.idempotency_key,
                        "approval": approval,
                    },
                    max_attempts=5,
                )
            )


def factory(config: ConnectorConfig, runtime: Any = None) -> OpcUaConnector:
    """The ``batchline.connector_types`` entry point ``opcua``."""
    return OpcUaConnector(config, runtime)


factory.endpoint_schemes = ("opc.tcp",)  # type: ignore[attr-defined]  # what engine.connector_config checks
