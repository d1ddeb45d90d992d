"""Checking one scanned lot or equipment id as the operator leaves the field, before any
password: the same checks the step's transaction makes, asked early.

Why: a quarantined lot or a dirty vessel used to be reported only after the operator had
typed their password and signed — the whole form came back refused. Now the task page
asks here as the field is left and says at once what is wrong, in the operator's words.

What is asked, in order (each refusal is the step path's own): the batch runs, the task
waits and the caller may complete it (``before_signing.may_complete``: assignment, role,
qualifications); the field is a scanned field of the task's form; the id passes its own
checks (type, length, format) and the plant's registries (``step_values.RegistryLookups``
with the task's ``logbook`` purpose: released, unexpired lot of the right material;
equipment of the right class, clean, calibrated, free or already this batch's).

Nothing is written and nothing is reserved: the answer can change before the step is
signed, so the step's transaction checks everything again under the batch lock. An
unknown id says "not found" and nothing else; the answer says no more than the task page
and a refused submission already would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forms import compile_form

from ..bpmn.properties import spec_logbook
from ..errors import InvalidInput
from ..runtime import Runtime
from ..step_values import RegistryLookups
from ..users import Person
from .before_signing import may_complete
from .tasks import ready_user_task
from .unit_of_work import find_batch, live_workflow

#: the longest id looked at (lot and equipment ids are at most 100 characters)
MAX_SCAN_LENGTH = 200
MAX_KEY_LENGTH = 100


@dataclass(frozen=True)
class ScanAnswer:
    """Whether the scanned id can be used in this field of this task, and if not why."""

    ok: bool
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "field": self.field, "message": self.message}


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def check_scan(rt: Runtime, batch_id: str, task_id: str, key: Any, value: Any, person: Person) -> ScanAnswer:
    """Can ``value`` be scanned into field ``key`` of task ``task_id`` by ``person`` now?
    Refused (403/404/409, as a submission would be) when the person may not complete the
    task; 422 ``scan_field_invalid`` for a field that is not a scanned field of its form."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidInput("field must name a scanned field of the task's form", code="scan_field_invalid")
    if not isinstance(value, str):
        raise InvalidInput("value must be the scanned id, as text", code="scan_value_invalid")
    if len(value) > MAX_SCAN_LENGTH:
        raise InvalidInput(
            f"value is longer than {MAX_SCAN_LENGTH} characters: not a lot or equipment id", code="scan_value_invalid"
        )
    plan = may_complete(rt, batch_id, task_id, person)
    definition = plan.task.get("form_definition")
    if not definition:
        raise InvalidInput("this task has no form, so nothing is scanned", code="scan_field_invalid")
    compiled = compile_form(definition)
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        with live_workflow(rt, s, batch) as entry:
            purpose = spec_logbook(ready_user_task(entry.workflow, task_id, batch_id).task_spec)
        try:
            problems = compiled.check_scan(key, value, RegistryLookups(s, purpose), batch_id)
        except KeyError:
            raise InvalidInput(
                f"the task's form has no scanned field {key[:64]!r}", code="scan_field_invalid"
            ) from None
    if problems:
        return ScanAnswer(False, key, " ".join(_sentence(p) for p in problems))
    return ScanAnswer(True, key, "Can be used here.")
