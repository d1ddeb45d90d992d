"""A checked form: what the server validates a step against.

`load_form` (forms.loading) turns form-js JSON into a `FormDefinition`: its input
fields in display order (`FieldDefinition`, with Batchline's settings parsed), the
instructions and group headings between them, and the form-level signature and
witness settings. A definition Batchline cannot enforce is refused with
`FormDefinitionError`, listing every problem. The JSON itself is kept as plain data
and identified by the SHA-256 of its canonical form.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from forms.calculation import Calculation

JsonSource = Mapping[str, Any] | str | bytes


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
    pattern_description: str | None = None  # the pattern in users' words (patternDescription)
    subtype: str | None = None  # datetime: date / time / datetime
    material: str | None = None
    quantity_field: str | None = None  # materialLot: the number field with the quantity used
    equipment_class: str | None = None
    max_size: int | None = None
    content_types: tuple[str, ...] = ()
    matches_parameter: str | None = None  # batch parameter the value must equal (chain of identity)

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
