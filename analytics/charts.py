"""Control charts of one recipe step across batches: a parameter's values or the step's
durations (oldest first), with the active model's centre and limits, the rules each point
broke, which batches the model was trained on, and the current batch highlighted."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from engine.errors import NotFound
from engine.runtime import Runtime

from .batch_record import StepPoint, as_number, recipe_versions, step_points
from .catalogue import DURATION, DURATION_KIND, UNIVARIATE, active_models, describe_model
from .store import ModelCard


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
        return {
            "recipe": recipe,
            "bpmn_id": bpmn_id,
            "parameter": parameter,
            "kind": UNIVARIATE,
            "unit": model.unit if model else None,
            "model": describe_model(model) if model else None,
            "points": [
                _describe_point(p, v, rules_by_row.get(i, []), p.batch_id in trained, batch)
                for i, (p, v) in enumerate(zip(pts, values))
            ],
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
