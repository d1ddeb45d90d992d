"""Things people and equipment report on a batch outside the step path, each raised as an
exception for review: an operator's "record an event" from any task page (a documentation,
process, equipment, material or safety event) and an equipment alarm.

Each report is one transaction: lock the batch, replay a repeated ``Idempotency-Key``,
raise the exception (``engine.quality.exceptions.raise_in``: rule-set severity, audit,
outbox), store the answer. The batch is locked *before* the replay check, so two
concurrent submits of one key queue up and the second gets the first's answer — one
exception, never two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import Conflict, InvalidInput
from ..finite import check_finite
from ..idempotency import Outcome, remember, replay
from ..models import Batch, Step
from ..quality import exceptions as qx
from ..runtime import Runtime
from ..users import Person
from ..vocabulary import BatchState, ExceptionCategory
from .descriptions import describe_exception
from .inputs import _text_problem, check_identifier
from .unit_of_work import find_batch

EVENT_KINDS = ("documentation", "process", "equipment", "material", "safety")
MAX_DESCRIPTION = 2000
MAX_TEXT = 200
#: an event is recorded while the batch runs, waits on hold, or awaits review
OPEN_STATES = (BatchState.RUNNING, BatchState.HELD, BatchState.COMPLETE)


def text(value: Any, what: str, *, limit: int, required: bool = True) -> str | None:
    """Human text: a string, not blank when required, at most ``limit`` characters, no
    control characters other than line breaks and tabs."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{what} is required (text)", code=f"{what}_invalid")
    if len(value) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters", code=f"{what}_invalid")
    problem = _text_problem(value.replace("\n", " ").replace("\r", " ").replace("\t", " "))
    if problem or "\x00" in value:
        raise InvalidInput(f"{what} {problem or 'contains NUL'}", code=f"{what}_invalid")
    return value.strip()


def once(
    rt: Runtime,
    batch_id: str,
    scope: str,
    key: str | None,
    request: dict[str, Any],
    act: Callable[[Session, Batch], dict[str, Any]],
) -> Outcome:
    """Run ``act`` on the locked batch in one transaction, answered once per key."""
    if key is not None:
        check_identifier(key, "idempotency_key")
    with rt.transaction() as s:
        batch = find_batch(s, batch_id, lock=True)
        if key:
            stored = replay(s, scope, key, request)
            if stored is not None:
                return stored
        if batch.state not in OPEN_STATES:
            raise Conflict(
                f"batch {batch_id} is {batch.state}: nothing more is recorded on it",
                code=f"batch_{batch.state}",
                details={"state": batch.state},
            )
        outcome = Outcome(201, act(s, batch))
        if key:
            remember(s, scope, key, request, outcome)
        return outcome


def _step_seq(s: Session, batch: Batch, step_seq: Any) -> int | None:
    if step_seq is None:
        return None
    if isinstance(step_seq, bool) or not isinstance(step_seq, int) or step_seq < 1:
        raise InvalidInput("step_seq is a positive whole number", code="step_seq_invalid")
    if s.scalars(select(Step.id).where(Step.batch_id == batch.id, Step.seq == step_seq)).first() is None:
        raise InvalidInput(f"batch {batch.batch_id} has no step {step_seq}", code="step_seq_invalid")
    return step_seq


def record_event(
    rt: Runtime,
    batch_id: str,
    *,
    kind: Any,
    description: Any,
    person: Person,
    step_seq: Any = None,
    task_id: Any = None,
    idempotency_key: str | None = None,
) -> Outcome:
    """An operator records an event on the batch (from a task page): ``event.<kind>``."""
    if kind not in EVENT_KINDS:
        raise InvalidInput(f"kind is one of {', '.join(EVENT_KINDS)}", code="kind_invalid")
    description = text(description, "description", limit=MAX_DESCRIPTION)
    if task_id is not None:
        task_id = check_identifier(task_id, "task_id")
    request = {"kind": kind, "description": description, "step_seq": step_seq, "task_id": task_id}

    def act(s: Session, batch: Batch) -> dict[str, Any]:
        seq = _step_seq(s, batch, step_seq)
        first_line = (description or "").splitlines()[0][:200]
        exc = qx.raise_in(
            rt,
            s,
            batch,
            category=ExceptionCategory(f"event.{kind}"),
            message=f"{kind} event recorded by {person.username}: {first_line}",
            raised_by=person.username,
            step_seq=seq,
            details={"description": description, "task_id": task_id, "printed_name": person.printed_name},
        )
        return {"batch_id": batch.batch_id, "exception": describe_exception(exc)}

    return once(rt, batch_id, f"event:{batch_id}|user:{person.username}", idempotency_key, request, act)


SEVERITY_HINTS = ("low", "medium", "high", "critical")


def record_alarm(
    rt: Runtime,
    batch_id: str,
    *,
    source: Any,
    tag: Any,
    message: Any,
    value: Any = None,
    limits: Any = None,
    severity: Any = None,
    reporter: str,
    idempotency_key: str | None = None,
) -> Outcome:
    """Equipment reports an alarm on the batch: ``equipment.alarm``. The equipment's
    severity is a hint kept in details; the rule set decides the exception's severity,
    and a ``critical`` hint marks it critical."""
    source = text(source, "source", limit=MAX_TEXT)
    tag = text(tag, "tag", limit=MAX_TEXT, required=False)
    message = text(message, "message", limit=MAX_DESCRIPTION)
    if severity is not None and severity not in SEVERITY_HINTS:
        raise InvalidInput(f"severity is one of {', '.join(SEVERITY_HINTS)}", code="severity_invalid")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        raise InvalidInput("value is a number or a short text", code="value_invalid")
    if isinstance(value, str):
        value = text(value, "value", limit=MAX_TEXT)
    if limits is not None:
        if not isinstance(limits, dict) or len(limits) > 10:
            raise InvalidInput("limits is an object of at most 10 named numbers", code="limits_invalid")
        for name, bound in limits.items():
            if not isinstance(name, str) or len(name) > 40 or _text_problem(name):
                raise InvalidInput("limits are named by short texts", code="limits_invalid")
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))):
                raise InvalidInput(f"limit {name[:40]!r} is a number", code="limits_invalid")
    check_finite({"value": value, "limits": limits}, "alarm")
    request = {
        "source": source,
        "tag": tag,
        "message": message,
        "value": value,
        "limits": limits,
        "severity": severity,
    }

    def act(s: Session, batch: Batch) -> dict[str, Any]:
        exc = qx.raise_in(
            rt,
            s,
            batch,
            category=ExceptionCategory.EQUIPMENT_ALARM,
            message=f"alarm from {source}{'/' + tag if tag else ''}: {(message or '').splitlines()[0][:200]}",
            raised_by=reporter,
            parameter=tag,
            value=value,
            limits=limits,
            details={"source": source, "tag": tag, "alarm": message, "severity_hint": severity},
            critical=severity == "critical",
        )
        return {"batch_id": batch.batch_id, "exception": describe_exception(exc)}

    return once(rt, batch_id, f"alarm:{batch_id}|user:{reporter}", idempotency_key, request, act)
