"""Equipment time series in the MES: samples a unit procedure's equipment sends for a
batch (``engine.models.EquipmentSample``), a time-series PCA model per recipe and unit
procedure trained on earlier batches (``analytics.timeseries``, stored in ``trend_model``
as a model card), and the ``score_samples`` job that scores a running batch's samples
received so far and raises a trend exception when T² or SPE goes beyond its limit.

Alignment: every sample carries ``t_hours`` - the time since the unit procedure started,
or a batch maturity the sender computed (e.g. hours shifted to a common feed start).
Training puts each batch on one grid of ``t_hours`` (start = the latest first sample,
end = the earliest last sample of the training batches, step = the median sampling
interval) by linear interpolation; scoring puts a running batch's samples on the grid
points it has reached, the same way.

Limits: the PCA monitor's per-point limits would flag almost every normal batch over
hundreds of correlated points, so the threshold is set per *batch*: cross-conformal
over the training batches (each fold's model scores the held-out batches; the threshold
is the conformal quantile of their maxima at a batch false-alarm rate ``BATCH_ALPHA``).

The engine never imports this module; ``analytics.mes.install`` registers the job.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from engine import batches
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Batch, BatchException, EquipmentSample, Job, RecipeVersion, TrendModel, utcnow
from engine.runtime import Runtime

from .base import CalibrationWarning, conformal_threshold
from .store import ModelCard
from .timeseries import TimeSeriesModel, align, fit_timeseries

KIND = "TimeSeriesModel"  # ``TrendModel.kind``
PARAMETER = "*"  # ``TrendModel.parameter``: all the unit procedure's variables
JOB = "score_samples"
MAX_SAMPLES = 1000  # per request
MAX_VARIABLES = 100
#: rate of normal batches with any flag the threshold is set for
BATCH_ALPHA = 0.05
FOLDS = 5
MAX_GRID = 2000  # points of maturity a model covers at most
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
UNIT_PROCEDURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,199}$")  # a BPMN id
STATISTICS = (("T2", "t2", "T²"), ("SPE", "spe", "SPE"))


# --- receiving samples -------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def check_samples(unit_procedure: Any, source: Any, samples: Any) -> list[tuple[float, dict[str, float]]]:
    """The samples as (t_hours, {name: number}), or InvalidInput saying what is wrong."""
    if not isinstance(unit_procedure, str) or not UNIT_PROCEDURE.match(unit_procedure):
        raise InvalidInput("unit_procedure must be a BPMN id (letters, digits, _ . -)", code="unit_procedure_invalid")
    if not isinstance(source, str) or not 0 < len(source.strip()) <= 100 or any(ord(c) < 32 for c in source):
        raise InvalidInput("source must be an equipment id of 1 to 100 characters", code="source_invalid")
    if not isinstance(samples, list) or not 0 < len(samples) <= MAX_SAMPLES:
        raise InvalidInput(f"samples must be a list of 1 to {MAX_SAMPLES} samples", code="samples_invalid")
    out = []
    for i, sample in enumerate(samples):
        where = {"index": i}
        if not isinstance(sample, dict):
            raise InvalidInput(f"sample {i} must be an object", code="samples_invalid", details=where)
        t = _number(sample.get("t_hours"))
        if t is None or t < 0:
            raise InvalidInput(
                f"sample {i}: t_hours must be a finite number >= 0", code="samples_invalid", details=where
            )
        values = sample.get("values")
        if not isinstance(values, dict) or not 0 < len(values) <= MAX_VARIABLES:
            raise InvalidInput(
                f"sample {i}: values must map 1 to {MAX_VARIABLES} names to numbers",
                code="samples_invalid",
                details=where,
            )
        clean = {}
        for name, value in values.items():
            if not isinstance(name, str) or not VARIABLE_NAME.match(name):
                raise InvalidInput(
                    f"sample {i}: {str(name)[:70]!r} is not a variable name (letters, digits, _)",
                    code="samples_invalid",
                    details=where,
                )
            number = _number(value)
            if number is None:
                raise InvalidInput(f"sample {i}: {name} must be a finite number", code="samples_invalid", details=where)
            clean[name] = number
        out.append((t, clean))
    return out


def record_samples(
    rt: Runtime,
    batch_id: str,
    unit_procedure: str,
    source: str,
    samples: list[dict[str, Any]],
    *,
    recorded_at: datetime | None = None,
) -> dict[str, Any]:
    """Store a running batch's equipment samples and schedule one ``score_samples`` job,
    in one transaction."""
    checked = check_samples(unit_procedure, source, samples)
    now = recorded_at or utcnow()
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            raise NotFound(f"batch {batch_id!r} not found", code="batch_not_found")
        if batch.state != "running":
            raise Conflict(
                f"batch {batch_id} is {batch.state}; equipment samples are taken while it runs",
                code="batch_not_running",
                details={"state": batch.state},
            )
        s.execute(
            insert(EquipmentSample),
            [
                {
                    "batch_id": batch.id,
                    "unit_procedure": unit_procedure,
                    "t_hours": t,
                    "values": values,
                    "recorded_at": now,
                    "source": source,
                }
                for t, values in checked
            ],
        )
        job = Job(kind=JOB, batch_id=batch.id, payload={"unit_procedure": unit_procedure}, max_attempts=3)
        s.add(job)
        s.flush()
        return {"batch_id": batch_id, "unit_procedure": unit_procedure, "received": len(checked), "job_id": job.id}


def _series(rows: Sequence[tuple[float, dict[str, Any]]], variables: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Times (increasing, a repeated time keeps its last sample) and the matrix of the
    given variables; samples without all of them are left out."""
    by_time: dict[float, list[float]] = {}
    for t, values in rows:
        if all(_number((values or {}).get(v)) is not None for v in variables):
            by_time[float(t)] = [float(values[v]) for v in variables]
    times = np.array(sorted(by_time), dtype=float)
    return times, np.array([by_time[t] for t in times], dtype=float).reshape(len(times), len(variables))


