"""The fields of a recipe's forms as the record prints them: label, unit and limits
written out for people ("6.80 to 7.40 pH"), from the form definition the recipe version
holds (the ``forms`` package is the authority on what a limit is)."""

from __future__ import annotations

from typing import Any

from forms import render_data


def fields_by_form(forms: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """form id -> field key -> {label, unit, limits, limit_values}; a definition the
    forms package no longer reads gives no fields (the record shows raw keys)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for form_id, definition in (forms or {}).items():
        try:
            items = render_data(definition)
        except Exception:  # noqa: BLE001 - an old definition: the values still print
            out[form_id] = {}
            continue
        out[form_id] = {
            i["key"]: {
                "label": i.get("label"),
                "unit": i.get("unit"),
                "limits": dict(i.get("limits") or {}),
                "limit_values": dict(i.get("limit_values") or {}),
            }
            for i in items
            if i.get("item") == "field" and i.get("key")
        }
    return out
