"""Scoring after commit: the ``score_step`` job raises trend exceptions (and a QMS
deviation request for a critical parameter on rule 1); a normal step raises nothing."""

from __future__ import annotations

from sqlalchemy import select

from analytics.scoring import score_step
from engine import batches, jobs, users
from engine.models import Job, OutboxEvent

from .trend_recipe import live_step, trained_plant


def _score(rt):
    ran = jobs.run_due(rt)
    assert ran >= 1
    with rt.transaction() as s:
        states = {(j.kind, j.state, j.last_error) for j in s.scalars(select(Job).where(Job.kind == "score_step"))}
    assert all(state == "done" for _, state, _ in states), states
    return states


def _events(rt, type_):
    with rt.transaction() as s:
        return [e.data for e in s.scalars(select(OutboxEvent).where(OutboxEvent.type == "org.batchline." + type_))]


def test_normal_step_raises_nothing(rt):
    trained_plant(rt)
    out = live_step(rt, "B-OK", {"mass_g": 100.3, "temp_c": 20.1})
    assert out.body["exceptions"] == []
    with rt.transaction() as s:  # scheduled in the step's own transaction, not run yet
        assert s.scalars(select(Job).where(Job.kind == "score_step", Job.state == "pending")).first() is not None
    _score(rt)
    assert batches.exceptions(rt, "B-OK") == []
    assert _events(rt, "qms.deviation.requested") == []


def test_critical_parameter_out_of_trend_asks_for_a_deviation(rt):
    trained_plant(rt)
    # 106 g is inside the alert limits (90..110): only the trend sees it
    out = live_step(rt, "B-HIGH", {"mass_g": 106, "temp_c": 20.0})
    assert out.body["exceptions"] == []
    _score(rt)
    raised = batches.exceptions(rt, "B-HIGH")
    assert len(raised) == 1, raised
    exc = raised[0]
    assert exc["source"] == "trend" and exc["parameter"] == "mass_g"
    # a rule-1 finding on a critical parameter: level action, major under the rules - out of
    # trend, not out of limit (106 g is inside every limit), so never critical by itself
    assert (exc["category"], exc["severity"], exc["details"]["level"]) == ("oot.value", "major", "action")
    assert exc["title"] == "Out of trend: beyond the usual range (rule 1) · model v1, 20 batches"
    assert "limit" not in exc["title"].lower()
    assert exc["details"]["model_version"] == 1 and exc["details"]["training_batches"] == 20
    assert exc["step_seq"] == 1
    d = exc["details"]
    assert d["rule"] == 1 and d["value"] == 106 and d["critical"] is True
    assert d["lower"] < d["centre"] < d["upper"] < 106
    assert d["contributions"]["mass_g"] > 1.0 and "±" in d["expected"]
    assert "out of trend" in exc["message"] and "critical" in exc["message"]
    deviations = _events(rt, "qms.deviation.requested")
    assert (
        len(deviations) == 1
        and deviations[0]["exception"]["parameter"] == "mass_g"
        and deviations[0]["batch_id"] == "B-HIGH"
    )
    # the job is safe to run again: no second exception for the same finding
    score_step(rt, "B-HIGH", None, {"seq": 1})
    assert len(batches.exceptions(rt, "B-HIGH")) == 1


def test_non_critical_parameter_is_an_alert_without_deviation(rt):
    trained_plant(rt)
    live_step(rt, "B-WARM", {"mass_g": 100.0, "temp_c": 23.5})
    _score(rt)
    raised = batches.exceptions(rt, "B-WARM")
    assert [(e["parameter"], e["details"]["level"], e["details"]["rule"]) for e in raised] == [("temp_c", "alert", 1)]
    assert raised[0]["severity"] == "minor"
    assert _events(rt, "qms.deviation.requested") == []


def test_duration_twice_as_long_is_flagged(rt):
    trained_plant(rt)
    live_step(rt, "B-SLOW", {"mass_g": 100.0, "temp_c": 20.0}, minutes=62)
    _score(rt)
    raised = batches.exceptions(rt, "B-SLOW")
    assert len(raised) == 1, raised
    exc = raised[0]
    assert exc["parameter"] is None and (exc["category"], exc["severity"]) == ("oot.duration", "minor")
    assert exc["details"]["rule"] == "duration" and exc["details"]["direction"] == "too_long"
    assert 60 <= exc["details"]["value"] <= 64 and exc["details"]["upper"] < 60
    # never opened (completed over the API): measured from when the task became ready
    assert exc["details"]["duration_basis"] == "ready" and exc["details"]["ready_at"]
    assert exc["title"] == "Out of trend: step took longer than usual · model v1, 20 batches"
    assert "took" in exc["message"]


def test_run_rule_over_recent_batches(rt):
    # the last 8 history batches sit just above the centre; a 9th in a row completes rule 2
    trained_plant(rt, n=30, last_above=8)
    live_step(rt, "B-RUN", {"mass_g": 100.95, "temp_c": 20.0})
    _score(rt)
    raised = batches.exceptions(rt, "B-RUN")
    rules = {(e["parameter"], e["details"]["rule"], e["details"]["level"]) for e in raised}
    assert ("mass_g", 2, "alert") in rules, raised
    (run,) = [e for e in raised if e["details"]["rule"] == 2]
    assert run["title"].startswith("Out of trend: run rule 2: ") and run["title"].endswith("· model v1, 30 batches")
    assert run["severity"] == "minor"
    assert _events(rt, "qms.deviation.requested") == []  # a run rule never asks for a deviation


def test_no_job_without_the_handler(rt):
    trained_plant(rt)
    rt.job_handlers.pop("score_step")
    live_step(rt, "B-NOJOB", {"mass_g": 106, "temp_c": 20.0})
    with rt.transaction() as s:
        assert s.scalars(select(Job).where(Job.kind == "score_step")).first() is None


def test_duration_runs_from_the_opening(rt):
    # ready 62 min ago, opened 30 min ago: 30 min at the task is usual, nothing raised
    trained_plant(rt)
    from .trend_recipe import clock_moved

    with clock_moved(-62):
        batches.start_batch(rt, "trend_weigh", "B-OPEN", user="sup", parameters={})
    task = batches.ready_tasks(rt, "B-OPEN")[0]
    with clock_moved(-30):
        batches.open_task(rt, "B-OPEN", task["id"], user="op.trend")
    signer = users.person(rt, "op.trend")
    batches.complete_task(rt, "B-OPEN", task["id"], {"mass_g": 100.0, "temp_c": 20.0}, user="op.trend", signer=signer)
    _score(rt)
    assert batches.exceptions(rt, "B-OPEN") == []
