"""Control charts of one recipe step across batches: a parameter's values or the step's
durations (oldest first), with the active model's centre and limits, the recipe's own
alert/action limits of the field, the rules each point broke, which batches the model was
trained on, and the current batch highlighted; the names people see (step and field
names); and per step and field whether a model watches it or why not (``coverage``).

The equipment time series of one batch's unit procedure is ``analytics.equipment_chart``."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from engine.bpmn.safe_xml import BPMN_NS, parse_xml
from engine.errors import NotFound
from engine.runtime import Runtime

from .batch_record import StepPoint, as_number, recipe_versions, step_points
from .catalogue import DURATION, DURATION_KIND, UNIVARIATE, active_models, describe_model
from .store import ModelCard

BPMN = "{" + BPMN_NS["bpmn"] + "}"


def trend(
    rt: Runtime, recipe: str, bpmn_id: str, parameter: str, *, batch: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """The values of one step parameter across batches (oldest first, at most ``limit``),
    with the active model's centre and limits and the rules each point broke (run rules
    evaluated over the points shown, in order)."""
    with rt.transaction() as s:
        if not recipe_versions(s, recipe):
            raise NotFound(f"recipe {recipe!r} not found", code="recipe_not_found")
        models = active_models(s, recipe, bpmn_id, parameter, UNIVARIATE)
        model = models[0] if models else None
        pts = [p for p in step_points(s, recipe, bpmn_id=bpmn_id) if as_number(p.values.get(parameter)) is not None]
        pts = _keep_current(pts, batch, limit)
        values = [as_number(p.values[parameter]) for p in pts]
        rules_by_row: dict[int, list[int]] = defaultdict(list)
        if model is not None and values:
            monitor = ModelCard.from_dict(model.card).monitor()
            for v in monitor.rule_violations(np.array([[v] for v in values])):
                rules_by_row[v.row].append(v.rule)
        trained = set(model.card.get("training_batch_ids", [])) if model else set()
        spec = field_of(s, recipe, bpmn_id, parameter)
        limits = spec["limits"] if spec else {}
        points = []
        for i, (p, v) in enumerate(zip(pts, values)):
            point = _describe_point(p, v, rules_by_row.get(i, []), p.batch_id in trained, batch)
            point["recipe_level"] = recipe_level(v, limits)
            points.append(point)
        return {
            "recipe": recipe,
            "bpmn_id": bpmn_id,
            "parameter": parameter,
            "kind": UNIVARIATE,
            "unit": (model.unit if model else None) or (spec["unit"] if spec else None),
            "model": describe_model(model) if model else None,
            "points": points,
            "step_name": step_names(s, recipe).get(bpmn_id, bpmn_id),
            "label": spec["label"] if spec else parameter,
            "recipe_limits": limits,
            "recipe_limits_version": spec["recipe_version"] if spec else None,
        }


def durations(rt: Runtime, recipe: str, bpmn_id: str, *, batch: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Durations of one step across batches with the duration model's median and limits."""
    with rt.transaction() as s:
        if not recipe_versions(s, recipe):
            raise NotFound(f"recipe {recipe!r} not found", code="recipe_not_found")
        models = active_models(s, recipe, bpmn_id, DURATION, DURATION_KIND)
        model = models[0] if models else None
        pts = _keep_current(step_points(s, recipe, bpmn_id=bpmn_id), batch, limit)
        flags: list[list[Any]] = [[] for _ in pts]
        if model is not None and pts:
            monitor = ModelCard.from_dict(model.card).monitor()
            X = np.array([[p.minutes] for p in pts])
            for i, (hi, lo) in enumerate(zip(monitor.too_long(X)[:, 0], monitor.too_short(X)[:, 0])):
                if hi:
                    flags[i].append("too_long")
                elif lo:
                    flags[i].append("too_short")
        trained = set(model.card.get("training_batch_ids", [])) if model else set()
        return {
            "recipe": recipe,
            "bpmn_id": bpmn_id,
            "parameter": None,
            "kind": DURATION_KIND,
            "unit": "min",
            "model": describe_model(model) if model else None,
            "points": [
                _describe_point(p, p.minutes, flags[i], p.batch_id in trained, batch) for i, p in enumerate(pts)
            ],
            "step_name": step_names(s, recipe).get(bpmn_id, bpmn_id),
            "label": "Duration",
            "recipe_limits": {},
        }


def _keep_current(pts: list[StepPoint], batch: str | None, limit: int) -> list[StepPoint]:
    """The newest ``limit`` points, always including those of ``batch``."""
    limit = max(1, min(int(limit), 1000))
    if len(pts) <= limit:
        return pts
    tail = pts[-limit:]
    if batch and not any(p.batch_id == batch for p in tail):
        mine = [p for p in pts if p.batch_id == batch]
        tail = sorted(tail[len(mine) :] + mine, key=lambda p: (p.recorded_at, p.batch_pk, p.seq))
    return tail


def _describe_point(p: StepPoint, value: float, rules: list, trained: bool, batch: str | None) -> dict[str, Any]:
    return {
        "batch_id": p.batch_id,
        "seq": p.seq,
        "recorded_at": p.recorded_at.isoformat(),
        "value": value,
        "batch_state": p.batch_state,
        "released": p.released,
        "training": trained,
        "current": bool(batch) and p.batch_id == batch,
        "rules": sorted(set(rules), key=str),
    }


# --- what the trend pages say around a chart: names, recipe limits, coverage --------------

#: recipe limits of a number field, outermost first, as the trend pages name them
RECIPE_LIMITS = (
    ("hard", "hardMin", "hardMax", "Hard limit (cannot be recorded)"),
    ("action", "actionLow", "actionHigh", "Action limit"),
    ("alert", "alertLow", "alertHigh", "Alert limit"),
)


