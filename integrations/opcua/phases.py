"""The phase watcher: the ``opcua_phase`` job that keeps a ``run_phase`` task waiting
until its equipment reports the phase complete, then completes the task with the phase
report (recorded once: the batch record allows one service-task entry per task, and the
report is taken from the equipment, never rebuilt).

Each run reads ``State``, ``RunId`` and ``PhaseReport`` first (the equipment may have
finished while nobody was connected, as a PLC runs on while its OPC UA server restarts),
then waits briefly on the ``State`` subscription and asks to be run again.

When the server is away the watcher does not give up: after ``incident_after_seconds``
it opens an incident with the real error (and an exception on the batch, for review),
keeps trying, and resolves the incident itself when the equipment answers again.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sqlalchemy import select

from engine import audit, batches, outbox
from engine.connectors import ConnectorError
from engine.errors import Conflict
from engine.jobs import RetryLater
from engine.models import Batch, Incident, Job, utcnow
from engine.quality import exceptions as qx
from engine.runtime import Runtime
from engine.vocabulary import BatchState, ExceptionCategory, JobState

from .approval import approval_fields
from .connector import PHASE_JOB, OpcUaConnector, key_of
from .link import Unreachable

log = logging.getLogger("batchline.opcua")
WAIT_SECONDS = 1.0  # how long one run of the watcher waits on the subscription
PHASE_ABORTED = "PHASE_ABORTED"


def connector_named(rt: Runtime, name: str) -> OpcUaConnector:
    connector = rt.connectors.get(name)
    if not isinstance(connector, OpcUaConnector):
        raise ConnectorError(f"connector {name!r} is not an OPC UA connector", retry=False)
    return connector


def watch_phase(rt: Runtime, batch_id: str, task_id: str, payload: dict[str, Any]) -> None:
    """The ``opcua_phase`` job handler."""
    with rt.transaction() as s:
        state = s.scalars(select(Batch.state).where(Batch.batch_id == batch_id)).one()
    if state not in (BatchState.RUNNING, BatchState.HELD):
        return  # the batch ended: nothing waits for the phase any more
    connector = connector_named(rt, payload["connector"])
    equipment, run_id = payload["equipment"], payload["run_id"]
    link = connector.link
    link.watch_state(equipment)
    poll = connector.settings.phase_poll_seconds
    deadline = time.monotonic() + min(WAIT_SECONDS, poll)
    while True:
        try:
            got = link.read([f"{equipment}.State", f"{equipment}.RunId", f"{equipment}.PhaseReport"])
        except Unreachable as exc:
            _outage(rt, batch_id, task_id, connector, str(exc))
            raise RetryLater(poll) from None
        if payload.get("unreachable_since"):
            _back(rt, batch_id, task_id)
            payload = {k: v for k, v in payload.items() if k not in ("unreachable_since", "incident")}
        current, running_id, report_text = (got[k]["value"] for k in got)
        report = _report(report_text)
        if report is not None and report.get("run_id") == run_id and current == "Complete":
            if state == BatchState.HELD:
                raise RetryLater(poll)  # recorded when the batch runs again
            _record(rt, batch_id, task_id, payload, report, got)
            return
        if running_id == run_id and current == "Aborted":
            _aborted(rt, batch_id, task_id, payload)
            return
        if running_id != run_id and current in ("Idle", "Running", "Held", "Complete", "Aborted"):
            raise ConnectorError(
                f"{equipment} no longer runs phase {payload['phase']} ({run_id}): it is {current}"
                + (f" with run {running_id}" if running_id else "")
                + "; the phase report of this run is lost",
                retry=False,
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise RetryLater(poll)
        link.wait_for_change(equipment, current, left)


def _report(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _record(rt, batch_id, task_id, payload, report: dict[str, Any], got: dict[str, Any]) -> None:
    """Complete the task with the phase report as flat fields the batch record shows (each
    final value with its unit, node id and source timestamp; the parameters the phase ran
    with) and the report itself, verbatim, as JSON text (``phase_report``)."""
    where = got[f"{payload['equipment']}.PhaseReport"]
    result: dict[str, Any] = {
        "run_id": report.get("run_id"),
        "equipment": report.get("equipment") or payload["equipment"],
        "phase": report.get("phase"),
        "outcome": report.get("outcome"),
        "started": report.get("started"),
        "ended": report.get("ended"),
        "simulated_hours": report.get("simulated_hours"),
    }
    for name, value in (report.get("parameters") or {}).items():
        if isinstance(value, str | int | float | bool) and name != "request_id":
            result[f"parameter_{key_of(name)}"] = value
    for name, value in (report.get("values") or {}).items():
        if isinstance(value, dict):
            key = key_of(name)
            result[key] = value.get("value")
            result[f"{key}_unit"] = value.get("unit")
            result[f"{key}_node_id"] = value.get("node_id")
            result[f"{key}_source_timestamp"] = value.get("source_timestamp")
    result["report_node_id"] = where["node_id"]
    result["report_source_timestamp"] = where["source_timestamp"]
    result["phase_report"] = json.dumps(report, sort_keys=True, ensure_ascii=False)
    result.update(approval_fields(payload.get("approval")))
    result = {k: v for k, v in result.items() if isinstance(v, str | int | float | bool) or v is None}
    try:
        batches.complete_service_task(rt, batch_id, task_id, result)
    except Conflict:  # recorded already (another worker's run of this job): never twice
        log.info("phase report of %s for %s:%s was recorded already", payload["run_id"], batch_id, task_id)


def _aborted(rt, batch_id, task_id, payload) -> None:
    message = f"phase {payload['phase']} ({payload['run_id']}) was aborted on {payload['equipment']}"
    try:
        batches.complete_service_task(rt, batch_id, task_id, {}, error=(PHASE_ABORTED, message))
    except Exception as exc:  # no boundary event catches it: the task becomes an incident
        raise ConnectorError(message, retry=False) from exc


def _job(s, batch: Batch, task_id: str) -> Job | None:
    return s.scalars(
        select(Job).where(
            Job.kind == PHASE_JOB, Job.batch_id == batch.id, Job.task_id == task_id, Job.state == JobState.PENDING
        )
    ).first()


def _outage(rt: Runtime, batch_id: str, task_id: str, connector: OpcUaConnector, error: str) -> None:
    """Remember when the equipment went away; past the grace time, open one incident."""
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).one()
        job = _job(s, batch, task_id)
        if job is None:
            return
        payload = dict(job.payload)
        now = utcnow()
        since = payload.get("unreachable_since")
        if since is None:
            payload["unreachable_since"] = now.isoformat()
            job.payload = payload
            if connector.settings.incident_after_seconds > 0:
                return
        elapsed = (now - _parse(payload["unreachable_since"])).total_seconds()
        job.last_error = error[:4000]
        payload = dict(payload)
        if payload.get("incident") or elapsed < connector.settings.incident_after_seconds:
            return
        message = f"{payload['equipment']} unreachable while phase {payload['phase']} runs: {error}"
        incident = Incident(job_id=job.id, batch_id=batch.id, kind=PHASE_JOB, message=message[:4000])
        s.add(incident)
        s.flush()
        job.payload = {**payload, "incident": incident.id}  # a new object: the flush above saw the old one
        audit.record(
            s,
            user="system",
            action="incident.created",
            object_type="job",
            object_id=str(job.id),
            new={"kind": PHASE_JOB, "message": message[:500]},
        )
        outbox.emit(
            s,
            rt.settings,
            "incident.created",
            f"job/{job.id}",
            {"incident": incident.id, "job": job.id, "kind": PHASE_JOB, "message": message[:500]},
        )
        qx.raise_in(
            rt,
            s,
            batch,
            category=ExceptionCategory.INCIDENT,
            message=message[:500] + " (the phase is watched on; the task resumes when the equipment answers)",
            value={"error": error[:500]},
            details={"incident": incident.id, "job": job.id, "kind": PHASE_JOB, "task_id": task_id},
        )
        log.warning("%s", message)


def _back(rt: Runtime, batch_id: str, task_id: str) -> None:
    """The equipment answers again: resolve the watcher's incident, if it opened one."""
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).one()
        job = s.scalars(
            select(Job).where(Job.kind == PHASE_JOB, Job.batch_id == batch.id, Job.task_id == task_id)
        ).first()
        if job is None or not (job.payload or {}).get("unreachable_since"):
            return
        payload = dict(job.payload)
        payload.pop("unreachable_since", None)
        incident_id = payload.pop("incident", None)
        job.payload = payload
        if incident_id is None:
            return
        incident = s.get(Incident, incident_id)
        if incident is not None and incident.resolved_at is None:
            incident.resolved_at = utcnow()
            incident.resolved_by = "system"
            audit.record(
                s,
                user="system",
                action="incident.resolved",
                object_type="incident",
                object_id=str(incident_id),
                new={"reason": f"{payload['equipment']} answers again; the phase is watched on"},
            )


def _parse(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)
