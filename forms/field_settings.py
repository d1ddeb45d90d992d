"""Reading one input field's Batchline settings from its form-js component.

A number's unit, decimals, limits and calculation; a text field's lengths and pattern,
or the material, equipment class or accepted files of a scanned or uploaded field; the
options of a choice; the subtype of a date or time. Each reader fills the keyword
arguments of a `FieldDefinition` and notes every problem instead of stopping at the
first, so the form editor can show them all at once. `forms.loading` walks the form
and calls these readers for each input component.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from forms.calculation import CalculationError, parse_calculation
from forms.form import Option
from forms.limits import limit_order_problems
from forms.patterns import PatternError, compile_pattern
from forms.vocabulary import (
    ATTACHMENT_MAX_SIZE_CAP,
    CONTENT_TYPE_PATTERN,
    DEFAULT_ATTACHMENT_MAX_SIZE,
    FIELD_KINDS,
    IDENTIFIER_MAX_LENGTH,
    KEY_PATTERN,
    KIND_PROPERTIES,
    LIMIT_NAMES,
    MAX_DECIMALS,
    TEXTAREA_MAX_LENGTH,
    TEXTFIELD_MAX_LENGTH,
)

# A form-js component, its accepted Batchline properties, and the FieldDefinition
# keyword arguments being filled.
Component = Mapping[str, Any]
Settings = dict[str, Any]


def parse_decimal(text: Any) -> Decimal:
    """A finite number from a JSON number or decimal text; ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError
    if isinstance(text, (int, float)):
        value = Decimal(repr(text)) if isinstance(text, float) else Decimal(text)
    elif isinstance(text, str):
        value = Decimal(text.strip())
    else:
        raise ValueError
    if not value.is_finite():
        raise ValueError
    return value


def parse_flag(text: Any) -> bool:
    """true / false, as JSON or as the text form-js stores in properties."""
    if isinstance(text, bool):
        return text
    if isinstance(text, str) and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    raise ValueError


def parse_whole(text: Any) -> int:
    """A non-negative whole number, as JSON or as digits in text."""
    if isinstance(text, bool):
        raise ValueError
    if isinstance(text, int):
        return text
    if isinstance(text, str) and re.fullmatch(r"\s*\d+\s*", text):
        return int(text)
    raise ValueError


