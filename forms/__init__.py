"""Electronic batch record forms: form-js definitions -> server-side validation,
limit findings and rendering data.

The engine calls `compile_form(definition).validate(values, lookups=...)` on its step
path; this package imports nothing from engine, web, analytics or integrations.
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
