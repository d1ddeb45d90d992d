"""Equipment time series of a batch: a time-series PCA model per recipe and unit
procedure trained on the equipment samples of earlier batches, and the
``score_samples`` job scoring a running batch's samples as they arrive."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from analytics import catalogue, equipment, findings
from analytics.history import write_history
from analytics.jobs import install
from analytics.simulator import Fault
from engine import batches, jobs
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import AuditEvent, EquipmentSample, Job

from .trend_recipe import RECIPE, history, import_trend_recipe, train_and_approve

UP = RECIPE  # the top process: it runs from the batch start (samples are scored only while their unit procedure runs)
SEED = 7
N = 20


@pytest.fixture
def plant(rt):
    """20 reviewed batches with simulated bioreactor samples, trained; the jobs installed."""
    import_trend_recipe(rt)
    specs = history(N)
    write_history(rt, RECIPE, specs, user="demo")
    rows = equipment.write_simulated_history(rt, [b["batch_id"] for b in specs], seed=SEED, unit_procedure=UP)
    assert rows == N * 301
    result = train_and_approve(rt, RECIPE, user="qa.lead")
    install(rt)
    _, reference = equipment.simulated_samples(N, SEED)
    return result, reference


def _live(rt, batch_id, samples, chunk=25):
    batches.start_batch(rt, RECIPE, batch_id, user="sup", parameters={})
    for i in range(0, len(samples), chunk):
        equipment.record_samples(rt, batch_id, UP, "BIOREACTOR-01", samples[i : i + chunk])
        while jobs.run_due(rt, limit=50):
            pass
    return [e for e in batches.exceptions(rt, batch_id) if e["source"] == "trend"]


def test_training_from_stored_history(rt, plant):
    result, _ = plant
    made = [m for m in result["models"] if m["kind"] == equipment.KIND]
    assert made == [{"bpmn_id": UP, "parameter": "*", "kind": equipment.KIND, "version": 1, "batches": N}]
    models = [m for m in catalogue.list_models(rt, RECIPE) if m["kind"] == equipment.KIND]
    assert len(models) == 1 and models[0]["limits"]["t2"] > 0 and models[0]["limits"]["spe"] > 0
    card = catalogue.model_cards(rt, RECIPE)
    ts = [c for c in card if c.kind == equipment.KIND][0]
    assert ts.step_id == UP and len(ts.training_batch_ids) == N and "dissolved_o2" in ts.parameter_names
    json.dumps(ts.to_dict(), allow_nan=False)  # strict JSON, no pickle
    with rt.transaction() as s:
        entry = s.scalars(select(AuditEvent).where(AuditEvent.action == "analytics.train")).all()[-1]
    assert "TimeSeriesModel" in json.dumps(entry.new)
    again = train_and_approve(rt, RECIPE, user="qa.lead")  # retraining: next version, the old one retired
    assert [m["version"] for m in again["models"] if m["kind"] == equipment.KIND] == [2]
    versions = [
        (m["version"], m["active"])
        for m in catalogue.list_models(rt, RECIPE, active_only=False)
        if m["kind"] == equipment.KIND
    ]
    assert sorted(versions) == [(1, False), (2, True)]


def test_normal_samples_raise_nothing(rt, plant):
    _, reference = plant
    (samples,), _ = equipment.simulated_samples(1, 2027, reference=reference)
    assert _live(rt, "L-NORMAL", samples[:150]) == []
    scored = equipment.equipment_samples(rt, "L-NORMAL", UP)["unit_procedures"][0]
    assert len(scored["samples"]) == 150 and len(scored["scores"]) == 150
    assert not any(p["t2_over"] or p["spe_over"] for p in scored["scores"])


def test_a_drifting_sensor_raises_one_exception_with_contributions(rt, plant):
    _, reference = plant
    drift = Fault("sensor_drift", 40.0, 0.005, "dissolved_o2")
    (samples,), _ = equipment.simulated_samples(1, 2027, reference=reference, faults=[drift])
    found = _live(rt, "L-DRIFT", samples[:120])
    assert found, "the drift was not found"
    per_statistic = {}
    for exc in found:
        per_statistic.setdefault(exc["parameter"], []).append(exc)
    assert all(len(v) == 1 for v in per_statistic.values())  # no flooding while one is open
    assert set(per_statistic) <= {f"{UP}:T2", f"{UP}:SPE"}
    exc = found[0]
    d = exc["details"]
    assert (
        (exc["category"], exc["severity"], d["level"]) == ("oot.value", "minor", "alert")
        and d["t_hours"] >= 40
        and d["value"] > d["limit"]
    )
    assert len(d["contributions"]) == 3 and "dissolved_o2" in d["contributions"]
    assert d["statistic"] in ("T2", "SPE") and d["bpmn_id"] == UP
    summary = findings.findings(rt, RECIPE)
    assert summary["findings"] and summary["findings"][0]["batch_id"] == "L-DRIFT"


def test_receiving_samples_checks_them(rt, plant):
    batches.start_batch(rt, RECIPE, "L-IN", user="sup", parameters={})
    ok = equipment.record_samples(rt, "L-IN", UP, "BIOREACTOR-01", [{"t_hours": 0, "values": {"do": 40.0}}])
    assert ok["received"] == 1
    with rt.transaction() as s:
        job = s.get(Job, ok["job_id"])
        assert job.kind == "score_samples" and job.payload == {"unit_procedure": UP}
        assert s.scalars(select(EquipmentSample)).all()
    bad = [
        [{"t_hours": float("nan"), "values": {"do": 1}}],
        [{"t_hours": 1, "values": {"do": float("inf")}}],
        [{"t_hours": "1", "values": {"do": 1}}],
        [{"t_hours": 1, "values": {"do": True}}],
        [{"t_hours": 1, "values": {"bad name": 1}}],
        [{"t_hours": 1, "values": {}}],
        [{"t_hours": 1, "values": {"do": 1}}] * 1001,
        [],
    ]
    for samples in bad:
        with pytest.raises(InvalidInput):
            equipment.record_samples(rt, "L-IN", UP, "BIOREACTOR-01", samples)
    with pytest.raises(InvalidInput):
        equipment.record_samples(rt, "L-IN", "not an id", "BIOREACTOR-01", [{"t_hours": 1, "values": {"do": 1}}])
    with pytest.raises(NotFound):
        equipment.record_samples(rt, "NOPE", UP, "BIOREACTOR-01", [{"t_hours": 1, "values": {"do": 1}}])
    with pytest.raises(Conflict):  # a complete history batch is not running
        equipment.record_samples(rt, "H-001", UP, "BIOREACTOR-01", [{"t_hours": 1, "values": {"do": 1}}])
    # a model that does not know the variable: the job runs and finds nothing
    assert jobs.run_due(rt) >= 1
    assert [e for e in batches.exceptions(rt, "L-IN") if e["source"] == "trend"] == []
