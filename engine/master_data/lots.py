"""Material lots: what was received (or produced), how much is left, until when it may be
used, and QA's decision on it.

Status (``material_lot.status``) moves only along these lines:

* quarantine → released or rejected: QA only (``lots.release``), with a reason;
* released → quarantine (QA puts it on hold) or rejected (QA), with a reason;
* released → expired: by the system when the expiry date has passed (on every read of the
  lot list or a lot, on a scan, and by ``batchline lots expire`` run daily);
* rejected and expired are final (a lot is never deleted: the records name it).

A received lot starts in quarantine. Quantities are ≥ 0 in one of ``master_data.UNITS``.
Each change is one audit entry per field, old → new, with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, permissions
from ..errors import Conflict, InvalidInput
from ..models import Material, MaterialLot, utcnow
from ..runtime import Runtime
from ..users import Person
from . import (
    apply_changes,
    check_change,
    check_id,
    check_quantity,
    check_reason,
    check_unit,
    check_version,
    check_when,
    iso,
    locked,
)

STATUSES = ("quarantine", "released", "rejected", "expired")
#: status -> the statuses a person (QA) may move it to
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "quarantine": ("released", "rejected"),
    "released": ("quarantine", "rejected"),
    "rejected": (),
    "expired": (),
}
FIELDS = ("quantity", "expires_at", "unit")
MAX_LIST = 1000


def describe(lot: MaterialLot) -> dict[str, Any]:
    return {
        "lot_id": lot.lot_id,
        "material": lot.material,
        "status": lot.status,
        "status_reason": lot.status_reason,
        "quantity": lot.quantity,
        "unit": lot.unit,
        "expires_at": iso(lot.expires_at),
        "produced_by": lot.produced_by,
        "version": lot.version or 0,
        "created_at": iso(lot.created_at),
        "updated_at": iso(lot.updated_at),
    }


def expire_due(s: Session, now: datetime | None = None, lot_ids: list[str] | None = None) -> list[str]:
    """Released lots past their expiry become ``expired`` (audited as the system), in the
    caller's transaction. Returns the lots it expired."""
    now = now or utcnow()
    s.flush()  # a changed expiry date in this transaction counts
    q = select(MaterialLot).where(
        MaterialLot.status == "released", MaterialLot.expires_at.is_not(None), MaterialLot.expires_at <= now
    )
    if lot_ids is not None:
        q = q.where(MaterialLot.lot_id.in_(lot_ids))
    expired = []
    for lot in s.scalars(q.limit(MAX_LIST)):
        audit.record(
            s,
            user="system",
            action="lot.status",
            object_type="lot",
            object_id=lot.lot_id,
            field="status",
            old=lot.status,
            new="expired",
            reason=f"expiry date {lot.expires_at:%Y-%m-%d} passed",
        )
        lot.status, lot.status_reason = "expired", f"expired on {lot.expires_at:%Y-%m-%d}"
        lot.version, lot.updated_at = (lot.version or 0) + 1, now
        expired.append(lot.lot_id)
    return expired


def expire(rt: Runtime) -> list[str]:
    """``batchline lots expire`` (run daily): expire every released lot past its date."""
    with rt.transaction() as s:
        return expire_due(s)


def create(rt: Runtime, values: dict[str, Any], *, by: str) -> dict[str, Any]:
    """Receive a lot of an active material, in quarantine until QA releases it."""
    if not isinstance(values, dict):
        raise InvalidInput("a lot is a JSON object", code="body_invalid")
    unknown = set(values) - {"lot_id", "material", "quantity", "unit", "expires_at"}
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))[:200]}", code="field_unknown")
    lot_id = check_id(values.get("lot_id"), "lot id")
    material_id = check_id(values.get("material"), "material")
    quantity = check_quantity(values.get("quantity"))
    if quantity is None:
        raise InvalidInput("quantity is required", code="quantity_invalid")
    expires = check_when(values.get("expires_at"), "expiry date")
    with rt.transaction() as s:
        material = s.get(Material, material_id)
        if material is None or not material.active:
            raise InvalidInput(
                f"material {material_id} is {'retired' if material else 'not known'}", code="material_unknown"
            )
        unit = check_unit(values["unit"]) if values.get("unit") is not None else material.unit
        if s.get(MaterialLot, lot_id) is not None:
            raise Conflict(f"lot {lot_id} exists already", code="lot_exists")
        now = utcnow()
        lot = MaterialLot(
            lot_id=lot_id,
            material=material_id,
            status="quarantine",
            quantity=quantity,
            unit=unit,
            expires_at=expires,
            created_at=now,
            updated_at=now,
            version=0,
        )
        s.add(lot)
        audit.record(s, user=by, action="lot.create", object_type="lot", object_id=lot_id, new=describe(lot))
        return describe(lot)


