"""What a script may leave in task data, and how task data crosses to a script worker.

Task data is recorded (Spiff's serializer, the batch record's JSON), so what a script
writes must be plain data: str, bool, None, an int of at most 64 bits, a finite float,
lists and dicts (string keys) of those, plus the date and number types Batchline's
serializer stores exactly (datetime, date, timedelta, Decimal). Measured on main: a
script leaving a set, bytes, a lambda or a 4,000-digit int made the next save or
answer fail with a 500. `check_result` names the first offending element
(``summary['ok'][2] is a set``) and bounds the total size, so a doubling loop cannot
grow task data without end.

`encode`/`decode` are the wire format to and from a script worker: JSON, with the
four non-JSON types tagged.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from decimal import Decimal
from typing import Any

from .errors import EngineFault

#: results must fit a signed 64-bit integer (databases, JavaScript clients)
MAX_RESULT_INT = 2**63 - 1
_TAG = "__batchline_type__"


class ScriptResultRefused(EngineFault):
    """A script left something in task data that cannot be recorded."""

    code = "script_result_invalid"


def _describe(value: Any) -> str:
    kind = type(value).__name__
    if callable(value):
        return f"a {kind} (functions cannot be stored)"
    return f"a {kind}"


def check_result(values: dict[str, Any], *, max_bytes: int, label: str = "") -> None:
    """Refuse anything but recordable data, naming the element; also the total size."""
    budget = [max_bytes]

    def spend(n: int, where: str) -> None:
        budget[0] -= n
        if budget[0] < 0:
            raise ScriptResultRefused(
                f"script result refused: task data grew over {max_bytes:,} bytes (at {where})",
                details={"element": where, "max_bytes": max_bytes},
            )

    def refuse(where: str, why: str) -> ScriptResultRefused:
        return ScriptResultRefused(
            f"script result refused: {where} is {why}; scripts may leave only text, numbers, true/false, "
            "None, dates, and lists and dicts of those",
            details={"element": where, "problem": why},
        )

    def walk(value: Any, where: str, depth: int) -> None:
        if depth > 50:
            raise refuse(where, "nested more than 50 levels deep")
        if value is None or isinstance(value, bool):
            spend(4, where)
        elif isinstance(value, int):
            if type(value) is not int and not isinstance(value, bool):
                raise refuse(where, _describe(value))
            if abs(value) > MAX_RESULT_INT:
                raise refuse(where, f"an integer of {value.bit_length():,} bits (at most 64 bits are stored)")
            spend(8, where)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise refuse(where, f"the non-finite number {value!r}")
            spend(8, where)
        elif isinstance(value, str):
            spend(len(value) + 2, where)
        elif type(value) in (_dt.datetime, _dt.date, _dt.timedelta):
            spend(32, where)
        elif type(value) is Decimal:
            if not value.is_finite():
                raise refuse(where, f"the non-finite number {value!r}")
            spend(len(str(value)), where)
        elif type(value) in (list, tuple):
            spend(2, where)
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]", depth + 1)
        elif type(value) is dict:
            spend(2, where)
            for key, item in value.items():
                if not isinstance(key, str):
                    raise refuse(f"{where}[{key!r}]", f"a dict key that is {_describe(key)}, not text")
                spend(len(key) + 2, where)
                walk(item, f"{where}[{key!r}]", depth + 1)
        else:
            raise refuse(where, _describe(value))

    for name, value in values.items():
        walk(value, f"{label}{name}" if label else f"`{name}`", 0)


def _default(value: Any) -> Any:
    if type(value) is _dt.datetime:
        return {_TAG: "datetime", "v": value.isoformat()}
    if type(value) is _dt.date:
        return {_TAG: "date", "v": value.isoformat()}
    if type(value) is _dt.timedelta:
        return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if type(value) is Decimal:
        return {_TAG: "decimal", "v": str(value)}
    raise TypeError(f"{type(value).__name__} cannot be passed to a script")


def _hook(obj: dict[str, Any]) -> Any:
    kind = obj.get(_TAG)
    if kind is None or len(obj) != 2:
        return obj
    v = obj["v"]
    if kind == "datetime":
        return _dt.datetime.fromisoformat(v)
    if kind == "date":
        return _dt.date.fromisoformat(v)
    if kind == "timedelta":
        return _dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    if kind == "decimal":
        return Decimal(v)
    return obj


def encode(message: Any) -> bytes:
    return json.dumps(message, default=_default, allow_nan=False, separators=(",", ":")).encode()


def decode(data: bytes) -> Any:
    return json.loads(data, object_hook=_hook)
