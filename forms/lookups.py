"""Master data for scanned fields: is this material lot, this equipment, usable here?

The forms package does not know the plant's registries; the engine passes a `Lookups`
that answers for material lots and equipment, and it does so inside the step's own
transaction, so the answer cannot change before the step is committed. Only ids that
passed their own checks (type, length, format) are looked up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from forms.form import FieldDefinition


@dataclass(frozen=True)
class LotCheck:
    """Answer of `Lookups.check_material_lot`: ok, or why the lot cannot be used."""

    ok: bool
    message: str = ""


@dataclass(frozen=True)
class EquipmentCheck:
    """Answer of `Lookups.check_equipment`: ok, or why the equipment cannot be used."""

    ok: bool
    message: str = ""


@runtime_checkable
class Lookups(Protocol):
    """What the engine provides so scanned ids are checked against master data.

    `check_material_lot`: the lot exists, is released, not expired, and is of
    `material`. `check_equipment`: the unit exists, is of `equipment_class`, is clean
    and calibrated, and is not in use by another batch than `batch_id`.
    A failed check becomes a field error; an exception raised here propagates.
    """

    def check_material_lot(self, lot_id: str, material: str) -> LotCheck: ...

    def check_equipment(self, equipment_id: str, equipment_class: str, batch_id: str | None) -> EquipmentCheck: ...


def scan_problems(
    specs: Mapping[str, FieldDefinition], loaded: Mapping[str, Any], lookups: Lookups, batch_id: str | None
) -> dict[str, list[str]]:
    """Field key -> why its scanned lot or equipment cannot be used (empty when all can)."""
    problems: dict[str, list[str]] = {}
    for key, value in loaded.items():
        spec = specs[key]
        result: LotCheck | EquipmentCheck
        if spec.kind == "materialLot":
            assert spec.material is not None  # the loader refuses a materialLot field without one
            result = lookups.check_material_lot(value, spec.material)
            default = f"Lot {value} cannot be used: it must be a released, unexpired lot of {spec.material}."
        elif spec.kind == "equipment":
            assert spec.equipment_class is not None  # the loader refuses an equipment field without one
            result = lookups.check_equipment(value, spec.equipment_class, batch_id)
            default = f"Equipment {value} cannot be used: it must be a clean, calibrated, free {spec.equipment_class}."
        else:
            continue
        if not getattr(result, "ok", False):
            problems.setdefault(key, []).append(getattr(result, "message", "") or default)
    return problems
