"""Equipment status by use, on the step path and in the step's own transaction.

What a scan may use (``scan_refusal``, asked by ``step_values.RegistryLookups``):

* never equipment in maintenance or out of service (the refusal names maintenance's
  reason), nor equipment in use by another batch;
* a production step (a task without ``logbook``, or ``use`` / ``line_clearance``): clean
  equipment, or equipment already in use by this same batch (its later steps keep
  scanning what it holds), calibrated (not overdue);
* a cleaning step (``logbook`` ``cip`` / ``sip``): dirty or clean equipment;
* a calibration step (``calibration`` / ``daily_check``): also equipment whose
  calibration is overdue — that is what it fixes.

What the step then does (``after_step``): a production step takes what it scanned
(``in_use`` by the batch); a cleaning step leaves it ``clean``; a calibration step sets
``calibrated_until`` (the form's ``calibrated_until`` date if it has one, else the
equipment's ``calibration_interval_days``, else ``Settings.calibration_days`` /
``daily_check_hours``). A step with an action-level limit breach (a failed cleaning
acceptance, a slope outside limits) changes no status: the logbook records what happened,
the equipment stays as it was. When the batch ends (complete or aborted) ``release``
leaves everything it held ``dirty`` (instruments and rooms that hold no product,
``Settings.equipment_not_soiled``, just free; a room's cleaning is its line
clearance). Each change is audited, old → new.

By default equipment is held until the batch ends, not its unit procedure: the library's
mAb recipe keeps its media hold tank from media preparation into production, so
releasing at the end of a unit procedure would refuse the recipe's own next step. With
``Settings.equipment_released_at = "unit_procedure"`` what a step inside a unit procedure
(a call activity) took is released dirty when that unit procedure ends
(``release_ended``, from ``unit_of_work.persist`` in the same transaction); what a step of
the top process took is held until the batch ends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..bpmn.properties import spec_logbook
from ..config import Settings
from ..equipment_logbook import equipment_fields
from ..models import Batch, Equipment, Step, utcnow

CLEANING = ("cip", "sip")
CALIBRATING = ("calibration", "daily_check")
#: form fields a calibration SOP may give its own due date in
DUE_FIELDS = ("calibrated_until", "calibration_due", "next_calibration")


def scan_refusal(eq: Equipment, batch_id: str | None, purpose: str | None, now: datetime) -> str | None:
    """Why ``eq`` may not be scanned by ``batch_id`` for ``purpose`` (a logbook kind), or None."""
    name = eq.equipment_id
    if eq.status in ("maintenance", "out_of_service"):
        why = f": {eq.status_reason}" if eq.status_reason else ""
        return f"{name} is {'in maintenance' if eq.status == 'maintenance' else 'out of service'}{why}"
    held = eq.in_use_by if (eq.status == "in_use" or eq.in_use_by) else None
    if held and held != batch_id:
        return f"{name} is in use by batch {held}"
    if purpose in CLEANING:
        return None
    if eq.status == "dirty":
        return f"{name} is dirty: clean it (CIP/SIP) first"
    if eq.status not in ("clean", "in_use"):
        return f"{name} is {eq.status.replace('_', ' ')}"
    if purpose not in CALIBRATING and eq.calibrated_until is not None and eq.calibrated_until <= now:
        due = eq.calibrated_until
        return f"{name} calibration expired on {due.day} {due:%b %Y}"
    return None


def _scanned(step: Step, form: dict[str, Any] | None) -> list[str]:
    out: list[str] = []
    for key in equipment_fields(form):
        value = step.values.get(key)
        if isinstance(value, str) and value and value not in out:
            out.append(value)
    return out


def after_step(
    settings: Settings,
    s: Session,
    batch: Batch,
    step: Step,
    task_spec: Any,
    form: dict[str, Any] | None,
    action_breach: bool,
    scope: str | None = None,
) -> None:
    """Set the status of what the step scanned (see the module docstring). ``scope``: the
    unit procedure (call activity task id) the step ran in, None for the top process."""
    scanned = _scanned(step, form) if settings.equipment_status_by_use else []
    if not scanned:
        return
    kind = spec_logbook(task_spec)
    where = f"batch {batch.batch_id} step {step.seq}"
    for equipment_id in scanned:
        eq = s.get(Equipment, equipment_id)
        if eq is None:
            continue
        if kind in CLEANING:
            if action_breach:
                continue
            _set(s, eq, step.user, status="clean", in_use_by=None, reason=f"cleaned ({kind.upper()}) in {where}")
        elif kind in CALIBRATING:
            if action_breach:
                continue
            until = _due(settings, eq, kind, step)
            audit.record(
                s,
                user=step.user,
                action="equipment.calibrated",
                object_type="equipment",
                object_id=eq.equipment_id,
                field="calibrated_until",
                old=eq.calibrated_until.isoformat() if eq.calibrated_until else None,
                new=until.isoformat(),
                reason=f"{kind.replace('_', ' ')} in {where}",
            )
            eq.calibrated_until = until
            eq.version, eq.updated_at = (eq.version or 0) + 1, utcnow()
        elif kind != "line_clearance" and eq.status in ("clean", "dirty") and not eq.in_use_by:
            # (an overridden scan of equipment in maintenance or held elsewhere keeps its status)
            _set(s, eq, step.user, status="in_use", in_use_by=batch.batch_id, reason=f"used in {where}")
            eq.in_use_scope = scope


def release(settings: Settings, s: Session, batch: Batch, *, user: str) -> list[str]:
    """The batch ended: what it held is dirty and free (in the ending transaction);
    instruments (``Settings.equipment_not_soiled``) are free and clean."""
    released: list[str] = []
    if not settings.equipment_status_by_use:
        return released
    rows = s.scalars(select(Equipment).where(Equipment.in_use_by == batch.batch_id).order_by(Equipment.equipment_id))
    for eq in rows:
        status = eq.status  # maintenance took it meanwhile: it stays there
        if eq.status == "in_use":
            status = "clean" if eq.equipment_class in settings.equipment_not_soiled else "dirty"
        _set(s, eq, user, status=status, in_use_by=None, reason=f"batch {batch.batch_id} {batch.state}")
        released.append(eq.equipment_id)
    return released


def unit_procedure(task: Any) -> str | None:
    """The unit procedure a task runs in: the task id of the outermost call activity (or
    subprocess) holding it; None for a task of the top process."""
    wf = task.workflow
    while getattr(wf, "parent_task_id", None) is not None:
        parent = wf.parent_workflow
        if getattr(parent, "parent_task_id", None) is None:
            return str(wf.parent_task_id)
        wf = parent
    return None


def release_ended(settings: Settings, s: Session, batch: Batch, workflow: Any) -> list[str]:
    """With ``equipment_released_at = "unit_procedure"``: what the unit procedures that
    have ended took is dirty and free (called by ``persist`` on every commit of the batch)."""
    if not settings.equipment_status_by_use or settings.equipment_released_at != "unit_procedure":
        return []
    from SpiffWorkflow.exceptions import TaskNotFoundException
    from SpiffWorkflow.util.task import TaskState

    released = []
    held = s.scalars(
        select(Equipment).where(Equipment.in_use_by == batch.batch_id, Equipment.in_use_scope.is_not(None))
    )
    for eq in list(held):
        try:
            parent = workflow.get_task_from_id(UUID(eq.in_use_scope))
        except (ValueError, TaskNotFoundException):
            parent = None  # gone from the workflow: it ended (pruned) long ago
        if parent is not None and parent.state != TaskState.COMPLETED:
            continue
        status = "clean" if eq.equipment_class in settings.equipment_not_soiled else "dirty"
        _set(s, eq, "system", status=status, in_use_by=None, reason=f"unit procedure ended in batch {batch.batch_id}")
        released.append(eq.equipment_id)
    return released


def _set(s: Session, eq: Equipment, user: str, *, status: str, in_use_by: str | None, reason: str) -> None:
    audit.record(
        s,
        user=user,
        action="equipment.status",
        object_type="equipment",
        object_id=eq.equipment_id,
        field="status",
        old={"status": eq.status, "in_use_by": eq.in_use_by},
        new={"status": status, "in_use_by": in_use_by},
        reason=reason,
    )
    eq.status, eq.in_use_by, eq.status_reason = status, in_use_by, reason
    if in_use_by is None:
        eq.in_use_scope = None
    eq.version, eq.updated_at = (eq.version or 0) + 1, utcnow()


def _due(settings: Settings, eq: Equipment, kind: str, step: Step) -> datetime:
    for key in DUE_FIELDS:
        value = step.values.get(key)
        if isinstance(value, str) and len(value) <= 40:
            try:
                if len(value) == 10:
                    return datetime.combine(date.fromisoformat(value), time(23, 59, 59), UTC)
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            except ValueError:
                pass
    now = step.recorded_at or utcnow()
    if eq.calibration_interval_days:
        return now + timedelta(days=eq.calibration_interval_days)
    if kind == "daily_check":
        return now + timedelta(hours=settings.daily_check_hours)
    return now + timedelta(days=settings.calibration_days)
