"""Batchline's own task properties (``spiffworkflow:property``), read and checked in one
place: ``due`` (an ISO-8601 duration a user task may wait before it is late, see
``engine.batches.lateness``) and ``critical`` (the task's exceptions weigh more). A bad
``due`` is a problem named at recipe import, never a surprise on the floor."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from engine.errors import Problem

from .contents import all_specs

#: PnW, or PnDTnHnMnS with at least one part (integers: a due time is not that precise)
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d{1,4})W|(?:(?P<days>\d{1,4})D)?(?:T(?:(?P<hours>\d{1,5})H)?(?:(?P<minutes>\d{1,6})M)?(?:(?P<seconds>\d{1,7})S)?)?)$"
)
#: longer than a year is no due time for a step
MAX_DUE = timedelta(days=366)


def parse_due(text: Any) -> timedelta:
    """The duration of a ``due`` property; ValueError saying what is wrong otherwise."""
    if not isinstance(text, str):
        raise ValueError("due must be an ISO-8601 duration such as PT2H")
    value = text.strip()
    m = _DURATION.match(value)
    if m is None or value in ("P", "PT") or value.endswith("T"):
        raise ValueError(
            f"due {value[:40]!r} is not an ISO-8601 duration of weeks, days, hours, minutes "
            "or seconds (e.g. PT2H, P1DT4H)"
        )
    parts = {k: int(v) for k, v in m.groupdict().items() if v is not None}
    delta = timedelta(**parts)
    if delta <= timedelta(0):
        raise ValueError(f"due {value!r} is zero: a step cannot be late before it starts")
    if delta > MAX_DUE:
        raise ValueError(f"due {value!r} is longer than a year")
    return delta


def _properties(task_spec: Any) -> dict[str, Any]:
    return (getattr(task_spec, "extensions", None) or {}).get("properties") or {}


def spec_due(task_spec: Any) -> str | None:
    """A task's ``due`` property as written, or None."""
    value = _properties(task_spec).get("due")
    return str(value).strip() if value not in (None, "") else None


def spec_critical(task_spec: Any) -> bool:
    """A task marked ``critical`` (property ``critical`` = true): its exceptions weigh more."""
    return str(_properties(task_spec).get("critical") or "").strip().lower() in ("true", "1", "yes")


def property_problems(spec: Any, subprocess_specs: dict[str, Any]) -> list[Problem]:
    """One problem for every task whose ``due`` is not a usable duration."""
    out = []
    for process, ts in all_specs(spec, subprocess_specs):
        due = spec_due(ts)
        if due is None:
            continue
        try:
            parse_due(due)
        except ValueError as exc:
            out.append(Problem("due_invalid", str(exc), getattr(ts, "bpmn_id", None) or ts.name, process.file))
    return out
