"""``batchline materials|lots|equipment list|add|update|status``: master data from a
shell, with the same rules as the API (``engine.master_data``): who acts signs in with
their password (``$BATCHLINE_PASSWORD`` for ``$BATCHLINE_USER``, else asked) and needs the
role the change needs; every change is audited with its reason. Listing needs no sign-in
(it is read on the server's own database). ``batchline lots expire`` (run daily from cron)
expires released lots past their expiry date."""

from __future__ import annotations

from typing import Any

import click

from engine.master_data import UNITS
from engine.master_data import equipment as equipment_md
from engine.master_data import lots as lots_md
from engine.master_data import materials as materials_md

from .acting import acting, user_option
from .context import runtime
from .output import json_option, show
from .root import main

MATERIAL_FIELDS = ["material_id", "name", "unit", "kind", "active", "version"]
LOT_FIELDS = ["lot_id", "material", "status", "quantity", "unit", "expires_at", "status_reason", "version"]
EQUIPMENT_FIELDS = [
    "equipment_id",
    "equipment_class",
    "name",
    "status",
    "in_use_by",
    "calibrated_until",
    "status_reason",
    "version",
]
_reason = click.option("--reason", required=True, help="Why (recorded in the audit trail).")
_version = click.option("--version", "version", type=int, help="The version you read: refused if changed since.")


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- materials --------------------------------------------------------------------------


@main.group()
def materials():
    """The material list (codes, names, units); retired, never deleted."""


@materials.command("list")
@click.option("--all", "show_all", is_flag=True, help="Retired materials too.")
@json_option
def materials_list(show_all):
    """Materials by code."""
    show(materials_md.list_materials(runtime(), active=None if show_all else True), MATERIAL_FIELDS)


@materials.command("add")
@click.argument("material_id")
@click.option("--name", required=True)
@click.option("--unit", required=True, help="One of: " + ", ".join(UNITS))
@click.option("--kind", type=click.Choice(materials_md.KINDS), default="raw_material", show_default=True)
@click.option("--description", default="")
@user_option
@json_option
def materials_add(material_id, name, unit, kind, description, user):
    """Add MATERIAL_ID."""
    person = acting(user, "materials.manage")
    values = {"material_id": material_id, "name": name, "unit": unit, "kind": kind, "description": description}
    show(materials_md.create(runtime(), values, by=person.username), MATERIAL_FIELDS)


@materials.command("update")
@click.argument("material_id")
@click.option("--name")
@click.option("--unit")
@click.option("--kind", type=click.Choice(materials_md.KINDS))
@click.option("--description")
@click.option("--retire", is_flag=True, help="Retire it (no new lots).")
@click.option("--reactivate", is_flag=True)
@_reason
@_version
@user_option
@json_option
def materials_update(material_id, name, unit, kind, description, retire, reactivate, reason, version, user):
    """Change MATERIAL_ID."""
    person = acting(user, "materials.manage")
    values = _given(name=name, unit=unit, kind=kind, description=description, version=version, reason=reason)
    if retire or reactivate:
        values["active"] = bool(reactivate)
    show(materials_md.update(runtime(), material_id, values, by=person.username), MATERIAL_FIELDS)


# --- lots -------------------------------------------------------------------------------


@main.group()
def lots():
    """Material lots: receive, quantity and expiry, QA's release or rejection."""


@lots.command("list")
@click.option("--status", type=click.Choice(lots_md.STATUSES))
@click.option("--material")
@json_option
def lots_list(status, material):
    """Lots, newest first."""
    show(lots_md.list_lots(runtime(), status=status, material=material), LOT_FIELDS)


@lots.command("add")
@click.argument("lot_id")
@click.option("--material", required=True)
@click.option("--quantity", required=True, type=float)
@click.option("--unit", help="Default: the material's unit.")
@click.option("--expires", help="Expiry date (YYYY-MM-DD).")
@user_option
@json_option
def lots_add(lot_id, material, quantity, unit, expires, user):
    """Receive LOT_ID (in quarantine until QA releases it)."""
    person = acting(user, "lots.manage")
    values = _given(lot_id=lot_id, material=material, quantity=quantity, unit=unit, expires_at=expires)
    show(lots_md.create(runtime(), values, by=person.username), LOT_FIELDS)


