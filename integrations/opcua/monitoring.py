"""Equipment monitoring over OPC UA: while a batch runs a configured unit procedure on
equipment reached by an ``opcua`` connector (``equipment.connector`` names the
instance), its tags are sampled every ``period_seconds`` into ``equipment_sample`` rows
(source = the equipment id), which the analytics equipment models score; a value beyond
its alert or action limits raises an exception once per unit-procedure run and tag, and
an alarm event from the equipment raises an equipment-alarm exception on the batch.

It runs as the ``opcua_monitor`` job, one per connector instance, that asks to be run
again every period (so it runs in whichever worker takes it, survives a worker restart,
and two workers never sample twice at once). Configuration, in the instance's settings::

    "monitoring": {
      "unit_procedures": ["up_production"],      # sampled while one of these runs
      "period_seconds": 5,
      "time_scale": 1,                           # process seconds per real second
      "tags": {
        "DO":          {"variable": "dissolved_o2", "alert": [30, null], "action": [20, null], "unit": "%"},
        "Temperature": {"alert": [36, 38], "action": [35, 39], "unit": "°C"}
      }
    }

Which batch: the one the equipment is in use by (``equipment.in_use_by``), else every
running batch whose configured unit procedure runs now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from engine.connectors import ConnectorError
from engine.jobs import RetryLater
from engine.models import Batch, Equipment, EquipmentSample, Job, TaskTime, utcnow
from engine.quality import exceptions as qx
from engine.runtime import Runtime
from engine.vocabulary import BatchState, ExceptionCategory, ExceptionSource, JobKind, JobState

from .link import Unreachable
from .settings import Tag

log = logging.getLogger("batchline.opcua.monitoring")
MONITOR_JOB = "opcua_monitor"


@dataclass(frozen=True)
class Target:
    """A batch running a monitored unit procedure on a piece of equipment."""

    batch_pk: int
    batch_id: str
    equipment_id: str
    unit_procedure: str
    started_at: datetime


def start_monitoring(rt: Runtime, connector: str) -> int:
    """Schedule the monitoring job of a connector instance (one, whatever how often this
    is called); returns its job id."""
    with rt.transaction() as s:
        existing = s.scalars(
            select(Job).where(Job.kind == MONITOR_JOB, Job.state == JobState.PENDING).order_by(Job.id)
        ).all()
        for job in existing:
            if (job.payload or {}).get("connector") == connector:
                return job.id
        job = Job(kind=MONITOR_JOB, payload={"connector": connector}, max_attempts=1000)
        s.add(job)
        s.flush()
        return job.id


def stop_monitoring(rt: Runtime, connector: str) -> None:
    with rt.transaction() as s:
        for job in s.scalars(select(Job).where(Job.kind == MONITOR_JOB, Job.state == JobState.PENDING)):
            if (job.payload or {}).get("connector") == connector:
                job.state = JobState.CANCELLED
                job.finished_at = utcnow()


def targets(rt: Runtime, connector: str, unit_procedures: tuple[str, ...]) -> list[Target]:
    """Running batches on this connector's equipment whose monitored unit procedure runs."""
    out: list[Target] = []
    with rt.transaction() as s:
        equipment = list(s.scalars(select(Equipment).where(Equipment.connector == connector)))
        if not equipment:
            return out
        rows = s.execute(
            select(Batch.id, Batch.batch_id, TaskTime.task_id, TaskTime.kind, TaskTime.bpmn_id, TaskTime.at)
            .join(TaskTime, TaskTime.batch_id == Batch.id)
            .where(
                Batch.state.in_((BatchState.RUNNING, BatchState.HELD)),
                TaskTime.bpmn_id.in_(unit_procedures),
                TaskTime.kind.in_(("started", "ended")),
            )
            .order_by(TaskTime.at, TaskTime.id)
        ).all()
        running: dict[tuple[int, str], tuple[str, str, datetime]] = {}
        for pk, batch_id, task_id, kind, bpmn_id, at in rows:
            if kind == "started":
                running[(pk, task_id)] = (batch_id, bpmn_id, at)
            else:
                running.pop((pk, task_id), None)
        for (pk, _task), (batch_id, bpmn_id, at) in running.items():
            for unit in equipment:
                if unit.in_use_by in (None, batch_id):
                    out.append(Target(pk, batch_id, unit.equipment_id, bpmn_id, at))
    return out


