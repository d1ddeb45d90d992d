"""The independent test processes are plausible, deterministic, and their faults honest.

Plausible: controllers hold their setpoints, the volume balance closes, nothing goes
negative, a CHO culture looks like one (growth, lactate shift, titre). Deterministic:
same seed, same runs. Honest faults: a faulty run equals the normal run of the same
seed up to the onset and differs after it. The continuous process is one trajectory
cut into consecutive, autocorrelated, cross-correlated windows that wander.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from analytics.processes import PROCESSES, ChoFedBatch, ContinuousPerfusion, ProcessRun
from analytics.processes.cho_bioreactor import PH_DEADBAND, PH_SETPOINT
from analytics.processes.cho_faults import DURATION_FAULTS, PROCESS_FAULTS


@pytest.fixture(scope="module")
def cho() -> ChoFedBatch:
    return ChoFedBatch()


@pytest.fixture(scope="module")
def cho_normal(cho) -> list[ProcessRun]:
    return cho.simulate(40, 11)


@pytest.fixture(scope="module")
def cont() -> ContinuousPerfusion:
    return ContinuousPerfusion()


@pytest.fixture(scope="module")
def cont_normal(cont) -> list[ProcessRun]:
    return cont.simulate(30, 5)


def stack(runs: list[ProcessRun]) -> np.ndarray:
    return np.stack([r.X for r in runs])


def col(process, name: str) -> int:
    return process.variables.index(name)


# --- the interface ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cho_fedbatch", "continuous"])
def test_every_process_follows_the_protocol(name):
    process = PROCESSES[name]()
    assert process.name == name and process.kind in ("batch", "continuous")
    assert len(process.variables) == len(process.units) == len(set(process.variables))
    assert len(process.fault_types) >= 6
    assert set(process.fault_info()) == set(process.fault_types)
    runs = process.simulate(3, 0, [None, process.fault_types[0], None])
    assert [r.fault_type for r in runs] == [None, process.fault_types[0], None]
    assert runs[0].onset_hours is None and runs[1].onset_hours is not None
    for r in runs:
        assert r.X.shape == (r.times.size, len(process.variables))
        assert r.variables == process.variables and r.units == process.units
        assert np.isfinite(r.X).all()
        assert np.all(np.diff(r.times) > 0)
    assert len({r.run_id for r in runs}) == 3


@pytest.mark.parametrize("name", ["cho_fedbatch", "continuous"])
def test_bad_arguments_fail_loudly(name):
    process = PROCESSES[name]()
    assert process.simulate(0, 1) == []
    with pytest.raises(ValueError, match="unknown fault"):
        process.simulate(2, 1, [None, "ph_probe_drfit"])
    with pytest.raises(ValueError, match="entries"):
        process.simulate(2, 1, [None])
    with pytest.raises(ValueError, match="unknown fault"):
        process.simulate(2, 1, [None, float("nan")])
    for bad in (-1, 2.5, True, "3", None):
        with pytest.raises(ValueError):
            process.simulate(bad, 1)
    assert len(process.simulate(np.int64(2), np.int64(1))) == 2  # numpy integers are integers


def test_bad_constructor_arguments():
    with pytest.raises(ValueError):
        ChoFedBatch(days=0.0)
    with pytest.raises(ValueError):
        ChoFedBatch(sample_hours=2.0, dt=3.0)
    with pytest.raises(ValueError):
        ContinuousPerfusion(window_hours=1000.0)


# --- CHO fed-batch: plausibility ----------------------------------------------------------


def test_cho_runs_share_one_grid_and_are_a_few_thousand_numbers(cho, cho_normal):
    assert all(np.array_equal(r.times, cho.times) for r in cho_normal)
    assert cho.times[-1] == pytest.approx(336.0)
    assert 2000 <= cho_normal[0].X.size <= 10000


def test_cho_controllers_hold_their_setpoints(cho, cho_normal):
    X, t = stack(cho_normal), cho.times
    temp = X[:, :, col(cho, "temperature")]
    assert np.all(np.abs(temp[:, (t > 12) & (t < 110)] - 36.8) < 0.25)
    assert np.all(np.abs(temp[:, t > 135] - 33.0) < 0.25)
    ph = X[:, t > 60, col(cho, "ph")]
    # the deadband plus noise; short excursions when the temperature shift changes the metabolism
    assert np.percentile(np.abs(ph - PH_SETPOINT), 95) < PH_DEADBAND + 0.02
    assert np.all(np.abs(ph - PH_SETPOINT) < PH_DEADBAND + 0.15)
    do = X[:, t > 96, col(cho, "dissolved_oxygen")]
    assert abs(np.median(do) - 40.0) < 2.0 and np.percentile(np.abs(do - 40.0), 99) < 8.0
    # the cascade: agitation first, O2 only once agitation is near its maximum
    agitation, o2 = X[:, :, col(cho, "agitation")], X[:, :, col(cho, "o2_flow")]
    assert np.all(agitation[o2 > 0.5] > 160.0)


def test_cho_volume_balance_closes(cho_normal):
    for r in cho_normal:
        f = r.details["true_final"]
        expected = f["initial_volume_L"] + f["feed_L"] + f["glucose_L"] + f["base_L"] - f["samples_L"]
        assert f["volume"] == pytest.approx(expected, rel=1e-9)
        assert r.X[-1, r.variables.index("volume")] == pytest.approx(f["volume"], abs=1.5)
        assert r.X[-1, r.variables.index("base_added")] == pytest.approx(f["base_L"], abs=0.05)
        assert 8.0 < f["feed_L"] < 60.0


def test_cho_looks_like_a_cho_culture(cho, cho_normal):
    X = stack(cho_normal)
    v = {name: X[:, :, col(cho, name)] for name in cho.variables}
    assert np.all(X[:, :, [col(cho, n) for n in ("viable_cell_density", "glucose", "lactate", "titre")]] >= 0)
    assert np.all((v["viability"] >= 0) & (v["viability"] <= 100))
    peak = v["viable_cell_density"].max(axis=1)
    assert 10 < np.median(peak) < 40
    assert 1.5 < np.median(v["titre"][:, -1]) < 8.0
    lactate = v["lactate"]
    assert np.all(lactate.max(axis=1) > 2.0 * lactate[:, -1])  # the lactate shift: made, then consumed
    assert np.all(v["osmolality"][:, -1] > v["osmolality"][:, 0])
    assert 270 < v["osmolality"].min() and v["osmolality"].max() < 550
    # batches differ: a few % to tens of % in the outcomes
    cv = v["titre"][:, -1].std() / v["titre"][:, -1].mean()
    assert 0.03 < cv < 0.5


def test_cho_offline_results_are_held_between_daily_samples(cho, cho_normal):
    vcd = cho_normal[0].X[:, col(cho, "viable_cell_density")]
    changes = np.count_nonzero(np.diff(vcd))
    assert 10 <= changes <= 15  # one new result a day


def test_cho_sensor_errors_are_autocorrelated(cho, cho_normal):
    """Probe errors wander; where a loop holds the probe, the loop's output carries them."""
    for name in ("jacket_temperature", "volume"):
        x = stack(cho_normal)[:, 30:100, col(cho, name)]
        e = x - x.mean(axis=0)
        r1 = np.mean([np.corrcoef(v[:-1], v[1:])[0, 1] for v in e])
        assert r1 > 0.3, name


