"""Step validation: check an operator's submitted form values on the server.

This is step 2 of "one step, end to end" (DESIGN.md): before the engine opens a
transaction, the submitted values are coerced and checked against the task's form.
Anything wrong — wrong types, missing or unknown fields, hard-limit violations,
oversize text, a lot that is not released, equipment that is not clean — refuses the
whole step with `FormRejected` (code ``form_invalid``, HTTP 422) and nothing is
stored. What is accepted comes back as a `ValidatedStep`: JSON-safe values, units,
server-recomputed calculated fields, and the alert/action limit findings the engine
turns into exceptions for review by exception.

Each definition is compiled once into a generated marshmallow schema and cached by
the definition's hash; see docs/forms.md for the conventions.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol, runtime_checkable

from marshmallow import Schema, ValidationError, fields

from forms.calculation import CalculationError, evaluate
from forms.definition import (
    MAX_DECIMALS,
    FieldDefinition,
    FormDefinition,
    JsonSource,
    definition_hash,
    load_form,
    parse_source,
)

# Numbers: |x| < 10**15 and at most MAX_DECIMALS places, so every accepted value fits a
# database NUMERIC(27, 12) and survives a round trip through a float for analytics
# with no more error than its last place.
MAX_MAGNITUDE_EXPONENT = 15
_NUMBER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,4})?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_TEXT = re.compile(r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?")
_DATETIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+\-]*/[a-z0-9][a-z0-9!#$&^_.+\-]*")
# C0 controls except tab, newline, carriage return; NUL also breaks PostgreSQL text.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ATTACHMENT_KEYS = ("filename", "content_type", "sha256", "size")
COMPILED_CACHE_SIZE = 256


# --- errors and results --------------------------------------------------------------


class FormRejected(Exception):
    """The submitted values cannot be recorded; nothing was stored.

    `field_errors` maps a field key (or ``"_form"`` for the submission as a whole) to
    messages an operator can act on.
    """

    code = "form_invalid"
    http_status = 422

    def __init__(self, field_errors: Mapping[str, list[str]], form_id: str | None = None):
        self.field_errors = {key: list(messages) for key, messages in field_errors.items()}
        self.form_id = form_id
        count = sum(len(m) for m in self.field_errors.values())
        super().__init__(
            f"The form was not accepted: {count} problem{'s' if count != 1 else ''} to correct. Nothing was recorded."
        )

    @property
    def message(self) -> str:
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field_errors": self.field_errors}


@dataclass(frozen=True)
class LimitFinding:
    """A value outside its alert or action limits: accepted, but an exception to review."""

    key: str
    label: str
    value: str
    unit: str | None
    severity: str  # "alert" | "action"
    limit_name: str  # alertLow, alertHigh, actionLow, actionHigh
    limit_value: str
    critical: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LotCheck:
    """Answer of `Lookups.check_material_lot`: ok, or why the lot cannot be used."""

    ok: bool
    message: str = ""


@dataclass(frozen=True)
class EquipmentCheck:
    """Answer of `Lookups.check_equipment`: ok, or why the equipment cannot be used."""

    ok: bool
    message: str = ""


@runtime_checkable
class Lookups(Protocol):
    """What the engine provides so scanned ids are checked against master data.

    `check_material_lot`: the lot exists, is released, not expired, and is of
    `material`. `check_equipment`: the unit exists, is of `equipment_class`, is clean
    and calibrated, and is not in use by another batch than `batch_id`.
    A failed check becomes a field error; an exception raised here propagates.
    """

    def check_material_lot(self, lot_id: str, material: str) -> LotCheck: ...

    def check_equipment(self, equipment_id: str, equipment_class: str, batch_id: str | None) -> EquipmentCheck: ...


@dataclass(frozen=True)
class ValidatedStep:
    """The accepted values of one step, ready for the engine to record.

    `values` holds every input key of the form (None where left empty), JSON-safe:
    numbers as canonical decimal strings, datetimes as ISO 8601 in UTC.
    """

    form_id: str
    definition_hash: str
    values: dict[str, Any]
    units: dict[str, str]
    display: dict[str, str]
    limit_findings: list[LimitFinding]
    notes: list[str]
    signature_meaning: str
    witness_required: bool
    witness_role: str | None
    critical_keys: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["limit_findings"] = [finding.to_dict() for finding in self.limit_findings]
        data["critical_keys"] = list(self.critical_keys)
        return data


# --- value formatting ----------------------------------------------------------------


def format_number(value: Decimal) -> str:
    """Canonical text of a number: plain notation, no exponent, no negative zero."""
    if value == 0:
        value = abs(value)
    return format(value, "f")


def with_unit(text: str, unit: str | None) -> str:
    return f"{text} {unit}" if unit else text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- marshmallow fields --------------------------------------------------------------


class _FormField(fields.Field):
    """Base: strict types, one clear message per problem, label in every message."""

    def __init__(self, spec: FieldDefinition, **kwargs):
        self.spec = spec
        super().__init__(
            required=spec.required,
            error_messages={"required": f"{spec.label} is required."},
            metadata={"title": spec.label, "x-batchline-kind": spec.kind},
            **kwargs,
        )

    def fail(self, message: str):
        return ValidationError(message)


class NumberField(_FormField):
    """A number as JSON number or decimal text; becomes an exact Decimal."""

    def _deserialize(self, value, attr, data, **kwargs) -> Decimal:
        return coerce_number(value, self.spec)


def coerce_number(value: Any, spec: FieldDefinition) -> Decimal:
    label = spec.label
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValidationError(f"{label} must be a number, not {type(value).__name__}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{label} must be a finite number (NaN and Infinity are refused).")
    if isinstance(value, str) and not _NUMBER_TEXT.fullmatch(value):
        raise ValidationError(f"{label} must be a number, not the text {_short(value)}.")
    if isinstance(value, int) and abs(value) >= 10**MAX_MAGNITUDE_EXPONENT:
        raise ValidationError(f"{label} is too large: numbers must be below 10^{MAX_MAGNITUDE_EXPONENT} in size.")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ValidationError(f"{label} must be a number.") from None
    if not number.is_finite():
        raise ValidationError(f"{label} must be a finite number (NaN and Infinity are refused).")
    if number != 0 and number.adjusted() >= MAX_MAGNITUDE_EXPONENT:
        raise ValidationError(f"{label} is too large: numbers must be below 10^{MAX_MAGNITUDE_EXPONENT} in size.")
    places = max(0, -number.normalize().as_tuple().exponent) if number != 0 else 0
    allowed = spec.decimals if spec.decimals is not None else MAX_DECIMALS
    if places > allowed:
        raise ValidationError(
            f"{label} takes at most {allowed} decimal place{'s' if allowed != 1 else ''} "
            f"({format_number(number)} has {places})."
        )
    exponent = number.as_tuple().exponent
    if exponent > 0:  # 1E+2 -> 100
        number = number.quantize(Decimal(1))
    elif -exponent > allowed:  # surplus trailing zeros; the value is unchanged
        number = number.quantize(Decimal(1).scaleb(-allowed))
    if number == 0:
        number = abs(number)
    return number


def check_hard_limits(number: Decimal, spec: FieldDefinition) -> None:
    """Refuse a value outside [hardMin, hardMax]; the limits themselves are allowed."""
    low, high = spec.limits.get("hardMin"), spec.limits.get("hardMax")
    text = with_unit(format_number(number), spec.unit)
    if low is not None and number < low:
        raise ValidationError(
            f"{spec.label} {text} is below the hard minimum (hardMin) of "
            f"{with_unit(format_number(low), spec.unit)}; it cannot be recorded."
        )
    if high is not None and number > high:
        raise ValidationError(
            f"{spec.label} {text} is above the hard maximum (hardMax) of "
            f"{with_unit(format_number(high), spec.unit)}; it cannot be recorded."
        )


class TextField(_FormField):
    """Text stored verbatim (escaping is the renderer's job), within its length cap."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        spec = self.spec
        if not isinstance(value, str):
            raise self.fail(f"{spec.label} must be text, not {type(value).__name__}.")
        if spec.kind in ("materialLot", "equipment"):
            value = value.strip()  # scanners append newlines; ids never carry spaces at the ends
            if not value:
                raise self.fail(f"{spec.label} is required.")
        if _CONTROL_CHARS.search(value):
            raise self.fail(f"{spec.label} contains control characters, which cannot be recorded.")
        if spec.max_length is not None and len(value) > spec.max_length:
            raise self.fail(f"{spec.label} is too long: {len(value):,} characters, at most {spec.max_length:,}.")
        if spec.min_length is not None and len(value) < spec.min_length:
            raise self.fail(f"{spec.label} needs at least {spec.min_length:,} characters.")
        if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
            raise self.fail(f"{spec.label} does not have the expected format ({spec.pattern}).")
        return value


def _is_option(value: Any, option_value: Any) -> bool:
    # Type-aware: True must not match 1, "1" must not match 1.
    if isinstance(value, bool):
        return False
    if isinstance(option_value, str) or isinstance(value, str):
        return type(value) is type(option_value) and value == option_value
    return value == option_value


class ChoiceField(_FormField):
    """A select or radio answer: exactly one of the listed option values."""

    def _deserialize(self, value, attr, data, **kwargs):
        for option in self.spec.options:
            if _is_option(value, option.value):
                return option.value
        choices = ", ".join(repr(o.value) for o in self.spec.options[:10])
        raise self.fail(f"{self.spec.label}: {_short(value)} is not one of the options ({choices}).")


class ChecklistField(_FormField):
    """A checklist answer: a list of distinct option values, kept in definition order."""

    def _deserialize(self, value, attr, data, **kwargs) -> list:
        spec = self.spec
        if not isinstance(value, list):
            raise self.fail(f"{spec.label} must be a list of option values, not {type(value).__name__}.")
        chosen: list = []
        for item in value:
            match = next((o for o in spec.options if _is_option(item, o.value)), None)
            if match is None:
                raise self.fail(f"{spec.label}: {_short(item)} is not one of the options.")
            if match in chosen:
                raise self.fail(f"{spec.label}: {_short(item)} is ticked twice.")
            chosen.append(match)
        return [o.value for o in spec.options if o in chosen]


class CheckboxField(_FormField):
    """A checkbox: JSON true or false only (no "yes", no 1)."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"{self.spec.label} must be true or false, not {_short(value)}.")
        if self.spec.required and not value:
            # A required checkbox is a confirmation: unticked cannot be an answer.
            raise self.fail(f"{self.spec.label} must be ticked.")
        return value


class DateTimeField(_FormField):
    """ISO 8601 text; datetimes must carry an offset and are normalised to UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        spec = self.spec
        examples = {"date": "2025-01-31", "time": "14:30", "datetime": "2025-01-31T14:30:00Z"}
        wanted = f"{spec.label} must be a {spec.subtype} as ISO 8601 text, e.g. {examples[spec.subtype]}"
        if not isinstance(value, str):
            raise self.fail(f"{wanted}, not {type(value).__name__}.")
        try:
            if spec.subtype == "date":
                if not _DATE_TEXT.fullmatch(value):
                    raise ValueError
                return dt.date.fromisoformat(value)
            if spec.subtype == "time":
                if not _TIME_TEXT.fullmatch(value):
                    raise ValueError
                return dt.time.fromisoformat(value)
            if not _DATETIME_TEXT.fullmatch(value):
                raise ValueError
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(f"{wanted}.") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise self.fail(f"{spec.label} needs a time zone offset, e.g. {examples['datetime']}.")
        try:
            return moment.astimezone(dt.UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00 has no UTC equivalent
            raise self.fail(f"{wanted}.") from None


class AttachmentField(_FormField):
    """Metadata of an already uploaded file: {filename, content_type, sha256, size}."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict[str, Any]:
        spec = self.spec
        label = spec.label
        if not isinstance(value, Mapping):
            raise self.fail(f"{label} must be an object with {', '.join(ATTACHMENT_KEYS)}.")
        problems = []
        unknown = sorted(str(k) for k in value if k not in ATTACHMENT_KEYS)
        if unknown:
            problems.append(f"{label}: unknown attachment field(s) {', '.join(map(_short, unknown))}.")
        missing = [k for k in ATTACHMENT_KEYS if k not in value]
        if missing:
            problems.append(f"{label}: missing {', '.join(missing)}.")
        filename = value.get("filename")
        if "filename" in value and (
            not isinstance(filename, str)
            or not filename.strip()
            or len(filename) > 255
            or any(c in filename for c in "/\\")
            or filename in (".", "..")
            or _CONTROL_CHARS.search(filename)
            or "\n" in filename
            or "\r" in filename
        ):
            problems.append(f"{label}: filename must be a plain file name (no folders), at most 255 characters.")
        content_type = value.get("content_type")
        if "content_type" in value:
            if not isinstance(content_type, str) or not _MIME.fullmatch(content_type.lower()):
                problems.append(f"{label}: content_type must be a media type such as application/pdf.")
            else:
                content_type = content_type.lower()
                if spec.content_types and not any(
                    allowed == content_type or (allowed.endswith("/*") and content_type.startswith(allowed[:-1]))
                    for allowed in spec.content_types
                ):
                    problems.append(
                        f"{label}: files of type {content_type} are not accepted here "
                        f"(accepted: {', '.join(spec.content_types)})."
                    )
        sha256 = value.get("sha256")
        if "sha256" in value and (not isinstance(sha256, str) or not _SHA256.fullmatch(sha256)):
            problems.append(f"{label}: sha256 must be 64 hexadecimal characters.")
        size = value.get("size")
        if "size" in value:
            if isinstance(size, bool) or not isinstance(size, int):
                problems.append(f"{label}: size must be a whole number of bytes.")
            elif size < 1:
                problems.append(f"{label}: the file is empty.")
            elif spec.max_size is not None and size > spec.max_size:
                problems.append(f"{label}: the file is too large ({size:,} bytes; at most {spec.max_size:,}).")
        if problems:
            raise ValidationError(problems)
        return {"filename": filename, "content_type": content_type, "sha256": sha256.lower(), "size": size}


class CalculatedField(fields.Field):
    """Declared for the schema's documentation only: its value is computed, never loaded."""

    def __init__(self, spec: FieldDefinition):
        super().__init__(
            load_default=None,
            metadata={"title": spec.label, "readOnly": True, "x-batchline-calculation": spec.calculation.expression},
        )

    def _deserialize(self, value, attr, data, **kwargs):
        return None


_FIELD_CLASSES = {
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
        if spec.is_calculated:
            declared[spec.key] = CalculatedField(spec)
            continue
        validators = []
        if spec.kind == "number" and ("hardMin" in spec.limits or "hardMax" in spec.limits):
            validators.append(lambda number, spec=spec: check_hard_limits(number, spec))
        declared[spec.key] = _FIELD_CLASSES[spec.kind](spec, validate=validators)
    name = "Form_" + re.sub(r"[^A-Za-z0-9_]", "_", definition.id)
    return FormSchema.from_dict(declared, name=name)


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        return [m for value in messages.values() for m in _flatten(value)]
    if isinstance(messages, (list, tuple)):
        return [m for value in messages for m in _flatten(value)]
    return [str(messages)]


# --- the compiled form ---------------------------------------------------------------


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

    def __repr__(self) -> str:
        return f"<CompiledForm {self.definition.id} {self.definition.definition_hash[:12]}>"

    def validate(
        self,
        data: Mapping[str, Any],
        *,
        lookups: Lookups | None = None,
        batch_id: str | None = None,
    ) -> ValidatedStep:
        """Check one submission; return the ValidatedStep or raise FormRejected.

        Raises TypeError if the form scans lots or equipment and no `lookups` is given:
        a form must never pass such a check by accident.
        """
        definition = self.definition
        if self._needs_lookups and lookups is None:
            raise TypeError(f"form '{definition.id}' checks material lots or equipment: pass lookups=")
        if not isinstance(data, Mapping):
            raise FormRejected({"_form": ["The submission must be a JSON object of field values."]}, definition.id)

        errors: dict[str, list[str]] = {}
        notes: list[str] = []
        submitted: dict[str, Any] = {}
        browser_values: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                errors.setdefault("_form", []).append(f"Field names must be text, not {_short(key)}.")
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
            for key, messages in exc.messages.items():
                errors.setdefault(key, []).extend(_flatten(messages))
            loaded = (
                {k: v for k, v in exc.valid_data.items() if k not in errors} if isinstance(exc.valid_data, dict) else {}
            )
        loaded = {k: v for k, v in loaded.items() if v is not None and k in submitted}

        # 2. calculated fields, recomputed here whatever the browser sent
        numbers = {k: v for k, v in loaded.items() if self._specs[k].kind == "number"}
        for key in definition.calculation_order:
            spec = self._specs[key]
            refs = spec.calculation.references
            if any(ref in errors for ref in refs):
                continue  # its inputs are already reported
            missing = [self._specs[ref].label for ref in refs if ref not in numbers]
            if missing:
                if spec.required:
                    errors.setdefault(key, []).append(f"{spec.label} cannot be calculated: enter {', '.join(missing)}.")
                continue
            try:
                result = evaluate(spec.calculation, numbers)
                result = result.quantize(Decimal(1).scaleb(-spec.decimals), rounding=ROUND_HALF_UP)
                result = coerce_number(result, spec)
                check_hard_limits(result, spec)
            except CalculationError as exc:
                errors.setdefault(key, []).append(f"{spec.label} cannot be calculated: {exc}.")
                continue
            except (ValidationError, InvalidOperation) as exc:
                message = exc.messages if isinstance(exc, ValidationError) else "the result is out of range."
                errors.setdefault(key, []).extend(_flatten(message))
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
                    + ("" if same else f"; the value sent by the browser ({_short(sent)}) was ignored")
                    + "."
                )

        # 3. master data: lots and equipment (only ids that passed their own checks)
        if self._needs_lookups:
            for key, value in loaded.items():
                spec = self._specs[key]
                if spec.kind == "materialLot":
                    result = lookups.check_material_lot(value, spec.material)
                    default = f"Lot {value} cannot be used: it must be a released, unexpired lot of {spec.material}."
                elif spec.kind == "equipment":
                    result = lookups.check_equipment(value, spec.equipment_class, batch_id)
                    default = f"Equipment {value} cannot be used: it must be a clean, calibrated, free {spec.equipment_class}."
                else:
                    continue
                if not getattr(result, "ok", False):
                    errors.setdefault(key, []).append(getattr(result, "message", "") or default)

        if errors:
            raise FormRejected(errors, definition.id)

        # 4. alert / action findings (accepted values, raised as exceptions by the engine)
        findings = [f for key, number in numbers.items() if (f := self._finding(self._specs[key], number))]
        values, display, units = {}, {}, {}
        for spec in definition.fields:
            value = loaded.get(spec.key)
            values[spec.key], display[spec.key] = self._json_value(spec, value)
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

    @staticmethod
    def _finding(spec: FieldDefinition, number: Decimal) -> LimitFinding | None:
        """The most severe limit crossed (action before alert); limits themselves pass."""
        limits = spec.limits
        for severity in ("action", "alert"):
            low, high = limits.get(f"{severity}Low"), limits.get(f"{severity}High")
            if low is not None and number < low:
                name, limit, side = f"{severity}Low", low, "below"
            elif high is not None and number > high:
                name, limit, side = f"{severity}High", high, "above"
            else:
                continue
            value_text = with_unit(format_number(number), spec.unit)
            limit_text = with_unit(format_number(limit), spec.unit)
            return LimitFinding(
                key=spec.key,
                label=spec.label,
                value=format_number(number),
                unit=spec.unit,
                severity=severity,
                limit_name=name,
                limit_value=format_number(limit),
                critical=spec.critical,
                message=(
                    f"{spec.label} {value_text} is {side} the {severity} limit ({name}) of "
                    f"{limit_text}" + (" — critical process parameter." if spec.critical else ".")
                ),
            )
        return None

    @staticmethod
    def _json_value(spec: FieldDefinition, value: Any) -> tuple[Any, str]:
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


# --- compiling and caching -----------------------------------------------------------

_cache: OrderedDict[str, CompiledForm] = OrderedDict()
_cache_lock = threading.Lock()


def compile_form(definition: FormDefinition | JsonSource) -> CompiledForm:
    """Compile a definition (or its JSON) once; later calls with the same content reuse it.

    The cache key is the SHA-256 of the canonical JSON, so an edited form (a new
    recipe version) never reuses a stale compiled schema.
    """
    if isinstance(definition, FormDefinition):
        digest, source = definition.definition_hash, None
    else:
        source = parse_source(definition)
        digest = definition_hash(source)
    with _cache_lock:
        compiled = _cache.get(digest)
        if compiled is not None:
            _cache.move_to_end(digest)
            return compiled
    compiled = CompiledForm(definition if source is None else load_form(source))
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
