"""The out-of-trend methods the evaluation compares: what each looks at (end-of-batch
parameters, step durations, time series aligned on batch maturity, the unfolded
trajectory, combinations), fitted on normal batches and calibrated to a batch
false-alarm rate, and the hours at which each flags a batch."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter
from sklearn.base import clone

from ..duration import DurationMonitor
from ..forest import IsolationForestMonitor
from ..pca import PCAMonitor
from ..simulator import feed_start
from ..univariate import UnivariateMonitor


class TrajectoryReference:
    """Mean trajectory and spread per batch age and variable, from normal batches:
    turns a batch's time series into standardised deviations from normal at the
    same batch maturity.

    Why align: the batch phase ends when the sugar runs out, +/- a few hours from
    batch to batch; compared on raw time, every normal batch looks far off at
    that transition and the limits become useless.  Each batch is aligned on its
    feed start (an indicator known in real time once the feed starts): the batch
    phase is stretched to the median length, the fed-batch phase shifted.
    """

    def __init__(self, batches, smooth_hours=5):
        self.feed_start = float(np.median([feed_start(b) for b in batches]))
        stack = np.stack([self.align(b)[0] for b in batches])  # (batches, times, variables)
        self.mean = stack.mean(axis=0)
        spread = stack.std(axis=0, ddof=1)
        if smooth_hours > 1:  # 50 batches give noisy spreads; average nearby hours
            kernel = np.ones(smooth_hours) / smooth_hours
            padded = np.pad(spread, ((smooth_hours // 2, smooth_hours // 2), (0, 0)), mode="edge")
            spread = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(spread.shape[1])], axis=1)
        # where normal batches never vary (pump off during the batch phase) a
        # floor keeps a reading of the right order of magnitude from looking infinite
        floor = 0.01 * np.abs(stack).mean(axis=(0, 1)) + 1e-9
        self.std = np.maximum(spread, floor)

    def real_times(self, batch):
        """Real batch time (h) of each point of the aligned grid."""
        f, f0, grid = feed_start(batch), self.feed_start, batch.times
        real = np.where(grid <= f0, grid * f / f0, f + (grid - f0))
        return np.minimum(real, batch.times[-1])

    def align(self, batch):
        real = self.real_times(batch)
        series = np.stack(
            [np.interp(real, batch.times, batch.series[:, j]) for j in range(batch.series.shape[1])], axis=1
        )
        return series, real

    def standardise(self, batch):
        return (self.align(batch)[0] - self.mean) / self.std


# Methods: each knows what it looks at and gives, per batch, the hours it flagged
# (series methods) or whether it flagged the batch (batch methods).


class Method:
    name = ""
    level = "batch"  # "batch": one verdict per batch; "series": one per time point

    def fit(self, batches):
        raise NotImplementedError

    def calibrate(self, batches, alpha):
        raise NotImplementedError

    def flag_times(self, batch):
        """Hours at which the batch was flagged (batch methods: [end] or [])."""
        raise NotImplementedError


class BatchParameterMethod(Method):
    """A monitor on the end-of-batch parameter vector, one row per batch.

    Run rules need a sequence: each new batch is scored after 20 batches of
    recent normal history drawn in random order from the threshold batches (a
    different history per batch, so one unlucky history does not decide every
    verdict).  The batch is flagged when a rule fires on its row - rule 1, or a
    run rule whose pattern the new batch completes (a pattern already complete in
    the history was signalled there, not on the new batch)."""

    def __init__(self, name, monitor, seed=0):
        self.name, self.monitor = name, monitor
        self.rng = np.random.default_rng(seed)

    def fit(self, batches):
        self.monitor.fit(np.stack([b.parameters for b in batches]))

    def calibrate(self, batches, alpha):
        self.history = np.stack([b.parameters for b in batches])
        self.monitor.calibrate(self.history, alpha=alpha)

    def flag_times(self, batch):
        history = self.history[self.rng.permutation(len(self.history))[:20]]
        rows = np.vstack([history, batch.parameters])
        if isinstance(self.monitor, UnivariateMonitor):
            fired = self.monitor.rule_violations(rows)
            before = {(v.column, v.rule) for v in fired if v.row == len(rows) - 2}
            flagged = any(v.row == len(rows) - 1 and (v.rule == 1 or (v.column, v.rule) not in before) for v in fired)
        else:
            flagged = self.monitor.predict(rows[-1:])[0] == -1
        return batch.times[-1:] if flagged else batch.times[:0]


class DurationMethod(Method):
    name = "Duration monitor (step durations)"

    def __init__(self):
        self.monitor = DurationMonitor()

    def fit(self, batches):
        self.monitor.fit(np.stack([b.step_durations for b in batches]))

    def calibrate(self, batches, alpha):
        self.monitor.calibrate(np.stack([b.step_durations for b in batches]), alpha=alpha)

    def flag_times(self, batch):
        flagged = self.monitor.predict(batch.step_durations[None, :])[0] == -1
        return batch.times[-1:] if flagged else batch.times[:0]


class SeriesMethod(Method):
    """A monitor on the time series: deviations from the normal trajectory at the
    same batch maturity, standardised, then EWMA-filtered over time (lambda =
    ``smoothing``) so that a persistent small shift stands out of independent
    sensor noise.  One row per time point; a batch is a false alarm if any of its
    time points is flagged.

    One model per process phase (batch phase up to a few hours after the feed
    starts, then fed-batch), each with half the false-alarm budget: the
    exponential batch phase varies far more from batch to batch than the
    feed-limited phase, and one threshold for both would be set by the batch phase.
    """

    level = "series"

    def __init__(self, name, monitor, smoothing=0.2, phases=True):
        self.name, self.monitor, self.smoothing, self.phases = name, monitor, smoothing, phases

    def rows(self, batch):
        z = self.reference.standardise(batch)
        if self.smoothing:
            lam = self.smoothing
            z = lfilter([lam], [1.0, lam - 1.0], z, axis=0)
        return z

    def phase_of(self, times):
        if not self.phases:
            return np.zeros(times.shape, dtype=int)
        return (times >= self.reference.feed_start + 5).astype(int)

    def fit(self, batches):
        self.reference = TrajectoryReference(batches)
        rows = np.vstack([self.rows(b) for b in batches])
        phase = np.concatenate([self.phase_of(b.times) for b in batches])
        self.models = {p: clone(self.monitor).fit(rows[phase == p]) for p in np.unique(phase)}

    def calibrate(self, batches, alpha):
        rows = np.vstack([self.rows(b) for b in batches])
        phase = np.concatenate([self.phase_of(b.times) for b in batches])
        groups = np.repeat(np.arange(len(batches)), len(batches[0].times))
        for p, model in self.models.items():
            model.calibrate(rows[phase == p], groups=groups[phase == p], alpha=alpha / len(self.models))

    def statistic(self, batch):
        """Statistic relative to the calibrated threshold of the phase (1 = limit)."""
        rows, phase = self.rows(batch), self.phase_of(batch.times)
        out = np.empty(len(rows))
        for p, model in self.models.items():
            out[phase == p] = model.statistic(rows[phase == p]) / model.threshold_
        return out

    def flag_times(self, batch):
        flagged = self.statistic(batch) > 1.0
        return np.unique(self.reference.real_times(batch)[flagged])


class UnfoldedSeriesMethod(Method):
    """Batch-wise unfolding (Nomikos & MacGregor 1994): the whole aligned,
    standardised trajectory of a batch (every ``every`` hours, all variables) is one
    row, so the model learns how a normal batch's deviations evolve *over time*
    - a batch that runs a little high from the start and stays high is normal; a
    step or a bend in the middle is not.  Decides at the end of the batch: the
    review-by-exception view."""

    def __init__(self, name, monitor, every=3):
        self.name, self.monitor, self.every = name, monitor, every

    def vector(self, batch):
        return self.reference.standardise(batch)[:: self.every].ravel()

    def fit(self, batches):
        self.reference = TrajectoryReference(batches)
        self.monitor.fit(np.stack([self.vector(b) for b in batches]))

    def calibrate(self, batches, alpha):
        self.monitor.calibrate(np.stack([self.vector(b) for b in batches]), alpha=alpha)

    def flag_times(self, batch):
        flagged = self.monitor.predict(self.vector(batch)[None, :])[0] == -1
        return batch.times[-1:] if flagged else batch.times[:0]


class CombinedMethod(Method):
    """Flags a batch if any part does; each part gets alpha / (number of parts)
    so the combined batch false-alarm rate stays at or below alpha."""

    def __init__(self, name, parts):
        self.name, self.parts = name, parts
        self.level = "series" if any(p.level == "series" for p in parts) else "batch"

    def fit(self, batches):
        for part in self.parts:
            part.fit(batches)

    def calibrate(self, batches, alpha):
        for part in self.parts:
            part.calibrate(batches, alpha / len(self.parts))

    def flag_times(self, batch):
        return np.unique(np.concatenate([p.flag_times(batch) for p in self.parts]))


def default_methods(seed=0):
    """The methods compared in docs/analytics.md.

    Settings chosen on validation seeds 100-101, which are not among the seeds
    reported: time-series PCA keeps 95 % of the variance with EWMA lambda = 0.2
    (tried 0.8/0.9/0.95 x lambda 0.1/0.2/0.3); unfolded PCA keeps 90 % of the
    variance of 3-hourly samples (tried 5/10 components, 80/90 %, every 3/6 h)."""
    return [
        BatchParameterMethod("Univariate rule 1 (batch parameters)", UnivariateMonitor(rules=(1,)), seed),
        BatchParameterMethod("Univariate rules 1-4 (batch parameters)", UnivariateMonitor(rules=(1, 2, 3, 4)), seed),
        BatchParameterMethod("PCA T²/SPE (batch parameters)", PCAMonitor(n_components=0.9), seed),
        SeriesMethod("Univariate rule 1 (time series, EWMA)", UnivariateMonitor(rules=(1,))),
        SeriesMethod("PCA T²/SPE (time series, EWMA)", PCAMonitor(n_components=0.95)),
        SeriesMethod("IsolationForest (time series, EWMA)", IsolationForestMonitor(random_state=seed)),
        UnfoldedSeriesMethod("PCA T²/SPE (unfolded time series, end of batch)", PCAMonitor(n_components=0.9)),
        DurationMethod(),
        CombinedMethod(
            "Combined online: PCA time series + duration",
            [SeriesMethod("PCA", PCAMonitor(n_components=0.95)), DurationMethod()],
        ),
        CombinedMethod(
            "Combined end of batch: unfolded PCA + duration",
            [UnfoldedSeriesMethod("PCA", PCAMonitor(n_components=0.9)), DurationMethod()],
        ),
    ]