def test_cho_same_seed_same_runs_other_seed_other_runs(cho):
    faults = [None, "contamination", "slow_step"]
    a, b, c = cho.simulate(3, 7, faults), cho.simulate(3, 7, faults), cho.simulate(3, 8, faults)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x.X, y.X)
        np.testing.assert_array_equal(x.durations, y.durations)
        assert x.onset_hours == y.onset_hours
        assert not np.allclose(x.X, z.X)


@pytest.fixture(scope="module")
def cho_pairs(cho):
    """Each fault three times, and the normal runs of the same seed (run i has the same batch in both)."""
    faults = [f for f in cho.fault_types for _ in range(3)]
    return faults, cho.simulate(len(faults), 21), cho.simulate(len(faults), 21, faults)


@pytest.mark.parametrize("fault", sorted(PROCESS_FAULTS))
def test_cho_fault_changes_the_data_after_onset_only(cho, cho_pairs, fault):
    spec = PROCESS_FAULTS[fault]
    pairs = [(r, q) for f, q, r in zip(*cho_pairs) if f == fault]
    for r, q in pairs:
        assert r.fault_type == fault and q.fault_type is None
        assert spec.onset[0] <= r.onset_hours <= spec.onset[1]
        lo, hi = sorted(spec.magnitude)
        assert lo <= abs(r.details["magnitude"]) <= hi
        before = cho.times <= r.onset_hours
        np.testing.assert_array_equal(r.X[before], q.X[before])
        np.testing.assert_array_equal(r.durations, q.durations)
        assert not np.allclose(r.X[~before], q.X[~before])


