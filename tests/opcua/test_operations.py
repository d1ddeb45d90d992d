"""Read, write (with a supervisor's e-signature), call and run a phase from a recipe's
service tasks, against the real equipment simulator (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from engine import batches, jobs
from engine.models import Job, Step
from tests.engine.engine_helpers import complete, ready, run_jobs_until
from tests.support import person

from .conftest import load_recipe


def _record(rt, batch_id: str) -> dict[str, dict]:
    return {s["bpmn_id"]: s for s in batches.steps(rt, batch_id)}


def _incidents(rt, batch_id: str) -> list[dict]:
    return [i for i in jobs.incidents(rt) if i["batch_id"] == batch_id]


def test_read_call_signed_write_and_run_phase_recorded(plant, rt):
    load_recipe(rt, "opcua_equipment.bpmn")
    batches.start_batch(rt, "opcua_bioreactor", "OPC-1", user="sup.carl", parameters={"duration_h": 1.5})
    run_jobs_until(rt, lambda: "approve_setpoint" in ready(rt, "OPC-1"))
    record = _record(rt, "OPC-1")
    read = record["read_values"]["values"]
    assert isinstance(read["Temperature"], float) and read["State"] == "Idle"
    assert read["device"] == "BR-101"
    assert read["Temperature_node_id"].endswith(";s=BR-101.Temperature")
    assert read["pH_source_timestamp"].startswith("20")
    assert record["tare"]["values"]["method"] == "BAL-01.Tare"
    carl = person("sup.carl")
    complete(rt, "OPC-1", "approve_setpoint", {"setpoint": 36.8}, user="sup.carl", signer=carl)
    run_jobs_until(rt, lambda: "check_report" in ready(rt, "OPC-1"), timeout=20)
    record = _record(rt, "OPC-1")
    written = record["write_setpoint"]["values"]
    assert written["value"] == 36.8 and written["node"] == "BR-101.TemperatureSetpoint"
    assert written["approved_by"] == "sup.carl" and written["approval_meaning"] == "Approved"
    report = record["run_production"]["values"]
    assert report["outcome"] == "completed" and report["phase"] == "Production"
    full = json.loads(report["phase_report"])  # the equipment's report, verbatim
    assert full["run_id"] == report["run_id"] and full["values"]["VCD"]["value"] == report["VCD"]
    assert full["parameters"]["request_id"] == f"OPC-1:{record['run_production']['task_id']}"
    assert report["Temperature_node_id"].endswith(";s=BR-101.Temperature") and report["Temperature_unit"] == "°C"
    assert report["VCD_source_timestamp"] and report["parameter_duration_h"] == 1.5
    assert all(not isinstance(v, dict | list) for v in report.values())  # the record page shows each
    assert _incidents(rt, "OPC-1") == []
    # the task's data holds the scalars (a later gateway can test them)
    task = ready(rt, "OPC-1")["check_report"]
    assert task["id"]
    with rt.transaction() as s:
        n = s.scalar(select(func.count()).select_from(Step).where(Step.bpmn_id == "run_production"))
    assert n == 1


def test_write_refused_without_a_supervisors_approval(plant, rt):
    load_recipe(rt, "opcua_unsigned.bpmn")
    batches.start_batch(rt, "opcua_unsigned", "OPC-2", user="sup.carl")
    before = plant.link.read(["BR-101.TemperatureSetpoint"])["BR-101.TemperatureSetpoint"]["value"]
    anna = person("op.anna")
    complete(rt, "OPC-2", "operator_check", {"setpoint": 39.5}, user="op.anna", signer=anna)
    run_jobs_until(rt, lambda: bool(_incidents(rt, "OPC-2")))
    (incident,) = _incidents(rt, "OPC-2")
    assert "needs the approved signature of a supervisor on task 'operator_check'" in incident["message"]
    after = plant.link.read(["BR-101.TemperatureSetpoint"])["BR-101.TemperatureSetpoint"]["value"]
    assert after == before != 39.5  # nothing was written
    with rt.transaction() as s:
        job = s.scalars(select(Job).where(Job.kind == "service_task", Job.state == "failed")).one()
        assert job.attempts == 1  # refused, not retried
    exceptions = batches.get_batch(rt, "OPC-2")
    assert exceptions["state"] == "running"


def test_run_phase_is_started_once_for_a_retried_task(plant, rt):
    """A retry after a lost answer (the same task called again) gets the running phase
    back, never a second one."""
    load_recipe(rt, "opcua_equipment.bpmn")
    batches.start_batch(rt, "opcua_bioreactor", "OPC-3", user="sup.carl", parameters={"duration_h": 3})
    run_jobs_until(rt, lambda: "approve_setpoint" in ready(rt, "OPC-3"))
    complete(rt, "OPC-3", "approve_setpoint", {"setpoint": 36.8}, user="sup.carl", signer=person("sup.carl"))
    run_jobs_until(rt, lambda: _phase_job(rt) is not None)
    job = _phase_job(rt)
    call, _ = batches.service_task_call(rt, "OPC-3", job.task_id)
    with ThreadPoolExecutor(4) as pool:  # the task's call again, four at once, as retries would
        again = list(pool.map(lambda _: plant.call(call), range(4)))
    assert {a.reference for a in again} == {job.payload["run_id"]}
    first_run = plant.link.read(["BR-101.RunId"])["BR-101.RunId"]["value"]
    # and the equipment itself refuses a second start of the same request
    sent = json.dumps({"duration_h": 3, "request_id": call.idempotency_key})
    assert plant.link.call("BR-101.StartPhase", ["Production", sent]) == [first_run]
    run_jobs_until(rt, lambda: "check_report" in ready(rt, "OPC-3"), timeout=20)
    with rt.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "opcua_phase")) == 1


def _phase_job(rt):
    with rt.transaction() as s:
        job = s.scalars(select(Job).where(Job.kind == "opcua_phase")).first()
        if job is not None:
            s.expunge(job)
        return job


def test_concurrent_first_calls_start_one_phase_and_one_watcher(plant, rt):
    from engine.connectors import ServiceCall

    load_recipe(rt, "opcua_read.bpmn")
    batches.start_batch(rt, "opcua_read", "OPC-RACE", user="sup.carl", parameters={"nodes": "State"})
    task_id = str(uuid.uuid4())  # the simulator remembers request ids across tests
    params = {"phase": "Production", "parameters": {"duration_h": 100}}
    call = ServiceCall("OPC-RACE", task_id, "run_production", "BR-101.run_phase", params, "cb")
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: plant.call(call), range(4)))
        assert len({a.reference for a in answers}) == 1
        with rt.transaction() as s:
            assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "opcua_phase")) == 1
    finally:
        plant.link.call("BR-101.Abort", [])


def test_a_held_batch_records_the_report_when_resumed(plant, rt):
    load_recipe(rt, "opcua_equipment.bpmn")
    batches.start_batch(rt, "opcua_bioreactor", "OPC-HELD", user="sup.carl", parameters={"duration_h": 1})
    run_jobs_until(rt, lambda: "approve_setpoint" in ready(rt, "OPC-HELD"))
    complete(rt, "OPC-HELD", "approve_setpoint", {"setpoint": 36.8}, user="sup.carl", signer=person("sup.carl"))
    run_jobs_until(rt, lambda: _phase_job(rt) is not None)
    batches.change_state(rt, "OPC-HELD", "hold", user="sup.carl", reason="line check")
    run_jobs_until(rt, lambda: plant.link.read(["BR-101.State"])["BR-101.State"]["value"] == "Complete", timeout=10)
    for _ in range(5):
        jobs.run_due(rt)
    assert "run_production" not in _record(rt, "OPC-HELD")  # nothing is recorded on a held batch
    batches.change_state(rt, "OPC-HELD", "resume", user="sup.carl", reason="line check done")
    run_jobs_until(rt, lambda: "check_report" in ready(rt, "OPC-HELD"), timeout=20)
    assert _record(rt, "OPC-HELD")["run_production"]["values"]["outcome"] == "completed"
