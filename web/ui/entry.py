"""Between the HTML form and the form values the engine validates.

The task page draws the form on the server from ``forms.render_data``; this module turns
what the browser posts back into the values ``batches.complete_task`` expects (numbers
as decimal text so no digit is lost, ticked boxes as booleans, options by their real
typed value) and remembers what was typed, so a refused form comes back filled in.
Checking is not done here: the ``forms`` package on the server is the authority.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

#: hidden field the page's script fills with the tablet's UTC offset for datetime inputs
TZ_SUFFIX = "__tz"
#: hidden field that keeps an already stored file of a refused form (no need to choose it again)
KEPT_SUFFIX = "__kept"
#: what an attachment field's value holds (forms.validation.AttachmentField)
ATTACHMENT_KEYS = ("filename", "content_type", "sha256", "size")
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


def attachment_fields(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in input_fields(items) if f["type"] == "attachment" and not f.get("readonly")]


def is_attachment(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("sha256"), str) and "filename" in value


def attachment_ref(value: Any) -> dict[str, Any] | None:
    """Exactly the keys an attachment field holds, or None for anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, Mapping) or any(k not in value for k in ATTACHMENT_KEYS):
        return None
    return {k: value[k] for k in ATTACHMENT_KEYS}


def kept_attachment(form: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """The file stored by an earlier, refused submission of this form (hidden field)."""
    return attachment_ref(form.get(key + KEPT_SUFFIX) or "")


def typed_from_post(items: list[dict[str, Any]], form: Mapping[str, Any]) -> dict[str, Any]:
    """What the user typed, to put back into a refused form (strings / lists of strings;
    for an attachment the file already stored, if any)."""
    typed: dict[str, Any] = {}
    for field in input_fields(items):
        key = field["key"]
        if field["type"] == "attachment":
            typed[key] = kept_attachment(form, key)
        elif field["type"] == "checklist":
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


def typed_from_value(field: dict[str, Any], value: Any) -> Any:
    """A recorded value as the form's input shows it (to start a correction from it)."""
    if value is None:
        return None
    kind = field.get("type")
    options = [o["value"] for o in field.get("options") or []]
    if kind == "checkbox":
        return value is True
    if kind in ("select", "radio"):
        return str(options.index(value)) if value in options else ""
    if kind == "checklist":
        return [str(options.index(v)) for v in value if v in options] if isinstance(value, list) else []
    if kind == "attachment":
        return attachment_ref(value)
    if kind == "datetime" and (field.get("subtype") or "date") == "datetime" and isinstance(value, str):
        return ""  # recorded in UTC, typed in the tablet's local time: the user types it anew
    return value if isinstance(value, str) else json.dumps(value) if not isinstance(value, (int, float)) else str(value)


def display_value(value: Any, field: dict[str, Any] | None, unit: str | None = None) -> str:
    """A recorded value as people read it: option labels, Yes/No, the unit."""
    if value is None or value == "" or value == []:
        return "—"
    labels = {repr(o["value"]): o["label"] for o in (field or {}).get("options") or []}
    if isinstance(value, bool):
        text = "Yes" if value else "No"
    elif isinstance(value, list):
        text = ", ".join(labels.get(repr(v), str(v)) for v in value)
    elif is_attachment(value):
        return f"{value['filename']} ({file_size(value.get('size'))})"
    elif isinstance(value, dict):
        text = str(value.get("filename") or value)
    else:
        text = labels.get(repr(value), str(value))
    return f"{text} {unit}" if unit else text


def file_size(size: Any) -> str:
    """12 bytes, 3.4 kB, 1.2 MB (decimal units, like the upload limit)."""
    if isinstance(size, bool) or not isinstance(size, int):
        return "size unknown"
    if size < 1000:
        return f"{size} byte{'' if size == 1 else 's'}"
    for unit, factor in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if size < factor * 1000 or unit == "GB":
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"