@pytest.mark.parametrize("fault", sorted(DURATION_FAULTS))
def test_cho_duration_faults_change_one_step_only(cho, cho_pairs, fault):
    pairs = [(r, q) for f, q, r in zip(*cho_pairs) if f == fault]
    for r, q in pairs:
        np.testing.assert_array_equal(r.X, q.X)
        ratio = r.durations / q.durations
        k = r.duration_names.index(r.details["step"])
        assert ratio[k] == pytest.approx(DURATION_FAULTS[fault])
        assert np.allclose(np.delete(ratio, k), 1.0)
        assert 0.0 <= r.onset_hours <= cho.times[-1]
        assert len(q.durations) == len(q.duration_names) and np.all(q.durations > 0)


def test_hundred_cho_runs_in_a_few_seconds(cho):
    faults = [None if i % 2 else cho.fault_types[i % len(cho.fault_types)] for i in range(100)]
    start = time.process_time()  # CPU time of this process: other jobs on the machine do not count
    runs = cho.simulate(100, 1, faults)
    assert time.process_time() - start < 8.0  # ~2 s measured
    assert len(runs) == 100


# --- continuous: one trajectory in windows --------------------------------------------------


def test_windows_are_consecutive_pieces_of_one_trajectory(cont, cont_normal):
    times = np.concatenate([r.times for r in cont_normal])
    steps = np.diff(times)
    assert np.allclose(steps, cont.sample_hours)
    X = np.concatenate([r.X for r in cont_normal])
    jumps = np.abs(np.diff(X, axis=0))
    at_boundary = jumps[np.arange(1, len(cont_normal)) * cont.per_window - 1]
    # nothing special happens at a window boundary: its step is an ordinary step
    assert np.median(at_boundary / (np.median(jumps, axis=0) + 1e-12)) < 3.0
    # a longer simulation starts with the same windows
    longer = cont.simulate(len(cont_normal) + 3, 5)
    for a, b in zip(cont_normal, longer):
        np.testing.assert_array_equal(a.X, b.X)


def test_continuous_data_is_autocorrelated_and_cross_correlated(cont, cont_normal):
    X = np.concatenate([r.X for r in cont_normal])
    lag1 = np.array([np.corrcoef(x[:-1], x[1:])[0, 1] for x in X.T])
    assert np.median(lag1) > 0.8
    assert np.sum(lag1 > 0.9) >= len(cont.variables) // 2
    r = np.corrcoef(X.T)
    np.fill_diagonal(r, 0)
    assert np.sum(np.abs(r) > 0.5) // 2 >= 3  # several strongly related pairs
    i, j = col(cont, "vcd_capacitance"), col(cont, "perfusion_rate")
    assert r[i, j] > 0.7  # perfusion is fed forward from the capacitance probe


def test_continuous_normal_operation_wanders_into_new_regions(cont, cont_normal):
    """A model fitted on the first ~5 days sees values later it never saw."""
    X = np.concatenate([r.X for r in cont_normal])
    train, later = X[:500], X[500:]
    sd = train.std(axis=0) + 1e-12
    window_means = (
        later.reshape(-1, cont.per_window, X.shape[1]).mean(axis=1) if len(later) % cont.per_window == 0 else None
    )
    shift = np.abs(later.mean(axis=0) - train.mean(axis=0)) / sd
    outside = np.mean((later > train.max(axis=0)) | (later < train.min(axis=0)), axis=0)
    assert np.sum(shift > 0.5) >= 3 or np.sum(outside > 0.05) >= 3
    assert window_means is None or np.ptp(window_means, axis=0).max() > 0


