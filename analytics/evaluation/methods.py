"""The methods the evaluation compares, all scored ONLINE: at each sample time a
method gives a statistic computed from the run's data up to that time; a run is
flagged at the first sample whose statistic exceeds the method's threshold.

Every threshold comes from ``calibrate`` on normal threshold runs only: the largest
statistic of each threshold run, and the conformal rank of those maxima for the
target run false-alarm rate (``analytics.base.conformal_threshold``). So every method
is compared at the same run false-alarm rate, whatever its own limits say.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..base import conformal_threshold
from ..duration import DurationMonitor
from .features import OnlineFeatures, on_run_times


class Method:
    name = ""
    level = "series"  # a statistic per sample time

    def fit(self, runs):
        raise NotImplementedError

    def statistic(self, run):
        """Statistic per sample time of ``run``, from the data up to each time."""
        raise NotImplementedError

    def calibrate(self, runs, alpha):
        self.threshold_ = conformal_threshold([self.statistic(r).max() for r in runs], alpha)
        return self

    def flags(self, run):
        return self.statistic(run) > self.threshold_

    def thresholds(self):
        """The threshold(s) calibration set (recorded per seed in the results)."""
        return (float(self.threshold_),)

    def flag_times(self, run):
        flagged = self.flags(run)
        return np.asarray(run.times, float)[: flagged.size][flagged]


class MonitorMethod(Method):
    """A project monitor (``analytics`` public API: fit with batch groups, statistic)
    on the online features, one row per sample time. With the batch of each row as
    its group, the monitor's held-out limits leave whole runs out.

    ``max_rows`` (default: all) fits on every k-th sample time of each run instead -
    consecutive EWMA rows carry nearly the same information - where fitting on all
    rows would be too slow."""

    def __init__(self, name, monitor, kind, smoothing=0.2, lags=0, max_rows=None, landmark=None):
        self.name, self.monitor, self.max_rows = name, monitor, max_rows
        self.features = OnlineFeatures(kind, smoothing, lags, landmark)

    def fit(self, runs):
        self.features.fit(runs)
        rows = [self.features.rows(r)[0] for r in runs]
        every = max(1, int(np.ceil(sum(len(r) for r in rows) / self.max_rows))) if self.max_rows else 1
        rows = [r[::every] for r in rows]
        groups = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)])
        self.monitor.fit(np.vstack(rows), groups=groups)
        return self

    def statistic(self, run):
        rows, known = self.features.rows(run)
        return on_run_times(run, known, self.monitor.statistic(rows))


class PlainPCA(Method):
    """Textbook PCA baseline on the online features: autoscaled rows, components
    for 90 % of the variance, Hotelling T² (F limit) or SPE (Box's g·χ²(h) limit)
    at a 1 % per-sample rate.  ``calibrated=False`` keeps that textbook limit (the
    row shows what it promises versus what it gives); otherwise the threshold is
    calibrated like every other method's."""

    def __init__(
        self, statistic, kind, smoothing=0.2, lags=0, calibrated=True, variance=0.9, sample_alpha=0.01, landmark=None
    ):
        self.which, self.calibrated, self.variance, self.sample_alpha = statistic, calibrated, variance, sample_alpha
        label = "SPE" if statistic == "spe" else "T²"
        self.name = f"Baseline: plain PCA-{label}" + ("" if calibrated else " (textbook 1 % limit, not calibrated)")
        self.features = OnlineFeatures(kind, smoothing, lags, landmark)

    def fit(self, runs):
        self.features.fit(runs)
        rows = np.vstack([self.features.rows(r)[0] for r in runs])
        self.centre, self.scale = rows.mean(axis=0), np.maximum(rows.std(axis=0, ddof=1), 1e-12)
        z = (rows - self.centre) / self.scale
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        eig = s**2 / (len(z) - 1)
        a = int(np.searchsorted(np.cumsum(eig) / eig.sum(), self.variance) + 1)
        a = min(a, len(eig) - 1) if len(eig) > 1 else 1
        self.P, self.eig = vt[:a].T, eig[:a]
        n, alpha = len(z), self.sample_alpha
        self.t2_limit = a * (n - 1) * (n + 1) / (n * (n - a)) * stats.f.ppf(1 - alpha, a, n - a)
        rest = eig[a:]
        theta1, theta2 = rest.sum(), (rest**2).sum()
        g, h = theta2 / max(theta1, 1e-300), theta1**2 / max(theta2, 1e-300)
        self.spe_limit = max(g * stats.chi2.ppf(1 - alpha, h), 1e-12)
        self.threshold_ = 1.0
        return self

    def statistic(self, run):
        rows, known = self.features.rows(run)
        z = (rows - self.centre) / self.scale
        t = z @ self.P
        if self.which == "t2":
            value = (t**2 / self.eig).sum(axis=1) / self.t2_limit
        else:
            value = ((z - t @ self.P.T) ** 2).sum(axis=1) / self.spe_limit
        return on_run_times(run, known, value)

    def calibrate(self, runs, alpha):
        return super().calibrate(runs, alpha) if self.calibrated else self


class DurationMethod(Method):
    """The duration monitor on manual-step durations, online: a step's duration
    counts from the hour it is known (``known_at(run)``: the hour each step ends, from
    the schedule the MES knows; else the end of the run); before that the step is
    taken as typical."""

    name = "Duration monitor (step durations)"

    def __init__(self, monitor=None, known_at=None):
        self.monitor = monitor or DurationMonitor()
        self.known_at = known_at

    def fit(self, runs):
        self.monitor.fit(np.stack([r.durations for r in runs]))
        self.typical = np.exp(np.median(np.log(np.stack([r.durations for r in runs])), axis=0))
        return self

    def statistic(self, run):
        times = np.asarray(run.times, float)
        known_at = np.asarray(self.known_at(run) if self.known_at else [times[-1]] * len(run.durations), float)
        rows = np.where(known_at[None, :] <= times[:, None], run.durations[None, :], self.typical[None, :])
        return np.asarray(self.monitor.statistic(rows), float)


class CombinedMethod(Method):
    """Flags a run when any part does; each part is calibrated to alpha / (number of
    parts), so the combined run false-alarm rate stays at or below alpha."""

    def __init__(self, name, parts):
        self.name, self.parts = name, parts

    def fit(self, runs):
        for part in self.parts:
            part.fit(runs)
        return self

    def calibrate(self, runs, alpha):
        for part in self.parts:
            part.calibrate(runs, alpha / len(self.parts))
        self.threshold_ = 1.0
        return self

    def thresholds(self):
        return tuple(t for p in self.parts for t in p.thresholds())

    def statistic(self, run):
        parts = [p.statistic(run) / p.threshold_ for p in self.parts]
        n = min(len(p) for p in parts)
        return np.max([p[:n] for p in parts], axis=0)