class FieldSettingsReader:
    """Reads input fields' settings, collecting every problem in `problems`."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def _flag(self, value: Any, name: str, where: str) -> bool:
        try:
            return parse_flag(value)
        except ValueError:
            self.problem(f'{where}: property \'{name}\' must be "true" or "false", not {value!r}')
            return False

    def _whole(self, value: Any, name: str, where: str, low: int, high: int) -> int | None:
        try:
            number: int | None = parse_whole(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            self.problem(f"{where}: '{name}' must be a whole number from {low} to {high}, not {value!r}")
            return None
        return number

    def _number(
        self, component: Component, properties: dict[str, Any], validate: Mapping, where: str, settings: Settings
    ) -> None:
        unit = properties.pop("unit", None)
        if unit is not None:
            if not isinstance(unit, str) or not unit.strip() or len(unit) > 32:
                self.problem(f"{where}: property 'unit' must be short text (at most 32 characters)")
            else:
                settings["unit"] = unit.strip()

        decimals = None
        if "decimals" in properties:
            decimals = self._whole(properties.pop("decimals"), "decimals", where, 0, MAX_DECIMALS)
        digits = component.get("decimalDigits")
        if digits is not None:
            digits = self._whole(digits, "decimalDigits", where, 0, MAX_DECIMALS)
            if decimals is not None and digits is not None and digits != decimals:
                self.problem(
                    f"{where}: property 'decimals' ({decimals}) and form-js decimalDigits ({digits}) disagree; set one"
                )
            decimals = decimals if decimals is not None else digits
        settings["decimals"] = decimals

        limits: dict[str, Decimal] = {}
        for name in LIMIT_NAMES:
            if name in properties:
                raw = properties.pop(name)
                try:
                    limits[name] = parse_decimal(raw)
                except (ValueError, InvalidOperation):
                    self.problem(f"{where}: limit '{name}' must be a number, not {raw!r}")
        for native, name in (("min", "hardMin"), ("max", "hardMax")):
            if validate.get(native) is None:
                continue
            try:
                value = parse_decimal(validate[native])
            except (ValueError, InvalidOperation):
                self.problem(f"{where}: validate.{native} must be a number, not {validate[native]!r}")
                continue
            if name in limits and limits[name] != value:
                self.problem(
                    f"{where}: validate.{native} ({value}) and property '{name}' "
                    f"({limits[name]}) disagree; set the hard limit once"
                )
            limits.setdefault(name, value)
        self.problems.extend(limit_order_problems(limits, where))
        settings["limits"] = MappingProxyType(limits)

        if "calculation" in properties:
            try:
                settings["calculation"] = parse_calculation(properties.pop("calculation"))
            except CalculationError as exc:
                self.problem(f"{where}: {exc}")
            else:
                if decimals is None:
                    self.problem(
                        f"{where}: a calculated field needs 'decimals' so the recorded value "
                        "is rounded the same way every time"
                    )

    def _text_input(
        self, component: Component, properties: dict[str, Any], validate: Mapping, where: str, settings: Settings
    ) -> None:
        ctype = component["type"]
        cap = TEXTAREA_MAX_LENGTH if ctype == "textarea" else TEXTFIELD_MAX_LENGTH
        if "matchesParameter" in properties:
            self._matches_parameter(properties.pop("matchesParameter"), ctype, properties, where, settings)
        kind = properties.pop("fieldKind", None)
        if kind is not None:
            if ctype != "textfield" or kind not in FIELD_KINDS:
                self.problem(
                    f"{where}: fieldKind must be one of {', '.join(FIELD_KINDS)} on a textfield, "
                    f"not {kind!r} on a {ctype}"
                )
            else:
                settings["kind"] = kind
                cap = IDENTIFIER_MAX_LENGTH
                self._kind(kind, properties, where, settings)
                if kind == "attachment":
                    for native in ("minLength", "maxLength", "pattern"):
                        if validate.get(native) is not None:
                            self.problem(f"{where}: validate.{native} does not apply to an attachment")
                    return
        for native in ("minLength", "maxLength"):
            if validate.get(native) is not None:
                settings["min_length" if native == "minLength" else "max_length"] = self._whole(
                    validate[native], f"validate.{native}", where, 0, cap
                )
        if settings.get("max_length") is None:
            settings["max_length"] = cap
        pattern = validate.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str) or not pattern:
                self.problem(f"{where}: validate.pattern must be a regular expression")
            else:
                try:
                    compile_pattern(pattern)
                    settings["pattern"] = pattern
                except PatternError as exc:
                    self.problem(f"{where}: validate.pattern cannot be used ({exc})")
        described = properties.pop("patternDescription", None)
        if described is not None:
            if pattern is None:
                self.problem(f"{where}: patternDescription describes validate.pattern, which this field does not have")
            elif not isinstance(described, str) or not 0 < len(described.strip()) <= 200:
                self.problem(f"{where}: patternDescription must be a text of 1 to 200 characters")
            else:
                settings["pattern_description"] = described.strip()

    def _matches_parameter(
        self, name: Any, ctype: str, properties: dict[str, Any], where: str, settings: Settings
    ) -> None:
        """A typed or scanned id that must equal a batch parameter: the patient's chain-of-identity
        id at every hand-off of an autologous therapy, checked on the server at each step."""
        if ctype != "textfield" or properties.get("fieldKind") == "attachment":
            self.problem(f"{where}: 'matchesParameter' applies to a textfield (typed or scanned id) only")
        elif not isinstance(name, str) or not KEY_PATTERN.fullmatch(name.strip()):
            self.problem(f"{where}: 'matchesParameter' must name a batch parameter (such as coi_id), not {name!r}")
        else:
            settings["matches_parameter"] = name.strip()

    def _kind(self, kind: str, properties: dict[str, Any], where: str, settings: Settings) -> None:
        own = KIND_PROPERTIES[kind]
        if kind == "materialLot":
            material = properties.pop("material", None)
            if not isinstance(material, str) or not material.strip():
                self.problem(f"{where}: a materialLot field needs 'material' (the expected material code)")
            else:
                settings["material"] = material.strip()
            if "quantityField" in properties:
                quantity = properties.pop("quantityField")
                if not isinstance(quantity, str) or not KEY_PATTERN.fullmatch(quantity.strip()):
                    self.problem(f"{where}: 'quantityField' must name the number field with the quantity used")
                else:
                    settings["quantity_field"] = quantity.strip()
        elif kind == "equipment":
            equipment_class = properties.pop("equipmentClass", None)
            if not isinstance(equipment_class, str) or not equipment_class.strip():
                self.problem(f"{where}: an equipment field needs 'equipmentClass'")
            else:
                settings["equipment_class"] = equipment_class.strip()
        elif kind == "attachment":
            size: int | None = DEFAULT_ATTACHMENT_MAX_SIZE
            if "maxSize" in properties:
                size = self._whole(properties.pop("maxSize"), "maxSize", where, 1, ATTACHMENT_MAX_SIZE_CAP)
            settings["max_size"] = size or DEFAULT_ATTACHMENT_MAX_SIZE
            if "contentTypes" in properties:
                raw = properties.pop("contentTypes")
                types = [t.strip().lower() for t in raw.split(",")] if isinstance(raw, str) else []
                if not types or not all(CONTENT_TYPE_PATTERN.fullmatch(t) for t in types):
                    self.problem(
                        f"{where}: 'contentTypes' must be a comma-separated list such as "
                        f'"application/pdf, image/*", not {raw!r}'
                    )
                else:
                    settings["content_types"] = tuple(types)
        for name in [n for n in properties if n in set().union(*KIND_PROPERTIES.values()) - own]:
            self.problem(f"{where}: property '{name}' does not apply to a {kind} field")
            properties.pop(name)

    def _choices(self, component: Component, where: str, settings: Settings) -> None:
        for dynamic in ("valuesKey", "valuesExpression"):
            if component.get(dynamic):
                self.problem(
                    f"{where}: '{dynamic}' (options from data) is not supported; list the "
                    "options in 'values' so the server can check the answer"
                )
        values = component.get("values")
        if not isinstance(values, list) or not values:
            self.problem(f"{where}: a {component['type']} needs a non-empty 'values' list of options")
            return
        options: list[Option] = []
        seen: set[tuple[bool, str | int | float]] = set()
        for index, entry in enumerate(values):
            value = entry.get("value") if isinstance(entry, Mapping) else None
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
                self.problem(f"{where}: values[{index}] needs a 'value' (text or number)")
                continue
            marker = (type(value) is str, value)
            if marker in seen:
                self.problem(f"{where}: option value {value!r} is listed twice")
                continue
            seen.add(marker)
            label = entry.get("label")
            options.append(Option(value=value, label=label if isinstance(label, str) and label else str(value)))
        settings["options"] = tuple(options)

    def _datetime(self, component: Component, where: str, settings: Settings) -> None:
        subtype = component.get("subtype", "date")
        if subtype not in ("date", "time", "datetime"):
            self.problem(f"{where}: datetime subtype must be date, time or datetime, not {subtype!r}")
            subtype = "date"
        settings["subtype"] = subtype
        if subtype == "datetime" and component.get("timeSerializingFormat") == "no_timezone":
            self.problem(
                f"{where}: timeSerializingFormat 'no_timezone' is not supported; a batch record "
                "needs an unambiguous time (use utc_offset or utc_normalized)"
            )
        if component.get("disallowPassedDates"):
            self.problem(f"{where}: disallowPassedDates is not supported (not enforced on the server)")


def quantity_field_problems(fields: list[Any]) -> list[str]:
    """A scanned lot's ``quantityField`` names a number field with a unit, used by one lot."""
    by_key = {f.key: f for f in fields}
    claimed: dict[str, str] = {}
    problems = []
    for item in fields:
        ref = item.quantity_field
        if ref is None:
            continue
        where = f"material lot field '{item.key}'"
        target = by_key.get(ref)
        if target is None:
            problems.append(f"{where}: quantityField refers to unknown field '{ref}'")
        elif target.kind != "number" or not target.unit:
            problems.append(f"{where}: quantityField '{ref}' must be a number field with a unit")
        elif ref in claimed:
            problems.append(f"{where}: quantityField '{ref}' is already the quantity of '{claimed[ref]}'")
        else:
            claimed[ref] = item.key
    return problems