def test_continuous_controllers_hold_their_setpoints(cont, cont_normal):
    X = np.concatenate([r.X for r in cont_normal])
    assert abs(np.median(X[:, col(cont, "temperature")]) - 36.5) < 0.05
    assert np.percentile(np.abs(X[:, col(cont, "ph")] - 7.0), 99) < 0.1
    assert abs(np.median(X[:, col(cont, "dissolved_oxygen")]) - 40.0) < 1.5
    vcd = X[:, col(cont, "vcd_capacitance")]
    assert abs(np.median(vcd) - 50.0) < 2.0 and np.percentile(np.abs(vcd - 50.0), 99) < 8.0
    assert np.all(X[:, [col(cont, n) for n in ("o2_flow", "co2_flow", "perfusion_rate", "harvest_rate")]] >= 0)


def test_continuous_same_seed_same_windows_other_seed_other(cont):
    a, b, c = cont.simulate(4, 2), cont.simulate(4, 2), cont.simulate(4, 3)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x.X, y.X)
        assert not np.allclose(x.X, z.X)


@pytest.mark.parametrize("fault", ContinuousPerfusion.fault_types)
def test_continuous_fault_starts_in_its_window_and_ends_with_it(cont, fault):
    n, w = 9, 4
    faults: list[str | None] = [None] * n
    faults[w] = fault
    normal, faulty = cont.simulate(n, 13), cont.simulate(n, 13, faults)
    for k in range(w):
        np.testing.assert_array_equal(faulty[k].X, normal[k].X)
    r, q = faulty[w], normal[w]
    assert r.times[0] <= r.onset_hours <= r.times[-1]
    before = r.times <= r.onset_hours
    np.testing.assert_array_equal(r.X[before], q.X[before])
    assert not np.allclose(r.X[~before], q.X[~before])
    # the process recovers: four days later it is about where it would have been
    sd = np.concatenate([x.X for x in normal]).std(axis=0) + 1e-12
    late = np.abs(faulty[-1].X - normal[-1].X).mean(axis=0) / sd
    assert np.median(late) < 0.5


def test_a_faulty_window_equals_the_normal_one_until_onset(cont):
    faults = [None, None, "ph_sensor_bias", None]
    normal, faulty = cont.simulate(4, 8), cont.simulate(4, 8, faults)
    for k in range(2):
        np.testing.assert_array_equal(faulty[k].X, normal[k].X)
    r, q = faulty[2], normal[2]
    before = r.times <= r.onset_hours
    np.testing.assert_array_equal(r.X[before], q.X[before])
    assert not np.allclose(r.X[~before], q.X[~before])


def test_sixty_continuous_windows_in_seconds(cont):
    start = time.process_time()
    runs = cont.simulate(60, 1)
    assert time.process_time() - start < 5.0  # ~0.4 s measured
    assert len(runs) == 60 and runs[-1].times[-1] == pytest.approx(60 * 24.0)


def test_processes_stand_alone():
    """numpy and the standard library only: nothing from the MES, nothing from the monitors they test."""
    import ast
    from pathlib import Path

    allowed = {"numpy", "math", "numbers", "dataclasses", "types", "typing", "collections", "__future__"}
    for path in (Path(__file__).resolve().parents[2] / "analytics" / "processes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize("days", [5.0, 21.0])
def test_cho_other_lengths_keep_faults_inside_the_batch(days):
    process = ChoFedBatch(days=days, sample_hours=2.0)
    faults = [f for f in PROCESS_FAULTS for _ in range(2)]
    runs = process.simulate(len(faults), 4, faults)
    assert all(r.X.shape == (int(days * 12) + 1, len(process.variables)) for r in runs)
    assert all(r.onset_hours < process.times[-1] for r in runs)
    info = process.fault_info()
    assert all(
        info[r.fault_type]["onset_hours"][0] <= r.onset_hours <= info[r.fault_type]["onset_hours"][1] for r in runs
    )
