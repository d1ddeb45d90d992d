"""What callers hand to a batch operation — batch ids, idempotency keys, task ids,
start parameters, reasons — checked here once, the same way for every operation, before
any transaction is opened."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ..errors import InvalidInput, NotFound

MAX_ID_LEN = 100
MAX_REASON_LEN = 2000
#: what Spiff's task data may hold: ids and scalars only (the record is in ``Step``)
SCALARS = (str, int, float, bool, type(None))


def check_identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string", code=f"{what}_invalid")
    if len(value) > MAX_ID_LEN:
        raise InvalidInput(f"{what} is longer than {MAX_ID_LEN} characters", code=f"{what}_invalid")
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{what} contains control characters", code=f"{what}_invalid")
    return value


def check_parameters(parameters: Any) -> dict[str, Any]:
    """A batch's start parameters: names mapped to scalars (they become Spiff data)."""
    parameters = parameters or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters must be an object", code="parameters_invalid")
    bad = [k for k, v in parameters.items() if not isinstance(k, str) or not isinstance(v, SCALARS)]
    if bad:
        raise InvalidInput(
            "parameters must map names to scalar values",
            code="parameters_invalid",
            details={"keys": [str(k) for k in bad]},
        )
    return parameters


def require_reason(reason: Any, doing: str) -> str:
    """A supervisor's or corrector's decision is recorded with its reason (21 CFR 11.10(e)):
    no reason, no change."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(f"{doing} needs a reason", code="reason_required")
    if len(reason) > MAX_REASON_LEN:
        raise InvalidInput(f"reason is longer than {MAX_REASON_LEN} characters", code="reason_invalid")
    return reason


def task_uuid(task_id: str) -> UUID:
    """A task id as Spiff knows it; anything else names no task."""
    try:
        return UUID(str(task_id))
    except ValueError:
        raise NotFound(f"task {task_id!r} not found", code="task_not_found") from None


def scalar_data(values: dict[str, Any]) -> dict[str, Any]:
    """What goes into Spiff's task data: ids and scalars only (the record is in ``Step``)."""
    return {k: v for k, v in values.items() if isinstance(v, SCALARS)}
