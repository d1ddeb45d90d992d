"""Concurrent requests against real connections (SQLite and PostgreSQL): two
completions of one task, one idempotency key replayed at once, and two worker
processes sharing a job queue."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from engine import batches
from engine.errors import Conflict
from engine.models import Job, Step
from tests.support import make_runtime, person

from .engine_helpers import load

ROOT = Path(__file__).resolve().parents[2]


def _race(fns):
    barrier = threading.Barrier(len(fns))
    results = [None] * len(fns)

    def run(i, fn):
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_concurrent_completions_one_wins(rt, db_url):
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "CC-1", user="op.anna", parameters={"done": False})
    # two application nodes: separate runtimes, separate connection pools, separate caches
    node_a, node_b = make_runtime(db_url), make_runtime(db_url)
    try:
        for _round in range(8):
            task_id = batches.ready_tasks(rt, "CC-1")[0]["id"]
            results = _race(
                [
                    lambda t=task_id: batches.complete_task(
                        node_a, "CC-1", t, {"by": "a", "done": False}, user="op.anna", actor=person("op.anna")
                    ),
                    lambda t=task_id: batches.complete_task(
                        node_b, "CC-1", t, {"by": "b", "done": False}, user="op.ben", actor=person("op.ben")
                    ),
                ]
            )
            wins = [r for r in results if isinstance(r, batches.Outcome)]
            losses = [r for r in results if isinstance(r, Conflict)]
            assert len(wins) == 1 and len(losses) == 1, results
            assert losses[0].code == "task_not_ready" and losses[0].status == 409
        assert len(batches.steps(rt, "CC-1")) == 8
    finally:
        node_a.close()
        node_b.close()


def test_same_idempotency_key_at_once_stores_one_step(rt, db_url):
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "ID-1", user="op.anna", parameters={"done": False})
    task_id = batches.ready_tasks(rt, "ID-1")[0]["id"]
    node_a, node_b = make_runtime(db_url), make_runtime(db_url)
    try:
        data = {"reading": 7.2, "done": False}
        results = _race(
            [
                lambda: batches.complete_task(
                    node_a, "ID-1", task_id, data, user="op.anna", actor=person("op.anna"), idempotency_key="k-1"
                ),
                lambda: batches.complete_task(
                    node_b, "ID-1", task_id, data, user="op.anna", actor=person("op.anna"), idempotency_key="k-1"
                ),
            ]
        )
        assert all(isinstance(r, batches.Outcome) for r in results), results
        assert results[0].body == results[1].body
        assert sorted(r.replayed for r in results) == [False, True]
        # and a late replay too
        again = batches.complete_task(
            rt, "ID-1", task_id, data, user="op.anna", actor=person("op.anna"), idempotency_key="k-1"
        )
        assert again.replayed and again.body == results[0].body
        with rt.transaction() as s:
            assert s.scalar(select(func.count()).select_from(Step)) == 1
    finally:
        node_a.close()
        node_b.close()


def test_idempotency_key_with_other_body_is_refused(rt):
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "ID-2", user="op.anna", parameters={"done": False})
    task_id = batches.ready_tasks(rt, "ID-2")[0]["id"]
    batches.complete_task(
        rt, "ID-2", task_id, {"reading": 1, "done": False}, user="op.anna", actor=person("op.anna"), idempotency_key="k"
    )
    from engine.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        batches.complete_task(
            rt,
            "ID-2",
            task_id,
            {"reading": 2, "done": False},
            user="op.anna",
            actor=person("op.anna"),
            idempotency_key="k",
        )
    assert err.value.code == "idempotency_key_reused"
    assert len(batches.steps(rt, "ID-2")) == 1


@pytest.mark.slow
def test_two_worker_processes_never_run_the_same_job(rt, db_url):
    jobs_count = 60
    with rt.transaction() as s:
        s.execute(text("CREATE TABLE probe_run (job INTEGER, worker VARCHAR(50))"))
        for n in range(jobs_count):
            s.add(Job(kind="probe", payload={"n": n}))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.engine.worker_child", db_url, f"w{i}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    with rt.transaction() as s:
        runs = s.execute(text("SELECT job, worker FROM probe_run")).all()
        done = s.scalar(select(func.count()).select_from(Job).where(Job.state == "done"))
    per_job = {}
    for job, worker in runs:
        per_job.setdefault(job, []).append(worker)
    assert sorted(per_job) == list(range(jobs_count))
    twice = {j: w for j, w in per_job.items() if len(w) > 1}
    assert not twice, f"jobs run by more than one worker: {twice}"
    assert done == jobs_count
    assert {w for ws in per_job.values() for w in ws} == {"w0", "w1"}, "both workers should have worked"
