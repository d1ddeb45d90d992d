"""The equipment register: what the floor scans, where it is, and its status.

Status (``equipment.status``) — who sets what:

* ``clean``: a cleaning SOP (CIP, SIP: a task with a ``logbook`` property of ``cip`` or
  ``sip``) on the step path (``equipment_use``); never by hand;
* ``in_use``: a step whose form scans it, for that step's batch (``equipment_use``);
* ``dirty``: when the batch that used it ends; by maintenance when it returns equipment
  to service or marks clean equipment dirty (a hold time exceeded);
* ``maintenance`` / ``out_of_service``: maintenance (``equipment.maintain``), with a
  reason — the reason a refused scan shows the operator. Out of service is how equipment
  is retired: it is never deleted (the logbook and batch records name it).

Registering and describing equipment (name, class, location, connector, calibration
interval) is ``equipment.manage``. Every change is audited, old → new, with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from .. import audit, permissions
from ..errors import Conflict, InvalidInput
from ..models import Equipment, utcnow
from ..runtime import Runtime
from ..users import Person
from . import apply_changes, check_change, check_id, check_reason, check_text, check_version, check_when, iso, locked

STATUSES = ("clean", "dirty", "in_use", "maintenance", "out_of_service")
#: the statuses maintenance sets by hand -> the statuses they may be set from
BY_HAND: dict[str, tuple[str, ...]] = {
    "maintenance": ("clean", "dirty", "in_use", "out_of_service"),
    "out_of_service": ("clean", "dirty", "in_use", "maintenance"),
    "dirty": ("clean", "maintenance", "out_of_service"),
}
FIELDS = ("name", "equipment_class", "location", "connector", "calibration_interval_days", "calibrated_until")
MAX_LIST = 1000
MAX_INTERVAL_DAYS = 3660


def describe(eq: Equipment, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "equipment_id": eq.equipment_id,
        "equipment_class": eq.equipment_class,
        "name": eq.name,
        "location": eq.location,
        "connector": eq.connector,
        "status": eq.status,
        "status_reason": eq.status_reason,
        "in_use_by": eq.in_use_by,
        "calibrated_until": iso(eq.calibrated_until),
        "calibration_overdue": bool(eq.calibrated_until is not None and eq.calibrated_until <= now),
        "calibration_interval_days": eq.calibration_interval_days,
        "version": eq.version or 0,
        "updated_at": iso(eq.updated_at),
        "logbook": f"/api/equipment/{eq.equipment_id}/logbook",
    }


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in values:
        out["name"] = check_text(values["name"], "name", required=False) or None
    if "location" in values:
        out["location"] = check_text(values["location"], "location", required=False) or None
    if "equipment_class" in values:
        out["equipment_class"] = check_id(values["equipment_class"], "equipment class")
    if "connector" in values:
        out["connector"] = check_id(values["connector"], "connector") if values["connector"] is not None else None
    if "calibration_interval_days" in values:
        days = values["calibration_interval_days"]
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_INTERVAL_DAYS
        ):
            raise InvalidInput(
                f"calibration_interval_days is a whole number from 1 to {MAX_INTERVAL_DAYS}", code="interval_invalid"
            )
        out["calibration_interval_days"] = days
    if "calibrated_until" in values:
        out["calibrated_until"] = check_when(values["calibrated_until"], "calibrated until")
    return out


def create(rt: Runtime, values: dict[str, Any], *, by: str) -> dict[str, Any]:
    """Register equipment, ``dirty`` unless said ``clean`` (a new unit cleaned at
    installation, with a reason)."""
    if not isinstance(values, dict):
        raise InvalidInput("equipment is a JSON object", code="body_invalid")
    unknown = set(values) - set(FIELDS) - {"equipment_id", "status", "reason"}
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))[:200]}", code="field_unknown")
    equipment_id = check_id(values.get("equipment_id"), "equipment id")
    if "equipment_class" not in values:
        raise InvalidInput("equipment_class is required", code="equipment_class_invalid")
    fields = _checked(values)
    status = values.get("status", "dirty")
    if status not in ("clean", "dirty"):
        raise InvalidInput("new equipment is registered clean or dirty", code="status_invalid")
    reason = check_reason(values.get("reason"), "registering it clean") if status == "clean" else None
    with rt.transaction() as s:
        if s.get(Equipment, equipment_id) is not None:
            raise Conflict(f"equipment {equipment_id} exists already", code="equipment_exists")
        eq = Equipment(
            equipment_id=equipment_id, status=status, status_reason=reason, updated_at=utcnow(), version=0, **fields
        )
        s.add(eq)
        audit.record(
            s,
            user=by,
            action="equipment.create",
            object_type="equipment",
            object_id=equipment_id,
            new=describe(eq),
            reason=reason,
        )
        return describe(eq)


def update(rt: Runtime, equipment_id: str, values: dict[str, Any], *, by: str) -> dict[str, Any]:
    """Change what the register says about equipment (with a reason); status changes go
    through ``change_status``."""
    check_change(values, FIELDS, hint=" (change the status with /status)")
    reason = check_reason(values.get("reason"), "the change")
    changes = _checked(values)
    with rt.transaction() as s:
        eq = locked(s, Equipment, equipment_id, "equipment", "equipment_not_found")
        check_version(eq, values.get("version"))
        apply_changes(
            s,
            eq,
            changes,
            by=by,
            action="equipment.update",
            object_type="equipment",
            object_id=eq.equipment_id,
            reason=reason,
        )
        return describe(eq)


def change_status(
    rt: Runtime, equipment_id: str, status: Any, *, by: Person, reason: Any, version: Any = None
) -> dict[str, Any]:
    """Maintenance takes equipment out (``maintenance``, ``out_of_service``) or returns
    it (``dirty``: it is cleaned before use), with a reason. Clean and in use are set by
    the SOPs and steps, never by hand (409 ``status_not_by_hand``)."""
    permissions.check(by, "equipment.maintain")
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", code="status_invalid")
    if status not in BY_HAND:
        raise Conflict(
            "clean is set by a cleaning SOP (CIP, SIP) and in use by a batch step, never by hand",
            code="status_not_by_hand",
        )
    why = check_reason(reason, f"setting the equipment {status.replace('_', ' ')}")
    with rt.transaction() as s:
        eq = locked(s, Equipment, equipment_id, "equipment", "equipment_not_found")
        check_version(eq, version)
        if eq.status not in BY_HAND[status]:
            raise Conflict(
                f"{equipment_id} is {eq.status.replace('_', ' ')}; it cannot be set {status.replace('_', ' ')}",
                code=f"equipment_{eq.status}",
                details={"status": eq.status},
            )
        audit.record(
            s,
            user=by.username,
            action="equipment.status",
            object_type="equipment",
            object_id=eq.equipment_id,
            field="status",
            old={"status": eq.status, "in_use_by": eq.in_use_by},
            new={"status": status, "in_use_by": None},
            reason=why,
        )
        eq.status, eq.status_reason, eq.in_use_by, eq.in_use_scope = status, why, None, None
        eq.version, eq.updated_at = (eq.version or 0) + 1, utcnow()
        return describe(eq)


def list_equipment(
    rt: Runtime, *, status: str | None = None, equipment_class: str | None = None
) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", code="status_invalid")
    with rt.transaction() as s:
        q = select(Equipment).order_by(Equipment.equipment_id).limit(MAX_LIST)
        if status is not None:
            q = q.where(Equipment.status == status)
        if equipment_class is not None:
            q = q.where(Equipment.equipment_class == equipment_class)
        now = utcnow()
        return [describe(eq, now) for eq in s.scalars(q)]


def get(rt: Runtime, equipment_id: str) -> dict[str, Any]:
    with rt.transaction() as s:
        return describe(locked(s, Equipment, equipment_id, "equipment", "equipment_not_found", lock=False))
