"""Electronic batch record forms: form-js definitions -> server-side validation,
limit findings and rendering data.

The engine calls `compile_form(definition).validate(values, lookups=...)` on its step
path, inside the step's transaction; this package imports nothing from engine, web,
analytics or integrations.

One module per job: `loading` turns form-js JSON into a checked `FormDefinition`
(`form`), reading each input with `field_settings` against `vocabulary` (types,
kinds, properties, caps); `limits` says what hard, action and alert limits mean;
`calculation` checks and evaluates calculated fields; `coercion` and `attachments`
turn entered values into Python values; `schema` compiles a form to marshmallow;
`lookups` checks scanned lots and equipment; `validation` compiles, caches and
validates a step, answering with a `step` result; `display` writes values for people,
`rendering` gives templates what they draw, `scans` what a set of forms asks to scan.
"""

from forms.calculation import CalculationError
from forms.form import (
    FieldDefinition,
    FormDefinition,
    FormDefinitionError,
    GroupHeading,
    Instructions,
    Option,
    definition_hash,
)
from forms.limits import LimitFinding
from forms.loading import load_form
from forms.lookups import EquipmentCheck, Lookups, LotCheck
from forms.rendering import render_data
from forms.scans import scanned
from forms.step import FormRejected, ValidatedStep
from forms.validation import CompiledForm, clear_compiled_forms, compile_form

__all__ = [
    "CalculationError",
    "CompiledForm",
    "EquipmentCheck",
    "FieldDefinition",
    "FormDefinition",
    "FormDefinitionError",
    "FormRejected",
    "GroupHeading",
    "Instructions",
    "LimitFinding",
    "LotCheck",
    "Lookups",
    "Option",
    "ValidatedStep",
    "clear_compiled_forms",
    "compile_form",
    "definition_hash",
    "load_form",
    "render_data",
    "scanned",
]
