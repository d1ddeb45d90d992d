"""Throughput of the out-of-trend monitors at a realistic size: fitting on the
history of one recipe step and scoring new data (samples per second).

Size: 50 batches x 301 hourly samples x 8 variables for the time-series monitors
(15,050 rows, what the evaluation fits on); 500 batches x 8 parameters for the
end-of-batch monitors; 500 batches x 4 steps for the duration monitor.

Then the cost in the MES (``mes_cost``), on a fresh SQLite database in the same run:

* a durable step as ``bench/engine.py`` measures it (p50 of the steps around step 30 of
  a long batch, ``batchline_long``) and the ``score_step`` job of one operator step
  (approved models of a one-step recipe: a duration and two value models trained on 20
  released batches; the job's claim, scoring and commit), p50 over ``--live`` batches:
  scoring cost per step / durable step cost (goal <= 0.05);
* scoring throughput: 1, 10 and 100 batches whose steps wait for scoring at once,
  drained by ``--workers`` worker threads (``engine.jobs.run_due``, as ``batchline
  worker`` does); samples/s = values and durations scored per second.

Run: python bench/analytics.py [--live 30] [--workers 4] [--mes-only]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics import DurationMonitor, IsolationForestMonitor, PCAMonitor, UnivariateMonitor  # noqa: E402
from analytics.simulator import simulate_batches  # noqa: E402


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def monitors():
    rng = np.random.default_rng(0)
    series = rng.standard_normal((50 * 301, 8)) @ rng.standard_normal((8, 8))
    parameters = rng.standard_normal((500, 8)) * [1, 2, 3, 4, 5, 6, 7, 8] + 50
    durations = rng.lognormal(3.0, 0.15, (500, 4))
    cases = [
        ("UnivariateMonitor rules 1-4", UnivariateMonitor(rules=(1, 2, 3, 4)), parameters),
        ("UnivariateMonitor rule 1", UnivariateMonitor(rules=(1,)), series),
        ("PCAMonitor", PCAMonitor(), series),
        ("DurationMonitor", DurationMonitor(), durations),
        ("IsolationForestMonitor", IsolationForestMonitor(random_state=0), series),
    ]
    print(f"{'method':30s} {'rows x cols':>12s} {'fit (samples/s)':>16s} {'score (samples/s)':>18s}")
    for name, monitor, X in cases:
        fit = best_of(lambda m=monitor, X=X: m.fit(X))
        score = best_of(lambda m=monitor, X=X: m.predict(X))
        shape = f"{X.shape[0]}x{X.shape[1]}"
        print(f"{name:30s} {shape:>12s} {X.shape[0] / fit:16,.0f} {X.shape[0] / score:18,.0f}")
    start = time.perf_counter()
    simulate_batches(100, 0)
    print(f"\nsimulator: 100 batches x 300 h in {time.perf_counter() - start:.2f} s")


def _trend_plant():
    """A SQLite runtime with the one-step trend recipe, 20 released batches of history and
    its approved models (trained by one QA person, approved by another)."""
    from analytics import model_review
    from analytics.history import write_history
    from analytics.jobs import install
    from analytics.training import train
    from bench.engine import Database
    from engine import users
    from tests.analytics.trend_recipe import OPERATOR, RECIPE, history, import_trend_recipe

    db = Database("sqlite")
    rt = db.runtime()
    import_trend_recipe(rt)
    write_history(rt, RECIPE, history(20), user="bench")
    run = train(rt, RECIPE, user="qa.bench")["training_id"]
    model_review.approve(rt, run, signer=users.Person("qa.approver", "QA Approver", ("qa",)), reason="bench")
    install(rt)
    users.create_user(rt, OPERATOR, "Trend Operator", ["operator"], by="bench", password="trend-operator-pw-1")
    return db, rt


#: offsets of the step's mass from the history's centre (100 g): no six in a row rising
#: or falling, no long run on one side, no alternation - the common path, nothing found
#: (a cycle like 100.0, 100.3, ... 101.2 is a real rising trend and raises rule 3)
OFFSETS = (0.3, 0.1, -0.2, 0.2, -0.1, -0.3, 0.0)


def _mass(i: int) -> float:
    return 100.0 + OFFSETS[i % len(OFFSETS)]


def _temp(i: int) -> float:
    """The room temperature (history ~20 °C), varied the same way (a constant 20.0 sits
    on one side of the centre: nine in a row raise rule 2)."""
    return 20.0 + OFFSETS[(i + 3) % len(OFFSETS)]


def _findings(rt) -> int:
    """Trend exceptions raised so far (the bench's steps should raise none)."""
    from sqlalchemy import func, select

    from engine.models import BatchException
    from engine.vocabulary import ExceptionSource

    with rt.transaction() as s:
        return s.scalar(
            select(func.count()).select_from(BatchException).where(BatchException.source == ExceptionSource.TREND)
        )


def _start(rt, batch_id: str) -> None:
    """Start a batch as if 30 minutes ago (the engine's clock moved back, as the tests'
    ``live_step`` does): its task became ready then, so the step takes a usual time (the
    history's steps take ~30 min) and scoring takes the common path - nothing out of
    trend. (Moving only ``batch.created_at`` no longer does: durations are measured
    from the task's own ready / opened times.)"""
    from engine import batches
    from tests.analytics.trend_recipe import RECIPE, clock_moved

    with clock_moved(-30):
        batches.start_batch(rt, RECIPE, batch_id, user="sup", parameters={})


def _step(rt, batch_id: str, mass: float, *, start: bool = True, temp: float = 20.0) -> float:
    """Start a batch (unless ``start`` is False) and record its one operator step
    (durable, scoring job scheduled); returns the step's seconds."""
    from engine import batches, users
    from tests.analytics.trend_recipe import OPERATOR

    if start:
        _start(rt, batch_id)
        _drain(rt, 1)  # the batch start's own jobs: only the step's scoring job is left
    task = batches.ready_tasks(rt, batch_id)[0]
    signer = users.person(rt, OPERATOR)
    t0 = time.perf_counter()
    batches.complete_task(rt, batch_id, task["id"], {"mass_g": mass, "temp_c": temp}, user=OPERATOR, signer=signer)
    return time.perf_counter() - t0


def _drain(rt, workers: int) -> int:
    """Run every due job with ``workers`` threads; returns how many ran."""
    from engine import jobs

    ran = [0] * workers

    def work(i):
        name = f"bench-{i}"
        while True:
            n = jobs.run_due(rt, worker=name, limit=5)
            if not n:
                return
            ran[i] += n

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(ran)


def _scored(rt) -> int:
    """How many ``score_step`` jobs are done (each is one step scored, by its own job or
    along with another one: ``analytics.scoring_queue``)."""
    from sqlalchemy import func, select

    from engine.models import Job
    from engine.vocabulary import JobKind, JobState

    with rt.transaction() as s:
        return s.scalar(
            select(func.count()).select_from(Job).where(Job.kind == JobKind.SCORE_STEP, Job.state == JobState.DONE)
        )


def _hold_other_jobs(rt, hold: bool) -> None:
    """Put the jobs other than scoring out of reach (``hold``) or back: the amortised
    cost counts the scoring jobs alone, not the batch completion jobs due with them."""
    from datetime import timedelta

    from sqlalchemy import update

    from engine.models import Job, utcnow
    from engine.vocabulary import JobKind, JobState

    with rt.transaction() as s:
        due = utcnow() + timedelta(days=1) if hold else utcnow()
        when = Job.due_at <= utcnow() if hold else Job.due_at > utcnow() + timedelta(hours=12)
        s.execute(
            update(Job).where(Job.kind != JobKind.SCORE_STEP, Job.state == JobState.PENDING, when).values(due_at=due)
        )


def amortised(rt, durable: float, handler_times: list[float]) -> None:
    """Cost per step when 1, 10, 100 batches' steps wait for scoring at once, drained by
    one worker (elapsed time = cost): claim + run + done of the scoring jobs / steps."""
    print("\namortised scoring cost, 1 worker (scoring jobs only: claim + run + done, all commits)")
    print(
        f"{'steps waiting':>14s} {'scored':>7s} {'jobs run':>9s} {'ms/step':>8s} {'handler ms/step':>16s}"
        f" {'ratio':>7s} {'samples/s':>10s}"
    )
    for n in (1, 10, 100):
        names = [f"AM-{n:03d}-{i:04d}" for i in range(n)]
        for name in names:
            _start(rt, name)
        _drain(rt, 1)  # the starts' own jobs
        for i, name in enumerate(names):
            _step(rt, name, _mass(i), start=False, temp=_temp(i))
        _hold_other_jobs(rt, True)
        before, calls = _scored(rt), len(handler_times)
        t0 = time.perf_counter()
        ran = _drain(rt, 1)
        took = time.perf_counter() - t0
        scored = _scored(rt) - before
        handler = sum(handler_times[calls:])
        _hold_other_jobs(rt, False)
        _drain(rt, 1)
        per = took / scored
        print(
            f"{n:14d} {scored:7d} {ran:9d} {per * 1000:8.3f} {handler / scored * 1000:16.3f}"
            f" {per / durable:7.3f} {3 * scored / took:10,.0f}"
        )


def _compute_only(rt, repeat: int = 200) -> float:
    """Seconds to rebuild the step's approved monitors from their cards and score one
    step's values and duration: the analytics alone, without the database."""
    from analytics import catalogue
    from analytics.store import ModelCard
    from tests.analytics.trend_recipe import RECIPE

    with rt.transaction() as s:
        cards = [m.card for m in catalogue.active_models(s, RECIPE, "weigh")]
    X = np.array([[100.4]])

    def once():
        for data in cards:
            ModelCard.from_dict(data).monitor().predict(X)

    return best_of(lambda: [once() for _ in range(repeat)]) / repeat


def _compute_fast(rt, repeat: int = 200) -> float:
    """Seconds to score one step's values (with a 20-point history) and duration with the
    parsed, cached models and the fast path (``analytics.step_models``)."""
    from analytics import step_models
    from tests.analytics.trend_recipe import RECIPE

    with rt.transaction() as s:
        models = step_models.step_models(s, RECIPE, "weigh")
    history = [_mass(i) for i in range(20)]

    def once():
        for m in models:
            if m.kind == "DurationMonitor":
                step_models.duration_check(m, 30.0)
            else:
                step_models.rule_hits(m, [*history, 100.4])

    return best_of(lambda: [once() for _ in range(repeat)]) / repeat


def mes_cost(live: int, workers: int) -> None:
    from bench.engine import batchline_long
    from engine import jobs
    from engine.vocabulary import JobKind

    db, rt = _trend_plant()
    handler_times: list[float] = []
    score_step = rt.job_handlers[JobKind.SCORE_STEP]

    def timed(*args):
        t0 = time.perf_counter()
        try:
            return score_step(*args)
        finally:
            handler_times.append(time.perf_counter() - t0)

    try:
        durable = batchline_long(rt, 60)[30] / 1000.0  # bench/engine.py: p50 near step 30, seconds
        _drain(rt, 1)  # the long batch's own scoring jobs (no models for that recipe)
        rt.job_handlers[JobKind.SCORE_STEP] = timed
        handler_times.clear()
        steps, scores = [], []
        for i in range(live):
            steps.append(_step(rt, f"LIVE-{i:04d}", _mass(i), temp=_temp(i)))
            # the step left its scoring job and (the batch ends with it) the batch's own
            # completion job: claim both, count the claim and the scoring job's run
            t0 = time.perf_counter()
            claimed = jobs.acquire(rt, "bench-live", 10)
            claim = time.perf_counter() - t0
            for job_id in claimed:
                before = len(handler_times)
                t0 = time.perf_counter()
                jobs.run_job(rt, job_id, "bench-live")
                if len(handler_times) > before:
                    scores.append(claim + time.perf_counter() - t0)
            assert len(scores) == i + 1, "the step's score_step job did not run"
        score, handler = statistics.median(scores), statistics.median(handler_times)
        compute, fast = _compute_only(rt), _compute_fast(rt)
        print(f"\nscoring in the MES (SQLite, one-step recipe, 3 approved models; p50 of {live} steps)")
        print(f"{'durable step (bench/engine.py, p50 near step 30)':56s} {durable * 1000:8.2f} ms")
        print(f"{'durable step of the trended recipe (complete_task)':56s} {statistics.median(steps) * 1000:8.2f} ms")
        print(f"{'score_step job of one step (claim + run + done)':56s} {score * 1000:8.2f} ms")
        print(f"{'  of which the handler (analytics.scoring.score_step)':56s} {handler * 1000:8.2f} ms")
        print(f"{'  loading the 3 model cards and scoring (old path)':56s} {compute * 1000:8.3f} ms")
        print(f"{'  the same with cached models and the fast path (used)':56s} {fast * 1000:8.3f} ms")
        print(f"{'scoring cost per step / durable step cost (job)':56s} {score / durable:8.3f}   (goal <= 0.05)")
        print(f"{'  handler only / durable step':56s} {handler / durable:8.3f}")
        print(f"{'  model compute only / durable step (fast path)':56s} {fast / durable:8.4f}")
        print(f"{'trend findings raised by these steps (common path: 0)':56s} {_findings(rt):8d}")

        amortised(rt, durable, handler_times)

        print(f"\nscoring throughput, {workers} worker threads (3 samples per step: 2 values + duration;")
        print("the drain also runs each batch's completion job, as a worker would)")
        print(f"{'batches waiting':>16s} {'scored':>7s} {'seconds':>9s} {'samples/s':>10s} {'steps/s':>9s}")
        for n in (1, 10, 100):
            names = [f"PAR-{n:03d}-{i:04d}" for i in range(n)]
            for name in names:
                _start(rt, name)
            _drain(rt, workers)  # the starts' own jobs
            for i, name in enumerate(names):
                _step(rt, name, _mass(i), start=False, temp=_temp(i))
            before = _scored(rt)
            t0 = time.perf_counter()
            _drain(rt, workers)
            took = time.perf_counter() - t0
            ran = _scored(rt) - before
            print(f"{n:16d} {ran:7d} {took:9.3f} {3 * ran / took:10,.0f} {ran / took:9,.1f}")
        print(f"trend findings raised in the whole run (common path: 0): {_findings(rt)}")
    finally:
        rt.close()
        db.drop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", type=int, default=30, help="steps timed for the per-step scoring cost")
    ap.add_argument("--workers", type=int, default=4, help="worker threads draining the scoring jobs")
    ap.add_argument("--mes-only", action="store_true", help="skip the monitor throughput table")
    args = ap.parse_args()
    if not args.mes_only:
        monitors()
    mes_cost(args.live, args.workers)


if __name__ == "__main__":
    main()
