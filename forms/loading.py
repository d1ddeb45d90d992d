"""Loading a form: walk form-js JSON into a checked `FormDefinition`.

Forms are drawn in the form-js editor and stored with the recipe version; this module
turns that JSON into a `FormDefinition` the server can validate against. Everything
the browser would enforce must also be enforceable here, because the browser is never
trusted: so a definition that relies on something we cannot check on the server
(FEEL conditions, dynamic option lists, unknown component types, a misspelt Batchline
property) is refused when the form is loaded, with every problem listed, rather than
silently weakened on the shop floor.

Batchline's own settings live in form-js's custom ``properties`` map (string values);
see docs/forms.md for the convention. This module walks the components (groups,
instructions, inputs) and checks what spans the form (calculations that read other
fields, the signature and witness settings); `forms.field_settings` reads each input.
"""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Collection, Mapping
from typing import Any

from forms.calculation import FUNCTION_ARITY
from forms.field_settings import Component, FieldSettingsReader, quantity_field_problems
from forms.form import (
    FieldDefinition,
    FormDefinition,
    FormDefinitionError,
    GroupHeading,
    Instructions,
    JsonSource,
    definition_hash,
    parse_source,
)
from forms.vocabulary import (
    DEFAULT_SIGNATURE_MEANING,
    FORM_ID_PATTERN,
    FORM_PROPERTIES,
    KEY_PATTERN,
    KNOWN_PROPERTIES,
    MAX_GROUP_DEPTH,
    SIGNATURE_MEANINGS,
    SUPPORTED_TYPES,
)


def load_form(source: JsonSource) -> FormDefinition:
    """Load a form-js definition (dict or JSON text); raise FormDefinitionError if unusable."""
    data = parse_source(source)
    return _FormLoader(data).load()


def _is_feel(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("=")


class _FormLoader(FieldSettingsReader):
    """Walks one definition, collecting every problem before refusing it."""

    def __init__(self, data: dict[str, Any]):
        super().__init__()
        self.data = data
        self.fields: list[FieldDefinition] = []
        self.items: list[FieldDefinition | Instructions | GroupHeading] = []
        self.instructions: list[str] = []
        self.form_settings: dict[str, tuple[Any, str]] = {}  # name -> (value, where)
        self.seen_keys: dict[str, str] = {}

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
                    if name in FORM_PROPERTIES:
                        self._form_setting(name, value, "the form properties")
                    elif not name.startswith("x-"):
                        self.problem(self._unknown_property("the form properties", name, FORM_PROPERTIES))

        self._components(components, path="components", group=None, depth=0)
        if not self.fields and not self.problems:
            self.problem("the form has no input fields")

        order = self._check_calculations()
        for problem in quantity_field_problems(self.fields):
            self.problem(problem)
        meaning, witness_required, witness_role = self._resolve_form_settings()
        if self.problems:
            raise FormDefinitionError(self.problems, form_id)
        assert isinstance(form_id, str)  # a missing or malformed id is one of the problems above
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

    def _components(self, components: list[Any], path: str, group: str | None, depth: int) -> None:
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

    def _properties(self, component: Component, where: str) -> dict[str, Any]:
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
    def _unknown_property(where: str, name: str, known: Collection[str]) -> str:
        message = f"{where}: unknown property '{name}'"
        close = difflib.get_close_matches(name, sorted(known), n=1)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        return message + "; properties for other tools must start with 'x-'"

    def _settings_only(self, properties: dict[str, Any], where: str, allowed: Collection[str] = ()) -> None:
        for name, value in properties.items():
            if name in FORM_PROPERTIES:
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

    def _group(
        self, component: Component, properties: dict[str, Any], where: str, group: str | None, depth: int
    ) -> None:
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

    def _text(self, component: Component, properties: dict[str, Any], where: str, group: str | None) -> None:
        self._settings_only(properties, where)
        text = component.get("text", "")
        if not isinstance(text, str):
            self.problem(f'{where}: a text component\'s "text" must be markdown text')
            return
        if text.strip():
            self.instructions.append(text)
            self.items.append(Instructions(markdown=text, group=group))

    def _input(self, component: Component, properties: dict[str, Any], where: str, group: str | None) -> None:
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
            if name in FORM_PROPERTIES:
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
        reported: set[frozenset[str]] = set()

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
