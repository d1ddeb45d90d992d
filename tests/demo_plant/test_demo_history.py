"""The demo history from the equipment simulator's process model: the monitoring's
variable names, hourly from 1 h, reproducible per seed, different from batch to batch
within what a controlled process allows; passed to ``seed_demo_history`` by the web
layer (analytics imports no integration)."""

from __future__ import annotations

import statistics

from analytics.equipment.simulated import write_simulated_history
from analytics.history import DEMO_EQUIPMENT_SAMPLES, demo_equipment_samples
from integrations.opcua.demo import DEMO_TAGS
from integrations.opcua.demo_history import DURATION_H, END_MARGIN_H, history_samples, one_batch


def test_samples_have_the_monitoring_shape_and_vary_per_batch():
    batches = history_samples(6, 7)
    assert batches == history_samples(6, 7)  # seeded: the same demo every time
    names = {tag["variable"] for tag in DEMO_TAGS.values()}
    for samples in batches:
        assert [s["t_hours"] for s in samples] == [float(h) for h in range(1, DURATION_H - END_MARGIN_H + 1)]
        assert all(set(s["values"]) == names for s in samples)
    end_vcd = [b[-1]["values"]["viable_cell_density"] for b in batches]
    mid_vcd = [b[100]["values"]["viable_cell_density"] for b in batches]
    temps = [statistics.mean(s["values"]["temperature"] for s in b) for b in batches]
    assert statistics.pstdev(mid_vcd) > 0.1 and len(set(end_vcd)) == len(end_vcd)
    assert all(36.4 < t < 37.2 for t in temps) and statistics.pstdev(temps) > 0.01  # offsets within tolerance
    first = one_batch(1)[0]["values"]
    assert 0.3 < first["viable_cell_density"] < 0.7 and 130 < first["volume"] < 150  # a fresh inoculum


def test_the_sample_source_is_passed_not_imported(rt):
    assert DEMO_EQUIPMENT_SAMPLES.get() is None
    with demo_equipment_samples(history_samples):
        assert DEMO_EQUIPMENT_SAMPLES.get() is history_samples
    assert DEMO_EQUIPMENT_SAMPLES.get() is None
    # batches that do not exist get nothing written, whatever the source
    assert write_simulated_history(rt, ["NOPE"], seed=1, unit_procedure="up_production", samples=history_samples) == 0
