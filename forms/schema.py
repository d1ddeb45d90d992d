"""Compiling a form to a marshmallow schema: one strict field per input.

The schema checks types, formats, required fields, lengths, options and hard limits
and refuses unknown keys; calculated fields are declared (for the schema's
documentation) but never loaded, because the server recomputes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from marshmallow import Schema, fields

from forms.attachments import AttachmentField
from forms.calculation import Calculation
from forms.coercion import (
    CheckboxField,
    ChecklistField,
    ChoiceField,
    DateTimeField,
    FormField,
    NumberField,
    TextField,
)
from forms.form import FieldDefinition, FormDefinition
from forms.limits import check_hard_limits


class CalculatedField(fields.Field):
    """Declared for the schema's documentation only: its value is computed, never loaded."""

    def __init__(self, spec: FieldDefinition, calculation: Calculation):
        super().__init__(
            load_default=None,
            metadata={"title": spec.label, "readOnly": True, "x-batchline-calculation": calculation.expression},
        )

    def _deserialize(self, value, attr, data, **kwargs):
        return None


FIELD_CLASSES: dict[str, type[FormField]] = {
    "number": NumberField,
    "textfield": TextField,
    "textarea": TextField,
    "materialLot": TextField,
    "equipment": TextField,
    "select": ChoiceField,
    "radio": ChoiceField,
    "checklist": ChecklistField,
    "checkbox": CheckboxField,
    "datetime": DateTimeField,
    "attachment": AttachmentField,
}


class FormSchema(Schema):
    """Base of every generated form schema: unknown keys are refused."""

    error_messages = {
        "unknown": "This form has no such field.",
        "type": "The submission must be a JSON object of field values.",
    }


def build_schema(definition: FormDefinition) -> type[Schema]:
    """Generate the marshmallow schema class of a form (one field per input)."""
    declared: dict[str, fields.Field] = {}
    for spec in definition.fields:
        if spec.calculation is not None:
            declared[spec.key] = CalculatedField(spec, spec.calculation)
            continue
        validators: list[Callable[[Decimal], None]] = []
        if spec.kind == "number" and ("hardMin" in spec.limits or "hardMax" in spec.limits):
            validators.append(partial(check_hard_limits, spec=spec))
        declared[spec.key] = FIELD_CLASSES[spec.kind](spec, validate=validators)
    name = "Form_" + re.sub(r"[^A-Za-z0-9_]", "_", definition.id)
    return FormSchema.from_dict(declared, name=name)


def flatten_messages(messages: Any) -> list[str]:
    """marshmallow's nested error messages as one flat list of sentences."""
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        return [m for value in messages.values() for m in flatten_messages(value)]
    if isinstance(messages, (list, tuple)):
        return [m for value in messages for m in flatten_messages(value)]
    return [str(messages)]
