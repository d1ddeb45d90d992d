"""Lot movements on the step path: which lots a batch consumed, which lots it produced.

Genealogy is written from the batch record, not entered twice. When an operator task is
completed, every material lot scanned on its form becomes a ``consumed`` movement; a lot
field whose ``quantityField`` names a number field (``forms``) gives the quantity, which
is taken off the lot's quantity on hand. A task with a ``produces`` property
(``engine.bpmn.properties``) creates the produced lot (status quarantine, produced by the
batch) with a ``produced`` movement. All of it happens in the step's own transaction: a
step is recorded with its movements or not at all.

The quantity on hand is decremented by one conditional UPDATE (``quantity >= used``), so
two batches consuming the last litres at once cannot both succeed: on PostgreSQL the
second UPDATE waits for the first's row lock and re-reads the row; on SQLite writers are
serialised. The loser is refused with 422 and nothing of its step is stored.

``lot_movement`` is append-only and every row is bound into the audit chain
(``engine.audit.binding``), so ``audit verify`` finds a movement changed, inserted or
deleted behind Batchline's back. A recorded lot scan or quantity is therefore not
corrected in place (``engine.batches.corrections`` refuses it): the operator records the
real use in a new step, and QA sees both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from forms import compile_form

from . import audit
from .bpmn.properties import Produces, spec_produces
from .errors import Conflict, InvalidInput
from .models import Batch, LotMovement, Material, MaterialLot, Step, utcnow

#: consumption within this much of the quantity on hand takes the rest (float rounding)
EPSILON = 1e-9
MAX_LOT_ID = 100


@dataclass(frozen=True)
class Use:
    """One scanned lot of a step and the quantity the form says was used (None: not counted)."""

    field: str
    lot_id: str
    material: str
    quantity: float | None
    unit: str | None


def lot_fields(form_definition: dict[str, Any] | None) -> dict[str, str | None]:
    """A form's material-lot field keys -> their quantity field key (or None)."""
    if not form_definition:
        return {}
    definition = compile_form(form_definition).definition
    return {f.key: f.quantity_field for f in definition.fields if f.kind == "materialLot"}


def genealogy_fields(form_definition: dict[str, Any] | None, task_spec: Any = None) -> set[str]:
    """The fields whose recorded value is a lot movement: scanned lots, their quantities,
    and what a ``produces`` task names. A correction of one of these is refused."""
    out: set[str] = set()
    for key, quantity in lot_fields(form_definition).items():
        out.add(key)
        if quantity:
            out.add(quantity)
    produces = spec_produces(task_spec) if task_spec is not None else None
    if produces is not None:
        out.add(produces.quantity_field)
        if produces.lot_field:
            out.add(produces.lot_field)
    return out


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def uses(step: Step, form_definition: dict[str, Any] | None) -> list[Use]:
    """The lots a step's values scanned, with their quantities."""
    if not form_definition:
        return []
    definition = compile_form(form_definition).definition
    by_key = {f.key: f for f in definition.fields}
    out = []
    for f in definition.fields:
        lot_id = step.values.get(f.key)
        if f.kind != "materialLot" or not isinstance(lot_id, str) or not lot_id:
            continue  # an optional scan left empty
        quantity = unit = None
        if f.quantity_field:
            quantity = _number(step.values.get(f.quantity_field))
            unit = (step.units or {}).get(f.quantity_field) or by_key[f.quantity_field].unit
        out.append(Use(f.key, lot_id, f.material or "", quantity, unit if quantity is not None else None))
    return out


def record_movements(
    s: Session, batch: Batch, step: Step, task_spec: Any, form_definition: dict[str, Any] | None
) -> list[LotMovement]:
    """On the step path, after the step is appended: one ``consumed`` movement per scanned
    lot (decrementing counted lots) and the ``produced`` lot of a ``produces`` task."""
    written = [_consume(s, batch, step, use) for use in uses(step, form_definition)]
    produces = spec_produces(task_spec)
    if produces is not None:
        written.append(_produce(s, batch, step, produces))
    return written


def _refuse(field: str, message: str, code: str) -> InvalidInput:
    return InvalidInput(f"{message}; nothing was stored", code=code, details={"fields": {field: [message]}})


