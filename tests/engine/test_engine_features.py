"""BPMN features recipes need, each on a small recipe under tests/recipes, on SQLite and
PostgreSQL: user tasks, gateways, scripts, call activities, loops, multi-instance,
timers fired by the job executor, correlated messages, error boundary events and
service tasks through the connector registry."""

from __future__ import annotations

import pytest

from engine import batches, jobs
from engine.connectors import Completed, ConnectorError, Pending
from engine.errors import Conflict, NotFound
from tests.support import person

from .engine_helpers import complete, load, ready, run_jobs_until


def test_user_tasks_exclusive_and_parallel_gateways(rt):
    load(rt, "gateways.bpmn")
    batches.start_batch(rt, "gateways", "GW-1", user="op.anna")
    complete(rt, "GW-1", "measure_ph", {"ph": 7.1})
    assert set(ready(rt, "GW-1")) == {"record_temp", "record_do"}  # parallel split
    complete(rt, "GW-1", "record_do", {"do": 40})
    assert set(ready(rt, "GW-1")) == {"record_temp"}  # join waits for the other branch
    assert batches.get_batch(rt, "GW-1")["state"] == "running"
    complete(rt, "GW-1", "record_temp", {"temp": 36.9})
    assert batches.get_batch(rt, "GW-1")["state"] == "complete"

    batches.start_batch(rt, "gateways", "GW-2", user="op.anna")
    complete(rt, "GW-2", "measure_ph", {"ph": 8.2})
    assert set(ready(rt, "GW-2")) == {"adjust_ph"}  # default flow
    record = batches.steps(rt, "GW-2")
    assert [s["bpmn_id"] for s in record] == ["measure_ph"]
    assert record[0]["values"] == {"ph": 8.2}


def test_call_activities_per_unit_procedure_and_reload(rt):
    load(rt, "call_activities.bpmn")
    batches.start_batch(rt, "mab_mini", "CA-1", user="op.anna")
    complete(rt, "CA-1", "line_clearance")
    complete(rt, "CA-1", "thaw_vial")
    # waiting two call activities deep; a fresh process (no cache) must resume here
    rt.cache.clear()
    tasks = ready(rt, "CA-1")
    assert set(tasks) == {"count_cells"}
    assert tasks["count_cells"]["process"] == "cell_count"
    complete(rt, "CA-1", "count_cells", {"vcd": 2.1})
    rt.cache.clear()
    complete(rt, "CA-1", "harvest_volume", {"volume_l": 180})
    assert batches.get_batch(rt, "CA-1")["state"] == "complete"
    assert [s["bpmn_id"] for s in batches.steps(rt, "CA-1")] == [
        "line_clearance",
        "thaw_vial",
        "count_cells",
        "harvest_volume",
    ]


def test_standard_loop_and_multi_instance(rt):
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "LP-1", user="op.anna", parameters={"done": False})
    for i in range(5):
        out = complete(rt, "LP-1", "take_sample", {"reading": i, "done": i == 4})
    assert out.body["batch"]["state"] == "complete"
    assert [s["values"]["reading"] for s in batches.steps(rt, "LP-1")] == [0, 1, 2, 3, 4]

    load(rt, "multi_instance.bpmn")
    batches.start_batch(rt, "multi_instance", "MI-1", user="op.anna", parameters={"n_vessels": 3})
    for _vessel in range(3):
        tasks = batches.ready_tasks(rt, "MI-1")
        assert [t["bpmn_id"] for t in tasks] == ["check_vessel"]  # sequential: one at a time
        batches.complete_task(rt, "MI-1", tasks[0]["id"], {"vessel_ok": True}, user="op.anna", actor=person("op.anna"))
    tasks = batches.ready_tasks(rt, "MI-1")
    assert [t["bpmn_id"] for t in tasks] == ["sign_filter", "sign_filter"]  # parallel: both at once
    for t in tasks:
        batches.complete_task(rt, "MI-1", t["id"], {"intact": True}, user="op.ben", actor=person("op.ben"))
    assert batches.get_batch(rt, "MI-1")["state"] == "complete"


def test_timer_and_boundary_timer_fired_by_job_executor(rt):
    load(rt, "timers.bpmn")
    batches.start_batch(rt, "timers", "TM-1", user="op.anna")
    assert ready(rt, "TM-1") == {}  # waiting on the hold time
    assert jobs.run_due(rt) == 0  # not due yet: nothing fires early
    run_jobs_until(rt, lambda: "inspect" in ready(rt, "TM-1"))
    # nobody inspects: the interrupting boundary timer fires and cancels the task
    run_jobs_until(rt, lambda: "escalate" in ready(rt, "TM-1"))
    assert "inspect" not in ready(rt, "TM-1")
    kinds = [s["kind"] for s in batches.steps(rt, "TM-1")]
    assert kinds == ["timer", "timer"]
    complete(rt, "TM-1", "escalate", {"comment": "late"}, user="sup.carl")
    assert batches.get_batch(rt, "TM-1")["state"] == "complete"


