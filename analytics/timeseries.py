"""Equipment time series during a unit procedure, scored by the PCA monitor.

A batch's samples (rows = time points, columns = equipment variables) are first put on
a common grid of *batch maturity*: by time since the unit procedure started, or by a
piecewise-linear warp through landmarks (e.g. the feed start), so that sample k of every
batch means the same stage of the process. Each aligned sample is then standardised
against the normal batches at the same maturity, EWMA-filtered (a persistent small
shift stands out of sensor noise) and scored by a ``PCAMonitor`` (Hotelling T² and
SPE), whose explanation says which variables drove a flag.

Only the scoring is here. Reading the equipment (OPC UA ingestion into a historian
table) is a later issue; ``score_timeseries`` takes the matrix the ingestion will build.
The model is plain JSON (``TimeSeriesModel.to_dict``), like every model card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import lfilter

from .pca import PCAMonitor
from .store import monitor_from_dict

FORMAT = "batchline.analytics.timeseries-model/1"


def align(
    times: Sequence[float],
    samples: np.ndarray,
    grid: Sequence[float],
    landmarks: Sequence[float] | None = None,
    reference_landmarks: Sequence[float] | None = None,
) -> np.ndarray:
    """Samples interpolated onto ``grid`` (hours of maturity). Without landmarks the
    maturity is the time since the start; with them, time is warped piecewise-linearly
    so that this batch's landmarks fall on ``reference_landmarks`` (e.g. the feed
    start of this batch onto the median feed start of the history)."""
    times = np.asarray(times, dtype=float)
    samples = np.asarray(samples, dtype=float)
    grid = np.asarray(grid, dtype=float)
    if samples.ndim != 2 or samples.shape[0] != times.shape[0]:
        raise ValueError("samples must be (n_times, n_variables) with one row per time")
    real = grid
    if landmarks is not None:
        if reference_landmarks is None or len(reference_landmarks) != len(landmarks):
            raise ValueError("reference_landmarks must give one maturity per landmark")
        ref = np.concatenate([[grid[0]], np.asarray(reference_landmarks, float), [grid[-1]]])
        own = np.concatenate([[times[0]], np.asarray(landmarks, float), [times[-1]]])
        real = np.interp(grid, ref, own)  # the batch time at each maturity
    return np.stack([np.interp(real, times, samples[:, j]) for j in range(samples.shape[1])], axis=1)


@dataclass
class TimeSeriesModel:
    """Normal trajectory (mean and spread per maturity) and the PCA monitor on the
    standardised, smoothed deviations from it."""

    variables: list[str]
    mean: np.ndarray  # (n_grid, n_variables)
    std: np.ndarray
    smoothing: float
    monitor: PCAMonitor

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "variables": list(self.variables),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "smoothing": self.smoothing,
            "monitor": self.monitor.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TimeSeriesModel:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a Batchline time-series model (format {data.get('format')!r})")
        return cls(
            list(data["variables"]),
            np.asarray(data["mean"], float),
            np.asarray(data["std"], float),
            float(data["smoothing"]),
            monitor_from_dict(data["monitor"]),
        )

    def residuals(self, samples: np.ndarray) -> np.ndarray:
        """Standardised, EWMA-filtered deviations of aligned samples (rows = the first
        rows of the grid: a running batch scores the part it has reached)."""
        samples = np.asarray(samples, dtype=float)
        n = samples.shape[0]
        if samples.ndim != 2 or samples.shape[1] != len(self.variables):
            raise ValueError(f"samples must have {len(self.variables)} columns: {', '.join(self.variables)}")
        if n > self.mean.shape[0]:
            raise ValueError(f"{n} samples but the model covers {self.mean.shape[0]} points of maturity")
        z = (samples - self.mean[:n]) / self.std[:n]
        if self.smoothing:
            lam = self.smoothing
            z = lfilter([lam], [1.0, lam - 1.0], z, axis=0)
        return z


def fit_timeseries(
    batches: Sequence[np.ndarray],
    variables: Sequence[str],
    *,
    alpha: float = 0.01,
    smoothing: float = 0.2,
    n_components: float | int = 0.9,
    calibration: Sequence[np.ndarray] | None = None,
    calibration_alpha: float | None = None,
) -> TimeSeriesModel:
    """Fit on aligned normal batches (each (n_grid, n_variables), same grid). With
    ``calibration`` batches the threshold is set so that at most ``calibration_alpha``
    of normal batches get any flag (a batch is one unit)."""
    stack = np.stack([np.asarray(b, float) for b in batches])
    mean = stack.mean(axis=0)
    spread = stack.std(axis=0, ddof=1)
    floor = 0.01 * np.abs(stack).mean(axis=(0, 1)) + 1e-9  # a variable that never moves
    model = TimeSeriesModel(
        list(variables), mean, np.maximum(spread, floor), smoothing, PCAMonitor(alpha=alpha, n_components=n_components)
    )
    model.monitor.fit(np.vstack([model.residuals(b) for b in stack]))
    if calibration is not None:
        rows = [model.residuals(np.asarray(b, float)) for b in calibration]
        groups = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)])
        model.monitor.calibrate(np.vstack(rows), groups=groups, alpha=calibration_alpha or alpha)
    return model


def score_timeseries(model: TimeSeriesModel | dict[str, Any], samples: np.ndarray, *, top: int = 3) -> dict[str, Any]:
    """Score a batch's time-aligned samples (n_times, n_variables), the first n points
    of the model's maturity grid. Returns per sample the statistic (1.0 = on the
    threshold), whether it is flagged, the first flagged sample, and for each flagged
    sample the variables that contributed most (from T² or SPE, whichever is further
    beyond its limit)."""
    if isinstance(model, dict):
        model = TimeSeriesModel.from_dict(model)
    z = model.residuals(samples)
    monitor = model.monitor
    statistic = monitor.statistic(z) / monitor.threshold_
    flagged = statistic > 1.0
    contributions = monitor.explain(z)
    drivers = {}
    for i in np.nonzero(flagged)[0]:
        order = np.argsort(-np.abs(contributions[i]))[:top]
        drivers[int(i)] = [{"variable": model.variables[j], "contribution": float(contributions[i, j])} for j in order]
    first = int(np.argmax(flagged)) if flagged.any() else None
    return {"statistic": statistic.tolist(), "flagged": flagged.tolist(), "first_flag": first, "drivers": drivers}
