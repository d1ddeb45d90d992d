"""The demo's round trips, as ``make demo`` runs them: the app served on a free port with
its job worker, the real equipment simulator (OPC UA, fast), the real partner ERP and
LIMS (HTTP). The ERP's process order starts its batch once, also after a restart;
MAB-DEMO-001's production phase runs on the simulator, sampled only while the production
unit procedure runs and scored by the approved equipment model trained on the demo
history; its pre-harvest ``lims.sample`` is answered by the partner LIMS; a nominal run
raises no equipment trend finding."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from analytics.equipment import equipment_samples
from engine import batches, jobs
from engine.config import load_settings
from engine.models import Batch, EquipmentSample, TaskTime
from engine.runtime import Runtime
from tests.demo_plant.drive import UP, run_production, trend_findings
from web import demo, demo_erp, demo_plant

SPEED = 18000.0  # 5 simulated hours per real second: the 312 h production phase in about 62 s
PERIOD = 0.2  # a sample every process hour


def _wait(predicate, timeout: float = 30.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def served(db_url):
    """The demo plant set up on a fresh database, the app served, a job worker running."""
    from web.app import create_app

    rt = Runtime(load_settings(database_url=db_url, worker_poll_seconds=0.05))
    demo_plant.setup(rt)
    app = create_app(runtime=rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    worker = threading.Thread(target=jobs.work, args=(rt,), kwargs={"stop": stop}, daemon=True)
    worker.start()
    try:
        yield rt, f"http://127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        server.shutdown()
        worker.join(timeout=10)
        rt.close()


def _start(rt, url):
    return demo_plant.start(rt, url, equipment_port=0, speed=SPEED, period=PERIOD, lims_delay=0.1)


def _order_batches(rt) -> list[str]:
    with rt.transaction() as s:
        return list(s.scalars(select(Batch.batch_id).where(Batch.batch_id == demo_erp.DEMO_ORDER)))


def test_the_erp_order_starts_its_batch_once_also_after_a_restart(served):
    rt, url = served
    plant = _start(rt, url)
    try:
        _wait(lambda: plant.order, what="the ERP's process order")
        assert plant.order["status"] == 201, plant.order
        assert [b["batch_id"] for b in plant.order["batches"]] == [demo_erp.DEMO_ORDER]
        lines = "\n".join(plant.lines())
        assert plant.simulator.endpoint in lines and f"{plant.erp.url}/confirmations" in lines
        assert plant.lims.url in lines
    finally:
        plant.stop()
    demo_plant.setup(rt)  # the demo started again on the same database
    again = _start(rt, url)
    try:
        _wait(lambda: again.order, what="the resent process order")
        assert again.order["status"] == 200, again.order  # received before: nothing new
    finally:
        again.stop()
    assert _order_batches(rt) == [demo_erp.DEMO_ORDER]
    assert batches.get_batch(rt, demo_erp.DEMO_ORDER)["state"] == "running"


@pytest.mark.slow
def test_mab_demo_001_production_runs_on_the_simulator(served):
    rt, url = served
    plant = _start(rt, url)
    try:
        assert batches.get_batch(rt, demo.DEMO_BATCH)["parameters"]["bioreactor_automation"] is True
        figures = run_production(rt, demo.DEMO_BATCH, plant.simulator, timeout=240)
        assert figures["production_seconds"] is not None, figures
        assert "pr_run_phase" not in figures["tasks"]  # the bioreactor's task, not a person's
        samples_at_end = figures["samples"]
        time.sleep(4 * PERIOD)
        # samples only while the production unit procedure ran: none before, none after
        with rt.transaction() as s:
            batch = s.scalars(select(Batch).where(Batch.batch_id == demo.DEMO_BATCH)).one()
            times = {
                kind: at
                for kind, at in s.execute(
                    select(TaskTime.kind, TaskTime.at).where(
                        TaskTime.batch_id == batch.id, TaskTime.bpmn_id == UP, TaskTime.kind.in_(("started", "ended"))
                    )
                )
            }
            rows = list(s.scalars(select(EquipmentSample).where(EquipmentSample.batch_id == batch.id)))
        assert len(rows) == samples_at_end > 50
        assert {r.unit_procedure for r in rows} == {UP}
        assert {r.source for r in rows} == {demo.equipment_for("bioreactor")}
        started, ended = (_naive(times["started"]), _naive(times["ended"]))
        assert all(started <= _naive(r.recorded_at) <= ended for r in rows)
        assert set(rows[0].values) == {
            "temperature",
            "ph",
            "dissolved_o2",
            "agitation",
            "volume",
            "viable_cell_density",
        }
        # the phase report is in the batch record, with node ids and source timestamps
        (step,) = [s for s in batches.steps(rt, demo.DEMO_BATCH) if s["bpmn_id"] == "pr_run_phase"]
        assert step["values"]["outcome"] == "completed" and step["values"]["phase"] == "Production"
        # scored by the approved equipment model trained on the simulator-shaped history
        (entry,) = equipment_samples(rt, demo.DEMO_BATCH, UP)["unit_procedures"]
        assert entry["model"] is not None and entry["scores"], entry["model"]
        found = trend_findings(rt, demo.DEMO_BATCH)
        assert found == [], [e["message"] for e in found]  # a nominal run is not flagged
        # the pre-harvest sample went to the partner LIMS, whose answer the batch took
        assert plant.lims.samples and any(status in (200, 201, 202) for _, status in plant.lims.deliveries)
    finally:
        plant.stop()


def _naive(at: datetime) -> datetime:
    return at.replace(tzinfo=None)
