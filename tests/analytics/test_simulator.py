"""The fed-batch simulator: deterministic by seed, plausible, faults visible."""

import time

import numpy as np

from analytics.simulator import PARAMETER_NAMES, STEP_NAMES, VARIABLE_NAMES, Fault, history_for_demo, simulate_batches


def test_same_seed_same_batches_other_seed_other_batches():
    a, b, c = simulate_batches(3, 7), simulate_batches(3, 7), simulate_batches(3, 8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.series, y.series)
        np.testing.assert_array_equal(x.step_durations, y.step_durations)
        assert x.batch_id == y.batch_id
    assert not np.allclose(a[0].series, c[0].series)


def test_hundred_batches_in_seconds_and_plausible():
    start = time.perf_counter()
    batches = simulate_batches(100, 1)
    assert time.perf_counter() - start < 10
    parameters = dict(zip(PARAMETER_NAMES, np.stack([b.parameters for b in batches]).mean(axis=0)))
    # PenSim-like magnitudes: ~1.3 g/L penicillin, ~13 g/L biomass, batch phase 40-60 h
    assert 0.8 < parameters["final_titre"] < 2.0
    assert 8 < parameters["peak_biomass"] < 20
    assert 40 < parameters["batch_phase_length"] < 60
    assert batches[0].series.shape == (301, len(VARIABLE_NAMES))


def run_with(fault):
    normal, faulty = simulate_batches(1, 3, faults=[None]), simulate_batches(1, 3, faults=[fault])
    return normal[0], faulty[0]


def column(name):
    return VARIABLE_NAMES.index(name)


def test_process_faults_change_the_process_only_after_onset():
    for fault, name in [
        (Fault("feed_fault", 100.0, 0.2, "feed pump", 80.0), "volume"),
        (Fault("kinetic_change", 100.0, 0.3, "mu_x"), "substrate"),
    ]:
        normal, faulty = run_with(fault)
        before, after = normal.times < 100, normal.times >= 110
        np.testing.assert_allclose(faulty.series[before], normal.series[before], rtol=1e-9, atol=1e-12)
        assert np.abs(faulty.series[after, column(name)] - normal.series[after, column(name)]).min() > 0
    normal, faulty = run_with(Fault("feed_fault", 100.0, 0.2, "feed pump", 80.0))
    assert faulty.series[-1, column("volume")] < normal.series[-1, column("volume")] - 0.5


def test_sensor_faults_touch_only_their_sensor():
    normal, faulty = run_with(Fault("sensor_bias", 150.0, 0.1, "dissolved_o2"))
    difference = faulty.series - normal.series
    assert np.all(difference[:, np.arange(len(VARIABLE_NAMES)) != column("dissolved_o2")] == 0)
    assert np.all(difference[normal.times < 150] == 0)
    assert np.allclose(difference[normal.times >= 150, column("dissolved_o2")], difference[-1, column("dissolved_o2")])
    normal, faulty = run_with(Fault("sensor_drift", 150.0, 0.001, "penicillin"))
    drift = (faulty.series - normal.series)[:, column("penicillin")]
    assert drift[200] > 0 and np.isclose(drift[250], 2 * drift[200])


def test_step_faults_scale_the_step_duration():
    normal, slow = run_with(Fault("slow_step", 0.0, 2.0, "inoculate"))
    ratio = slow.step_durations / normal.step_durations
    np.testing.assert_allclose(ratio, [2.0 if s == "inoculate" else 1.0 for s in STEP_NAMES])
    assert slow.fault.type == "slow_step" and normal.fault is None


def test_history_for_demo():
    history = history_for_demo(5, seed=2)
    assert len(history) == 5 and len({h["batch_id"] for h in history}) == 5
    assert history[0]["parameters"]["final_titre"]["unit"] == "g/L"
    assert set(history[0]["step_durations"]) == set(STEP_NAMES)
    assert history == history_for_demo(5, seed=2)
