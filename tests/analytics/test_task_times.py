"""Task times and what they fix: a step's duration runs from its own task's opening (or
readiness) to completion, also in parallel branches; equipment samples are scored only
while their unit procedure runs, from its start; a finding is raised exactly once even
when two workers score the same batch at the same moment (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from analytics import equipment
from analytics.batch_record import step_points
from analytics.history import HistoryStep, write_history
from analytics.jobs import install
from analytics.simulator import Fault
from engine import batches, jobs, users
from engine.errors import Conflict, NotFound
from engine.models import BatchException, Job, TaskTime, utcnow
from tests.support import approved_recipe, make_runtime

from .trend_recipe import OPERATOR, clock_moved, live_step, train_and_approve, trained_plant

PARALLEL = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    targetNamespace="https://batchline.example/tests" id="defs_par">
  <bpmn:process id="two_branches" name="Two branches" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:parallelGateway id="fork"/>
    <bpmn:userTask id="branch_a" name="Branch A"/>
    <bpmn:userTask id="branch_b" name="Branch B"/>
    <bpmn:parallelGateway id="join"/>
    <bpmn:userTask id="after" name="After the join"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="fork"/>
    <bpmn:sequenceFlow id="f2" sourceRef="fork" targetRef="branch_a"/>
    <bpmn:sequenceFlow id="f3" sourceRef="fork" targetRef="branch_b"/>
    <bpmn:sequenceFlow id="f4" sourceRef="branch_a" targetRef="join"/>
    <bpmn:sequenceFlow id="f5" sourceRef="branch_b" targetRef="join"/>
    <bpmn:sequenceFlow id="f6" sourceRef="join" targetRef="after"/>
    <bpmn:sequenceFlow id="f7" sourceRef="after" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""

TWO_UNITS = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    targetNamespace="https://batchline.example/tests" id="defs_units">
  <bpmn:process id="two_units" name="Media prep, then production" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:callActivity id="call_media" name="Media prep" calledElement="up_media"/>
    <bpmn:callActivity id="call_prod" name="Production" calledElement="up_prod"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call_media"/>
    <bpmn:sequenceFlow id="f2" sourceRef="call_media" targetRef="call_prod"/>
    <bpmn:sequenceFlow id="f3" sourceRef="call_prod" targetRef="end"/>
  </bpmn:process>
  <bpmn:process id="up_media" name="Media prep" isExecutable="true">
    <bpmn:startEvent id="m_start"/>
    <bpmn:userTask id="media_ok" name="Media ready"/>
    <bpmn:endEvent id="m_end"/>
    <bpmn:sequenceFlow id="m1" sourceRef="m_start" targetRef="media_ok"/>
    <bpmn:sequenceFlow id="m2" sourceRef="media_ok" targetRef="m_end"/>
  </bpmn:process>
  <bpmn:process id="up_prod" name="Production" isExecutable="true">
    <bpmn:startEvent id="p_start"/>
    <bpmn:userTask id="prod_ok" name="Production done"/>
    <bpmn:endEvent id="p_end"/>
    <bpmn:sequenceFlow id="p1" sourceRef="p_start" targetRef="prod_ok"/>
    <bpmn:sequenceFlow id="p2" sourceRef="prod_ok" targetRef="p_end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def _operator(rt):
    users.create_user(rt, OPERATOR, "Trend Operator", ["operator"], by="test", password="trend-operator-pw-1")
    return users.person(rt, OPERATOR)


def _task(rt, batch_id, bpmn_id):
    return next(t for t in batches.ready_tasks(rt, batch_id) if t["bpmn_id"] == bpmn_id)


def _complete(rt, batch_id, bpmn_id, person):
    return batches.complete_task(rt, batch_id, _task(rt, batch_id, bpmn_id)["id"], {}, user=OPERATOR, actor=person)


def test_durations_in_parallel_branches_run_from_their_own_task(rt):
    approved_recipe(rt, {"two_branches.bpmn": PARALLEL}, recipe="two_branches")
    person = _operator(rt)
    # minute 0: the batch starts, both branches are ready; A is opened at 10, B at 20;
    # A is completed at 30, B at 50; the task after the join is ready at 50, done at 52
    # without being opened (completed straight over the API)
    with clock_moved(-60):
        batches.start_batch(rt, "two_branches", "PAR-1", user="sup", parameters={})
    with clock_moved(-50):
        opened_a = batches.open_task(rt, "PAR-1", _task(rt, "PAR-1", "branch_a")["id"], user=OPERATOR)
    with clock_moved(-40):
        batches.open_task(rt, "PAR-1", _task(rt, "PAR-1", "branch_b")["id"], user=OPERATOR)
        again = batches.open_task(rt, "PAR-1", _task(rt, "PAR-1", "branch_a")["id"], user="someone.else")
    assert opened_a["first_open"] and not again["first_open"]  # recorded once: the first opening stays
    assert again["opened_at"] == opened_a["opened_at"] and again["opened_by"] == OPERATOR
    with clock_moved(-30):
        _complete(rt, "PAR-1", "branch_a", person)
    with clock_moved(-10):
        _complete(rt, "PAR-1", "branch_b", person)
    with clock_moved(-8):
        _complete(rt, "PAR-1", "after", person)
    with rt.transaction() as s:
        points = {p.bpmn_id: p for p in step_points(s, "two_branches")}
        kinds = sorted(s.scalars(select(TaskTime.kind)).all())
    assert kinds == ["opened", "opened", "ready", "ready", "ready"]
    a, b, after = points["branch_a"], points["branch_b"], points["after"]
    assert (a.basis, b.basis, after.basis) == ("opened", "opened", "ready")
    assert a.minutes == pytest.approx(20, abs=0.2) and a.ready_minutes == pytest.approx(30, abs=0.2)
    # the old approximation (since the previous step record) said 20 min for B; B took 30
    # from its opening and 50 from when it became ready
    assert b.minutes == pytest.approx(30, abs=0.2) and b.ready_minutes == pytest.approx(50, abs=0.2)
    assert after.minutes == pytest.approx(2, abs=0.2) and after.opened_at is None
    assert a.ready_at == b.ready_at and after.ready_at > b.ready_at


def test_opening_a_task_checks_it(rt):
    approved_recipe(rt, {"two_branches.bpmn": PARALLEL}, recipe="two_branches")
    person = _operator(rt)
    batches.start_batch(rt, "two_branches", "PAR-2", user="sup", parameters={})
    task = _task(rt, "PAR-2", "branch_a")
    with pytest.raises(NotFound):
        batches.open_task(rt, "PAR-2", "00000000-0000-4000-8000-000000000000", user=OPERATOR)
    with pytest.raises(NotFound):
        batches.open_task(rt, "NO-SUCH-BATCH", task["id"], user=OPERATOR)
    looked = batches.open_task(rt, "PAR-2", task["id"], user=None)  # a reader: nothing recorded
    assert looked["opened_at"] is None and not looked["first_open"]
    _complete(rt, "PAR-2", "branch_a", person)
    with pytest.raises(Conflict):
        batches.open_task(rt, "PAR-2", task["id"], user=OPERATOR)


def test_old_steps_fall_back_to_the_previous_record_and_say_so(rt):
    approved_recipe(rt, {"two_branches.bpmn": PARALLEL}, recipe="two_branches")
    history = [
        {
            "batch_id": "OLD-1",
            "started_at": utcnow(),
            "steps": [HistoryStep("branch_a", {}, 12.0, waited=3.0), HistoryStep("branch_b", {}, 7.0)],
        }
    ]
    write_history(rt, "two_branches", history)
    with rt.transaction() as s:
        points = step_points(s, "two_branches")
    assert [(p.basis, round(p.minutes, 2), round(p.ready_minutes or 0, 2)) for p in points] == [
        ("opened", 12.0, 15.0),
        ("opened", 7.0, 7.0),
    ]
    # rows without task times (recorded before they existed) keep the approximation
    from analytics.batch_record import duration

    minutes, basis = duration(None, None, points[0].recorded_at, points[1].recorded_at)
    assert basis == "previous_record" and minutes == pytest.approx(7.0)


def _units_plant(rt, n=12, seed=7):
    approved_recipe(rt, {"two_units.bpmn": TWO_UNITS}, recipe="two_units")
    start = utcnow()
    specs = [
        {
            "batch_id": f"U-H{i:03d}",
            "started_at": start.replace(microsecond=0) - __import__("datetime").timedelta(days=3 * (n - i)),
            "steps": [HistoryStep("media_ok", {}, 5.0 + 0.1 * i), HistoryStep("prod_ok", {}, 6.0 + 0.1 * i)],
        }
        for i in range(n)
    ]
    write_history(rt, "two_units", specs)
    equipment.write_simulated_history(rt, [b["batch_id"] for b in specs], seed=seed, unit_procedure="up_prod")
    result = train_and_approve(rt, "two_units", user="qa.lead")
    assert any(m["kind"] == equipment.KIND and m["bpmn_id"] == "up_prod" for m in result["models"]), result
    install(rt)
    _, reference = equipment.simulated_samples(n, seed)
    return reference


def _send(rt, batch_id, samples, chunk=30):
    for i in range(0, len(samples), chunk):
        equipment.record_samples(rt, batch_id, "up_prod", "BIOREACTOR-01", samples[i : i + chunk])
        while jobs.run_due(rt, limit=50):
            pass
    return [e for e in batches.exceptions(rt, batch_id) if e["source"] == "trend" and e["parameter"]]


def test_equipment_samples_are_scored_only_while_their_unit_procedure_runs(rt):
    reference = _units_plant(rt)
    person = _operator(rt)
    drift = Fault("sensor_drift", 40.0, 0.005, "dissolved_o2")
    (samples,), _ = equipment.simulated_samples(1, 2027, reference=reference, faults=[drift])
    batches.start_batch(rt, "two_units", "U-LIVE", user="sup", parameters={})
    # media prep runs: the bioreactor already sends "production" samples - kept, not scored
    assert _send(rt, "U-LIVE", samples[:120]) == []
    chart = equipment.equipment_samples(rt, "U-LIVE", "up_prod")["unit_procedures"][0]
    assert len(chart["samples"]) == 120 and chart["scores"] == [] and chart["running_since"] is None
    _complete(rt, "U-LIVE", "media_ok", person)  # production starts now
    with rt.transaction() as s:
        started = {r.bpmn_id: r.kind for r in s.scalars(select(TaskTime).where(TaskTime.kind == "started"))}
        ended = {r.bpmn_id for r in s.scalars(select(TaskTime).where(TaskTime.kind == "ended"))}
    assert set(started) == {"up_media", "up_prod"} and ended == {"up_media"}
    # from its own start, the same drift is found (the earlier samples are not part of it)
    found = _send(rt, "U-LIVE", samples[:120])
    assert found, "the drift during production was not found"
    d = found[0]["details"]
    assert d["unit_procedure"] == "up_prod" and d["samples"] <= 120 and d["t_hours"] >= 40
    assert d["unit_procedure_started_at"] and d["model_version"] == 1
    assert found[0]["title"].startswith("Out of trend: equipment ") and "model v1, 12 batches" in found[0]["title"]
    chart = equipment.equipment_samples(rt, "U-LIVE", "up_prod")["unit_procedures"][0]
    assert len(chart["samples"]) == 240 and chart["running_since"] is not None
    assert len(chart["scores"]) == 120  # the grid points reached by production's own samples


def test_a_finding_is_raised_once_by_the_database(rt):
    trained_plant(rt)
    live_step(rt, "B-ONCE", {"mass_g": 106, "temp_c": 20.0})
    fields = {"source": "trend", "severity": "alert", "message": "x", "parameter": "mass_g", "step_seq": 1}
    first = batches.raise_exception(rt, "B-ONCE", details={"rule": 1}, finding_key="k-1", **fields)
    second = batches.raise_exception(rt, "B-ONCE", details={"rule": 1}, finding_key="k-1", **fields)
    other = batches.raise_exception(rt, "B-ONCE", details={"rule": 1}, finding_key="k-2", **fields)
    assert first["id"] == second["id"] != other["id"]
    plain = [batches.raise_exception(rt, "B-ONCE", details={"rule": 1}, **fields) for _ in range(2)]
    assert plain[0]["id"] != plain[1]["id"]  # without a key (not a trend finding) nothing is merged


def test_two_workers_scoring_the_same_batch_raise_each_finding_once(rt, db_url, monkeypatch):
    trained_plant(rt)
    # 104 g: a rule-1 finding; 62 min: a duration finding
    live_step(rt, "B-TWICE", {"mass_g": 106, "temp_c": 20.0}, minutes=62)
    with rt.transaction() as s:  # the same step scored by several jobs (a retry, a second scheduler)
        batch_pk = s.scalars(select(Job.batch_id).where(Job.kind == "score_step")).first()
        s.add_all([Job(kind="score_step", batch_id=batch_pk, payload={"seq": 1}, max_attempts=1) for _ in range(5)])
    other = make_runtime(db_url)
    install(other)
    # both workers read "nothing raised yet" before either raises: only the database's
    # unique key can keep the finding single
    barrier = threading.Barrier(2, timeout=10)
    original = batches.raise_exception
    waited = set()

    def raise_together(*args, **kwargs):
        me = threading.get_ident()
        if me not in waited:
            waited.add(me)
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass
        return original(*args, **kwargs)

    monkeypatch.setattr(batches, "raise_exception", raise_together)
    errors = []

    def worker(runtime, name):
        try:
            while jobs.run_due(runtime, worker=name, limit=1):
                pass
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(r, n)) for r, n in ((rt, "w1"), (other, "w2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    other.close()
    assert not errors, errors
    with rt.transaction() as s:
        states = [j.state for j in s.scalars(select(Job).where(Job.kind == "score_step"))]
        rows = list(s.scalars(select(BatchException).where(BatchException.source == "trend")))
    assert states == ["done"] * 6, states
    keys = [(e.parameter, (e.details or {}).get("rule")) for e in rows]
    assert sorted(keys, key=str) == sorted([("mass_g", 1), (None, "duration")], key=str), keys
    assert all(e.finding_key for e in rows)
