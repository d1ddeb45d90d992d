"""Training the equipment time-series models: one ``TimeSeriesModel`` per recipe and
unit procedure from the equipment samples of earlier batches, part of the recipe's
training transaction (``analytics.training.train``).

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
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Batch, RecipeVersion, TrendModel
from engine.vocabulary import BatchState

from ..base import CalibrationWarning, conformal_threshold
from ..catalogue import add_version
from ..store import ModelCard
from ..timeseries import align, fit_timeseries
from .samples import VARIABLE_NAME, samples_of, series_of

KIND = "TimeSeriesModel"  # ``TrendModel.kind``
PARAMETER = "*"  # ``TrendModel.parameter``: all the unit procedure's variables
#: rate of normal batches with any flag the threshold is set for
BATCH_ALPHA = 0.05
FOLDS = 5
MAX_GRID = 2000  # points of maturity a model covers at most


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
    samples of earlier batches (part of ``analytics.training.train``'s transaction). Returns
    (models made, skipped, batch ids used)."""
    states = (BatchState.RELEASED,) if released_only else (BatchState.COMPLETE, BatchState.RELEASED)
    stmt = select(Batch).where(Batch.recipe_version_id.in_(list(versions)), Batch.state.in_(states))
    done = {b.id: b.batch_id for b in s.scalars(stmt)}
    if not done:
        return [], [], []
    grouped: dict[str, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for row in samples_of(s, list(done)):
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
        series = [series_of(per_batch[pk], variables) for pk in pks]
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
        add_version(
            s,
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
            ),
        )
        made.append(
            {"bpmn_id": up, "parameter": PARAMETER, "kind": KIND, "version": version, "batches": len(batch_ids)}
        )
    return made, skipped, sorted(used)
