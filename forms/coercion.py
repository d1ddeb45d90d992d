"""Coercion of entered values: one strict marshmallow field per kind of input.

Each field turns what the browser sent into the Python value the server works with
(an exact `Decimal`, text as typed, an option value, a bool, a date/time in UTC) or
refuses it with one clear message naming the field. Types are strict: no "yes" for
true, no 1 for "1", no NaN, no datetime without a time zone.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import ValidationError, fields

from forms.display import format_number, short_repr
from forms.form import FieldDefinition
from forms.pattern_words import format_message
from forms.patterns import full_match
from forms.vocabulary import MAX_DECIMALS

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
# C0 controls except tab, newline, carriage return; NUL also breaks PostgreSQL text.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FormField(fields.Field):
    """Base: strict types, one clear message per problem, label in every message."""

    def __init__(self, spec: FieldDefinition, **kwargs):
        self.spec = spec
        super().__init__(
            required=spec.required,
            error_messages={"required": f"{spec.label} is required."},
            metadata={"title": spec.label, "x-batchline-kind": spec.kind},
            **kwargs,
        )

    def fail(self, message: str) -> ValidationError:
        return ValidationError(message)


class NumberField(FormField):
    """A number as JSON number or decimal text; becomes an exact Decimal."""

    def _deserialize(self, value, attr, data, **kwargs) -> Decimal:
        return coerce_number(value, self.spec)


def _exponent(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # only NaN and Infinity have a letter here, and they are refused
    return exponent


def coerce_number(value: Any, spec: FieldDefinition) -> Decimal:
    """An exact Decimal within the magnitude cap and the field's decimals, or ValidationError."""
    label = spec.label
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValidationError(f"{label} must be a number, not {type(value).__name__}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{label} must be a finite number (NaN and Infinity are refused).")
    if isinstance(value, str) and not _NUMBER_TEXT.fullmatch(value):
        raise ValidationError(f"{label} must be a number, not the text {short_repr(value)}.")
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
    places = max(0, -_exponent(number.normalize())) if number != 0 else 0
    allowed = spec.decimals if spec.decimals is not None else MAX_DECIMALS
    if places > allowed:
        raise ValidationError(
            f"{label} takes at most {allowed} decimal place{'s' if allowed != 1 else ''} "
            f"({format_number(number)} has {places})."
        )
    exponent = _exponent(number)
    if exponent > 0:  # 1E+2 -> 100
        number = number.quantize(Decimal(1))
    elif -exponent > allowed:  # surplus trailing zeros; the value is unchanged
        number = number.quantize(Decimal(1).scaleb(-allowed))
    if number == 0:
        number = abs(number)
    return number


class TextField(FormField):
    """Text stored verbatim (escaping is the renderer's job), within its length cap."""

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        spec = self.spec
        if not isinstance(value, str):
            raise self.fail(f"{spec.label} must be text, not {type(value).__name__}.")
        if spec.kind in ("materialLot", "equipment"):
            value = value.strip()  # scanners append newlines; ids never carry spaces at the ends
            if not value:
                raise self.fail(f"{spec.label} is required.")
        if CONTROL_CHARS.search(value):
            raise self.fail(f"{spec.label} contains control characters, which cannot be recorded.")
        if spec.max_length is not None and len(value) > spec.max_length:
            raise self.fail(f"{spec.label} is too long: {len(value):,} characters, at most {spec.max_length:,}.")
        if spec.min_length is not None and len(value) < spec.min_length:
            raise self.fail(f"{spec.label} needs at least {spec.min_length:,} characters.")
        if spec.pattern is not None and not full_match(spec.pattern, value):
            raise self.fail(format_message(spec.label, spec.pattern_description, spec.pattern))
        return value


def _is_option(value: Any, option_value: Any) -> bool:
    # Type-aware: True must not match 1, "1" must not match 1.
    if isinstance(value, bool):
        return False
    if isinstance(option_value, str) or isinstance(value, str):
        return type(value) is type(option_value) and value == option_value
    return value == option_value


class ChoiceField(FormField):
    """A select or radio answer: exactly one of the listed option values."""

    def _deserialize(self, value, attr, data, **kwargs):
        for option in self.spec.options:
            if _is_option(value, option.value):
                return option.value
        choices = ", ".join(repr(o.value) for o in self.spec.options[:10])
        raise self.fail(f"{self.spec.label}: {short_repr(value)} is not one of the options ({choices}).")


class ChecklistField(FormField):
    """A checklist answer: a list of distinct option values, kept in definition order."""

    def _deserialize(self, value, attr, data, **kwargs) -> list:
        spec = self.spec
        if not isinstance(value, list):
            raise self.fail(f"{spec.label} must be a list of option values, not {type(value).__name__}.")
        chosen: list = []
        for item in value:
            match = next((o for o in spec.options if _is_option(item, o.value)), None)
            if match is None:
                raise self.fail(f"{spec.label}: {short_repr(item)} is not one of the options.")
            if match in chosen:
                raise self.fail(f"{spec.label}: {short_repr(item)} is ticked twice.")
            chosen.append(match)
        return [o.value for o in spec.options if o in chosen]


class CheckboxField(FormField):
    """A checkbox: JSON true or false only (no "yes", no 1)."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"{self.spec.label} must be true or false, not {short_repr(value)}.")
        if self.spec.required and not value:
            # A required checkbox is a confirmation: unticked cannot be an answer.
            raise self.fail(f"{self.spec.label} must be ticked.")
        return value


class DateTimeField(FormField):
    """ISO 8601 text; datetimes must carry an offset and are normalised to UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        spec = self.spec
        subtype = spec.subtype or "date"  # the loader sets one on every datetime field
        examples = {"date": "2025-01-31", "time": "14:30", "datetime": "2025-01-31T14:30:00Z"}
        wanted = f"{spec.label} must be a {subtype} as ISO 8601 text, e.g. {examples[subtype]}"
        if not isinstance(value, str):
            raise self.fail(f"{wanted}, not {type(value).__name__}.")
        try:
            if subtype == "date":
                if not _DATE_TEXT.fullmatch(value):
                    raise ValueError
                return dt.date.fromisoformat(value)
            if subtype == "time":
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
