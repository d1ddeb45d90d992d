"""The material list: what the plant consumes and produces, by its code (the ERP's
material number), with the unit its lots are counted in.

A material is never deleted — lots and batch records name it — so "removing" one retires
it (``active`` false): its lots stay readable, new lots of it are refused. Every change is
one audit entry per changed field with the old and the new value.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .. import audit
from ..errors import Conflict, InvalidInput
from ..models import Material, utcnow
from ..runtime import Runtime
from . import apply_changes, check_change, check_id, check_text, check_unit, check_version, iso, locked

KINDS = ("raw_material", "media", "buffer", "cell_bank", "intermediate", "drug_substance", "consumable", "standard")
#: the fields a change may name
FIELDS = ("name", "unit", "kind", "description", "active")
MAX_LIST = 1000


def describe(m: Material) -> dict[str, Any]:
    return {
        "material_id": m.material_id,
        "name": m.name,
        "unit": m.unit,
        "kind": m.kind,
        "description": m.description,
        "active": m.active,
        "version": m.version or 0,
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
    }


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "name" in values:
        out["name"] = check_text(values["name"], "name")
    if "unit" in values:
        out["unit"] = check_unit(values["unit"])
    if "kind" in values:
        if values["kind"] not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", code="kind_invalid")
        out["kind"] = values["kind"]
    if "description" in values:
        out["description"] = check_text(values["description"], "description", required=False, limit=2000)
    if "active" in values:
        if not isinstance(values["active"], bool):
            raise InvalidInput("active is true or false", code="active_invalid")
        out["active"] = values["active"]
    return out


def create(rt: Runtime, values: dict[str, Any], *, by: str) -> dict[str, Any]:
    """Add a material (409 ``material_exists`` when its code is taken, retired or not)."""
    if not isinstance(values, dict):
        raise InvalidInput("a material is a JSON object", code="body_invalid")
    material_id = check_id(values.get("material_id"), "material id")
    for required in ("name", "unit"):
        if required not in values:
            raise InvalidInput(f"{required} is required", code=f"{required}_invalid")
    fields = {"kind": "raw_material", "description": "", **_checked(values)}
    fields["active"] = True
    with rt.transaction() as s:
        if s.get(Material, material_id) is not None:
            raise Conflict(f"material {material_id} exists already", code="material_exists")
        now = utcnow()
        m = Material(material_id=material_id, created_at=now, updated_at=now, version=0, **fields)
        s.add(m)
        audit.record(
            s, user=by, action="material.create", object_type="material", object_id=material_id, new=describe(m)
        )
        return describe(m)


def update(
    rt: Runtime, material_id: str, values: dict[str, Any], *, by: str, reason: str | None = None
) -> dict[str, Any]:
    """Change some fields (``version``, if given, must be the one read). The unit of a
    material with lots is still changeable, but audited like any change."""
    check_change(values, FIELDS)
    changes = _checked(values)
    with rt.transaction() as s:
        m = locked(s, Material, material_id, "material", "material_not_found")
        check_version(m, values.get("version"))
        apply_changes(
            s,
            m,
            changes,
            by=by,
            action="material.update",
            object_type="material",
            object_id=m.material_id,
            reason=reason or values.get("reason"),
        )
        return describe(m)


def list_materials(rt: Runtime, *, active: bool | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        q = select(Material).order_by(Material.material_id).limit(MAX_LIST)
        if active is not None:
            q = q.where(Material.active == active)
        if kind is not None:
            q = q.where(Material.kind == kind)
        return [describe(m) for m in s.scalars(q)]


def get(rt: Runtime, material_id: str) -> dict[str, Any]:
    with rt.transaction() as s:
        return describe(locked(s, Material, material_id, "material", "material_not_found", lock=False))
