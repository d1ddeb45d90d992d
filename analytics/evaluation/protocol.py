"""How well each out-of-trend method finds faults while the run progresses, on every
test process, with every method held to the same run false-alarm rate.

Protocol (per process and seed): fit every method on normal runs; set every threshold
on *other* normal runs only (``calibrate``: the conformal rank of the threshold runs'
largest statistic, for the target run false-alarm rate alpha); then test on fresh
normal runs and on faulty runs of each fault type.  Scoring is online: the statistic
at a sample time uses only the run's data up to then.  A normal test run with any flag
is a false alarm; a faulty run is detected when flagged at or after the fault onset
(the delay is the first such flag - onset); a flag before the onset is counted
separately (a false alarm in the normal part of a faulty run).

Batch processes: independent batches.  Continuous processes: a "run" is a window of
one trajectory, simulated in time order - fit on the first windows, thresholds on the
next, test on the later ones; after each faulty test window one window is left out
(the process is recovering) so that a recovery transient is not scored as a normal
window.  Nothing about the faults is used before testing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .choices import default_methods
from .pensim import available_processes


@dataclass
class Split:
    """Runs of one process and seed: fit, threshold-setting, test (normal and per fault)."""

    fit: list
    threshold: list
    test_normal: list
    test_faulty: dict  # fault type -> runs


def make_split(process, seed, n_fit=50, n_threshold=50, n_test_normal=50, n_faulty=20):
    """Simulate one seed's runs in one call; which run gets which fault is fixed up front."""
    kinds = [f for f in process.fault_types for _ in range(n_faulty)]
    if process.kind == "batch":
        faults = [None] * (n_fit + n_threshold + n_test_normal) + kinds
        runs = process.simulate(len(faults), seed, faults)
        test = runs[n_fit + n_threshold :]
    else:
        order = [None] * n_test_normal + kinds
        np.random.default_rng([int(seed), 11]).shuffle(order)
        sequence = [None] * (n_fit + n_threshold)
        scored = []
        for fault in order:
            scored.append(len(sequence))
            sequence += [fault] if fault is None else [fault, None]  # a recovery window, not scored
        runs = process.simulate(len(sequence), seed, sequence)
        test = [runs[i] for i in scored]
    split = Split(runs[:n_fit], runs[n_fit : n_fit + n_threshold], [], {f: [] for f in process.fault_types})
    for run in test:
        (split.test_normal if run.fault_type is None else split.test_faulty[run.fault_type]).append(run)
    return split


@dataclass
class MethodResult:
    """Counts for one method on one process, summed over seeds."""

    name: str
    fault_types: tuple
    normal_runs: int = 0
    normal_runs_flagged: int = 0
    normal_samples: int = 0
    normal_samples_flagged: int = 0
    far_per_seed: list = field(default_factory=list)
    thresholds: list = field(default_factory=list)  # per seed
    faulty: dict = field(default_factory=dict)  # fault type -> [n, detected, flagged before onset]
    delays: dict = field(default_factory=dict)  # fault type -> hours

    @property
    def run_false_alarm_rate(self):
        return self.normal_runs_flagged / max(self.normal_runs, 1)

    @property
    def sample_false_alarm_rate(self):
        return self.normal_samples_flagged / max(self.normal_samples, 1)

    def detection_rate(self, fault_type=None):
        keys = self.fault_types if fault_type is None else (fault_type,)
        n = sum(self.faulty.get(k, (0, 0, 0))[0] for k in keys)
        return sum(self.faulty.get(k, (0, 0, 0))[1] for k in keys) / max(n, 1)

    def pre_onset_rate(self):
        n = sum(v[0] for v in self.faulty.values())
        return sum(v[2] for v in self.faulty.values()) / max(n, 1)

    def median_delay(self, fault_type=None):
        keys = self.fault_types if fault_type is None else (fault_type,)
        values = [d for k in keys for d in self.delays.get(k, [])]
        return float(np.median(values)) if values else None


def score_split(methods, split, alpha, results, fault_types):
    """Fit, calibrate and test ``methods`` on one split; adds to ``results``."""
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            method.fit(split.fit)
            method.calibrate(split.threshold, alpha)
        result = results.setdefault(method.name, MethodResult(method.name, tuple(fault_types)))
        result.thresholds.append(method.thresholds())
        flagged_runs = 0
        for run in split.test_normal:
            flags = method.flags(run)
            flagged_runs += bool(flags.any())
            result.normal_samples += flags.size
            result.normal_samples_flagged += int(flags.sum())
        result.normal_runs += len(split.test_normal)
        result.normal_runs_flagged += flagged_runs
        result.far_per_seed.append(flagged_runs / max(len(split.test_normal), 1))
        for fault_type, runs in split.test_faulty.items():
            counts = result.faulty.setdefault(fault_type, [0, 0, 0])
            delays = result.delays.setdefault(fault_type, [])
            for run in runs:
                times = method.flag_times(run)
                counts[0] += 1
                counts[2] += bool((times < run.onset_hours).any())
                after = times[times >= run.onset_hours]
                if after.size:
                    counts[1] += 1
                    delays.append(float(after[0] - run.onset_hours))
        yield method.name


SIZES = {"full": (50, 100, 100, 20), "quick": (25, 40, 10, 3)}


def evaluate(processes=None, seeds=3, alpha=0.05, quick=False, first_seed=0, progress=None, sizes=None):
    """Run the protocol on each process over ``seeds`` seeds. Returns
    {process name: {method name: MethodResult}}.  ``progress(label)`` after each stage."""
    factories = available_processes()
    names = list(factories) if not processes else list(processes)
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown process(es) {', '.join(unknown)}; available: {', '.join(factories)}")
    n_fit, n_threshold, n_test, n_faulty = sizes or SIZES["quick" if quick else "full"]
    out = {}
    for name in names:
        process = factories[name]()
        results = out.setdefault(name, {})
        for seed in range(first_seed, first_seed + seeds):
            split = make_split(process, seed, n_fit, n_threshold, n_test, n_faulty)
            if progress:
                progress(f"{name} seed {seed}: simulated")
            has_durations = split.fit[0].durations is not None and len(split.fit[0].durations) > 0
            methods = default_methods(
                process.kind,
                has_durations,
                seed,
                landmark=getattr(process, "landmark_hours", None),
                known_at=getattr(process, "duration_known_hours", None),
            )
            for label in score_split(methods, split, alpha, results, process.fault_types):
                if progress:
                    progress(f"{name} seed {seed}: {label}")
    return out