def test_timer_waits_while_batch_is_held(rt):
    load(rt, "timers.bpmn")
    batches.start_batch(rt, "timers", "TM-2", user="op.anna")
    batches.change_state(rt, "TM-2", "hold", user="sup.carl", reason="deviation under investigation")
    import time

    time.sleep(1.2)
    jobs.run_due(rt)
    assert ready(rt, "TM-2") == {}  # held: the due timer did not fire
    batches.change_state(rt, "TM-2", "resume", user="sup.carl", reason="cleared")
    with rt.transaction() as s:  # the job was pushed back, make it due now for the test
        from engine.models import Job, utcnow

        for job in s.query(Job).filter(Job.state == "pending"):
            job.due_at = utcnow()
    run_jobs_until(rt, lambda: "inspect" in ready(rt, "TM-2"))


def test_service_task_and_correlated_message(rt):
    calls = []

    def lims(call):
        calls.append(call)
        return Completed({"sample_id": f"S-{call.params['batch']}"})

    rt.connectors.register("lims", lims)
    load(rt, "lims_message.bpmn")
    batches.start_batch(rt, "lims_sampling", "MS-1", user="op.anna", parameters={"batch_id": "MS-1"})
    batches.start_batch(rt, "lims_sampling", "MS-2", user="op.anna", parameters={"batch_id": "MS-2"})
    run_jobs_until(rt, lambda: len(calls) == 2)
    assert {c.params["test"] for c in calls} == {"titre"}
    assert {c.operator for c in calls} == {"lims.sample"}
    with pytest.raises(NotFound) as err:
        batches.deliver_message(rt, "lims_result", {"sample_id": "S-UNKNOWN", "titre": 1.0}, user="lims")
    assert err.value.code == "message_not_correlated"
    delivered = batches.deliver_message(rt, "lims_result", {"sample_id": "S-MS-2", "titre": 3.4}, user="lims")
    assert [d["batch_id"] for d in delivered] == ["MS-2"]
    assert set(ready(rt, "MS-2")) == {"review_result"}
    assert ready(rt, "MS-1") == {}  # the other batch still waits for its own sample
    kinds = [s["kind"] for s in batches.steps(rt, "MS-2")]
    assert kinds == ["service_task", "message"]


def test_error_boundary_catches_connector_error(rt):
    def erp(call):
        raise ConnectorError("ERP answered 503 Service Unavailable", bpmn_error="ERP_DOWN")

    rt.connectors.register("erp", erp)
    load(rt, "service_error.bpmn")
    batches.start_batch(rt, "erp_confirmation", "ER-1", user="op.anna", parameters={"order_id": "PO-1"})
    run_jobs_until(rt, lambda: "manual_confirm" in ready(rt, "ER-1"))
    record = batches.steps(rt, "ER-1")
    assert record[0]["values"]["error_code"] == "ERP_DOWN"
    assert "503" in record[0]["values"]["error"]


def test_connector_exception_keeps_its_message_and_becomes_incident(rt):
    def erp(call):
        raise RuntimeError("connection refused by erp.example:443")

    rt.connectors.register("erp", erp)
    load(rt, "service_error.bpmn")
    batches.start_batch(rt, "erp_confirmation", "ER-2", user="op.anna", parameters={"order_id": "PO-2"})
    run_jobs_until(rt, lambda: bool(jobs.incidents(rt)))
    (incident,) = jobs.incidents(rt)
    assert "connection refused by erp.example:443" in incident["message"]
    assert "NameError" not in incident["message"]
    assert batches.get_batch(rt, "ER-2")["incidents"][0]["id"] == incident["id"]
    # fix the connector, retry the incident: the batch goes on
    rt.connectors.register("erp", lambda call: Completed({"doc": "4711"}))
    jobs.retry_incident(rt, incident["id"], user="sup.carl")
    run_jobs_until(rt, lambda: batches.get_batch(rt, "ER-2")["state"] == "complete")
    assert jobs.incidents(rt) == []


def test_async_connector_waits_for_callback(rt):
    rt.connectors.register("erp", lambda call: Pending("ticket-7"))
    load(rt, "service_error.bpmn")
    batches.start_batch(rt, "erp_confirmation", "ER-3", user="op.anna", parameters={"order_id": "PO-3"})
    jobs.run_due(rt)
    jobs.run_due(rt)
    assert batches.get_batch(rt, "ER-3")["state"] == "running"
    with rt.transaction() as s:
        from engine.models import Job

        assert s.query(Job).filter(Job.kind == "service_task", Job.state == "pending").count() == 0
        task_id = s.query(Job).filter(Job.kind == "service_task").one().task_id
    out = batches.complete_service_task(rt, "ER-3", task_id, {"doc": "4712"}, user="svc.erp")
    assert out.body["step"]["values"] == {"doc": "4712"}
    assert batches.get_batch(rt, "ER-3")["state"] == "complete"
    with pytest.raises(Conflict):
        batches.complete_service_task(rt, "ER-3", task_id, {"doc": "4712"}, user="svc.erp")
