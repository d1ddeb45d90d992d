"""The evaluation: every available process runs through the online protocol (quick
sizes), thresholds come from the threshold runs only, scoring is online (a statistic
never depends on later samples), the baselines are printed, and the command rewrites
only its own section of the docs."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from analytics.cli import END, START, analytics
from analytics.evaluation import (
    PenSimProcess,
    ProcessRun,
    available_processes,
    default_methods,
    evaluate,
    make_split,
    score_split,
)
from analytics.evaluation.protocol import SIZES


class ToyContinuous:
    """A small continuous process (two cross-correlated AR(1) variables; a bias on
    one of them as the fault), so the continuous path is tested even where the
    independent processes are not installed."""

    name, kind, variables, units, fault_types = "toy", "continuous", ("a", "b"), ("-", "-"), ("bias",)

    def simulate(self, n_runs, seed, faults=None):
        faults = [None] * n_runs if faults is None else faults
        rng = np.random.default_rng(seed)
        n = 48
        x, runs = np.zeros(2), []
        for i, fault in enumerate(faults):
            X = np.empty((n, 2))
            for t in range(n):
                e = rng.standard_normal()
                x = 0.8 * x + np.array([e, 0.7 * e + 0.3 * rng.standard_normal()])
                X[t] = x
            onset = None
            if fault:
                onset = float(rng.integers(10, 30))
                X[int(onset) :, 1] += 3.0
            runs.append(
                ProcessRun(f"toy-{i}", np.arange(n, dtype=float), X, self.variables, self.units, fault, onset, None)
            )
        return runs


def _methods(process, split):
    return default_methods(
        process.kind,
        split.fit[0].durations is not None,
        seed=3,
        landmark=getattr(process, "landmark_hours", None),
        known_at=getattr(process, "duration_known_hours", None),
    )


def _cheap_methods(process, split):
    """One method of each class (the costly monitors share MonitorMethod with the
    univariate chart): what the leak and causality tests run."""
    methods = _methods(process, split)
    return [m for m in methods if not m.name.startswith(("PCAMonitor", "IsolationForest", "Combined: PCAMonitor"))]


def _processes():
    return {**available_processes(), "toy": ToyContinuous}


@pytest.fixture(scope="module", params=sorted(_processes()))
def process(request):
    return _processes()[request.param]()


@pytest.fixture(scope="module")
def split(process):
    return make_split(process, 3, *SIZES["quick"])


def test_protocol_runs_online_on_every_process(process, split):
    results = {}
    methods = _methods(process, split)
    names = list(score_split(methods, split, 0.05, results, process.fault_types))
    assert names[:2] == ["Baseline: plain PCA-SPE", "Baseline: plain PCA-T²"]
    n_test, n_faulty = SIZES["quick"][2], SIZES["quick"][3]
    assert len(split.test_normal) == n_test
    for result in results.values():
        assert result.normal_runs == n_test and 0.0 <= result.run_false_alarm_rate <= 1.0
        for fault_type in process.fault_types:
            n, detected, before = result.faulty[fault_type]
            assert n == n_faulty and 0 <= detected <= n and 0 <= before <= n
            assert all(d >= 0 for d in result.delays[fault_type])  # first flag at/after onset


def test_continuous_runs_are_consecutive_windows_fit_first():
    split = make_split(ToyContinuous(), 1, 25, 25, 10, 3)
    order = [int(r.run_id.split("-")[1]) for r in split.fit + split.threshold]
    assert order == list(range(50))  # fit on the first windows, thresholds on the next
    tested = [int(r.run_id.split("-")[1]) for r in split.test_normal + split.test_faulty["bias"]]
    assert min(tested) >= 50 and len(set(tested)) == 13


def test_thresholds_come_from_threshold_runs_only(process, split):
    """Scrambling every test run leaves every threshold as it was; changing the
    threshold runs moves them (so the test would see a leak)."""

    def thresholds(s):
        results = {}
        list(score_split(_cheap_methods(process, s), s, 0.05, results, process.fault_types))
        return {name: r.thresholds[0] for name, r in results.items()}

    def scrambled(runs, factor):
        out = []
        for r in runs:
            durations = None if r.durations is None else r.durations * factor
            out.append(replace(r, X=r.X * factor + 7.0, durations=durations))
        return out

    base = thresholds(split)
    leaked = copy.copy(split)
    leaked.test_normal = scrambled(split.test_normal, 3.0)
    leaked.test_faulty = {f: scrambled(runs, 3.0) for f, runs in split.test_faulty.items()}
    assert thresholds(leaked) == base
    moved = copy.copy(split)
    moved.threshold = scrambled(split.threshold, 1.5)
    changed = thresholds(moved)
    calibrated = [n for n in base if "not calibrated" not in n]
    assert all(a != b for n in calibrated for a, b in zip(changed[n], base[n])), (changed, base)


def test_statistics_use_only_the_samples_up_to_each_time(process, split):
    methods = _cheap_methods(process, split)
    run = split.test_normal[0]
    cut = len(run.times) // 2
    later = replace(run, X=np.vstack([run.X[:cut], run.X[cut:] * 5.0 + 3.0]))
    for method in methods:
        method.fit(split.fit)
        method.calibrate(split.threshold, 0.05)
        now, changed = method.statistic(run), method.statistic(later)
        assert now.shape == (len(run.times),)
        assert np.array_equal(now[:cut], changed[:cut]), method.name


def test_pensim_process_follows_the_interface():
    process = PenSimProcess()
    runs = process.simulate(3, 5, [None, "sensor_bias", "slow_step"])
    again = process.simulate(3, 5, [None, "sensor_bias", "slow_step"])
    assert np.array_equal(runs[1].X, again[1].X) and runs[1].onset_hours == again[1].onset_hours
    assert runs[0].fault_type is None and runs[0].onset_hours is None
    assert runs[1].fault_type == "sensor_bias" and 60 <= runs[1].onset_hours <= 200
    assert runs[0].X.shape == (len(runs[0].times), len(process.variables)) and len(runs[0].durations) == 4
    # the maturity landmark is read from the measured feed rate, not from the ground truth
    feeding = runs[0].X[:, process.variables.index("feed_rate")] > 0
    assert process.landmark_hours(runs[0]) == runs[0].times[np.argmax(feeding)] > 0
    assert set(runs[0].details) == {"fault"}
    with pytest.raises(ValueError):
        process.simulate(2, 5, [None])
    with pytest.raises(ValueError):
        process.simulate(1, 5, ["no_such_fault"])


def test_unknown_process_is_refused():
    with pytest.raises(ValueError, match="unknown process"):
        evaluate(["no_such_process"], seeds=1, quick=True)
    result = CliRunner().invoke(analytics, ["evaluate", "--process", "pensim,nope", "--quick"])
    assert result.exit_code == 2 and "unknown process" in result.output
    result = CliRunner().invoke(analytics, ["evaluate", "--alpha", "0", "--quick"])
    assert result.exit_code == 2


def test_evaluate_command_rewrites_only_its_section(tmp_path):
    out = tmp_path / "analytics.md"
    out.write_text(f"# Title\n\nhand-written\n\n{START}\nOLD-CONTENT\n{END}\n\ntail\n", encoding="utf-8")
    result = CliRunner().invoke(analytics, ["evaluate", "--quick", "--seeds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nhand-written") and text.rstrip().endswith("tail")
    assert "OLD-CONTENT" not in text
    for name in available_processes():
        section = text.split(f"### Process `{name}`", 1)[1].split("### Process", 1)[0]
        assert "| Baseline: plain PCA-SPE |" in section and "| Baseline: plain PCA-T² |" in section
        assert "Median detection delay" in section
    assert (tmp_path / "img" / "analytics-detection.png").stat().st_size > 1000


def test_python_example_in_docs_runs():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "analytics.md").read_text(encoding="utf-8")
    code = text.split("## From Python", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(code, "docs/analytics.md", "exec"), namespace)
    assert (
        namespace["same"].predict(namespace["Xnew"]).tolist()
        == namespace["monitor"].predict(namespace["Xnew"]).tolist()
    )
