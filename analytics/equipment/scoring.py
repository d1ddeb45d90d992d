"""Scoring a running batch's equipment time series: the ``score_samples`` job puts the
samples received so far on the active model's grid and raises a trend exception when T²
or SPE goes beyond its limit; the same scores, per grid point, for the batch's chart.

Only while the unit procedure runs, from its own start: a unit procedure's model learned
its own equipment's trajectory from that unit procedure's start (``t_hours``). Samples
labelled with a unit procedure that has not started yet - a bioreactor sending
"production" data while the batch is still in media prep - or received before its start
or after its end are kept but not scored: against that model they would only be noise
(the defect seen in the demo: a production T² finding during media prep). When the unit
procedure runs is the engine's record (``task_time``: its call activity's start and end;
the recipe's top process runs from the batch start).

Exactly once: a finding's key is the batch, unit procedure, statistic, how many findings
of that statistic came before and the model; the database holds it unique, so two workers
scoring the same samples raise one finding.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import batches
from engine.batches.task_times import UnitProcedureRun, unit_procedure_runs
from engine.errors import NotFound
from engine.models import Batch, BatchException, RecipeVersion, TrendModel
from engine.runtime import Runtime
from engine.vocabulary import ExceptionSource, ExceptionStatus, LimitLevel

from ..catalogue import active_models, describe_model
from ..timeseries import TimeSeriesModel, align
from .samples import samples_of, series_of
from .training import KIND, PARAMETER

STATISTICS = (("T2", "t2", "T²"), ("SPE", "spe", "SPE"))


def _model_of(row: TrendModel) -> tuple[TimeSeriesModel, np.ndarray]:
    data = row.card["model"]
    return TimeSeriesModel.from_dict(data), np.asarray(data["grid"], dtype=float)


def score(model: TimeSeriesModel, grid: np.ndarray, times: np.ndarray, X: np.ndarray) -> dict[str, Any] | None:
    """T² and SPE of a batch's samples on the grid points it has reached (None when it
    has reached none), with the limits."""
    if len(times) == 0:
        return None
    reached = grid[grid <= times[-1] + 1e-9]
    if len(reached) == 0:
        return None
    z = model.residuals(align(times, X, reached))
    monitor = model.monitor
    spe_limit = monitor.spe_limit_ * monitor.threshold_ if monitor.spe_limit_ > 0 else None
    return {
        "t_hours": reached,
        "z": z,
        "t2": monitor.t2(z),
        "spe": monitor.spe(z),
        "t2_limit": monitor.t2_limit_ * monitor.threshold_,
        "spe_limit": spe_limit,
    }


def _active_model(s: Session, recipe: str, unit_procedure: str) -> TrendModel | None:
    """The unit procedure's time-series model in force: an active version of an
    approved training run (``catalogue.active_models``), never a pending one."""
    rows = active_models(s, recipe, unit_procedure, parameter=PARAMETER, kind=KIND)
    return max(rows, key=lambda m: m.version) if rows else None


def score_samples(rt: Runtime, batch_id: str, task_id: Any, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``score_samples`` job: score the batch's samples of one unit procedure so far
    against the active model; for T² and for SPE, raise an exception for the newest point
    beyond its limit - unless one for this batch, unit procedure and statistic is still
    open, or one was raised for that point or a later one already."""
    up = str(payload["unit_procedure"])
    findings = []
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            return []
        rv = s.get(RecipeVersion, batch.recipe_version_id)
        row = _active_model(s, rv.recipe, up)
        if row is None:
            return []
        run = current_run(rt, s, batch, rv, up)
        if run is None:
            return []  # not running: not scored against its model (see the module note)
        model, grid = _model_of(row)
        times, X = series_of(
            [(r.t_hours, r.values) for r in in_run(samples_of(s, [batch.id], up), run)], model.variables
        )
        result = score(model, grid, times, X)
        if result is None:
            return []
        earlier = list(
            s.scalars(
                select(BatchException).where(
                    BatchException.batch_id == batch.id,
                    BatchException.source == ExceptionSource.TREND,
                    BatchException.parameter.in_([f"{up}:{name}" for name, _, _ in STATISTICS]),
                )
            )
        )
        for name, key, label in STATISTICS:
            parameter, limit = f"{up}:{name}", result[f"{key}_limit"]
            over = np.nonzero(result[key] > limit)[0] if limit is not None else []
            if not len(over):
                continue
            i = int(over[-1])
            t = float(result["t_hours"][i])
            mine = [e for e in earlier if e.parameter == parameter]
            if any(e.status == ExceptionStatus.OPEN for e in mine) or any(
                (e.details or {}).get("t_hours", -1) >= t for e in mine
            ):
                continue
            contributions = model.monitor.explain(result["z"][i : i + 1], statistic=key)[0]
            top = {model.variables[j]: float(contributions[j]) for j in np.argsort(-np.abs(contributions))[:3]}
            value = float(result[key][i])
            message = (
                f"equipment time series of {up} out of trend at {t:.4g} h: {label} {value:.4g} beyond its "
                f"limit {limit:.4g}; most from {', '.join(top)} (model v{row.version})"
            )
            details = {
                "t_hours": t,
                "statistic": name,
                "value": value,
                "limit": float(limit),
                "contributions": top,
                "rule": name,
                "bpmn_id": up,
                "unit_procedure": up,
                "samples": int(len(times)),
                "unit_procedure_started_at": run.started_at.isoformat(),
                "model_id": row.id,
                "model_version": row.version,
                "training_batches": len(row.card.get("training_batch_ids") or []),
            }
            key = f"oot|{batch.id}|{up}|{name}|finding {len(mine) + 1}|model {row.id}"
            findings.append({"parameter": parameter, "message": message, "details": details, "finding_key": key})
    return [
        batches.raise_exception(rt, batch_id, source=ExceptionSource.TREND, severity=LimitLevel.ALERT, **f)
        for f in findings
    ]


