"""The equipment logbook: what was done to a piece of equipment, by whom, in which batch.

A GMP equipment logbook is the equipment's own history (calibrations, daily checks, CIP,
SIP, line clearances, uses), read by equipment, not by batch. Batchline writes it from the
batch record rather than asking for a second entry by hand: a user task with a
``logbook`` property (``engine.bpmn.properties``) writes one entry per equipment the
operator scanned on its form, in the step's own transaction and with its own audit entry
(bound into the chain like the record: ``audit verify`` finds an entry changed behind
Batchline's back). The table is append-only: a correction is a new step, hence a new entry.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forms import compile_form

from . import audit
from .bpmn.properties import spec_logbook
from .errors import NotFound
from .models import Batch, Equipment, EquipmentLogEntry, Step
from .runtime import Runtime

#: the newest entries a logbook answer lists
MAX_ENTRIES = 500


def equipment_fields(form_definition: dict[str, Any] | None) -> list[str]:
    """The keys of a form's equipment scan fields, in form order."""
    if not form_definition:
        return []
    return [f.key for f in compile_form(form_definition).definition.fields if f.kind == "equipment"]


def write_entries(
    s: Session, batch: Batch, step: Step, task_spec: Any, form_definition: dict[str, Any] | None
) -> list[EquipmentLogEntry]:
    """On the step path, after the step is appended: one logbook entry per scanned
    equipment when the task has a ``logbook`` property; none otherwise."""
    kind = spec_logbook(task_spec)
    if kind is None:
        return []
    written = []
    for key in equipment_fields(form_definition):
        equipment_id = step.values.get(key)
        if not isinstance(equipment_id, str) or not equipment_id:
            continue  # an optional scan left empty
        entry = EquipmentLogEntry(
            equipment_id=equipment_id,
            kind=kind,
            batch_id=batch.id,
            step_seq=step.seq,
            values=step.values,
            recorded_by=step.user,
            recorded_at=step.recorded_at,
        )
        s.add(entry)
        audit.record(
            s,
            user=step.user,
            action="equipment.logbook",
            object_type="equipment",
            object_id=equipment_id,
            field=kind,
            new={"batch_id": batch.batch_id, "step_seq": step.seq, "field": key},
            binds=[entry],
        )
        written.append(entry)
    return written


def describe_entry(entry: EquipmentLogEntry, batch_name: str) -> dict[str, Any]:
    return {
        "id": entry.id,
        "equipment_id": entry.equipment_id,
        "kind": entry.kind,
        "batch_id": batch_name,
        "step_seq": entry.step_seq,
        "values": entry.values,
        "recorded_by": entry.recorded_by,
        "recorded_at": entry.recorded_at,
    }


def logbook(rt: Runtime, equipment_id: str) -> list[dict[str, Any]]:
    """An equipment's logbook, newest first. 404 when neither the equipment registry nor
    the logbook knows the equipment."""
    if len(equipment_id) > 100:  # longer than any equipment id the registry can hold
        raise NotFound("no equipment has an id this long", code="equipment_not_found")
    with rt.transaction() as s:
        rows = s.execute(
            select(EquipmentLogEntry, Batch.batch_id)
            .join(Batch, Batch.id == EquipmentLogEntry.batch_id)
            .where(EquipmentLogEntry.equipment_id == equipment_id)
            .order_by(EquipmentLogEntry.id.desc())
            .limit(MAX_ENTRIES)
        ).all()
        if not rows and s.get(Equipment, equipment_id) is None:
            raise NotFound(f"equipment {equipment_id!r} is not known", code="equipment_not_found")
        return [describe_entry(entry, name) for entry, name in rows]
