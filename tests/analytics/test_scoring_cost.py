"""The cheap scoring path finds exactly what the full one does: one step read on its own
(``batch_record.step_point``) is the point ``step_points`` gives; the fast arithmetic on
a parsed, cached model says what the monitor's public scikit-learn API says; and steps
waiting for scoring picked up by another step's job are scored once, crash-safe."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, update

from analytics import DurationMonitor, UnivariateMonitor, step_models
from analytics.batch_record import as_number, recent_values, step_point, step_points
from analytics.catalogue import active_models
from analytics.scoring import RUN_WINDOW, score_in
from analytics.store import ModelCard
from engine import batches, jobs
from engine.models import Batch, Job, Step, utcnow

from .trend_recipe import OPERATOR, RECIPE, live_step, trained_plant

VALUES = [100.2, 104.0, 108.5, 96.0, 92.5, 101.1, 100.95, 100.97, 109.9]
MINUTES = [30.0, 3.0, 30.0, 120.0, 30.0, 31.0, 29.0, 30.0, 8.0]


def _reference(s, batch_id: str) -> set[tuple]:
    """What the full path finds for the batch's step: every point of the recipe step
    read, the monitors rebuilt from their cards and asked through their public API."""
    this = next(p for p in step_points(s, RECIPE, bpmn_id="weigh") if p.batch_id == batch_id)
    history = recent_values(s, RECIPE, "weigh", RUN_WINDOW, before=this)
    out = set()
    for m in active_models(s, RECIPE, "weigh"):
        monitor = ModelCard.from_dict(m.card).monitor()
        if m.kind == "DurationMonitor":
            X = np.array([[this.minutes]])
            if monitor.predict(X)[0] != 1:
                out.add((None, "duration", round(float(monitor.explain(X)[0, 0]), 9)))
            continue
        x = as_number(this.values.get(m.parameter))
        seq = [v for v in (as_number(h.get(m.parameter)) for h in history) if v is not None]
        X = np.array([[v] for v in seq + [x]])
        z = round(float(monitor.explain(X[-1:])[0, 0]), 9)
        out |= {(m.parameter, v.rule, z) for v in monitor.rule_violations(X) if v.row == len(X) - 1}
    return out


def test_one_step_scored_alone_finds_what_the_full_record_finds(rt):
    trained_plant(rt, last_above=8)
    step_models.clear()
    for i, (mass, minutes) in enumerate(zip(VALUES, MINUTES, strict=True)):
        live_step(rt, f"B-{i}", {"mass_g": mass, "temp_c": 20.0 + 0.1 * i}, minutes=minutes, opened=i % 2 == 0)
    found_any = False
    with rt.transaction() as s:
        for i in range(len(VALUES)):
            batch = s.scalars(select(Batch).where(Batch.batch_id == f"B-{i}")).one()
            step = s.scalars(select(Step).where(Step.batch_id == batch.id, Step.kind == "user_task")).one()
            full = next(p for p in step_points(s, RECIPE, bpmn_id="weigh") if p.batch_id == f"B-{i}")
            assert step_point(s, batch, step) == full
            new = {
                (f["parameter"], f["details"]["rule"], round(f["details"]["z_over_limit"], 9))
                for f in score_in(s, batch, step.seq)
            }
            assert new == _reference(s, f"B-{i}"), i
            found_any |= bool(new)
    assert found_any, "the values chosen never leave the trend: the comparison says nothing"


def test_step_point_of_every_step_of_the_history(rt):
    """History and live steps, whatever their duration's basis (task times or, for the
    history, the previous record of the batch): the same point either way."""
    trained_plant(rt, n=8)
    live_step(rt, "B-NEW", {"mass_g": 100.0, "temp_c": 20.0})
    with rt.transaction() as s:
        points = step_points(s, RECIPE)
        assert len(points) == 9
        for full in points:
            batch = s.get(Batch, full.batch_pk)
            step = s.scalars(select(Step).where(Step.batch_id == batch.id, Step.seq == full.seq)).one()
            assert step_point(s, batch, step) == full


@pytest.mark.parametrize("rules", [(1,), (1, 2, 3, 4)])
def test_fast_path_says_what_the_public_api_says(rules):
    rng = np.random.default_rng(7)
    uni = UnivariateMonitor(rules=rules).fit(rng.normal(100, 1, (40, 1)))
    dur = DurationMonitor().fit(rng.lognormal(3.4, 0.1, (40, 1)))
    parsed = {
        "u": step_models.StepModel(1, "UnivariateMonitor", "w", "m", None, True, 1, {}, {}, uni),
        "d": step_models.StepModel(2, "DurationMonitor", "w", "", None, False, 1, {}, {}, dur),
    }
    for _ in range(300):
        seq = list(rng.normal(100 + rng.normal(0, 1.5), rng.uniform(0.2, 3), int(rng.integers(1, 21))))
        X = np.array(seq).reshape(-1, 1)
        want = sorted({v.rule for v in uni.rule_violations(X) if v.row == len(X) - 1})
        hits, z = step_models.rule_hits(parsed["u"], seq)
        assert hits == want and z == pytest.approx(float(uni.explain(X[-1:])[0, 0]))
        minutes = float(rng.lognormal(3.4, 0.6))
        Y = np.array([[minutes]])
        out, long, zd = step_models.duration_check(parsed["d"], minutes)
        assert out == (dur.predict(Y)[0] == -1)
        assert long == bool(dur.too_long(Y)[0, 0])
        assert zd == pytest.approx(float(dur.explain(Y)[0, 0]))


def test_waiting_steps_are_scored_along_with_one_job_and_once(rt):
    trained_plant(rt)
    for i in range(6):
        live_step(rt, f"W-{i}", {"mass_g": 100.0 + 0.1 * i, "temp_c": 20.0}, minutes=3.0 if i == 2 else 30.0)
    with rt.transaction() as s:  # the batch starts' own jobs out of the way
        s.execute(update(Job).where(Job.kind != "score_step").values(state="done"))
    assert jobs.run_due(rt, worker="w1", limit=1) == 1  # one job ...
    with rt.transaction() as s:  # ... scored every waiting step
        assert {j.state for j in s.scalars(select(Job).where(Job.kind == "score_step"))} == {"done"}
    assert len(batches.exceptions(rt, "W-2")) == 1  # 3 min: shorter than usual, once


def test_a_step_whose_scoring_worker_died_is_scored_later(rt):
    trained_plant(rt)
    live_step(rt, "D-1", {"mass_g": 100.0, "temp_c": 20.0}, minutes=3.0)
    with rt.transaction() as s:  # a worker took the job, then died: its lock is left behind
        s.execute(update(Job).where(Job.kind != "score_step").values(state="done"))
        s.execute(update(Job).values(locked_by="dead", locked_until=utcnow() + timedelta(minutes=5)))
    live_step(rt, "D-2", {"mass_g": 100.0, "temp_c": 20.0})
    jobs.run_due(rt, worker="w1")
    assert batches.exceptions(rt, "D-1") == []  # held by the dead worker: not taken
    with rt.transaction() as s:
        s.execute(update(Job).where(Job.locked_by == "dead").values(locked_until=utcnow() - timedelta(seconds=1)))
    jobs.run_due(rt, worker="w2")
    assert len(batches.exceptions(rt, "D-1")) == 1
    jobs.run_due(rt, worker="w3")  # nothing left: nothing raised twice
    assert len(batches.exceptions(rt, "D-1")) == 1


def test_bad_waiting_jobs_are_left_to_their_own_job(rt):
    """A waiting job without a step (bad payload, unknown step) is not taken along: it runs
    on its own and ends as its handler says."""
    trained_plant(rt)
    live_step(rt, "X-1", {"mass_g": 100.0, "temp_c": 20.0})
    with rt.transaction() as s:
        pk = s.scalars(select(Batch.id).where(Batch.batch_id == "X-1")).one()
        s.add_all(
            [
                Job(kind="score_step", batch_id=pk, payload={}, max_attempts=1),
                Job(kind="score_step", batch_id=pk, payload={"seq": 999}, max_attempts=1),
                Job(kind="score_step", batch_id=None, payload={"seq": 1}, max_attempts=1),
            ]
        )
    while jobs.run_due(rt, worker="w1"):
        pass
    with rt.transaction() as s:
        states = sorted(j.state for j in s.scalars(select(Job).where(Job.kind == "score_step")))
    assert states.count("failed") == 1 and states.count("done") == len(states) - 1, states
    assert OPERATOR