def current_run(
    rt: Runtime, s: Session, batch: Batch, rv: RecipeVersion, unit_procedure: str
) -> UnitProcedureRun | None:
    """The unit procedure's latest run in the batch, None when it never started."""
    top, _ = rt.store.specs(s, rv.spec_hash)
    runs = unit_procedure_runs(s, batch, unit_procedure, top_process=top.name)
    return runs[-1] if runs else None


def running_since(rt: Runtime, batch_id: str, unit_procedure: str) -> str | None:
    """When the unit procedure's current run started (ISO 8601), None while it is not
    running: what equipment (and the demo's simulated bioreactor) waits for."""
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            return None
        run = current_run(rt, s, batch, s.get(RecipeVersion, batch.recipe_version_id), unit_procedure)
        return run.started_at.isoformat() if run is not None and run.ended_at is None else None


def in_run(rows: list, run: UnitProcedureRun) -> list:
    """The sample rows received while ``run`` ran (from its start to its end)."""
    return [
        r for r in rows if r.recorded_at >= run.started_at and (run.ended_at is None or r.recorded_at <= run.ended_at)
    ]


def equipment_samples(rt: Runtime, batch_id: str, unit_procedure: str | None = None) -> dict[str, Any]:
    """A batch's equipment samples per unit procedure, with T², SPE and limits on the
    model's grid when a model is active."""
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            raise NotFound(f"batch {batch_id!r} not found", code="batch_not_found")
        rv = s.get(RecipeVersion, batch.recipe_version_id)
        recipe = rv.recipe
        by_up: dict[str, list] = defaultdict(list)
        for r in samples_of(s, [batch.id], unit_procedure):
            by_up[r.unit_procedure].append(r)
        out = []
        for up, rows in sorted(by_up.items()):
            row = _active_model(s, recipe, up)
            entry: dict[str, Any] = {
                "unit_procedure": up,
                "model": describe_model(row) if row else None,
                "limits": None,
                "samples": [
                    {
                        "t_hours": r.t_hours,
                        "values": r.values,
                        "source": r.source,
                        "recorded_at": r.recorded_at.isoformat(),
                    }
                    for r in rows
                ],
                "scores": [],
            }
            run = current_run(rt, s, batch, rv, up)
            entry["running_since"] = run.started_at.isoformat() if run else None
            if row is not None and run is not None:
                model, grid = _model_of(row)
                scored = [(r.t_hours, r.values) for r in in_run(rows, run)]
                result = score(model, grid, *series_of(scored, model.variables))
                if result is not None:
                    t2_lim, spe_lim = result["t2_limit"], result["spe_limit"]
                    entry["limits"] = {"t2": float(t2_lim), "spe": None if spe_lim is None else float(spe_lim)}
                    entry["scores"] = [
                        {
                            "t_hours": float(t),
                            "t2": float(a),
                            "spe": float(b),
                            "t2_over": bool(a > t2_lim),
                            "spe_over": bool(spe_lim is not None and b > spe_lim),
                        }
                        for t, a, b in zip(result["t_hours"], result["t2"], result["spe"])
                    ]
            out.append(entry)
        return {"batch_id": batch_id, "unit_procedures": out}
