"""Numbers that enter the record are finite and fit the databases.

JSON has no NaN or Infinity, yet Python's ``json`` reads and writes them (and ``1e400``
becomes infinity); PostgreSQL's ``jsonb`` refuses them while SQLite stores them, and a
record holding one was answered as non-standard JSON that strict clients cannot read.
Every way values enter (API bodies, the CLI, batch parameters, steps without a form)
ends here; forms check their own number fields (``forms.coercion``).
"""

from __future__ import annotations

import math
from typing import Any

from .errors import InvalidInput

#: the largest integer stored or looked up (SQLite INTEGER, PostgreSQL BIGINT)
MAX_INT = 2**63 - 1


def non_finite_path(value: Any, path: str = "") -> str | None:
    """Where in ``value`` (a JSON-like value) a NaN, an infinity or an out-of-range
    integer sits, or None. Numbers in the record are finite: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "value"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return path or "value"
    if isinstance(value, dict):
        for key, item in value.items():
            found = non_finite_path(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            found = non_finite_path(item, f"{path}[{n}]")
            if found:
                return found
    return None


def check_finite(value: Any, what: str) -> Any:
    """Refuse NaN, ±Infinity and integers beyond ``MAX_INT`` anywhere in ``value``:
    422 ``number_not_finite`` naming where."""
    found = non_finite_path(value)
    if found:
        raise InvalidInput(
            f"{what}: {found} is not a finite number (NaN, Infinity and integers beyond ±{MAX_INT} are refused)",
            code="number_not_finite",
            details={"field": found},
        )
    return value