@lots.command("update")
@click.argument("lot_id")
@click.option("--quantity", type=float)
@click.option("--unit")
@click.option("--expires", help="Expiry date (YYYY-MM-DD).")
@_reason
@_version
@user_option
@json_option
def lots_update(lot_id, quantity, unit, expires, reason, version, user):
    """Change LOT_ID's quantity, unit or expiry."""
    person = acting(user, "lots.manage")
    values = _given(quantity=quantity, unit=unit, expires_at=expires, reason=reason, version=version)
    show(lots_md.update(runtime(), lot_id, values, by=person.username), LOT_FIELDS)


@lots.command("status")
@click.argument("lot_id")
@click.argument("status", type=click.Choice(["released", "rejected", "quarantine"]))
@_reason
@_version
@user_option
@json_option
def lots_status(lot_id, status, reason, version, user):
    """QA releases, rejects or quarantines LOT_ID."""
    person = acting(user, "lots.release")
    show(lots_md.change_status(runtime(), lot_id, status, by=person, reason=reason, version=version), LOT_FIELDS)


@lots.command("expire")
@json_option
def lots_expire():
    """Expire released lots past their expiry date (run daily)."""
    show([{"lot_id": lot_id, "status": "expired"} for lot_id in lots_md.expire(runtime())], ["lot_id", "status"])


# --- equipment --------------------------------------------------------------------------


@main.group()
def equipment():
    """The equipment register and its status (maintenance takes it out of service)."""


@equipment.command("list")
@click.option("--status", type=click.Choice(equipment_md.STATUSES))
@click.option("--class", "equipment_class")
@json_option
def equipment_list(status, equipment_class):
    """Equipment by id."""
    show(equipment_md.list_equipment(runtime(), status=status, equipment_class=equipment_class), EQUIPMENT_FIELDS)


@equipment.command("add")
@click.argument("equipment_id")
@click.option("--class", "equipment_class", required=True)
@click.option("--name")
@click.option("--location")
@click.option("--connector", help="The OPC UA connector instance that reaches it.")
@click.option("--calibration-interval-days", type=int)
@click.option("--clean", is_flag=True, help="Register it clean (give --reason).")
@click.option("--reason")
@user_option
@json_option
def equipment_add(
    equipment_id, equipment_class, name, location, connector, calibration_interval_days, clean, reason, user
):
    """Register EQUIPMENT_ID (dirty unless --clean)."""
    person = acting(user, "equipment.manage")
    values = _given(
        equipment_id=equipment_id,
        equipment_class=equipment_class,
        name=name,
        location=location,
        connector=connector,
        calibration_interval_days=calibration_interval_days,
        reason=reason,
    )
    values["status"] = "clean" if clean else "dirty"
    show(equipment_md.create(runtime(), values, by=person.username), EQUIPMENT_FIELDS)


@equipment.command("update")
@click.argument("equipment_id")
@click.option("--class", "equipment_class")
@click.option("--name")
@click.option("--location")
@click.option("--connector")
@click.option("--calibration-interval-days", type=int)
@click.option("--calibrated-until", help="YYYY-MM-DD (an outside calibration).")
@_reason
@_version
@user_option
@json_option
def equipment_update(
    equipment_id, equipment_class, name, location, connector, calibration_interval_days, calibrated_until, reason,
    version, user,
):  # fmt: skip
    """Change what the register says about EQUIPMENT_ID."""
    person = acting(user, "equipment.manage")
    values = _given(
        equipment_class=equipment_class,
        name=name,
        location=location,
        connector=connector,
        calibration_interval_days=calibration_interval_days,
        calibrated_until=calibrated_until,
        reason=reason,
        version=version,
    )
    show(equipment_md.update(runtime(), equipment_id, values, by=person.username), EQUIPMENT_FIELDS)


@equipment.command("status")
@click.argument("equipment_id")
@click.argument("status", type=click.Choice(sorted(equipment_md.BY_HAND)))
@_reason
@_version
@user_option
@json_option
def equipment_status(equipment_id, status, reason, version, user):
    """Maintenance takes EQUIPMENT_ID out (maintenance, out_of_service) or returns it (dirty)."""
    person = acting(user, "equipment.maintain")
    show(
        equipment_md.change_status(runtime(), equipment_id, status, by=person, reason=reason, version=version),
        EQUIPMENT_FIELDS,
    )
