"""The equipment time series of one batch's unit procedure as QA reads it: T² and SPE
over the hours since the unit procedure started, against the model's limits, the points
beyond a limit, which variables contributed most at each of them, and the findings the
scoring job raised from them.

The scores are the ones the API answers (``analytics.equipment.equipment_samples``);
the contributions are worked out again at the flagged points with the same model, so the
page can explain every flagged point, not only the one a finding was raised for.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sqlalchemy import select

from engine import batches
from engine.models import Batch, RecipeVersion
from engine.runtime import Runtime
from engine.vocabulary import ExceptionSource

from . import equipment
from .catalogue import active_models
from .charts import step_names
from .timeseries import TimeSeriesModel

log = logging.getLogger("batchline.analytics.equipment_chart")

#: how many variables are named per flagged point
TOP = 3


def variable_name(name: str) -> str:
    """``dissolved_o2`` -> "Dissolved o2": an equipment tag in words (tags have no labels)."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def equipment_chart(rt: Runtime, batch_id: str, unit_procedure: str) -> dict[str, Any]:
    """T², SPE, limits, flagged points with their top variables, and the findings of one
    batch's unit procedure (``NotFound`` for an unknown batch)."""
    data = equipment.equipment_samples(rt, batch_id, unit_procedure)
    entry = next((u for u in data["unit_procedures"] if u["unit_procedure"] == unit_procedure), None)
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).one()
        recipe = s.get(RecipeVersion, batch.recipe_version_id).recipe
        names = step_names(s, recipe)
        rows = active_models(s, recipe, unit_procedure, equipment.PARAMETER, equipment.KIND)
        card = rows[0].card if rows else None
        samples = [(r.t_hours, r.values) for r in equipment.samples_of(s, [batch.id], unit_procedure)]
    scores = (entry or {}).get("scores") or []
    flagged = [p for p in scores if p["t2_over"] or p["spe_over"]]
    top = _contributions(card, samples, flagged) if card and flagged else {}
    found = [
        {
            "id": e["id"],
            "title": e.get("title"),
            "message": e["message"],
            "status": e["status"],
            "created_at": e["created_at"],
            "t_hours": (e.get("details") or {}).get("t_hours"),
            "statistic": (e.get("details") or {}).get("statistic"),
            "contributions": [variable_name(v) for v in ((e.get("details") or {}).get("contributions") or {})],
        }
        for e in batches.exceptions(rt, batch_id)
        if e["source"] == ExceptionSource.TREND and str(e.get("parameter") or "").startswith(f"{unit_procedure}:")
    ]
    return {
        "batch_id": batch_id,
        "recipe": recipe,
        "unit_procedure": unit_procedure,
        "name": names.get(unit_procedure, unit_procedure),
        "model": (entry or {}).get("model"),
        "limits": (entry or {}).get("limits"),
        "samples": len(samples),
        "last_sample_hours": max((t for t, _ in samples), default=None),
        "variables": sorted({variable_name(k) for _, v in samples for k in v}),
        "scores": scores,
        "flagged": len(flagged),
        "runs": _runs(scores, top, (entry or {}).get("limits")),
        "findings": found,
    }


def _runs(scores: list[dict[str, Any]], top: dict[float, list], limits: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Consecutive grid points above a limit as one stretch: from, to, which statistics,
    how many points, the highest point (by how far beyond its limit) and the variables
    contributing most at its start and at that peak."""
    t2_limit, spe_limit = (limits or {}).get("t2"), (limits or {}).get("spe")
    runs: list[list[dict[str, Any]]] = []
    previous_over = False
    for p in scores:
        over = p["t2_over"] or p["spe_over"]
        if over and previous_over:
            runs[-1].append(p)
        elif over:
            runs.append([p])
        previous_over = over
    out = []
    for run in runs:
        peak = max(run, key=lambda p: max(p["t2"] / (t2_limit or 1.0), p["spe"] / (spe_limit or float("inf"))))
        out.append(
            {
                "start": run[0]["t_hours"],
                "end": run[-1]["t_hours"],
                "points": len(run),
                "statistics": [
                    label for key, label in (("t2_over", "T²"), ("spe_over", "SPE")) if any(p[key] for p in run)
                ],
                "peak": peak,
                "top_start": top.get(round(run[0]["t_hours"], 9), []),
                "top_peak": top.get(round(peak["t_hours"], 9), []),
            }
        )
    return out


def _contributions(card: dict[str, Any], samples: list, flagged: list[dict[str, Any]]) -> dict[float, list]:
    """Grid hour -> [(variable in words, share of the statistic in %)] for the flagged
    points; empty when the model cannot be re-read (the chart is still drawn)."""
    try:
        model = TimeSeriesModel.from_dict(card["model"])
        grid = np.asarray(card["model"]["grid"], dtype=float)
        times, X = equipment.series_of(samples, model.variables)
        result = equipment.score(model, grid, times, X)
    except Exception:  # context, never a reason the page fails
        log.exception("equipment contributions not worked out")
        return {}
    if result is None:
        return {}
    index = {round(float(t), 9): i for i, t in enumerate(result["t_hours"])}
    out: dict[float, list] = {}
    for p in flagged:
        i = index.get(round(p["t_hours"], 9))
        if i is None:
            continue
        key = "spe" if p["spe_over"] and not p["t2_over"] else "t2"
        c = np.abs(model.monitor.explain(result["z"][i : i + 1], statistic=key)[0])
        total = float(c.sum()) or 1.0
        shares = [(variable_name(model.variables[j]), round(100 * float(c[j]) / total)) for j in np.argsort(-c)[:TOP]]
        out[round(p["t_hours"], 9)] = [shares[0]] + [v for v in shares[1:] if v[1] >= 1]
    return out
