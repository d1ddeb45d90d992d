"""What a set of forms asks operators to scan: material codes and equipment classes.

The plant's registries must hold released lots and qualified equipment for these before
a recipe can run (the demo seeds them; a real plant gets them from ERP and maintenance).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from forms.loading import load_form


def scanned(definitions: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """(material codes, equipment classes) the forms' materialLot and equipment fields name."""
    materials: set[str] = set()
    classes: set[str] = set()
    for definition in definitions:
        for f in load_form(definition).fields:
            if f.kind == "materialLot" and f.material:
                materials.add(f.material)
            elif f.kind == "equipment" and f.equipment_class:
                classes.add(f.equipment_class)
    return materials, classes