def update(rt: Runtime, lot_id: str, values: dict[str, Any], *, by: str) -> dict[str, Any]:
    """Change the quantity, unit or expiry date of a lot (with a reason); status changes
    go through ``change_status``."""
    check_change(values, FIELDS, hint=" (change the status with /status)")
    reason = check_reason(values.get("reason"), "the change")
    changes: dict[str, Any] = {}
    if "quantity" in values:
        if values["quantity"] is None:
            raise InvalidInput("quantity must be a number", code="quantity_invalid")
        changes["quantity"] = check_quantity(values["quantity"])
    if "unit" in values:
        changes["unit"] = check_unit(values["unit"])
    if "expires_at" in values:
        changes["expires_at"] = check_when(values["expires_at"], "expiry date")
    with rt.transaction() as s:
        lot = locked(s, MaterialLot, lot_id, "lot", "lot_not_found")
        check_version(lot, values.get("version"))
        if lot.status in ("rejected", "expired") and "expires_at" in changes:
            raise Conflict(f"lot {lot_id} is {lot.status}: its expiry date is final", code=f"lot_{lot.status}")
        apply_changes(
            s, lot, changes, by=by, action="lot.update", object_type="lot", object_id=lot.lot_id, reason=reason
        )
        expire_due(s, lot_ids=[lot.lot_id])
        return describe(lot)


def change_status(
    rt: Runtime, lot_id: str, status: Any, *, by: Person, reason: Any, version: Any = None
) -> dict[str, Any]:
    """QA's decision on a lot (``lots.release``): release, reject or put back in
    quarantine, with a reason. 409 when the lot's status does not allow it."""
    permissions.check(by, "lots.release")
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", code="status_invalid")
    if status == "expired":
        raise InvalidInput("a lot expires by its expiry date, not by hand", code="status_invalid")
    why = check_reason(reason, f"the lot's status {status}")
    with rt.transaction() as s:
        lot = locked(s, MaterialLot, lot_id, "lot", "lot_not_found")
        check_version(lot, version)
        expire_due(s, lot_ids=[lot.lot_id])
        if status not in TRANSITIONS.get(lot.status, ()):
            final = " (final)" if not TRANSITIONS.get(lot.status) else ""
            raise Conflict(
                f"lot {lot_id} is {lot.status}{final}; it cannot become {status}",
                code=f"lot_{lot.status}",
                details={"status": lot.status},
            )
        if status == "released" and lot.expires_at is not None and lot.expires_at <= utcnow():
            raise Conflict(f"lot {lot_id} expired on {lot.expires_at:%Y-%m-%d}", code="lot_expired")
        audit.record(
            s,
            user=by.username,
            action="lot.status",
            object_type="lot",
            object_id=lot.lot_id,
            field="status",
            old=lot.status,
            new=status,
            reason=why,
        )
        lot.status, lot.status_reason = status, why
        lot.version, lot.updated_at = (lot.version or 0) + 1, utcnow()
        return describe(lot)


def list_lots(rt: Runtime, *, status: str | None = None, material: str | None = None) -> list[dict[str, Any]]:
    """Lots, newest first, filtered by status and material (past-expiry lots expired first)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", code="status_invalid")
    with rt.transaction() as s:
        expire_due(s)
        q = select(MaterialLot).order_by(MaterialLot.created_at.desc(), MaterialLot.lot_id).limit(MAX_LIST)
        if status is not None:
            q = q.where(MaterialLot.status == status)
        if material is not None:
            q = q.where(MaterialLot.material == material)
        return [describe(lot) for lot in s.scalars(q)]


def get(rt: Runtime, lot_id: str) -> dict[str, Any]:
    with rt.transaction() as s:
        lot = locked(s, MaterialLot, lot_id, "lot", "lot_not_found", lock=False)
        expire_due(s, lot_ids=[lot.lot_id])
        return describe(lot)
