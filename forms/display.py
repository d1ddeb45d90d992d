"""How values are written for people and for the record.

Numbers in canonical decimal text (no exponent, no negative zero), with their unit
where they have one; an accepted value as the JSON-safe value the engine stores plus
the text a person reads; and short quotes of what was sent, for error messages.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from forms.form import FieldDefinition


def format_number(value: Decimal) -> str:
    """Canonical text of a number: plain notation, no exponent, no negative zero."""
    if value == 0:
        value = abs(value)
    return format(value, "f")


def with_unit(text: str, unit: str | None) -> str:
    return f"{text} {unit}" if unit else text


def short_repr(value: Any) -> str:
    """What was sent, quoted in a message and cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def recorded_value(spec: FieldDefinition, value: Any) -> tuple[Any, str]:
    """(JSON-safe value to store, text to show) of one accepted value."""
    if value is None:
        return None, ""
    if isinstance(value, Decimal):
        text = format_number(value)
        return text, with_unit(text, spec.unit)
    if isinstance(value, bool):
        return value, "Yes" if value else "No"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        text = value.isoformat()
        return text, text
    if spec.kind in ("select", "radio"):
        label = next(o.label for o in spec.options if o.value == value)
        return value, label
    if spec.kind == "checklist":
        labels = [o.label for o in spec.options if o.value in value]
        return list(value), ", ".join(labels)
    if spec.kind == "attachment":
        return dict(value), f"{value['filename']} ({value['size']:,} bytes, sha256 {value['sha256'][:12]}…)"
    return value, value