def _consume(s: Session, batch: Batch, step: Step, use: Use) -> LotMovement:
    lot = s.get(MaterialLot, use.lot_id)
    # a lot the registry does not know got here only by a supervisor's signed override of
    # the scan check: it is recorded as used (genealogy), its quantity cannot be counted
    if use.quantity is not None and lot is not None:
        if use.quantity < 0:
            raise _refuse(use.field, f"a consumed quantity cannot be negative ({use.quantity:g})", "quantity_negative")
        if lot.unit and use.unit and lot.unit != use.unit:
            raise _refuse(
                use.field,
                f"lot {use.lot_id} is counted in {lot.unit}, the quantity was entered in {use.unit}",
                "lot_unit_mismatch",
            )
        if lot.quantity is not None and use.quantity > 0:
            take_from_lot(s, lot, use)
    movement = LotMovement(
        kind="consumed",
        lot_id=use.lot_id,
        material=lot.material if lot is not None else use.material,
        batch_id=batch.id,
        step_seq=step.seq,
        task_id=step.task_id,
        quantity=use.quantity,
        unit=use.unit or (lot.unit if lot is not None and use.quantity is not None else None),
        recorded_by=step.user,
        recorded_at=step.recorded_at,
    )
    s.add(movement)
    audit.record(
        s,
        user=step.user,
        action="lot.consumed",
        object_type="material_lot",
        object_id=use.lot_id,
        field="quantity",
        new={"batch_id": batch.batch_id, "step_seq": step.seq, "quantity": use.quantity, "unit": movement.unit},
        binds=[movement],
    )
    return movement


def take_from_lot(s: Session, lot: MaterialLot, use: Use, refusal: str | None = None) -> None:
    """Decrement the quantity on hand by ``use.quantity`` (a negative quantity gives back),
    or refuse: one conditional UPDATE, so concurrent consumptions of the same last quantity
    cannot both pass. ``refusal`` words the refusal (``{on_hand}``: quantity and unit)."""
    assert use.quantity is not None
    result = s.execute(
        update(MaterialLot)
        .where(MaterialLot.lot_id == lot.lot_id, MaterialLot.quantity + EPSILON >= use.quantity)
        .values(quantity=MaterialLot.quantity - use.quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    s.expire(lot)
    if getattr(result, "rowcount", 0) != 1:
        unit = lot.unit or use.unit or ""
        on_hand = f"{lot.quantity if lot.quantity is not None else 0.0:g} {unit}".strip()
        message = (refusal or "lot {lot} has {on_hand} on hand; {quantity:g} {unit} cannot be consumed").format(
            lot=use.lot_id, on_hand=on_hand, quantity=use.quantity, unit=unit
        )
        raise _refuse(use.field, message, "lot_quantity_insufficient")


def produced_lot_id(batch_id: str, material: str) -> str:
    """The id of a produced lot no form names: the batch id and the material code."""
    return f"{batch_id}-{material}"[:MAX_LOT_ID]


def _produce(s: Session, batch: Batch, step: Step, produces: Produces) -> LotMovement:
    key = produces.quantity_field
    quantity = _number(step.values.get(key))
    if quantity is None or quantity < 0:
        raise _refuse(key, f"the quantity of {produces.material} produced is needed", "produced_quantity_missing")
    unit = (step.units or {}).get(key)
    material = s.get(Material, produces.material)
    if material is not None and unit and material.unit != unit:
        raise _refuse(key, f"{produces.material} is counted in {material.unit}, not {unit}", "lot_unit_mismatch")
    unit = unit or (material.unit if material is not None else None)
    lot_id = produced_lot_id(batch.batch_id, produces.material)
    if produces.lot_field:
        named = step.values.get(produces.lot_field)
        if not isinstance(named, str) or not named.strip():
            raise _refuse(produces.lot_field, "the id of the lot produced is needed", "produced_lot_missing")
        lot_id = named.strip()[:MAX_LOT_ID]
    now = utcnow()
    lot = s.get(MaterialLot, lot_id)
    if lot is None:
        s.add(
            MaterialLot(
                lot_id=lot_id,
                material=produces.material,
                status="quarantine",
                quantity=quantity,
                unit=unit,
                produced_by=batch.batch_id,
                created_at=now,
                updated_at=now,
            )
        )
    elif lot.produced_by == batch.batch_id and lot.material == produces.material:
        lot.quantity = (lot.quantity or 0.0) + quantity  # the task ran again (a loop): more of the same lot
        lot.updated_at = now
    else:
        origin = f"produced by batch {lot.produced_by}" if lot.produced_by else "a received lot"
        raise Conflict(f"lot {lot_id} exists already ({origin}); nothing was stored", code="lot_exists")
    movement = LotMovement(
        kind="produced",
        lot_id=lot_id,
        material=produces.material,
        batch_id=batch.id,
        step_seq=step.seq,
        task_id=step.task_id,
        quantity=quantity,
        unit=unit,
        recorded_by=step.user,
        recorded_at=step.recorded_at,
    )
    s.add(movement)
    audit.record(
        s,
        user=step.user,
        action="lot.produced",
        object_type="material_lot",
        object_id=lot_id,
        field="quantity",
        new={
            "batch_id": batch.batch_id,
            "step_seq": step.seq,
            "quantity": quantity,
            "unit": unit,
            "status": "quarantine",
        },
        binds=[movement],
    )
    return movement
