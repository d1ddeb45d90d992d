"""Form definitions: load a form-js JSON schema and check it is one Batchline can enforce.

Forms are drawn in the form-js editor and stored with the recipe version; this module
turns that JSON into a `FormDefinition` the server can validate against. Everything
the browser would enforce must also be enforceable here, because the browser is never
trusted: so a definition that relies on something we cannot check on the server
(FEEL conditions, dynamic option lists, unknown component types, a misspelt Batchline
property) is refused when the form is loaded, with every problem listed, rather than
silently weakened on the shop floor.

Batchline's own settings live in form-js's custom ``properties`` map (string values);
see docs/forms.md for the convention.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Union

from forms.calculation import FUNCTION_ARITY, Calculation, CalculationError, parse_calculation

INPUT_TYPES = ("number", "textfield", "textarea", "select", "radio", "checkbox", "checklist", "datetime")
STATIC_TYPES = ("text", "group", "spacer", "separator")
SUPPORTED_TYPES = INPUT_TYPES + STATIC_TYPES

FIELD_KINDS = ("materialLot", "equipment", "attachment")
SIGNATURE_MEANINGS = ("Performed", "Verified", "Reviewed", "Approved", "Released")
DEFAULT_SIGNATURE_MEANING = "Performed"

LIMIT_NAMES = ("hardMin", "actionLow", "alertLow", "alertHigh", "actionHigh", "hardMax")

# Length caps for typed text. A definition may lower them (validate.maxLength) but not
# raise them: a batch record is not a document store.
TEXTFIELD_MAX_LENGTH = 1_000
TEXTAREA_MAX_LENGTH = 10_000
IDENTIFIER_MAX_LENGTH = 100  # material lot and equipment ids
DEFAULT_ATTACHMENT_MAX_SIZE = 50 * 1024 * 1024
ATTACHMENT_MAX_SIZE_CAP = 2 * 1024 * 1024 * 1024
MAX_DECIMALS = 12
MAX_GROUP_DEPTH = 8

KEY_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
FORM_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
CONTENT_TYPE_PATTERN = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+\-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+\-]*)")

# Which Batchline properties a component may carry.
_NUMBER_PROPERTIES = {"unit", "decimals", "calculation", *LIMIT_NAMES}
_KIND_PROPERTIES = {
    "materialLot": {"material"},
    "equipment": {"equipmentClass"},
    "attachment": {"maxSize", "contentTypes"},
}
_FORM_PROPERTIES = ("signatureMeaning", "witnessRequired", "witnessRole")
_COMMON_PROPERTIES = {"critical", *_FORM_PROPERTIES}
KNOWN_PROPERTIES = (
    _NUMBER_PROPERTIES
    | _COMMON_PROPERTIES
    | {"fieldKind"}
    | {name for names in _KIND_PROPERTIES.values() for name in names}
)

JsonSource = Union[Mapping[str, Any], str, bytes]


class FormDefinitionError(ValueError):
    """A form definition Batchline refuses; `problems` lists every reason found."""

    code = "form_definition_invalid"

    def __init__(self, problems: list[str], form_id: str | None = None):
        self.problems = list(problems)
        self.form_id = form_id
        name = f"Form '{form_id}'" if form_id else "The form definition"
        listing = "\n".join(f"- {problem}" for problem in self.problems)
        super().__init__(f"{name} cannot be used:\n{listing}")

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self), "problems": self.problems}


@dataclass(frozen=True)
class Option:
    """One choice of a select, radio or checklist: the stored value and its label."""

    value: str | int | float
    label: str


@dataclass(frozen=True)
class FieldDefinition:
    """One input field of a form, with its Batchline settings parsed and checked."""

    key: str
    label: str
    component_type: str  # the form-js type
    kind: str  # component_type, or materialLot / equipment / attachment
    required: bool = False
    description: str | None = None
    group: str | None = None  # label path of the enclosing groups, " / "-joined
    default: Any = None
    unit: str | None = None
    decimals: int | None = None
    limits: Mapping[str, Decimal] = field(default_factory=dict)  # LIMIT_NAMES -> value
    critical: bool = False
    calculation: Calculation | None = None
    options: tuple[Option, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    subtype: str | None = None  # datetime: date / time / datetime
    material: str | None = None
    equipment_class: str | None = None
    max_size: int | None = None
    content_types: tuple[str, ...] = ()

    @property
    def is_calculated(self) -> bool:
        return self.calculation is not None

    @property
    def needs_lookup(self) -> bool:
        return self.kind in ("materialLot", "equipment")


@dataclass(frozen=True)
class Instructions:
    """Markdown instructions from a form-js `text` component, shown in place."""

    markdown: str
    group: str | None = None


@dataclass(frozen=True)
class GroupHeading:
    """Start of a form-js `group`; its fields follow it in `FormDefinition.items`."""

    label: str
    depth: int


@dataclass(frozen=True)
class FormDefinition:
    """A checked form: flattened fields in display order plus form-level settings."""

    id: str
    schema_version: int | None
    fields: tuple[FieldDefinition, ...]
    items: tuple[FieldDefinition | Instructions | GroupHeading, ...]
    instructions: tuple[str, ...]
    signature_meaning: str
    witness_required: bool
    witness_role: str | None
    calculation_order: tuple[str, ...]  # calculated keys, each after what it reads
    definition_hash: str
    source: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def field(self, key: str) -> FieldDefinition:
        for candidate in self.fields:
            if candidate.key == key:
                return candidate
        raise KeyError(key)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)


def definition_hash(source: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of a definition."""
    canonical = json.dumps(source, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_source(source: JsonSource) -> dict[str, Any]:
    """Turn JSON text or a mapping into a plain dict; refuse non-standard JSON (NaN)."""
    if isinstance(source, (str, bytes)):

        def refuse_constant(name: str) -> None:
            raise ValueError(f"{name} is not valid JSON")

        try:
            parsed = json.loads(source, parse_constant=refuse_constant)
        except ValueError as exc:
            raise FormDefinitionError([f"the definition is not valid JSON ({exc})"]) from None
    else:
        parsed = source
    if not isinstance(parsed, Mapping):
        raise FormDefinitionError(["the definition must be a JSON object (a form-js schema)"])
    try:
        # Round-trip so the stored copy is plain JSON data, detached from the caller's.
        return json.loads(json.dumps(parsed, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise FormDefinitionError([f"the definition is not plain JSON data ({exc})"]) from None


def load_form(source: JsonSource) -> FormDefinition:
    """Load a form-js definition (dict or JSON text); raise FormDefinitionError if unusable."""
    data = parse_source(source)
    return _FormLoader(data).load()


# --- loading -------------------------------------------------------------------------


def _parse_decimal(text: Any) -> Decimal:
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


def _parse_flag(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    if isinstance(text, str) and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    raise ValueError


def _parse_whole(text: Any) -> int:
    if isinstance(text, bool):
        raise ValueError
    if isinstance(text, int):
        return text
    if isinstance(text, str) and re.fullmatch(r"\s*\d+\s*", text):
        return int(text)
    raise ValueError


def _is_feel(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("=")


class _FormLoader:
    """Walks one definition, collecting every problem before refusing it."""

    def __init__(self, data: dict[str, Any]):
        self.data = data
        self.problems: list[str] = []
        self.fields: list[FieldDefinition] = []
        self.items: list[FieldDefinition | Instructions | GroupHeading] = []
        self.instructions: list[str] = []
        self.form_settings: dict[str, tuple[Any, str]] = {}  # name -> (value, where)
        self.seen_keys: dict[str, str] = {}

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def load(self) -> FormDefinition:
        data = self.data
        form_id = data.get("id")
        if data.get("type") != "default":
            self.problem('the top-level "type" must be "default" (a form-js form schema)')
        if not isinstance(form_id, str) or not FORM_ID_PATTERN.fullmatch(form_id):
            self.problem(
                'the form needs an "id" (letters, digits, "_", "-", "."; at most 100 '
                "characters) so user tasks can name it"
            )
            form_id = form_id if isinstance(form_id, str) else None
        schema_version = data.get("schemaVersion")
        if schema_version is not None and (
            isinstance(schema_version, bool) or not isinstance(schema_version, int) or schema_version < 1
        ):
            self.problem('"schemaVersion" must be a positive whole number')
            schema_version = None
        components = data.get("components")
        if not isinstance(components, list):
            self.problem('the form needs a "components" list')
            components = []
        root_properties = data.get("properties")
        if root_properties is not None:
            if not isinstance(root_properties, Mapping):
                self.problem('the form\'s "properties" must be an object')
            else:
                for name, value in root_properties.items():
                    if name in _FORM_PROPERTIES:
                        self._form_setting(name, value, "the form properties")
                    elif not name.startswith("x-"):
                        self.problem(self._unknown_property("the form properties", name, _FORM_PROPERTIES))

        self._components(components, path="components", group=None, depth=0)
        if not self.fields and not self.problems:
            self.problem("the form has no input fields")

        order = self._check_calculations()
        meaning, witness_required, witness_role = self._resolve_form_settings()
        if self.problems:
            raise FormDefinitionError(self.problems, form_id)
        return FormDefinition(
            id=form_id,
            schema_version=schema_version,
            fields=tuple(self.fields),
            items=tuple(self.items),
            instructions=tuple(self.instructions),
            signature_meaning=meaning,
            witness_required=witness_required,
            witness_role=witness_role,
            calculation_order=order,
            definition_hash=definition_hash(data),
            source=data,
        )

    # -- components

    def _components(self, components: list, path: str, group: str | None, depth: int) -> None:
        for index, component in enumerate(components):
            where = f"{path}[{index}]"
            if not isinstance(component, Mapping):
                self.problem(f"{where} must be an object")
                continue
            ctype = component.get("type")
            key = component.get("key")
            if isinstance(key, str):
                where = f"{where} (key '{key}')"
            if ctype not in SUPPORTED_TYPES:
                self.problem(
                    f"{where}: component type {ctype!r} is not supported; use one of {', '.join(SUPPORTED_TYPES)}"
                )
                continue
            if "conditional" in component and component["conditional"]:
                self.problem(
                    f"{where}: conditional visibility (FEEL 'conditional') is not supported; "
                    "the server could not tell which fields are required"
                )
            properties = self._properties(component, where)
            if ctype == "group":
                self._group(component, properties, where, group, depth)
            elif ctype == "text":
                self._text(component, properties, where, group)
            elif ctype in ("spacer", "separator"):
                self._settings_only(properties, where)
            else:
                self._input(component, properties, where, group)

    def _properties(self, component: Mapping, where: str) -> dict[str, Any]:
        properties = component.get("properties", {})
        if properties is None:
            return {}
        if not isinstance(properties, Mapping):
            self.problem(f'{where}: "properties" must be an object of name -> text')
            return {}
        accepted = {}
        for name, value in properties.items():
            if name.startswith("x-"):
                continue  # left for other tools, documented
            if name not in KNOWN_PROPERTIES:
                self.problem(self._unknown_property(where, name, KNOWN_PROPERTIES))
                continue
            accepted[name] = value
        return accepted

    @staticmethod
    def _unknown_property(where: str, name: str, known) -> str:
        message = f"{where}: unknown property '{name}'"
        close = difflib.get_close_matches(name, sorted(known), n=1)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        return message + "; properties for other tools must start with 'x-'"

    def _settings_only(self, properties: dict[str, Any], where: str, allowed=()) -> None:
        for name, value in properties.items():
            if name in _FORM_PROPERTIES:
                self._form_setting(name, value, where)
            elif name not in allowed:
                self.problem(f"{where}: property '{name}' does not apply to this component")

    def _form_setting(self, name: str, value: Any, where: str) -> None:
        if name in self.form_settings and self.form_settings[name][0] != value:
            self.problem(
                f"{where}: '{name}' is set to {value!r} here but to "
                f"{self.form_settings[name][0]!r} in {self.form_settings[name][1]}; set it once"
            )
            return
        self.form_settings.setdefault(name, (value, where))

    def _group(self, component, properties, where, group, depth) -> None:
        self._settings_only(properties, where)
        if component.get("path"):
            self.problem(
                f"{where}: group 'path' is not supported; Batchline stores a step's fields flat, so remove the path"
            )
        if depth + 1 > MAX_GROUP_DEPTH:
            self.problem(f"{where}: groups are nested more than {MAX_GROUP_DEPTH} deep")
            return
        label = component.get("label")
        label = label if isinstance(label, str) and label.strip() else None
        path = " / ".join(p for p in (group, label) if p) or None
        if label:
            self.items.append(GroupHeading(label=label, depth=depth + 1))
        children = component.get("components", [])
        if not isinstance(children, list):
            self.problem(f'{where}: a group\'s "components" must be a list')
            return
        self._components(children, path=f"{where}.components", group=path, depth=depth + 1)

    def _text(self, component, properties, where, group) -> None:
        self._settings_only(properties, where)
        text = component.get("text", "")
        if not isinstance(text, str):
            self.problem(f'{where}: a text component\'s "text" must be markdown text')
            return
        if text.strip():
            self.instructions.append(text)
            self.items.append(Instructions(markdown=text, group=group))

    def _input(self, component: Mapping, properties: dict[str, Any], where: str, group) -> None:
        ctype = component["type"]
        key = component.get("key")
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
            self.problem(
                f"{where}: key {key!r} must start with a letter and use only letters, "
                "digits and '_' (at most 64 characters)"
            )
            return
        if keyword.iskeyword(key) or key in FUNCTION_ARITY or key == "Meta":  # Meta: marshmallow's
            self.problem(f"{where}: key '{key}' is a reserved word; choose another key")
            return
        if key in self.seen_keys:
            self.problem(f"{where}: duplicate key '{key}' (also used at {self.seen_keys[key]})")
            return
        self.seen_keys[key] = where

        # form-js datetime fields carry dateLabel / timeLabel instead of label.
        label = next(
            (
                text.strip()
                for text in (component.get(name) for name in ("label", "dateLabel", "timeLabel"))
                if isinstance(text, str) and text.strip()
            ),
            key,
        )
        description = component.get("description")
        description = description if isinstance(description, str) and description else None
        validate = component.get("validate") or {}
        if not isinstance(validate, Mapping):
            self.problem(f'{where}: "validate" must be an object')
            validate = {}
        required = validate.get("required", False)
        if not isinstance(required, bool):
            self.problem(f"{where}: validate.required must be true or false")
            required = False
        if validate.get("validationType"):
            self.problem(
                f"{where}: validate.validationType {validate['validationType']!r} is not "
                "supported; use validate.pattern"
            )
        for flag in ("readonly", "disabled"):
            if _is_feel(component.get(flag)):
                self.problem(f"{where}: a FEEL expression for '{flag}' is not supported")

        for name in list(properties):
            if name in _FORM_PROPERTIES:
                self._form_setting(name, properties.pop(name), where)

        settings: dict[str, Any] = {
            "key": key,
            "label": label,
            "component_type": ctype,
            "kind": ctype,
            "required": required,
            "description": description,
            "group": group,
            "default": component.get("defaultValue"),
        }
        if "critical" in properties:
            settings["critical"] = self._flag(properties.pop("critical"), "critical", where)

        if ctype == "number":
            self._number(component, properties, validate, where, settings)
        elif ctype in ("textfield", "textarea"):
            self._text_input(component, properties, validate, where, settings)
        elif ctype in ("select", "radio", "checklist"):
            self._choices(component, where, settings)
        elif ctype == "datetime":
            self._datetime(component, where, settings)
        for name in properties:
            self.problem(f"{where}: property '{name}' does not apply to a {settings['kind']} field")

        readonly = component.get("readonly") is True
        if component.get("disabled") is True:
            self.problem(
                f"{where}: disabled fields are not supported (the browser would not send "
                "them); remove the field or make it a calculated field"
            )
        if readonly and settings.get("calculation") is None:
            self.problem(
                f"{where}: only calculated fields may be read-only; the server cannot trust a "
                "read-only value sent by the browser"
            )

        definition = FieldDefinition(**settings)
        self.fields.append(definition)
        self.items.append(definition)

    def _flag(self, value: Any, name: str, where: str) -> bool:
        try:
            return _parse_flag(value)
        except ValueError:
            self.problem(f'{where}: property \'{name}\' must be "true" or "false", not {value!r}')
            return False

    def _number(self, component, properties, validate, where, settings) -> None:
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
                    limits[name] = _parse_decimal(raw)
                except (ValueError, InvalidOperation):
                    self.problem(f"{where}: limit '{name}' must be a number, not {raw!r}")
        for native, name in (("min", "hardMin"), ("max", "hardMax")):
            if validate.get(native) is None:
                continue
            try:
                value = _parse_decimal(validate[native])
            except (ValueError, InvalidOperation):
                self.problem(f"{where}: validate.{native} must be a number, not {validate[native]!r}")
                continue
            if name in limits and limits[name] != value:
                self.problem(
                    f"{where}: validate.{native} ({value}) and property '{name}' "
                    f"({limits[name]}) disagree; set the hard limit once"
                )
            limits.setdefault(name, value)
        self._check_limit_order(limits, where)
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

    def _check_limit_order(self, limits: Mapping[str, Decimal], where: str) -> None:
        reasons = {
            ("hard", "hard"): "the hard range is empty",
            ("alert", "alert"): "the alert range is empty",
            ("action", "action"): "the action range is empty",
            ("hard", "alert"): "alert limits must lie within the hard limits",
            ("hard", "action"): "action limits must lie within the hard limits",
            ("action", "alert"): "action limits must lie outside (or on) the alert limits",
        }

        def family(name: str) -> str:
            return "hard" if name.startswith("hard") else "alert" if name.startswith("alert") else "action"

        present = [name for name in LIMIT_NAMES if name in limits]
        for i, lower in enumerate(present):
            for upper in present[i + 1 :]:
                if limits[lower] > limits[upper]:
                    pair = tuple(sorted((family(lower), family(upper)), key=["hard", "action", "alert"].index))
                    reason = reasons.get(pair, "limits are out of order")
                    self.problem(
                        f"{where}: {lower} ({limits[lower]}) is greater than {upper} ({limits[upper]}): {reason}"
                    )

    def _whole(self, value, name, where, low, high) -> int | None:
        try:
            number = _parse_whole(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            self.problem(f"{where}: '{name}' must be a whole number from {low} to {high}, not {value!r}")
            return None
        return number

    def _text_input(self, component, properties, validate, where, settings) -> None:
        ctype = component["type"]
        cap = TEXTAREA_MAX_LENGTH if ctype == "textarea" else TEXTFIELD_MAX_LENGTH
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
                    re.compile(pattern)
                    settings["pattern"] = pattern
                except re.error as exc:
                    self.problem(f"{where}: validate.pattern does not compile ({exc})")

    def _kind(self, kind: str, properties: dict[str, Any], where: str, settings) -> None:
        own = _KIND_PROPERTIES[kind]
        if kind == "materialLot":
            material = properties.pop("material", None)
            if not isinstance(material, str) or not material.strip():
                self.problem(f"{where}: a materialLot field needs 'material' (the expected material code)")
            else:
                settings["material"] = material.strip()
        elif kind == "equipment":
            equipment_class = properties.pop("equipmentClass", None)
            if not isinstance(equipment_class, str) or not equipment_class.strip():
                self.problem(f"{where}: an equipment field needs 'equipmentClass'")
            else:
                settings["equipment_class"] = equipment_class.strip()
        elif kind == "attachment":
            size = DEFAULT_ATTACHMENT_MAX_SIZE
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
        for name in [n for n in properties if n in set().union(*_KIND_PROPERTIES.values()) - own]:
            self.problem(f"{where}: property '{name}' does not apply to a {kind} field")
            properties.pop(name)

    def _choices(self, component, where, settings) -> None:
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
        seen: set = set()
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

    def _datetime(self, component, where, settings) -> None:
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

    # -- form-wide checks

    def _check_calculations(self) -> tuple[str, ...]:
        by_key = {f.key: f for f in self.fields}
        graph: dict[str, tuple[str, ...]] = {}
        for item in self.fields:
            if item.calculation is None:
                continue
            where = f"calculated field '{item.key}'"
            valid = True
            for ref in item.calculation.references:
                if ref not in by_key:
                    close = difflib.get_close_matches(ref, list(by_key), n=1)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    self.problem(f"{where}: the calculation refers to unknown field '{ref}'{hint}")
                    valid = False
                elif by_key[ref].kind != "number":
                    self.problem(f"{where}: the calculation refers to '{ref}', which is not a number field")
                    valid = False
            if valid:
                graph[item.key] = tuple(r for r in item.calculation.references if by_key[r].is_calculated)

        order: list[str] = []
        state: dict[str, str] = {}
        reported: set[frozenset] = set()

        def visit(key: str, trail: list[str]) -> None:
            if state.get(key) == "done":
                return
            if state.get(key) == "active":
                cycle = trail[trail.index(key) :] + [key]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    self.problem(f"calculated fields depend on each other in a cycle: {' -> '.join(cycle)}")
                return
            state[key] = "active"
            for ref in graph.get(key, ()):
                if ref in graph:
                    visit(ref, trail + [key])
            state[key] = "done"
            order.append(key)

        for key in graph:
            visit(key, [])
        return tuple(order)

    def _resolve_form_settings(self) -> tuple[str, bool, str | None]:
        meaning = DEFAULT_SIGNATURE_MEANING
        if "signatureMeaning" in self.form_settings:
            raw, where = self.form_settings["signatureMeaning"]
            if raw not in SIGNATURE_MEANINGS:
                self.problem(f"{where}: signatureMeaning must be one of {', '.join(SIGNATURE_MEANINGS)}, not {raw!r}")
            else:
                meaning = raw
        witness_required = False
        if "witnessRequired" in self.form_settings:
            raw, where = self.form_settings["witnessRequired"]
            witness_required = self._flag(raw, "witnessRequired", where)
        witness_role = None
        if "witnessRole" in self.form_settings:
            raw, where = self.form_settings["witnessRole"]
            if not isinstance(raw, str) or not raw.strip():
                self.problem(f"{where}: witnessRole must be a role name")
            elif not witness_required:
                self.problem(f'{where}: witnessRole is set but witnessRequired is not "true"')
            else:
                witness_role = raw.strip()
        return meaning, witness_required, witness_role
