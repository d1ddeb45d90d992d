"""Monitoring: while a batch runs the configured unit procedure on BR-101, its tags are
sampled into ``equipment_sample`` rows (source = the equipment) and nothing before; an
injected fault (``InjectFault('do_drop')``) takes DO beyond its action limit and makes
the equipment raise an alarm event: both become exceptions on the batch, once each."""

from __future__ import annotations

import time

from sqlalchemy import select

from engine import batches, jobs
from engine.models import BatchException, Equipment, EquipmentSample
from integrations.opcua import start_monitoring, stop_monitoring
from integrations.opcua.connector import OpcUaConnector
from tests.engine.engine_helpers import complete, ready, run_jobs_until

from .conftest import config_for, load_recipe

MONITORING = {
    "unit_procedures": ["opcua_culture"],
    "period_seconds": 0.2,
    "time_scale": 3600,
    "tags": {
        "DO": {"variable": "dissolved_o2", "alert": [30, None], "action": [20, None], "unit": "%"},
        "Temperature": {"alert": [35, 39], "action": [33, 41], "unit": "°C"},
        "pH": {},
    },
}


def _samples(rt) -> list[EquipmentSample]:
    with rt.transaction() as s:
        rows = list(s.scalars(select(EquipmentSample).order_by(EquipmentSample.id)))
        for r in rows:
            s.expunge(r)
        return rows


def _exceptions(rt, category: str) -> list[BatchException]:
    with rt.transaction() as s:
        rows = list(s.scalars(select(BatchException).where(BatchException.category == category)))
        for r in rows:
            s.expunge(r)
        return rows


def test_samples_during_the_unit_procedure_and_exceptions_on_a_fault(plant, rt, idle_sim):
    connector = OpcUaConnector(config_for(idle_sim, monitoring=MONITORING), rt)
    rt.connectors.register("BR-101", connector)
    try:
        with rt.transaction() as s:
            s.add(Equipment(equipment_id="BR-101", equipment_class="bioreactor", status="clean", connector="BR-101"))
        load_recipe(rt, "opcua_monitored.bpmn")
        batches.start_batch(rt, "opcua_monitored", "MON-1", user="sup.carl")
        job = start_monitoring(rt, "BR-101")
        assert start_monitoring(rt, "BR-101") == job  # one monitoring job per instance
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            jobs.run_due(rt)
            time.sleep(0.05)
        assert _samples(rt) == []  # the unit procedure has not started
        complete(rt, "MON-1", "prepare")
        assert "observe" in ready(rt, "MON-1")
        run_jobs_until(rt, lambda: len(_samples(rt)) >= 3)
        samples = _samples(rt)
        assert {s.source for s in samples} == {"BR-101"}
        assert {s.unit_procedure for s in samples} == {"opcua_culture"}
        assert set(samples[-1].values) == {"dissolved_o2", "Temperature", "pH"}
        assert samples[-1].t_hours >= samples[0].t_hours
        assert _exceptions(rt, "limit.action") == []
        connector.link.call("BR-101.InjectFault", ["do_drop"])
        run_jobs_until(
            rt,
            lambda: _exceptions(rt, "limit.action") and _exceptions(rt, "equipment.alarm"),
            timeout=20,
        )
        for _ in range(5):
            jobs.run_due(rt)
            time.sleep(0.1)
        (action,) = _exceptions(rt, "limit.action")  # once, however many samples are beyond it
        assert action.source == "equipment" and action.parameter == "dissolved_o2"
        assert action.value < 20 and action.details["equipment"] == "BR-101"
        assert action.details["node_id"].endswith(";s=BR-101.DO")
        alarms = _exceptions(rt, "equipment.alarm")
        assert any(a.parameter == "do_low" for a in alarms)
        assert all("BR-101 alarm" in a.message for a in alarms)
        complete(rt, "MON-1", "observe")
        n = len(_samples(rt))
        for _ in range(4):
            jobs.run_due(rt)
            time.sleep(0.1)
        assert len(_samples(rt)) == n  # the unit procedure ended: no more samples
    finally:
        connector.link.call("BR-101.InjectFault", ["clear"])
        stop_monitoring(rt, "BR-101")
        connector.close()
