"""Correcting a recorded lot quantity: a reversing movement and a new one, never an edit.

``lot_movement`` is append-only and bound into the audit chain, so a corrected quantity
(``engine.batches.corrections``) cannot change the movement the step wrote. Instead the
correction appends two movements at the same step: one reversing what stands (the
negative of the net quantity recorded so far for that lot at that step) and one with the
corrected quantity, and moves the lot's quantity on hand by the difference — with the
same conditional UPDATE as the step path, so a correction cannot take more than is on
hand, nor shrink a produced lot below what later batches already consumed from it.

Which lot was scanned, or which lot a task produced, is not corrected this way: using
another lot than the one recorded is a deviation to investigate, so that correction is
refused (``lot_movement_not_correctable``) and the real use is recorded in a new step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .bpmn.properties import spec_produces
from .errors import Conflict
from .lot_movements import Use, genealogy_fields, lot_fields, take_from_lot
from .models import Batch, LotMovement, MaterialLot, Step


def quantity_target(form: dict[str, Any] | None, task_spec: Any, field: str) -> tuple[str, str] | None:
    """(kind, lot field or "") when ``field`` is a recorded lot quantity: ``consumed`` for a
    scanned lot's quantity field, ``produced`` for a produces task's quantity; None when the
    field is no lot movement. Conflict for a lot id (scanned or produced)."""
    if field not in genealogy_fields(form, task_spec):
        return None
    for lot_key, quantity_key in lot_fields(form).items():
        if quantity_key == field:
            return "consumed", lot_key
    produces = spec_produces(task_spec) if task_spec is not None else None
    if produces is not None and produces.quantity_field == field:
        return "produced", ""
    raise Conflict(
        f"{field} names a lot of the genealogy and cannot be corrected; record the lot really used in a new "
        "step and raise a deviation",
        code="lot_movement_not_correctable",
    )


def correct_quantity(
    s: Session,
    batch: Batch,
    step: Step,
    target: tuple[str, str],
    field: str,
    value: Any,
    *,
    user: str,
    at: datetime,
    reason: str,
) -> list[LotMovement]:
    """Append the reversing and the corrected movement for a corrected quantity."""
    kind, lot_key = target
    try:
        new = float(value)
    except (TypeError, ValueError):
        raise Conflict(
            "a recorded lot quantity cannot be removed, only corrected", code="lot_quantity_required"
        ) from None
    query = select(LotMovement).where(
        LotMovement.batch_id == batch.id, LotMovement.step_seq == step.seq, LotMovement.kind == kind
    )
    if kind == "consumed":
        lot_id = step.values.get(lot_key)
        query = query.where(LotMovement.lot_id == lot_id)
    recorded = list(s.scalars(query.order_by(LotMovement.id)))
    if not recorded:
        return []  # a lot scan left empty, or a step recorded before genealogy: nothing moved
    first = recorded[-1]
    standing = sum(m.quantity or 0.0 for m in recorded)
    delta = new - standing
    lot = s.get(MaterialLot, first.lot_id)
    if lot is not None and lot.quantity is not None and delta:
        # consuming more takes from the lot; producing less gives back what the lot still holds
        taken = delta if kind == "consumed" else -delta
        take_from_lot(
            s,
            lot,
            Use(lot_key or field, first.lot_id, first.material, taken, first.unit),
            refusal="lot {lot} has {on_hand} on hand; the corrected quantity needs {quantity:g} {unit} more",
        )
    written = []
    for quantity, what in ((-standing, "reversed"), (new, "corrected")):
        movement = LotMovement(
            kind=kind,
            lot_id=first.lot_id,
            material=first.material,
            batch_id=batch.id,
            step_seq=step.seq,
            task_id=step.task_id,
            quantity=quantity,
            unit=first.unit,
            recorded_by=user,
            recorded_at=at,
        )
        s.add(movement)
        audit.record(
            s,
            user=user,
            action=f"lot.{kind}.{what}",
            object_type="material_lot",
            object_id=first.lot_id,
            field="quantity",
            old=standing if what == "reversed" else None,
            new={"batch_id": batch.batch_id, "step_seq": step.seq, "quantity": quantity, "unit": first.unit},
            reason=reason,
            binds=[movement],
        )
        written.append(movement)
    return written
