"""The batch record as the pages show it: one row per recorded value with its label, the
value as recorded, the current value (after corrections, from the engine's
``current_values``) and the corrections that led there, plus the links to correct it.

Shared by the batch page, the step page and the correction page, so a value reads the
same wherever it is shown.
"""

from __future__ import annotations

from typing import Any

from flask import url_for

from engine import duties, recipes
from engine.errors import NotFound
from engine.vocabulary import StepKind
from forms import render_data

from ..runtime import runtime
from . import entry, times


def form_fields(batch: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """form id -> field key -> rendering data, for labels and option names in the record."""
    try:
        rv = recipes.get_version(runtime(), batch["recipe_version_id"])
    except NotFound:
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for form_id, definition in (rv.forms or {}).items():
        try:
            out[form_id] = {f["key"]: f for f in entry.input_fields(render_data(definition))}
        except Exception:  # an old definition the forms package no longer reads: show raw keys
            out[form_id] = {}
    return out


def _shown(value: Any, field: dict[str, Any] | None, unit: str | None) -> str:
    """``entry.display_value``, and a date or date-time field's ISO text as people read it
    ("1 Dec 2026", "1 Dec 2026, 10:04:05 CET" in the site's zone); the record keeps ISO."""
    if (field or {}).get("type") == "datetime" and isinstance(value, str) and value:
        sub = (field or {}).get("subtype") or "date"
        if sub in ("date", "datetime"):
            zone = times.site_zone(runtime().settings.site_timezone)
            if sub == "date" and len(value) == 10:
                value = value + "T00:00:00+00:00"  # a day of the calendar, not an instant
            text = times.when_text(value, zone, "date" if sub == "date" else "seconds")
            return f"{text} {unit}" if unit else text
    return entry.display_value(value, field, unit)


def record_rows(step: dict[str, Any], fields: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per recorded value: label, value as recorded, current value, corrections."""
    values = step.get("values") or {}
    current = step.get("current_values") or values
    units = step.get("units") or {}
    corrections: dict[str, list] = {}
    for c in step.get("corrections") or []:
        corrections.setdefault(c.get("field"), []).append(c)
    keys = [k for k in fields if k in values or k in current] + [
        k for k in list(values) + list(current) if k not in fields
    ]
    rows = []
    for key in dict.fromkeys(keys):
        field = fields.get(key)
        unit = units.get(key) or (field or {}).get("unit")
        for c in corrections.get(key, []):
            c["old_text"] = _shown(c.get("old"), field, unit)
            c["new_text"] = _shown(c.get("new"), field, unit)
            c["old_file"] = c.get("old") if entry.is_attachment(c.get("old")) else None
            c["new_file"] = c.get("new") if entry.is_attachment(c.get("new")) else None
        rows.append(
            {
                "key": key,
                "label": (field or {}).get("label") or key,
                "recorded": _shown(values.get(key), field, unit),
                "current": _shown(current.get(key), field, unit),
                "recorded_file": values.get(key) if entry.is_attachment(values.get(key)) else None,
                "current_file": current.get(key) if entry.is_attachment(current.get(key)) else None,
                "corrected": key in corrections,
                "corrections": corrections.get(key, []),
                "correctable": not (field or {}).get("readonly"),
            }
        )
    return rows


def correcting_roles(step: dict[str, Any]) -> frozenset[str]:
    """Who may correct this recorded step: its task's role and the meanings its performer
    signed (``engine.duties``; the engine decides it again)."""
    meanings = [s["meaning"] for s in step.get("signatures") or [] if s.get("role") == "performer"]
    return duties.correcting_roles(step.get("role") or "", meanings)


def may_correct_step(person, step: dict[str, Any]) -> bool:
    return bool(set(person.roles) & correcting_roles(step))


def add_rows(
    step: dict[str, Any],
    forms_by_id: dict[str, dict[str, dict[str, Any]]],
    batch_id: str | None = None,
    may_correct: bool = False,
) -> None:
    """Put the step's record rows (and, where the person may correct, the links) on it."""
    step["rows"] = record_rows(step, forms_by_id.get(step.get("form") or "", {}))
    step["labels"] = {row["key"]: row["label"] for row in step["rows"]}
    step["correct_url"] = None
    if (
        may_correct
        and batch_id
        and step.get("kind") == StepKind.USER_TASK
        and any(r["correctable"] for r in step["rows"])
    ):
        step["correct_url"] = url_for("ui.correct_page", batch_id=batch_id, seq=step["seq"])
        for row in step["rows"]:
            if row["correctable"]:
                row["correct_url"] = url_for("ui.correct_page", batch_id=batch_id, seq=step["seq"], field=row["key"])
