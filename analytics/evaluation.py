"""How well each out-of-trend method finds faults, measured on simulated batches
with known faults, with every method held to the same batch false-alarm rate.

Protocol (per seed): fit every method on normal batches; set every threshold on
*other* normal batches only (``calibrate``, conformal rank, at the target batch
false-alarm rate); then test on fresh normal batches and on faulty batches of each
fault type.  A faulty batch counts as detected when the method flags it (time
series methods: at or after the fault onset).  Nothing about the faults is used
before testing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter
from sklearn.base import clone

from .base import CalibrationWarning
from .duration import DurationMonitor
from .forest import IsolationForestMonitor
from .pca import PCAMonitor
from .simulator import FAULT_TYPES, draw_fault, simulate_batches
from .univariate import UnivariateMonitor


@dataclass
class Split:
    """Batches of one seed: fit, threshold-setting, test (normal and per fault)."""

    fit: list
    threshold: list
    test_normal: list
    test_faulty: dict  # fault type -> batches


def make_split(seed, n_fit=50, n_threshold=50, n_test_normal=50, n_faulty=20):
    """Simulate one seed's batches in one run (fast: all batches integrate
    together); which batch gets which fault is drawn up front."""
    base = 1000 * int(seed)
    rng = np.random.default_rng(base + 7)
    n_normal = n_fit + n_threshold + n_test_normal
    faults = [None] * n_normal
    for fault_type in FAULT_TYPES:
        faults += [draw_fault(rng, fault_type) for _ in range(n_faulty)]
    batches = simulate_batches(len(faults), base + 1, faults=faults)
    split = Split(
        fit=batches[:n_fit],
        threshold=batches[n_fit : n_fit + n_threshold],
        test_normal=batches[n_fit + n_threshold : n_normal],
        test_faulty={},
    )
    for i, fault_type in enumerate(FAULT_TYPES):
        start = n_normal + i * n_faulty
        split.test_faulty[fault_type] = batches[start : start + n_faulty]
    return split


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
        self.feed_start = float(np.median([_feed_start(b) for b in batches]))
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
        f, f0, grid = _feed_start(batch), self.feed_start, batch.times
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


def _feed_start(batch):
    feeding = batch.series[:, 0] > 0
    return float(batch.times[np.argmax(feeding)]) if feeding.any() else float(batch.times[-1])


# ---------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------


@dataclass
class MethodResult:
    """Counts for one method, summed over seeds."""

    name: str
    level: str
    normal_batches: int = 0
    normal_batches_flagged: int = 0
    normal_samples: int = 0
    normal_samples_flagged: int = 0
    batch_far_per_seed: list = field(default_factory=list)
    faulty: dict = field(default_factory=dict)  # fault type -> [n, detected]
    delays: dict = field(default_factory=dict)  # fault type -> list of hours
    by_target: dict = field(default_factory=dict)  # (fault type, sensor/step) -> [n, detected]

    @property
    def batch_false_alarm_rate(self):
        return self.normal_batches_flagged / max(self.normal_batches, 1)

    @property
    def sample_false_alarm_rate(self):
        return self.normal_samples_flagged / max(self.normal_samples, 1)

    def detection_rate(self, fault_type=None):
        keys = FAULT_TYPES if fault_type is None else (fault_type,)
        n = sum(self.faulty.get(k, (0, 0))[0] for k in keys)
        detected = sum(self.faulty.get(k, (0, 0))[1] for k in keys)
        return detected / max(n, 1)

    def median_delay(self, fault_type):
        values = self.delays.get(fault_type, [])
        return float(np.median(values)) if values else None


def evaluate(
    seeds=3,
    alpha=0.05,
    n_fit=50,
    n_threshold=50,
    n_test_normal=50,
    n_faulty=20,
    progress=None,
    keep_examples=False,
    first_seed=0,
):
    """Run the protocol over ``seeds`` seeds.  Returns (results by method name,
    examples for the plots).  ``progress(step_label)`` is called after each stage."""
    if n_threshold < 25 or n_fit < 50:
        raise ValueError("the protocol needs at least 50 fit and 25 threshold batches")
    results, examples = {}, {}
    for seed in range(first_seed, first_seed + seeds):
        split = make_split(seed, n_fit, n_threshold, n_test_normal, n_faulty)
        if progress:
            progress(f"seed {seed}: simulated")
        for method in default_methods(seed):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CalibrationWarning)
                method.fit(split.fit)
                method.calibrate(split.threshold, alpha)
            result = results.setdefault(method.name, MethodResult(method.name, method.level))
            flagged_batches = 0
            for batch in split.test_normal:
                times = method.flag_times(batch)
                flagged_batches += bool(times.size)
                if method.level == "series":
                    result.normal_samples += batch.times.size
                    result.normal_samples_flagged += times.size
                else:
                    result.normal_samples += 1
                    result.normal_samples_flagged += bool(times.size)
            result.normal_batches += len(split.test_normal)
            result.normal_batches_flagged += flagged_batches
            result.batch_far_per_seed.append(flagged_batches / len(split.test_normal))
            for fault_type, batches in split.test_faulty.items():
                counts = result.faulty.setdefault(fault_type, [0, 0])
                delays = result.delays.setdefault(fault_type, [])
                for batch in batches:
                    times = method.flag_times(batch)
                    after = times[times >= batch.fault.onset]
                    target = result.by_target.setdefault((fault_type, batch.fault.target), [0, 0])
                    counts[0] += 1
                    target[0] += 1
                    if after.size:
                        counts[1] += 1
                        target[1] += 1
                        if method.level == "series":
                            delays.append(float(after[0] - batch.fault.onset))
            if keep_examples and seed == first_seed and method.name == "PCA T²/SPE (time series, EWMA)":
                examples = {
                    label: (batch, method.reference.real_times(batch), method.statistic(batch))
                    for label, batch in [("normal", split.test_normal[0])]
                    + [
                        (ft, split.test_faulty[ft][0])
                        for ft in ("sensor_bias", "sensor_drift", "feed_fault", "kinetic_change")
                    ]
                }
            if progress:
                progress(f"seed {seed}: {method.name}")
    return results, examples


# ---------------------------------------------------------------------------------

FAULT_LABELS = {
    "sensor_bias": "sensor bias",
    "sensor_drift": "sensor drift",
    "feed_fault": "feed fault",
    "kinetic_change": "µmax drop",
    "slow_step": "slow step ×2",
    "rushed_step": "rushed step ×0.5",
}


def results_table(results):
    """Markdown tables: false alarms and detection per method, then delays."""
    head = ["Method", "batch FAR", "sample FAR"] + [FAULT_LABELS[f] for f in FAULT_TYPES] + ["all faults"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results.values():
        per_seed = ", ".join(f"{v:.0%}" for v in r.batch_far_per_seed)
        cells = [
            r.name,
            f"{r.batch_false_alarm_rate:.1%} ({per_seed})",
            f"{r.sample_false_alarm_rate:.2%}" if r.level == "series" else "(per batch)",
        ]
        cells += [f"{r.detection_rate(f):.0%}" for f in FAULT_TYPES]
        cells.append(f"{r.detection_rate():.0%}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Median detection delay from fault onset (hours; time series methods only - "
        "batch-level methods decide at the end of the batch, the duration monitor when the "
        "step closes):",
        "",
    ]
    head = ["Method"] + [FAULT_LABELS[f] for f in FAULT_TYPES if f not in ("slow_step", "rushed_step")]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results.values():
        if r.level != "series":
            continue
        cells = [r.name]
        for f in FAULT_TYPES:
            if f in ("slow_step", "rushed_step"):
                continue
            d = r.median_delay(f)
            cells.append("–" if d is None else f"{d:.0f} h")
        lines.append("| " + " | ".join(cells) + " |")
    pca_methods = [
        n for n in ("PCA T²/SPE (time series, EWMA)", "PCA T²/SPE (unfolded time series, end of batch)") if n in results
    ]
    if pca_methods:
        first = results[pca_methods[0]]
        sensors = sorted({t for (f, t) in first.by_target if f in ("sensor_bias", "sensor_drift")})
        lines += [
            "",
            "Sensor faults by sensor (detected / faulty batches):",
            "",
            "| method | fault | " + " | ".join(sensors) + " |",
            "|---|---|" + "---|" * len(sensors),
        ]
        for name in pca_methods:
            for f in ("sensor_bias", "sensor_drift"):
                cells = []
                for t in sensors:
                    n, d = results[name].by_target.get((f, t), (0, 0))
                    cells.append(f"{d}/{n}" if n else "–")
                lines.append(f"| {name} | {FAULT_LABELS[f]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_results(results, examples, directory):
    """Detection-rate bars and example control charts as PNG files; returns their
    paths relative to ``directory``'s parent (for markdown links)."""
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(10, 6.5))
    names = list(results)
    width = 0.8 / len(names)
    x = np.arange(len(FAULT_TYPES))
    for i, name in enumerate(names):
        rates = [results[name].detection_rate(f) for f in FAULT_TYPES]
        ax.bar(x + i * width, rates, width, label=f"{name} (FAR {results[name].batch_false_alarm_rate:.0%})")
    ax.set_xticks(x + width * (len(names) - 1) / 2, [FAULT_LABELS[f] for f in FAULT_TYPES])
    ax.axhline(0.9, color="grey", linestyle="--", linewidth=1)
    ax.set_ylabel("faulty batches detected")
    ax.set_ylim(0, 1.05)
    ax.set_title("Detection rate per fault type at equal batch false-alarm rate")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    fig.tight_layout()
    path = directory / "analytics-detection.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)

    if examples:
        fig, axes = plt.subplots(len(examples), 1, figsize=(9, 2.2 * len(examples)), sharex=True)
        for ax, (label, (batch, times, statistic)) in zip(np.atleast_1d(axes), examples.items()):
            ax.semilogy(times, np.maximum(statistic, 1e-3), linewidth=1)
            ax.axhline(1.0, color="red", linewidth=1)
            if batch.fault is not None:
                ax.axvline(batch.fault.onset, color="black", linestyle=":")
                title = f"{FAULT_LABELS[label]} ({batch.fault.target}, magnitude {batch.fault.magnitude:.3g})"
            else:
                title = "normal batch"
            ax.set_title(title, fontsize=9)
            ax.set_ylabel("stat / limit")
        np.atleast_1d(axes)[-1].set_xlabel("batch time (h); dotted: fault onset, red: limit")
        fig.suptitle("PCA time-series monitor: max(T², SPE) relative to the calibrated limit", fontsize=10)
        fig.tight_layout()
        path = directory / "analytics-charts.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
