"""Equipment time series of a unit procedure, aligned by batch maturity (feed start),
scored by the PCA monitor: normal batches pass, a feed fault is found after its onset."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from analytics.simulator import VARIABLE_NAMES, simulate_batches
from analytics.timeseries import TimeSeriesModel, align, fit_timeseries, score_timeseries


def _feed_start(batch):
    feeding = batch.series[:, 0] > 0
    return float(batch.times[np.argmax(feeding)])


@pytest.fixture(scope="module")
def setting():
    normal = simulate_batches(80, seed=11)
    faulty = simulate_batches(10, seed=12, fault_type="feed_fault")
    reference = float(np.median([_feed_start(b) for b in normal[:40]]))
    grid = normal[0].times

    def aligned(batch):
        return align(batch.times, batch.series, grid, [_feed_start(batch)], [reference])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fit_timeseries(
            [aligned(b) for b in normal[:40]],
            VARIABLE_NAMES,
            calibration=[aligned(b) for b in normal[40:70]],
            calibration_alpha=0.1,
        )
    return model, aligned, normal[70:], faulty


def test_normal_batches_pass_and_feed_faults_are_found(setting):
    model, aligned, normal, faulty = setting
    model = TimeSeriesModel.from_dict(json.loads(json.dumps(model.to_dict())))  # stored as JSON
    false_alarms = sum(score_timeseries(model, aligned(b))["first_flag"] is not None for b in normal)
    assert false_alarms <= 2
    found = 0
    for batch in faulty:
        result = score_timeseries(model, aligned(batch))
        first = result["first_flag"]
        if first is not None and batch.times[first] >= batch.fault.onset:
            found += 1
            drivers = result["drivers"][first]
            assert len(drivers) == 3 and drivers[0]["variable"] in VARIABLE_NAMES
    assert found >= 6


def test_a_running_batch_scores_the_part_it_has_reached(setting):
    model, aligned, normal, _ = setting
    result = score_timeseries(model.to_dict(), aligned(normal[0])[:50])
    assert len(result["statistic"]) == 50 and len(result["flagged"]) == 50
    with pytest.raises(ValueError):
        score_timeseries(model, np.zeros((10, 3)))


def test_align_without_landmarks_is_interpolation_on_time():
    times = np.array([0.0, 1.0, 2.0])
    samples = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0]])
    out = align(times, samples, [0.0, 0.5, 2.0])
    assert out.tolist() == [[0.0, 10.0], [0.5, 15.0], [2.0, 30.0]]
