"""What validating one step gives the engine: a `ValidatedStep` to record, or `FormRejected`.

A rejection refuses the whole step with messages an operator can act on, field by
field (code ``form_invalid``, HTTP 422); nothing is stored. An accepted step carries
JSON-safe values, units, display text, server-recomputed calculated fields, and the
alert/action limit findings the engine turns into exceptions for review by exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forms.limits import LimitFinding


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
