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

from ..base import CalibrationWarning
from ..simulator import FAULT_TYPES, draw_fault, simulate_batches
from .methods import default_methods


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