def step_names(s: Session, recipe: str) -> dict[str, str]:
    """BPMN id -> the name people see (task names, and unit procedure names from the
    processes of the recipe's BPMN files), newest recipe version first."""
    names: dict[str, str] = {}
    for rv in sorted(recipe_versions(s, recipe).values(), key=lambda rv: -rv.version):
        for task in rv.tasks or []:
            if task.get("bpmn_id") and task.get("name"):
                names.setdefault(task["bpmn_id"], task["name"])
        for filename, xml in (rv.bpmn or {}).items():
            try:
                root = parse_xml(filename, xml)
            except Exception:  # a stored file the parser refuses names nothing
                continue
            for element in root.iter(f"{BPMN}process", f"{BPMN}callActivity"):
                key = element.get("calledElement") or element.get("id")
                if key and element.get("name"):
                    names.setdefault(key, element.get("name"))
    return names


def field_of(s: Session, recipe: str, bpmn_id: str, parameter: str) -> dict[str, Any] | None:
    """A step's number field as the newest recipe version defines it: label, unit and
    the recipe's limits (numbers), or None when no version of the step has that field."""
    from forms import load_form

    for rv in sorted(recipe_versions(s, recipe).values(), key=lambda rv: -rv.version):
        form_ids = [t.get("form") for t in rv.tasks or [] if t.get("bpmn_id") == bpmn_id and t.get("form")]
        for form_id in form_ids:
            try:
                definition = load_form(rv.forms[form_id])
            except Exception:  # a missing or broken form has no limits to draw
                continue
            for f in definition.fields:
                if f.key == parameter and f.component_type == "number":
                    return {
                        "label": f.label or f.key,
                        "unit": f.unit,
                        "critical": bool(f.critical),
                        "recipe_version": rv.version,
                        "limits": {k: float(v) for k, v in f.limits.items() if v is not None},
                    }
    return None


def field_labels(s: Session, recipe: str) -> dict[tuple[str, str], str]:
    """(BPMN id, field key) -> the field's label, for every number field of every step of
    the recipe (newest version first): one pass for a page that names many fields."""
    from forms import load_form

    labels: dict[tuple[str, str], str] = {}
    for rv in sorted(recipe_versions(s, recipe).values(), key=lambda rv: -rv.version):
        for task in rv.tasks or []:
            form = (rv.forms or {}).get(task.get("form") or "")
            if not task.get("bpmn_id") or not form:
                continue
            try:
                definition = load_form(form)
            except Exception:  # a broken form names nothing
                continue
            for f in definition.fields:
                labels.setdefault((task["bpmn_id"], f.key), f.label or f.key)
    return labels


def recipe_level(value: float, limits: dict[str, float]) -> str | None:
    """The outermost recipe limit a value lies beyond ("hard", "action", "alert"), or None
    when it is inside all of them (limits themselves pass, as in ``forms.limits``)."""
    for level, low, high, _ in RECIPE_LIMITS:
        if (low in limits and value < limits[low]) or (high in limits and value > limits[high]):
            return level
    return None


def coverage(rt: Runtime, recipe: str) -> list[dict[str, Any]]:
    """Per operator step and number field of the recipe's newest version: whether an
    active model watches it, and if not, why - how many batches have a value (released,
    and completed but not released) against the ``MIN_BATCHES`` training needs, or that
    the step repeats within a batch. Training does not store what it skipped, so this
    is worked out again from the batch record the same way training reads it."""
    from forms import load_form

    from .training import MIN_BATCHES

    with rt.transaction() as s:
        versions = recipe_versions(s, recipe)
        if not versions:
            raise NotFound(f"recipe {recipe!r} not found", code="recipe_not_found")
        newest = max(versions.values(), key=lambda rv: rv.version)
        by_step: dict[str, list[StepPoint]] = defaultdict(list)
        for p in step_points(s, recipe):
            by_step[p.bpmn_id].append(p)
        out = []
        for task in newest.tasks or []:
            if task.get("kind") != "user" or not task.get("bpmn_id"):
                continue
            bpmn_id = task["bpmn_id"]
            pts = by_step.get(bpmn_id, [])
            watched = {m.parameter for m in active_models(s, recipe, bpmn_id)}
            released = {p.batch_id for p in pts if p.released}
            trained_on = [p for p in pts if p.released]  # what training reads (released batches)
            repeated = len(trained_on) > len(released)
            fields: list[tuple[str, str, str | None]] = [("", "Duration", "min")]
            if task.get("form") in (newest.forms or {}):
                try:
                    definition = load_form(newest.forms[task["form"]])
                    fields += [
                        (f.key, f.label or f.key, f.unit) for f in definition.fields if f.component_type == "number"
                    ]
                except Exception:  # a broken form: only the duration can be watched
                    pass
            for key, label, unit in fields:
                with_value = {p.batch_id for p in pts if not key or as_number(p.values.get(key)) is not None}
                have = len(with_value & released)
                entry = {
                    "bpmn_id": bpmn_id,
                    "step_name": task.get("name") or bpmn_id,
                    "parameter": key or None,
                    "label": label,
                    "unit": unit,
                    "watched": key in watched,
                    "released_batches": have,
                    "other_batches": len(with_value) - have,
                    "needed": MIN_BATCHES,
                    "reason": None,
                }
                if not entry["watched"]:
                    if len(released) < MIN_BATCHES or (key and not repeated and have < MIN_BATCHES):
                        entry["reason"] = f"not enough history: {have} released batches, {MIN_BATCHES} needed"
                    elif key and repeated:
                        entry["reason"] = "repeats within a batch: its values follow the culture age, not the batch"
                    else:
                        entry["reason"] = "no model trained yet: QA retrains the recipe's models"
                out.append(entry)
        return out
