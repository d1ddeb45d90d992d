"""Batchline's own task properties (``spiffworkflow:property``), read and checked in one
place: ``due`` (an ISO-8601 duration a user task may wait before it is late, see
``engine.batches.lateness``), ``critical`` (the task's exceptions weigh more) and ``qual``
(the qualifications a person needs to perform or witness it, ``engine.qualifications``)
and ``logbook`` (the kind of equipment logbook entry the task writes for each scanned
equipment, ``engine.equipment_logbook``) and ``produces`` / ``producedQuantity`` /
``producedLot`` (the material lot the task produces, ``engine.lot_movements``). A bad
``due``, ``qual`` or ``logbook`` is a problem named at recipe import, never a surprise on
the floor."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
#: a qualification's name: lower-case words joined by - . or _ (``aseptic-gowning``)
QUAL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: what an equipment logbook entry records (a task's ``logbook`` property)
LOGBOOK_KINDS = ("calibration", "daily_check", "cip", "sip", "line_clearance", "use")


def parse_names(value: Any) -> tuple[str, ...]:
    """A task's ``qual`` property: one qualification name or several separated by commas
    (``engine.qualifications``); ValueError saying what is wrong otherwise."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    if not isinstance(value, str):
        raise ValueError("qual must be a qualification name such as aseptic-gowning")
    names = []
    for part in value.split(","):
        if not QUAL_NAME.match(part.strip()):
            raise ValueError(
                f"qual {part.strip()[:40]!r} is not a qualification name (lower-case letters, digits, - . _)"
            )
        names.append(part.strip())
    return tuple(dict.fromkeys(names))


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


def spec_quals(task_spec: Any) -> tuple[str, ...]:
    """The qualifications a task needs (its ``qual`` property: one name, or several
    separated by commas); a malformed one is refused at import, so here it is none."""
    try:
        return parse_names(_properties(task_spec).get("qual"))
    except ValueError:
        return ()


def spec_logbook(task_spec: Any) -> str | None:
    """The kind of logbook entry a task writes (its ``logbook`` property), or None; an
    unknown kind is refused at import, so here it is none."""
    value = str(_properties(task_spec).get("logbook") or "").strip()
    return value if value in LOGBOOK_KINDS else None


def _logbook_problem(task_spec: Any) -> str | None:
    value = _properties(task_spec).get("logbook")
    if value in (None, "") or str(value).strip() in LOGBOOK_KINDS:
        return None
    return f"logbook {str(value)[:40]!r} is not a logbook entry kind ({', '.join(LOGBOOK_KINDS)})"


#: a material code (``MAB-01-HCCF``) and a form field key
MATERIAL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FIELD_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Produces:
    """What a task produces: a lot of ``material``, its quantity from the number field
    ``quantity_field``, its id from the text field ``lot_field`` (or made from the batch id)."""

    material: str
    quantity_field: str
    lot_field: str | None = None


def parse_produces(properties: dict[str, Any]) -> Produces | None:
    """A task's ``produces`` (material code), ``producedQuantity`` (field key) and optional
    ``producedLot`` (field key); None without ``produces``; ValueError saying what is wrong."""
    material = str(properties.get("produces") or "").strip()
    quantity = str(properties.get("producedQuantity") or "").strip()
    lot = str(properties.get("producedLot") or "").strip() or None
    if not material:
        if quantity or lot:
            raise ValueError("producedQuantity and producedLot need produces (the material code)")
        return None
    if not MATERIAL_CODE.match(material):
        raise ValueError(f"produces {material[:40]!r} is not a material code")
    if not FIELD_KEY.match(quantity):
        raise ValueError("produces needs producedQuantity: the key of the number field with the quantity produced")
    if lot is not None and not FIELD_KEY.match(lot):
        raise ValueError(f"producedLot {lot[:40]!r} is not a form field key")
    return Produces(material, quantity, lot)


def spec_produces(task_spec: Any) -> Produces | None:
    """What a task produces, or None (a malformed property is refused at import)."""
    try:
        return parse_produces(_properties(task_spec))
    except ValueError:
        return None


def property_problems(spec: Any, subprocess_specs: dict[str, Any]) -> list[Problem]:
    """One problem for every task whose ``due`` is not a usable duration, whose ``qual``
    is not a list of qualification names or whose ``logbook`` is not a logbook entry kind."""
    out = []
    for process, ts in all_specs(spec, subprocess_specs):
        logbook = _logbook_problem(ts)
        if logbook is not None:
            out.append(Problem("logbook_invalid", logbook, getattr(ts, "bpmn_id", None) or ts.name, process.file))
        try:
            parse_produces(_properties(ts))
        except ValueError as exc:
            out.append(Problem("produces_invalid", str(exc), getattr(ts, "bpmn_id", None) or ts.name, process.file))
        try:
            parse_names(_properties(ts).get("qual"))
        except ValueError as exc:
            out.append(Problem("qual_invalid", str(exc), getattr(ts, "bpmn_id", None) or ts.name, process.file))
        due = spec_due(ts)
        if due is None:
            continue
        try:
            parse_due(due)
        except ValueError as exc:
            out.append(Problem("due_invalid", str(exc), getattr(ts, "bpmn_id", None) or ts.name, process.file))
    return out
