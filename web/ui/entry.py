"""Between the HTML form and the form values the engine validates.

The task page draws the form on the server from ``forms.render_data``; this module turns
what the browser posts back into the values ``batches.complete_task`` expects (numbers
as decimal text so no digit is lost, ticked boxes as booleans, options by their real
typed value) and remembers what was typed, so a refused form comes back filled in.
Checking is not done here: the ``forms`` package on the server is the authority.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

#: hidden field the page's script fills with the tablet's UTC offset for datetime inputs
TZ_SUFFIX = "__tz"
_OFFSET = re.compile(r"^(Z|[+-](0\d|1[0-4]):[0-5]\d)$")


def input_fields(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in items if i.get("item") == "field"]


def _option(field: dict[str, Any], index: str) -> Any:
    """Options are posted by position: values are type-exact (1 != "1" != true)."""
    try:
        return field["options"][int(index)]["value"]
    except (ValueError, IndexError, KeyError):
        return index  # not one of ours: let the server refuse it by name


def values_from_post(items: list[dict[str, Any]], form: Mapping[str, Any]) -> dict[str, Any]:
    """The submission for ``complete_task``: only the form's own inputs, empty -> None."""
    values: dict[str, Any] = {}
    for field in input_fields(items):
        key, kind = field["key"], field["type"]
        if field.get("readonly") or kind == "attachment":
            continue  # calculated on the server / uploaded through the API
        if kind == "checkbox":
            values[key] = form.get(key) == "on"
        elif kind == "checklist":
            values[key] = [_option(field, i) for i in form.getlist(key)] or None
        elif kind in ("select", "radio"):
            raw = form.get(key, "")
            values[key] = _option(field, raw) if raw != "" else None
        elif kind == "datetime" and (field.get("subtype") or "date") == "datetime":
            raw = (form.get(key) or "").strip()
            if raw:
                offset = (form.get(key + TZ_SUFFIX) or "").strip()
                if not _OFFSET.match(offset):
                    offset = "Z"  # no script: the page says times are UTC
                if len(raw) == 16:  # datetime-local without seconds
                    raw += ":00"
                raw += offset
            values[key] = raw or None
        else:
            raw = form.get(key, "")
            if kind in ("number", "materialLot", "equipment", "datetime"):
                raw = raw.strip()
            values[key] = raw if raw != "" else None
    return values


def typed_from_post(items: list[dict[str, Any]], form: Mapping[str, Any]) -> dict[str, Any]:
    """What the user typed, to put back into a refused form (strings / lists of strings)."""
    typed: dict[str, Any] = {}
    for field in input_fields(items):
        key = field["key"]
        if field["type"] == "checklist":
            typed[key] = form.getlist(key)
        elif field["type"] == "checkbox":
            typed[key] = form.get(key) == "on"
        else:
            typed[key] = form.get(key, "")
    return typed


def typed_defaults(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The form's own defaults as typed values for a first rendering."""
    typed: dict[str, Any] = {}
    for field in input_fields(items):
        default = field.get("default")
        if default is None:
            continue
        kind = field["type"]
        options = [o["value"] for o in field.get("options") or []]
        if kind == "checkbox":
            typed[field["key"]] = default is True
        elif kind in ("select", "radio") and default in options:
            typed[field["key"]] = str(options.index(default))
        elif kind == "checklist" and isinstance(default, list):
            typed[field["key"]] = [str(options.index(v)) for v in default if v in options]
        elif isinstance(default, (str, int, float)) and not isinstance(default, bool):
            typed[field["key"]] = str(default)
    return typed


def display_value(value: Any, field: dict[str, Any] | None, unit: str | None = None) -> str:
    """A recorded value as people read it: option labels, Yes/No, the unit."""
    if value is None or value == "" or value == []:
        return "—"
    labels = {repr(o["value"]): o["label"] for o in (field or {}).get("options") or []}
    if isinstance(value, bool):
        text = "Yes" if value else "No"
    elif isinstance(value, list):
        text = ", ".join(labels.get(repr(v), str(v)) for v in value)
    elif isinstance(value, dict):
        text = str(value.get("filename") or value)
    else:
        text = labels.get(repr(value), str(value))
    return f"{text} {unit}" if unit else text
