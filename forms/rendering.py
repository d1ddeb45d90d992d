"""Rendering data: what a server-rendered (Jinja) form needs to draw a step's form.

The web layer renders forms on the server as well as with form-js in the browser
(e.g. for printing, for the batch record PDF, or when scripts are off). Rather than
have templates dig through form-js JSON, this module hands them a flat list of plain
dicts in display order: instructions, group headings and fields with their unit,
limits already written out for people, options, and whether they are required or
read-only (calculated). Text is returned raw; escaping and markdown rendering are
the template's job.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from forms.display import format_number, with_unit
from forms.form import FieldDefinition, FormDefinition, GroupHeading, Instructions, JsonSource
from forms.loading import load_form
from forms.pattern_words import describe_pattern


def _number_text(value: Decimal, spec: FieldDefinition) -> str:
    if spec.decimals is not None:
        value = value.quantize(Decimal(1).scaleb(-spec.decimals))
    return format_number(value)


def limit_text(value: Decimal, spec: FieldDefinition) -> str:
    """A limit as people read it: padded to the field's decimals, with the unit."""
    return with_unit(_number_text(value, spec), spec.unit)


def range_text(low: Decimal | None, high: Decimal | None, spec: FieldDefinition) -> str | None:
    """ "6.80 to 7.40 pH", "at least 6.80 pH", "at most 7.40 pH" (limits inclusive)."""
    if low is not None and high is not None:
        return with_unit(f"{_number_text(low, spec)} to {_number_text(high, spec)}", spec.unit)
    if low is not None:
        return f"at least {limit_text(low, spec)}"
    if high is not None:
        return f"at most {limit_text(high, spec)}"
    return None


def _field_data(spec: FieldDefinition) -> dict[str, Any]:
    limits = {}
    for family, low_name, high_name in (
        ("hard", "hardMin", "hardMax"),
        ("action", "actionLow", "actionHigh"),
        ("alert", "alertLow", "alertHigh"),
    ):
        text = range_text(spec.limits.get(low_name), spec.limits.get(high_name), spec)
        if text:
            limits[family] = text
    data: dict[str, Any] = {
        "item": "field",
        "key": spec.key,
        "label": spec.label,
        "type": spec.kind,
        "component_type": spec.component_type,
        "description": spec.description,
        "group": spec.group,
        "required": spec.required,
        "readonly": spec.is_calculated,
        "critical": spec.critical,
        "unit": spec.unit,
        "decimals": spec.decimals,
        "limits": limits,
        "limit_values": {name: format_number(value) for name, value in spec.limits.items()},
        "options": [{"value": o.value, "label": o.label} for o in spec.options],
        "default": spec.default,
        "calculation": spec.calculation.expression if spec.calculation else None,
        "subtype": spec.subtype,
        "material": spec.material,
        "equipment_class": spec.equipment_class,
        "matches_parameter": spec.matches_parameter,
        # the format in words, for the field's help text (never the pattern itself)
        "format": spec.pattern_description or describe_pattern(spec.pattern),
        "content_types": list(spec.content_types),
        "max_size": spec.max_size,
        # Attributes for the HTML input; the server re-checks everything anyway.
        "input": {
            "min": format_number(spec.limits["hardMin"]) if "hardMin" in spec.limits else None,
            "max": format_number(spec.limits["hardMax"]) if "hardMax" in spec.limits else None,
            "step": format_number(Decimal(1).scaleb(-spec.decimals)) if spec.decimals is not None else None,
            "maxlength": spec.max_length,
            "minlength": spec.min_length,
            "pattern": spec.pattern,
        },
    }
    return data


def render_data(definition: FormDefinition | JsonSource) -> list[dict[str, Any]]:
    """Display-ordered items: {"item": "instructions" | "group" | "field", ...}."""
    if not isinstance(definition, FormDefinition):
        definition = load_form(definition)
    items: list[dict[str, Any]] = []
    for entry in definition.items:
        if isinstance(entry, Instructions):
            items.append({"item": "instructions", "markdown": entry.markdown, "group": entry.group})
        elif isinstance(entry, GroupHeading):
            items.append({"item": "group", "label": entry.label, "depth": entry.depth})
        else:
            items.append(_field_data(entry))
    return items
