"""Step validation: check an operator's submitted form values on the server.

This is step 2 of "one step, end to end" (see docs/architecture.md). The engine calls
`CompiledForm.validate` inside the step's transaction, once the batch row is locked,
so the scanned material lots and equipment are looked up in the plant's registries in
that same transaction and the answer cannot change before commit. The submitted values
are coerced and checked against the task's form. Anything wrong — wrong types, missing
or unknown fields, hard-limit violations, oversize text, a lot that is not released,
equipment that is not clean — refuses the whole step with `FormRejected` (code
``form_invalid``, HTTP 422) and nothing is stored. What is accepted comes back as a
`ValidatedStep`: JSON-safe values, units, server-recomputed calculated fields, and the
alert/action limit findings the engine turns into exceptions for review by exception.

Each definition is compiled once into a generated marshmallow schema and cached by
the definition's hash; see docs/forms.md for the conventions. The names this module
used to hold (the fields, the results, the lookups) are re-exported from their own
modules so that ``forms.validation.X`` keeps working.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from marshmallow import ValidationError

from forms.attachments import ATTACHMENT_KEYS, AttachmentField
from forms.calculation import CalculationError, evaluate
from forms.coercion import (
    MAX_MAGNITUDE_EXPONENT,
    CheckboxField,
    ChecklistField,
    ChoiceField,
    DateTimeField,
    NumberField,
    TextField,
    coerce_number,
)
from forms.display import format_number, recorded_value, short_repr, with_unit
from forms.form import FieldDefinition, FormDefinition, JsonSource, definition_hash, parse_source
from forms.limits import LimitFinding, check_hard_limits, limit_finding
from forms.loading import load_form
from forms.lookups import EquipmentCheck, Lookups, LotCheck, scan_problems
from forms.schema import CalculatedField, FormSchema, build_schema, flatten_messages
from forms.step import FormRejected, ValidatedStep

__all__ = [
    "ATTACHMENT_KEYS",
    "COMPILED_CACHE_SIZE",
    "MAX_MAGNITUDE_EXPONENT",
    "AttachmentField",
    "CalculatedField",
    "CheckboxField",
    "ChecklistField",
    "ChoiceField",
    "CompiledForm",
    "DateTimeField",
    "EquipmentCheck",
    "FormRejected",
    "FormSchema",
    "LimitFinding",
    "Lookups",
    "LotCheck",
    "NumberField",
    "TextField",
    "ValidatedStep",
    "build_schema",
    "check_hard_limits",
    "clear_compiled_forms",
    "coerce_number",
    "compile_form",
    "format_number",
    "with_unit",
]

COMPILED_CACHE_SIZE = 256


def parameter_mismatches(
    specs: Mapping[str, FieldDefinition], loaded: Mapping[str, Any], parameters: Mapping[str, Any]
) -> dict[str, str]:
    """Field key -> message for each entered value that differs from the batch parameter its
    field names (``matchesParameter``). The expected value is not shown: an operator must scan
    the label in hand, not copy the id from the screen."""
    problems: dict[str, str] = {}
    for key, spec in specs.items():
        name = spec.matches_parameter
        value = loaded.get(key)
        if not name or value is None:
            continue
        expected = parameters.get(name)
        if expected is None or str(expected).strip() == "":
            problems[key] = (
                f"{spec.label}: this batch has no parameter '{name}' to check against; "
                "the step cannot be recorded (start the batch with it)."
            )
        elif str(value).strip() != str(expected).strip():
            problems[key] = (
                f"{spec.label} {short_repr(value)} does not match this batch's '{name}': "
                "wrong identity, do not proceed. Nothing was recorded; quarantine the material and call QA."
            )
    return problems


def _is_empty(spec: FieldDefinition, value: Any) -> bool:
    # form-js sends null / "" / [] for fields the operator left empty.
    if value is None:
        return True
    if spec.kind == "checkbox":
        return False
    return value == "" or (spec.kind == "checklist" and value == [])


class CompiledForm:
    """A form definition with its generated schema; validates submissions of one step."""

    def __init__(self, definition: FormDefinition):
        self.definition = definition
        self.schema_class = build_schema(definition)
        self._specs = {spec.key: spec for spec in definition.fields}
        self._needs_lookups = any(spec.needs_lookup for spec in definition.fields)
        self._needs_parameters = any(spec.matches_parameter for spec in definition.fields)

    def __repr__(self) -> str:
        return f"<CompiledForm {self.definition.id} {self.definition.definition_hash[:12]}>"

    def validate(
        self,
        data: Mapping[str, Any],
        *,
        lookups: Lookups | None = None,
        batch_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> ValidatedStep:
        """Check one submission; return the ValidatedStep or raise FormRejected.

        Raises TypeError if the form scans lots or equipment and no `lookups` is given,
        or compares a field with a batch parameter and no `parameters` (the batch's start
        parameters) are given: a form must never pass such a check by accident.
        """
        definition = self.definition
        if self._needs_lookups and lookups is None:
            raise TypeError(f"form '{definition.id}' checks material lots or equipment: pass lookups=")
        if self._needs_parameters and parameters is None:
            raise TypeError(f"form '{definition.id}' compares fields with batch parameters: pass parameters=")
        if not isinstance(data, Mapping):
            raise FormRejected({"_form": ["The submission must be a JSON object of field values."]}, definition.id)

        errors: dict[str, list[str]] = {}
        notes: list[str] = []
        submitted: dict[str, Any] = {}
        browser_values: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                errors.setdefault("_form", []).append(f"Field names must be text, not {short_repr(key)}.")
                continue
            spec = self._specs.get(key)
            if spec is None:
                errors[key] = [f"This form has no field '{key[:64]}'."]
            elif spec.is_calculated:
                browser_values[key] = value
            elif not _is_empty(spec, value):
                submitted[key] = value

        # 1. types, formats, required, lengths, options, hard limits (marshmallow)
        try:
            loaded = self.schema_class().load(submitted)
        except ValidationError as exc:
            for key, messages in exc.messages_dict.items():
                errors.setdefault(key, []).extend(flatten_messages(messages))
            loaded = (
                {k: v for k, v in exc.valid_data.items() if k not in errors} if isinstance(exc.valid_data, dict) else {}
            )
        loaded = {k: v for k, v in loaded.items() if v is not None and k in submitted}

        # 2. calculated fields, recomputed here whatever the browser sent
        numbers = {k: v for k, v in loaded.items() if self._specs[k].kind == "number"}
        for key in definition.calculation_order:
            spec = self._specs[key]
            calculation, decimals = spec.calculation, spec.decimals
            # calculation_order names calculated fields only, and the loader gives each one decimals
            assert calculation is not None and decimals is not None
            refs = calculation.references
            if any(ref in errors for ref in refs):
                continue  # its inputs are already reported
            missing = [self._specs[ref].label for ref in refs if ref not in numbers]
            if missing:
                if spec.required:
                    errors.setdefault(key, []).append(f"{spec.label} cannot be calculated: enter {', '.join(missing)}.")
                continue
            try:
                result = evaluate(calculation, numbers)
                result = result.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
                result = coerce_number(result, spec)
                check_hard_limits(result, spec)
            except CalculationError as exc:
                errors.setdefault(key, []).append(f"{spec.label} cannot be calculated: {exc}.")
                continue
            except (ValidationError, InvalidOperation) as exc:
                message = exc.messages if isinstance(exc, ValidationError) else "the result is out of range."
                errors.setdefault(key, []).extend(flatten_messages(message))
                continue
            numbers[key] = loaded[key] = result
            sent = browser_values.get(key)
            if sent not in (None, ""):
                same = False
                try:
                    same = coerce_number(sent, spec) == result
                except (ValidationError, InvalidOperation, TypeError):
                    pass
                notes.append(
                    f"{spec.label}: recalculated on the server as {format_number(result)}"
                    + ("" if same else f"; the value sent by the browser ({short_repr(sent)}) was ignored")
                    + "."
                )

        # 3. master data: lots and equipment (only ids that passed their own checks);
        # lookups is given whenever the form needs it (TypeError above otherwise)
        if self._needs_lookups and lookups is not None:
            for key, messages in scan_problems(self._specs, loaded, lookups, batch_id).items():
                errors.setdefault(key, []).extend(messages)

        # 4. ids that must equal a batch parameter (chain of identity), checked server-side
        if self._needs_parameters and parameters is not None:
            for key, message in parameter_mismatches(self._specs, loaded, parameters).items():
                errors.setdefault(key, []).append(message)

        if errors:
            raise FormRejected(errors, definition.id)

        # 5. alert / action findings (accepted values, raised as exceptions by the engine)
        findings = [f for key, number in numbers.items() if (f := limit_finding(self._specs[key], number))]
        values: dict[str, Any] = {}
        display: dict[str, str] = {}
        units: dict[str, str] = {}
        for spec in definition.fields:
            value = loaded.get(spec.key)
            values[spec.key], display[spec.key] = recorded_value(spec, value)
            if spec.unit:
                units[spec.key] = spec.unit
        return ValidatedStep(
            form_id=definition.id,
            definition_hash=definition.definition_hash,
            values=values,
            units=units,
            display=display,
            limit_findings=findings,
            notes=notes,
            signature_meaning=definition.signature_meaning,
            witness_required=definition.witness_required,
            witness_role=definition.witness_role,
            critical_keys=tuple(s.key for s in definition.fields if s.critical),
        )

    def check_scan(self, key: str, value: Any, lookups: Lookups, batch_id: str | None = None) -> list[str]:
        """Why one scanned lot or equipment id cannot be used here (empty: it can), by the
        same checks ``validate`` applies to it: its own type, length and format first, then
        the plant's registries. The task page asks as the field is left; the step's
        transaction asks again (a lot quarantined in between is refused there).
        Raises KeyError when ``key`` is not a scanned field of this form."""
        spec = self._specs.get(key) if isinstance(key, str) else None
        if spec is None or not spec.needs_lookup:
            raise KeyError(key)
        try:
            loaded = self.schema_class().load({key: value}, partial=True)
        except ValidationError as exc:
            messages = exc.messages_dict.get(key)
            if messages:
                return flatten_messages(messages)
            loaded = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        if loaded.get(key) is None:
            return [f"{spec.label} is required."]
        return scan_problems({key: spec}, {key: loaded[key]}, lookups, batch_id).get(key, [])


# --- compiling and caching -----------------------------------------------------------

_cache: OrderedDict[str, CompiledForm] = OrderedDict()
_cache_lock = threading.Lock()


def compile_form(definition: FormDefinition | JsonSource) -> CompiledForm:
    """Compile a definition (or its JSON) once; later calls with the same content reuse it.

    The cache key is the SHA-256 of the canonical JSON, so an edited form (a new
    recipe version) never reuses a stale compiled schema.
    """
    form: FormDefinition | None
    if isinstance(definition, FormDefinition):
        form, source, digest = definition, {}, definition.definition_hash
    else:
        source = parse_source(definition)
        form, digest = None, definition_hash(source)
    with _cache_lock:
        compiled = _cache.get(digest)
        if compiled is not None:
            _cache.move_to_end(digest)
            return compiled
    compiled = CompiledForm(form if form is not None else load_form(source))
    with _cache_lock:
        existing = _cache.get(digest)
        if existing is not None:
            return existing
        _cache[digest] = compiled
        while len(_cache) > COMPILED_CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def clear_compiled_forms() -> None:
    """Empty the compiled-form cache (tests, or after changing a cap at runtime)."""
    with _cache_lock:
        _cache.clear()