def _samples_of(s: Session, batch_pks: list[int], unit_procedure: str | None = None):
    """Rows (batch_id, unit_procedure, t_hours, values, source, recorded_at) in time order."""
    e = EquipmentSample
    stmt = (
        select(e.batch_id, e.unit_procedure, e.t_hours, e.values, e.source, e.recorded_at)
        .where(e.batch_id.in_(batch_pks))
        .order_by(e.batch_id, e.unit_procedure, e.t_hours, e.id)
    )
    if unit_procedure is not None:
        stmt = stmt.where(e.unit_procedure == unit_procedure)
    return list(s.execute(stmt))


# --- training ----------------------------------------------------------------------------


def _grid(series: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    start = max(t[0] for t, _ in series)
    end = min(t[-1] for t, _ in series)
    steps = np.concatenate([np.diff(t) for t, _ in series])
    step = float(np.median(steps[steps > 0])) if (steps > 0).any() else 1.0
    step = max(step, (end - start) / (MAX_GRID - 1)) if end > start else step
    return start + step * np.arange(int(math.floor((end - start) / step + 1e-9)) + 1)


def _cross_conformal(aligned: list[np.ndarray], variables: list[str], batch_alpha: float, **fit) -> tuple[float, int]:
    """The batch-level threshold: each fold's model scores its held-out batches; the
    conformal quantile of their maxima (the largest when there are too few)."""
    folds = min(FOLDS, len(aligned))
    maxima = []
    for f in range(folds):
        train = [a for i, a in enumerate(aligned) if i % folds != f]
        model = fit_timeseries(train, variables, **fit)
        maxima += [
            float(model.monitor.statistic(model.residuals(a)).max()) for i, a in enumerate(aligned) if i % folds == f
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        return float(conformal_threshold(maxima, batch_alpha)), folds


def train_in_session(
    s: Session,
    recipe: str,
    target: RecipeVersion,
    versions: dict[int, RecipeVersion],
    *,
    user: str,
    released_only: bool,
    min_batches: int,
    now: datetime,
    alpha: float = BATCH_ALPHA,
) -> tuple[list[dict], list[dict], list[str]]:
    """Train one time-series model per unit procedure of the recipe from the equipment
    samples of earlier batches (part of ``analytics.mes.train``'s transaction). Returns
    (models made, skipped, batch ids used)."""
    stmt = select(Batch).where(Batch.recipe_version_id.in_(list(versions)), Batch.state == "complete")
    if released_only:
        stmt = stmt.where(Batch.reviewed_at.is_not(None))
    done = {b.id: b.batch_id for b in s.scalars(stmt)}
    if not done:
        return [], [], []
    grouped: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for row in _samples_of(s, list(done)):
        grouped[row.unit_procedure][row.batch_id].append((row.t_hours, row.values))
    latest = {
        m.bpmn_id: m
        for m in s.scalars(
            select(TrendModel).where(TrendModel.recipe == recipe, TrendModel.kind == KIND).order_by(TrendModel.version)
        )
    }
    made, skipped, used = [], [], set()
    fit = {"alpha": 0.01, "smoothing": 0.2, "n_components": 0.9}
    for up in sorted(grouped):
        per_batch = grouped[up]
        if len(per_batch) < min_batches:
            skipped.append(
                {
                    "bpmn_id": up,
                    "parameter": PARAMETER,
                    "reason": f"equipment samples of {len(per_batch)} batches, at least {min_batches} needed",
                }
            )
            continue
        names = set.intersection(*[set(v or {}) for rows in per_batch.values() for _, v in rows])
        variables = sorted(n for n in names if VARIABLE_NAME.match(n))
        pks = sorted(per_batch)
        series = [_series(per_batch[pk], variables) for pk in pks]
        if not variables or any(len(t) < 3 for t, _ in series):
            skipped.append(
                {
                    "bpmn_id": up,
                    "parameter": PARAMETER,
                    "reason": "no variable every sample has, or a batch with fewer than 3 samples",
                }
            )
            continue
        grid = _grid(series)
        if len(grid) < 3:
            skipped.append(
                {
                    "bpmn_id": up,
                    "parameter": PARAMETER,
                    "reason": "the batches' samples overlap on fewer than 3 points of t_hours",
                }
            )
            continue
        aligned = [align(t, X, grid) for t, X in series]
        threshold, folds = _cross_conformal(aligned, variables, alpha, **fit)
        model = fit_timeseries(aligned, variables, **fit)
        model.monitor.offset_ = -threshold
        prior = latest.get(up)
        version = (prior.version + 1) if prior else 1
        batch_ids = [done[pk] for pk in pks]
        used.update(batch_ids)
        limits = {
            **model.monitor.limits(),
            "threshold": threshold,
            "grid_start": float(grid[0]),
            "grid_step": float(grid[1] - grid[0]),
            "grid_points": len(grid),
        }
        card = ModelCard(
            kind=KIND,
            version=version,
            recipe_id=recipe,
            recipe_version=str(target.version),
            step_id=up,
            parameter_names=variables,
            training_batch_ids=batch_ids,
            trained_at=now.isoformat(),
            params={**fit, "batch_alpha": alpha, "folds": folds, "alignment": "t_hours interpolated onto the grid"},
            limits=limits,
            model={**model.to_dict(), "kind": KIND, "grid": grid.tolist()},
        )
        for old in s.scalars(
            select(TrendModel).where(
                TrendModel.recipe == recipe,
                TrendModel.bpmn_id == up,
                TrendModel.kind == KIND,
                TrendModel.active.is_(True),
            )
        ):
            old.active = False
        s.add(
            TrendModel(
                recipe=recipe,
                recipe_version_id=target.id,
                bpmn_id=up,
                parameter=PARAMETER,
                kind=KIND,
                version=version,
                unit=None,
                critical=False,
                card=card.to_dict(),
                trained_at=now,
                trained_by=user,
                active=True,
            )
        )
        made.append(
            {"bpmn_id": up, "parameter": PARAMETER, "kind": KIND, "version": version, "batches": len(batch_ids)}
        )
    return made, skipped, sorted(used)


# --- scoring -----------------------------------------------------------------------------


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
    return s.scalars(
        select(TrendModel)
        .where(
            TrendModel.recipe == recipe,
            TrendModel.bpmn_id == unit_procedure,
            TrendModel.kind == KIND,
            TrendModel.parameter == PARAMETER,
            TrendModel.active.is_(True),
        )
        .order_by(TrendModel.version.desc())
    ).first()


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
        recipe = s.get(RecipeVersion, batch.recipe_version_id).recipe
        row = _active_model(s, recipe, up)
        if row is None:
            return []
        model, grid = _model_of(row)
        times, X = _series([(r.t_hours, r.values) for r in _samples_of(s, [batch.id], up)], model.variables)
        result = score(model, grid, times, X)
        if result is None:
            return []
        earlier = list(
            s.scalars(
                select(BatchException).where(
                    BatchException.batch_id == batch.id,
                    BatchException.source == "trend",
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
            if any(e.status == "open" for e in mine) or any((e.details or {}).get("t_hours", -1) >= t for e in mine):
                continue
            contributions = model.monitor.explain(result["z"][i : i + 1], statistic=key)[0]
            top = {model.variables[j]: float(contributions[j]) for j in np.argsort(-np.abs(contributions))[:3]}
            value = float(result[key][i])
            message = (
                f"equipment time series of {up} out of trend at {t:.4g} h: {label} {value:.4g} beyond its "
                f"limit {limit:.4g}; most from {', '.join(top)}"
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
                "model_id": row.id,
                "model_version": row.version,
            }
            findings.append({"parameter": parameter, "message": message, "details": details})
    return [batches.raise_exception(rt, batch_id, source="trend", severity="alert", **f) for f in findings]


# --- reading -----------------------------------------------------------------------------


def equipment_samples(rt: Runtime, batch_id: str, unit_procedure: str | None = None) -> dict[str, Any]:
    """A batch's equipment samples per unit procedure, with T², SPE and limits on the
    model's grid when a model is active."""
    from .mes import describe_model

    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            raise NotFound(f"batch {batch_id!r} not found", code="batch_not_found")
        recipe = s.get(RecipeVersion, batch.recipe_version_id).recipe
        by_up: dict[str, list] = defaultdict(list)
        for r in _samples_of(s, [batch.id], unit_procedure):
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
            if row is not None:
                model, grid = _model_of(row)
                result = score(model, grid, *_series([(r.t_hours, r.values) for r in rows], model.variables))
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


def sample_count(rt: Runtime, batch_id: str, unit_procedure: str) -> int:
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            return 0
        return int(
            s.scalar(
                select(func.count())
                .select_from(EquipmentSample)
                .where(EquipmentSample.batch_id == batch.id, EquipmentSample.unit_procedure == unit_procedure)
            )
        )


# --- simulated equipment (demo and tests) ------------------------------------------------


def _feed_start(batch) -> float:
    feeding = batch.series[:, 0] > 0
    return float(batch.times[np.argmax(feeding)]) if feeding.any() else float(batch.times[-1])


def simulated_samples(
    n_batches: int, seed: int, *, faults=None, reference: float | None = None, hours: int = 300
) -> tuple[list[list[dict[str, Any]]], float]:
    """Hourly samples of simulated fed-batch fermentations (``analytics.simulator``), with
    ``t_hours`` = batch maturity: the batch phase stretched so that the feed starts at
    ``reference`` (default: the median feed start of these batches), as a historian that
    knows the feed start would send them. Returns (samples per batch, reference)."""
    from .simulator import VARIABLE_NAMES, simulate_batches

    sims = simulate_batches(n_batches, seed, faults=faults, hours=hours)
    if reference is None:
        reference = float(np.median([_feed_start(b) for b in sims]))
    grid = sims[0].times
    out = []
    for b in sims:
        aligned = align(b.times, b.series, grid, [_feed_start(b)], [reference])
        out.append(
            [
                {"t_hours": float(t), "values": {v: round(float(x), 6) for v, x in zip(VARIABLE_NAMES, row)}}
                for t, row in zip(grid, aligned)
            ]
        )
    return out, reference


def write_simulated_history(
    rt: Runtime, batch_ids: list[str], *, seed: int, unit_procedure: str, source: str = "BIOREACTOR-01"
) -> int:
    """Equipment samples for earlier (complete) batches, straight into the table: one
    simulated batch per id (``simulated_samples(len(batch_ids), seed)``); batches that
    have samples of the unit procedure already are left alone. Demo data. Returns rows."""
    with rt.transaction() as s:
        found = {b.batch_id: b for b in s.scalars(select(Batch).where(Batch.batch_id.in_(batch_ids)))}
        have = set(
            s.scalars(
                select(EquipmentSample.batch_id)
                .where(
                    EquipmentSample.batch_id.in_([b.id for b in found.values()]),
                    EquipmentSample.unit_procedure == unit_procedure,
                )
                .distinct()
            )
        )
        todo = [i for i, b in enumerate(batch_ids) if b in found and found[b].id not in have]
        if not todo:
            return 0
        per_batch, _ = simulated_samples(len(batch_ids), seed)
        rows = []
        for i in todo:
            batch = found[batch_ids[i]]
            rows += [
                {
                    "batch_id": batch.id,
                    "unit_procedure": unit_procedure,
                    "t_hours": x["t_hours"],
                    "values": x["values"],
                    "source": source,
                    "recorded_at": batch.created_at + timedelta(hours=x["t_hours"]),
                }
                for x in per_batch[i]
            ]
        s.execute(insert(EquipmentSample), rows)
        return len(rows)