def monitor(rt: Runtime, batch_id: Any, task_id: Any, payload: dict[str, Any]) -> None:
    """The ``opcua_monitor`` job handler: one sampling round, then again in a period."""
    from .phases import connector_named

    try:
        connector = connector_named(rt, payload["connector"])
    except ConnectorError as exc:  # disabled or misconfigured: look again later
        log.warning("monitoring %s waits: %s", payload.get("connector"), exc)
        raise RetryLater(60.0) from None
    config = connector.settings.monitoring
    if config is None:
        return
    found = targets(rt, connector.name, config.unit_procedures)
    if found:
        equipment = connector.settings.equipment
        connector.link.watch_events(equipment)
        try:
            readings = connector.link.read([connector.link.qualify(t.node, equipment) for t in config.tags])
        except Unreachable as exc:
            log.warning("monitoring %s: %s", connector.name, exc)
            raise RetryLater(config.period_seconds) from None
        events = connector.link.drain_events()
        now = utcnow()
        for target in found:
            record(rt, target, config.tags, readings, events, connector, now, config.time_scale)
    else:
        connector.link.drain_events()  # alarms with no batch on the equipment are not the batch's
    raise RetryLater(config.period_seconds)


def _outside(value: float, limits: tuple[float | None, float | None] | None) -> bool:
    if limits is None:
        return False
    low, high = limits
    return (low is not None and value < low) or (high is not None and value > high)


def record(rt, target: Target, tags, readings, events, connector, now: datetime, time_scale: float) -> None:
    """One sample for the batch, its limit checks and the equipment's alarms, in one
    transaction (a sample and the exception it causes exist together or not at all)."""
    equipment = connector.settings.equipment
    values: dict[str, float] = {}
    breaches: list[tuple[Tag, str, float, dict[str, Any]]] = []
    for tag in tags:
        reading = readings[connector.link.qualify(tag.node, equipment)]
        value = reading["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        values[tag.variable] = float(value)
        level = "action" if _outside(value, tag.action) else "alert" if _outside(value, tag.alert) else None
        if level:
            breaches.append((tag, level, float(value), reading))
    t_hours = max(0.0, (now - target.started_at).total_seconds() / 3600.0 * time_scale)
    with rt.transaction() as s:
        batch = s.get(Batch, target.batch_pk)
        if batch is None or batch.state != BatchState.RUNNING:
            return  # held: no samples (the models score a running unit procedure)
        if values:
            s.add(
                EquipmentSample(
                    batch_id=batch.id,
                    unit_procedure=target.unit_procedure,
                    t_hours=t_hours,
                    values=values,
                    recorded_at=now,
                    source=target.equipment_id,
                )
            )
            if JobKind.SCORE_SAMPLES in rt.job_handlers:  # analytics installed in this worker
                s.add(
                    Job(
                        kind=JobKind.SCORE_SAMPLES,
                        batch_id=batch.id,
                        payload={"unit_procedure": target.unit_procedure},
                        max_attempts=3,
                    )
                )
        run = f"{target.batch_id}:{target.unit_procedure}:{target.started_at.isoformat()}"
        for tag, level, value, reading in breaches:
            limits = tag.action if level == "action" else tag.alert
            qx.raise_in(
                rt,
                s,
                batch,
                category=ExceptionCategory.LIMIT_ACTION if level == "action" else ExceptionCategory.LIMIT_ALERT,
                source=ExceptionSource.EQUIPMENT,
                message=(
                    f"{target.equipment_id} {tag.node} = {value:g}{(' ' + tag.unit) if tag.unit else ''} "
                    f"is outside its {level} limits {_limits_text(limits)}"
                ),
                parameter=tag.variable,
                value=value,
                limits={"low": limits[0], "high": limits[1], "level": level} if limits else None,
                details={
                    "equipment": target.equipment_id,
                    "node_id": reading["node_id"],
                    "source_timestamp": reading["source_timestamp"],
                    "unit_procedure": target.unit_procedure,
                },
                finding_key=f"opcua-limit:{run}:{target.equipment_id}:{tag.node}:{level}",
            )
        for event in events:
            if not event.get("active", True):
                continue  # the alarm cleared: its raise is the exception
            qx.raise_in(
                rt,
                s,
                batch,
                category=ExceptionCategory.EQUIPMENT_ALARM,
                source=ExceptionSource.EQUIPMENT,
                message=f"{target.equipment_id} alarm: {event.get('message') or event.get('kind')}",
                parameter=event.get("kind"),
                value=event.get("value"),
                limits={"limit": event.get("limit")} if event.get("limit") is not None else None,
                details={**event, "equipment": target.equipment_id, "unit_procedure": target.unit_procedure},
                finding_key=f"opcua-alarm:{target.batch_id}:{event.get('event_id') or event.get('time')}",
            )


def _limits_text(limits) -> str:
    low, high = limits
    if low is not None and high is not None:
        return f"{low:g}..{high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"
