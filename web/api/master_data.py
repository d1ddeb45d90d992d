"""Master data over HTTP: materials, material lots and equipment. Everyone signed in
reads; operators change nothing (403). Materials: ``materials.manage``; lots:
``lots.manage`` (receive, quantity, expiry), ``lots.release`` (QA: release, reject,
quarantine, with a reason); equipment: ``equipment.manage`` (register, describe),
``equipment.maintain`` (maintenance: out of / back into service, with a reason). A change
may name the ``version`` it read (409 ``stale_version`` otherwise). Nothing is deleted.
The equipment logbook is ``GET /api/equipment/{id}/logbook`` (``equipment_logbook``)."""

from __future__ import annotations

from flask_smorest import Blueprint

from engine.master_data import equipment, lots, materials

from ..auth import current_person, current_user, requires
from . import runtime
from .schemas.master_data import (
    EquipmentChange,
    EquipmentFilter,
    EquipmentIn,
    EquipmentOut,
    LotChange,
    LotFilter,
    LotIn,
    LotOut,
    MaterialChange,
    MaterialFilter,
    MaterialIn,
    MaterialOut,
    StatusChange,
)

blp = Blueprint("master_data", __name__, url_prefix="/api", description="Materials, lots and equipment")


def _lot(lot: dict) -> dict:
    return {**lot, "genealogy": f"/lots/{lot['lot_id']}/genealogy"}


@blp.route("/materials", methods=["GET"])
@requires("materials.read")
@blp.arguments(MaterialFilter, location="query")
@blp.response(200, MaterialOut(many=True))
def list_materials(args):
    """Materials by code (at most 1000), filtered by `active` and `kind`."""
    return materials.list_materials(runtime(), active=args.get("active"), kind=args.get("kind"))


@blp.route("/materials", methods=["POST"])
@requires("materials.manage")
@blp.arguments(MaterialIn)
@blp.response(201, MaterialOut)
def create_material(body):
    """Add a material (409 `material_exists`)."""
    return materials.create(runtime(), body, by=current_user())


@blp.route("/materials/<material_id>", methods=["GET"])
@requires("materials.read")
@blp.response(200, MaterialOut)
def get_material(material_id: str):
    return materials.get(runtime(), material_id)


@blp.route("/materials/<material_id>", methods=["PATCH"])
@requires("materials.manage")
@blp.arguments(MaterialChange)
@blp.response(200, MaterialOut)
def update_material(body, material_id: str):
    """Change fields; `active: false` retires the material (its lots stay, new lots are refused)."""
    return materials.update(runtime(), material_id, body, by=current_user())


@blp.route("/lots", methods=["GET"])
@requires("materials.read")
@blp.arguments(LotFilter, location="query")
@blp.response(200, LotOut(many=True))
def list_lots(args):
    """Lots, newest first (at most 1000), by `status` and `material`; released lots past
    their expiry date are expired first."""
    return [_lot(x) for x in lots.list_lots(runtime(), status=args.get("status"), material=args.get("material"))]


@blp.route("/lots", methods=["POST"])
@requires("lots.manage")
@blp.arguments(LotIn)
@blp.response(201, LotOut)
def create_lot(body):
    """Receive a lot: it starts in quarantine until QA releases it."""
    return _lot(lots.create(runtime(), body, by=current_user()))


@blp.route("/lots/<lot_id>", methods=["GET"])
@requires("materials.read")
@blp.response(200, LotOut)
def get_lot(lot_id: str):
    return _lot(lots.get(runtime(), lot_id))


@blp.route("/lots/<lot_id>", methods=["PATCH"])
@requires("lots.manage")
@blp.arguments(LotChange)
@blp.response(200, LotOut)
def update_lot(body, lot_id: str):
    """Change quantity, unit or expiry date, with a reason (the status: `POST .../status`)."""
    return _lot(lots.update(runtime(), lot_id, body, by=current_user()))


@blp.route("/lots/<lot_id>/status", methods=["POST"])
@requires("lots.release")
@blp.arguments(StatusChange)
@blp.response(200, LotOut)
def change_lot_status(body, lot_id: str):
    """QA releases, rejects or quarantines a lot, with a reason (409 when its status does
    not allow it: rejected and expired are final)."""
    return _lot(
        lots.change_status(
            runtime(), lot_id, body["status"], by=current_person(), reason=body["reason"], version=body.get("version")
        )
    )


@blp.route("/equipment", methods=["GET"])
@requires("materials.read")
@blp.arguments(EquipmentFilter, location="query")
@blp.response(200, EquipmentOut(many=True))
def list_equipment(args):
    """Equipment by id (at most 1000), by `status` and `equipment_class`."""
    return equipment.list_equipment(runtime(), status=args.get("status"), equipment_class=args.get("equipment_class"))


@blp.route("/equipment", methods=["POST"])
@requires("equipment.manage")
@blp.arguments(EquipmentIn)
@blp.response(201, EquipmentOut)
def create_equipment(body):
    """Register equipment, dirty unless registered clean with a reason."""
    return equipment.create(runtime(), body, by=current_user())


@blp.route("/equipment/<equipment_id>", methods=["GET"])
@requires("materials.read")
@blp.response(200, EquipmentOut)
def get_equipment(equipment_id: str):
    return equipment.get(runtime(), equipment_id)


@blp.route("/equipment/<equipment_id>", methods=["PATCH"])
@requires("equipment.manage")
@blp.arguments(EquipmentChange)
@blp.response(200, EquipmentOut)
def update_equipment(body, equipment_id: str):
    """Change what the register says (name, class, location, connector, calibration), with a reason."""
    return equipment.update(runtime(), equipment_id, body, by=current_user())


@blp.route("/equipment/<equipment_id>/status", methods=["POST"])
@requires("equipment.maintain")
@blp.arguments(StatusChange)
@blp.response(200, EquipmentOut)
def change_equipment_status(body, equipment_id: str):
    """Maintenance sets `maintenance` or `out_of_service` (a scan is then refused with the
    reason) or returns it `dirty`. Clean and in use come from the SOPs and steps (409)."""
    return equipment.change_status(
        runtime(), equipment_id, body["status"], by=current_person(), reason=body["reason"], version=body.get("version")
    )
