"""Checking an operator's values against the task's form, on the step path.

The ``forms`` package is the authority on types, required fields, hard limits and
calculated fields (the browser is never trusted); this module gives it the plant's
registries to check scanned material lots (released, not expired, right material) and
equipment (clean, calibrated, not in use by another batch), inside the step's own
transaction so the answer cannot change before commit.

Material lots and equipment live in the ``material_lot`` and ``equipment`` tables
(``batchline demo`` seeds them; ERP/LIMS integrations keep them current).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from forms import EquipmentCheck, FormRejected, LotCheck, ValidatedStep, compile_form

from .errors import InvalidInput
from .finite import check_finite
from .master_data.equipment_use import scan_refusal
from .models import Attachment, Batch, Equipment, MaterialLot, utcnow


class RegistryLookups:
    """`forms.Lookups` backed by Batchline's material-lot and equipment tables.

    ``purpose``: the task's ``logbook`` kind (a cleaning SOP may scan dirty equipment, a
    calibration one overdue equipment: ``master_data.equipment_use.scan_refusal``).
    ``recorded``: values the step already holds (a correction re-checks a step whose
    equipment the batch has since released: what was recorded stays acceptable)."""

    def __init__(self, session: Session, purpose: str | None = None, recorded: frozenset[str] = frozenset()):
        self.session = session
        self.purpose = purpose
        self.recorded = recorded

    def check_material_lot(self, lot_id: str, material: str) -> LotCheck:
        lot = self.session.get(MaterialLot, lot_id) if len(lot_id) <= 100 else None
        if lot is None:
            return LotCheck(False, f"lot {lot_id[:100]} was not found")
        if material and lot.material != material:
            return LotCheck(False, f"lot {lot_id} is {lot.material}, not {material}")
        if lot.status != "released":
            why = f": {lot.status_reason}" if lot.status_reason and lot.status != "expired" else ""
            status = {"quarantine": "in quarantine"}.get(lot.status, lot.status)
            return LotCheck(False, f"lot {lot_id} is {status}, not released{why}")
        if lot.expires_at is not None and lot.expires_at <= utcnow():
            return LotCheck(False, f"lot {lot_id} expired on {lot.expires_at.day} {lot.expires_at:%b %Y}")
        return LotCheck(True)

    def check_equipment(self, equipment_id: str, equipment_class: str, batch_id: str | None) -> EquipmentCheck:
        eq = self.session.get(Equipment, equipment_id) if len(equipment_id) <= 100 else None
        if eq is None:
            return EquipmentCheck(False, f"equipment {equipment_id[:100]} was not found")
        if equipment_class and eq.equipment_class != equipment_class:
            return EquipmentCheck(
                False, f"{equipment_id} is a {_words(eq.equipment_class)}, not a {_words(equipment_class)}"
            )
        if equipment_id in self.recorded:
            return EquipmentCheck(True)
        refusal = scan_refusal(eq, batch_id, self.purpose, utcnow())
        return EquipmentCheck(refusal is None, refusal or "")


def _words(name: str) -> str:
    """An equipment class id as people say it: ``ph_meter`` -> "pH meter"."""
    return (name or "").replace("_", " ").replace("ph ", "pH ")


def batch_parameters(session: Session, batch_id: str) -> dict[str, Any]:
    """The batch's start parameters, as recorded when it was started: what a form field with
    ``matchesParameter`` (the patient's chain-of-identity id) is compared with. Read from the
    batch row, not from Spiff data, which a script could have changed."""
    batch = session.query(Batch).filter(Batch.batch_id == batch_id).one_or_none()
    return dict(batch.parameters or {}) if batch is not None else {}


@dataclass
class CheckedValues:
    """What the step path records: the values and what Spiff may see of them."""

    values: dict[str, Any]
    units: dict[str, str]
    form_hash: str | None
    spiff_data: dict[str, Any]
    validated: ValidatedStep | None = None


def check_values(
    session: Session,
    batch_id: str,
    form_definition: dict[str, Any] | None,
    data: dict[str, Any],
    *,
    purpose: str | None = None,
    recorded: frozenset[str] = frozenset(),
) -> CheckedValues:
    """Validate submitted values; raise InvalidInput (422, field messages) when refused.
    ``purpose`` / ``recorded``: see ``RegistryLookups``."""
    if form_definition is None:
        check_finite(data, "data")
        return CheckedValues(values=data, units={}, form_hash=None, spiff_data=_scalars(data))
    compiled = compile_form(form_definition)
    try:
        step = compiled.validate(
            data,
            lookups=RegistryLookups(session, purpose, recorded),
            batch_id=batch_id,
            parameters=batch_parameters(session, batch_id),
        )
    except FormRejected as exc:
        raise InvalidInput(
            "the values were refused; nothing was stored", code="form_invalid", details={"fields": exc.field_errors}
        ) from exc
    return finish(session, compiled, step)


def finish(session: Session, compiled: Any, step: ValidatedStep) -> CheckedValues:
    """The accepted values as the step path records them (attachments checked, numbers
    as Spiff's gateways compare them); shared with a supervisor's override."""
    _check_attachments(session, compiled, step.values)
    numbers = {f.key for f in compiled.definition.fields if f.component_type == "number"}
    spiff: dict[str, Any] = {}
    for key, value in step.values.items():
        if key in numbers and value is not None:
            spiff[key] = float(value)  # gateway conditions compare numbers, not text
        elif isinstance(value, (str, int, float, bool, type(None))):
            spiff[key] = value
    return CheckedValues(
        values=step.values, units=step.units, form_hash=step.definition_hash, spiff_data=spiff, validated=step
    )


def _check_attachments(session: Session, compiled, values: dict[str, Any]) -> None:
    """An attachment field must name a stored file with exactly that hash and size."""
    errors = {}
    for f in compiled.definition.fields:
        ref = values.get(f.key)
        if f.kind != "attachment" or not ref:
            continue
        stored = session.get(Attachment, ref["sha256"])
        if stored is None or stored.size != ref["size"]:
            errors[f.key] = ["no uploaded file has this SHA-256 and size: upload it first (POST /api/attachments)"]
    if errors:
        raise InvalidInput(
            "the values were refused; nothing was stored", code="form_invalid", details={"fields": errors}
        )


def _scalars(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if isinstance(v, (str, int, float, bool, type(None)))}
