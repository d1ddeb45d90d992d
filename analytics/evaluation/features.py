"""Online features of a run: what a monitor may know at each sample time, using only
the samples up to then (every transform here is causal).

* batch processes: deviations from the fit batches' mean trajectory at the same
  sample time, in units of their spread at that time (``TrajectoryReference``) -
  batches share one sampling grid from their start, so sample k means the same age;
* continuous processes: one mean and spread for the whole fit period
  (``LevelReference``) - a window has no age;
* then optionally an EWMA over time (a persistent small shift stands out of sensor
  noise) and lagged copies (dynamic PCA: the monitor sees how the values move).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def ewma(z, smoothing):
    """Exponentially weighted moving average along time (axis 0 or -2), started at 0
    (the normal mean). ``smoothing`` = 0 or 1 leaves ``z`` as it is."""
    if not smoothing or smoothing >= 1:
        return z
    return lfilter([smoothing], [1.0, smoothing - 1.0], z, axis=-2)


def with_lags(z, lags):
    """Rows [z_t, z_{t-1}, ..., z_{t-lags}]; before the first sample the first row
    is repeated (nothing from the future is used)."""
    if not lags:
        return z
    parts = [z]
    for k in range(1, lags + 1):
        shifted = np.concatenate([np.repeat(z[..., :1, :], k, axis=-2), z[..., :-k, :]], axis=-2)
        parts.append(shifted)
    return np.concatenate(parts, axis=-1)


class TrajectoryReference:
    """Mean and spread per batch maturity and variable over the fit batches.

    Maturity: with a landmark (``landmark(run)``: the hour of an event read from the
    run's own measurements as it happens, such as the feed start) a sample's maturity is, before the landmark,
    its age capped just below the fit batches' median landmark and, after it, the
    median landmark plus the time since the landmark - a batch whose feed starts a
    few hours late is compared with the others at the same stage, using only what is
    known at that time. Without a landmark, maturity = age.  ``aligned`` gives one
    row per maturity of the grid and the real time at which that row was known.

    The spread is averaged over ``smooth`` neighbouring maturities (50 batches give
    noisy spreads) and floored where normal batches never vary (a pump that is off)."""

    def __init__(self, runs, smooth=5, landmark=None):
        self.landmark_of = landmark
        self.grid = len(runs[0].times)
        self.step = float(np.median(np.diff(runs[0].times)))
        landmarks = [landmark(r) for r in runs] if landmark else [None]
        self.landmark = None
        if all(v is not None for v in landmarks):
            self.landmark = int(round(float(np.median(landmarks)) / self.step))
        stack = np.stack([self.aligned(r)[0] for r in runs])
        self.mean = stack.mean(axis=0)
        spread = stack.std(axis=0, ddof=1)
        if smooth > 1:
            kernel = np.ones(smooth) / smooth
            padded = np.pad(spread, ((smooth // 2, smooth // 2), (0, 0)), mode="edge")
            spread = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(spread.shape[1])], axis=1)
        floor = 0.01 * np.abs(stack).mean(axis=(0, 1)) + 1e-9
        self.std = np.maximum(spread[: len(self.mean)], floor)

    def maturity(self, run):
        """Grid index of each sample's maturity (from what is known at its time)."""
        n = len(run.times)
        index = np.arange(n)
        own = self.landmark_of(run) if self.landmark_of else None
        if self.landmark is None or own is None:
            return np.minimum(index, self.grid - 1)
        seen = int(round(float(own) / self.step))
        before = np.minimum(index, self.landmark - 1)
        after = self.landmark + index - seen
        return np.clip(np.where(index < seen, before, after), 0, self.grid - 1)

    def aligned(self, run):
        """(rows per maturity of the grid, real time each row was known)."""
        X = np.asarray(run.X, float)
        times = np.asarray(run.times, float)
        k = self.maturity(run)
        last = np.full(self.grid, -1)
        np.maximum.at(last, k, np.arange(len(k)))
        last = np.maximum.accumulate(last)  # a maturity skipped: the sample before it
        last = np.maximum(last, 0)
        known = times[last].copy()
        unreached = np.arange(self.grid) > k.max()
        known[unreached] = times[-1]
        return X[last], known

    def standardise(self, run):
        rows, known = self.aligned(run)
        return (rows - self.mean) / self.std, known


class LevelReference:
    """One mean and spread per variable over all fit samples (continuous process)."""

    def __init__(self, runs):
        rows = np.vstack([r.X for r in runs]).astype(float)
        self.mean = rows.mean(axis=0)
        self.std = np.maximum(rows.std(axis=0, ddof=1), 1e-9 + 1e-3 * np.abs(self.mean))

    def standardise(self, run):
        return (np.asarray(run.X, float) - self.mean) / self.std, np.asarray(run.times, float)


def reference_for(kind, runs, landmark=None):
    return TrajectoryReference(runs, landmark=landmark) if kind == "batch" else LevelReference(runs)


class OnlineFeatures:
    """Standardised deviations -> EWMA -> lags: the rows a sample-wise monitor scores."""

    def __init__(self, kind, smoothing=0.2, lags=0, landmark=None):
        self.kind, self.smoothing, self.lags, self.landmark = kind, smoothing, lags, landmark

    def fit(self, runs):
        self.reference = reference_for(self.kind, runs, self.landmark)
        return self

    def rows(self, run):
        """(feature rows, real time each row was known)."""
        z, known = self.reference.standardise(run)
        return with_lags(ewma(z, self.smoothing), self.lags), known


def on_run_times(run, known, statistic):
    """A statistic per feature row, as a statistic per sample time of the run: the
    largest of the rows known at that time (0 where none became known)."""
    times = np.asarray(run.times, float)
    out = np.zeros(len(times))
    np.maximum.at(out, np.clip(np.searchsorted(times, known), 0, len(times) - 1), np.asarray(statistic, float))
    return out
