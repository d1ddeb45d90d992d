"""``/api/health`` (liveness), ``/api/ready`` (database, schema, worker heartbeat) and
``/metrics`` (Prometheus text, parsed with prometheus_client's own parser), on SQLite
and PostgreSQL, including what a hostile or careless caller sends."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from engine import batches, heartbeat, jobs
from engine.models import Incident, Job, WorkerHeartbeat, utcnow
from tests.support import approved_recipe, make_runtime, read_recipe
from web.app import create_app


def scrape(client, **kw) -> dict[str, float]:
    """sample name (with labels) -> value, through prometheus_client's parser."""
    r = client.get("/metrics", **kw)
    assert r.status_code == 200, r.data
    assert r.headers["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.data.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


#: a PostgreSQL server that is not there (nothing listens on port 1): refused at once
DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/batchline"


def loop_batch(rt, batch_id="B-1"):
    approved_recipe(rt, read_recipe("loop.bpmn"), user="alice", approver="quentin")
    batches.start_batch(rt, "sampling_loop", batch_id, user="alice", parameters={"done": False})


def test_health_is_liveness_and_asks_no_database():
    rt = make_runtime(DOWN)
    try:
        c = create_app(runtime=rt).test_client()
        r = c.get("/api/health")
        assert r.status_code == 200 and r.json["status"] == "ok" and set(r.json) == {"status", "version"}
        ready = c.get("/api/ready")
        assert ready.status_code == 503
        assert ready.json["checks"]["database"] == "unreachable" and "database" in ready.json["not_ready"]
        assert ready.headers["Retry-After"]
    finally:
        rt.close()


def test_ready_needs_a_worker_heartbeat(runtime, client):
    anon = client.application.test_client()
    r = anon.get("/api/ready")  # unauthenticated, and no worker has ever beaten
    assert r.status_code == 503 and r.json["not_ready"] == ["worker"] and r.json["checks"]["worker"] == "none"
    assert r.json["schema_revision"] == r.json["schema_head"] is not None
    heartbeat.beat(runtime, "host:1:1")
    r = anon.get("/api/ready")
    assert r.status_code == 200 and r.json["status"] == "ok" and r.json["not_ready"] == []
    assert 0 <= r.json["worker_heartbeat_age_seconds"] < 30
    with runtime.transaction() as s:  # the worker went silent
        s.execute(update(WorkerHeartbeat).values(beat_at=utcnow() - timedelta(minutes=5)))
    r = anon.get("/api/ready")
    assert (
        r.status_code == 503 and r.json["checks"]["worker"] == "stale" and r.json["worker_heartbeat_age_seconds"] > 290
    )
    heartbeat.beat(runtime, "host:1:1")
    heartbeat.stopped(runtime, "host:1:1", released=0)  # stopped gracefully: not working jobs
    assert anon.get("/api/ready").json["checks"]["worker"] == "none"


def test_ready_without_a_required_worker(db_url):
    rt = make_runtime(db_url, worker_heartbeat_max_age_seconds=0)
    try:
        r = create_app(runtime=rt).test_client().get("/api/ready")
        assert r.status_code == 200 and r.json["checks"]["worker"] == "not_required"
    finally:
        rt.close()


def test_health_and_ready_refuse_other_methods_and_show_no_secrets(runtime, client):
    anon = client.application.test_client()
    for path in ("/api/health", "/api/ready", "/metrics"):
        assert anon.post(path, json={"x": 1}).status_code == 405
        assert anon.delete(path).status_code == 405
    body = anon.get("/api/ready?verbose=1&database=x", headers={"X-Forwarded-For": "1.2.3.4"}).data.decode()
    for secret in (runtime.settings.secret_key, runtime.settings.database_url):
        assert secret not in body


def test_metrics_count_steps_and_time_them(runtime, client):
    loop_batch(runtime)
    before = scrape(client)
    task = client.get("/api/batches/B-1/tasks").json[0]["id"]
    ok = client.post(f"/api/batches/B-1/tasks/{task}/complete", json={"data": {"reading": 1, "done": False}})
    assert ok.status_code == 200
    refused = client.post(f"/api/batches/B-1/tasks/{task}/complete", json={"data": {"reading": 1}})
    assert refused.status_code >= 400
    after = scrape(client)
    grew = {k: after[k] - before.get(k, 0) for k in after}
    assert grew["batchline_steps_total{outcome=completed}"] == 1
    assert grew["batchline_steps_total{outcome=refused}"] == 1
    assert grew["batchline_step_seconds_count"] == 2 and grew["batchline_step_seconds_sum"] > 0
    assert grew["batchline_step_seconds_bucket{le=+Inf}"] == 2
    client.get("/api/batches/B-1/tasks")  # not a step: not counted
    assert scrape(client)["batchline_step_seconds_count"] == after["batchline_step_seconds_count"]


def test_metrics_read_jobs_incidents_and_workers_from_the_database(runtime, client):
    loop_batch(runtime)
    jobs.run_due(runtime)  # whatever the start scheduled is done
    now = utcnow()
    with runtime.transaction() as s:
        s.add_all(
            [
                Job(kind="deliver", payload={}, due_at=now - timedelta(seconds=1)),
                Job(kind="deliver", payload={}, due_at=now + timedelta(hours=1)),
                Job(kind="timer", payload={}, due_at=now - timedelta(minutes=10)),
                Job(kind="timer", payload={}, due_at=now - timedelta(minutes=10), state="done"),
            ]
        )
        s.flush()
        failed = Job(kind="timer", payload={}, due_at=now, state="failed")
        s.add(failed)
        s.flush()
        s.add(Incident(job_id=failed.id, kind="timer", message="x"))
        s.add(Incident(job_id=failed.id, kind="timer", message="y", resolved_at=now))
    m = scrape(client)
    due = m["batchline_jobs_due"]
    assert due >= 2 and m["batchline_jobs_late"] >= 1  # the deliver due a second ago is not late yet
    assert m["batchline_jobs_late"] <= due - 1
    assert m["batchline_outbox_backlog"] >= 2  # both pending deliveries
    assert m["batchline_incidents_open"] == 1
    assert m["batchline_database_up"] == 1
    assert "batchline_worker_heartbeat_age_seconds" not in m  # no worker running: no sample
    heartbeat.beat(runtime, "w:1:1")
    assert 0 <= scrape(client)["batchline_worker_heartbeat_age_seconds"] < 30


def test_metrics_token_is_a_bearer_compared_whole(db_url):
    rt = make_runtime(db_url, metrics_token="scrape-me-0123456789")
    try:
        c = create_app(runtime=rt).test_client()
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Bearer scrape-me"},  # a prefix is not the token
            {"Authorization": "Bearer scrape-me-0123456789x"},
            {"Authorization": "Basic scrape-me-0123456789"},
            {"Authorization": "Bearer " + "x" * 10_000},
        ):
            r = c.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
            assert b"scrape-me" not in r.data
        assert scrape(c, headers={"Authorization": "Bearer scrape-me-0123456789"})["batchline_database_up"] == 1
        assert scrape(c, headers={"Authorization": "bearer scrape-me-0123456789"})  # the scheme is case-insensitive
    finally:
        rt.close()


def test_metrics_say_when_the_database_is_down():
    rt = make_runtime(DOWN)
    try:
        m = scrape(create_app(runtime=rt).test_client())
        assert m["batchline_database_up"] == 0 and "batchline_jobs_due" not in m
    finally:
        rt.close()


@pytest.mark.slow
def test_worker_heartbeat_beats_while_a_worker_runs_and_stops_with_it(runtime):
    rt = make_runtime(runtime.settings.database_url, worker_heartbeat_seconds=0.2)
    stop = threading.Event()
    try:
        worker = threading.Thread(target=jobs.work, args=(rt,), kwargs={"stop": stop, "heartbeat": True})
        worker.start()
        first = None
        for _ in range(50):
            first = first or heartbeat.newest_beat(rt)
            if first and heartbeat.newest_beat(rt) > first:
                break
            stop.wait(0.1)
        assert first is not None and heartbeat.newest_beat(rt) > first  # it beats again and again
        stop.set()
        worker.join(10)
        assert not worker.is_alive()
        assert heartbeat.newest_beat(rt) is None  # stopped: no running worker
    finally:
        stop.set()
        rt.close()


def test_a_starting_worker_forgets_workers_silent_for_a_week(rt):
    heartbeat.beat(rt, "old:1:1")
    heartbeat.beat(rt, "recent:2:2")
    with rt.transaction() as s:
        s.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.worker == "old:1:1")
            .values(beat_at=utcnow() - timedelta(days=8))
        )
        s.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.worker == "recent:2:2")
            .values(beat_at=utcnow() - timedelta(days=1))
        )
    heartbeat.beat(rt, "new:3:3")
    with rt.transaction() as s:
        assert sorted(s.scalars(select(WorkerHeartbeat.worker))) == ["new:3:3", "recent:2:2"]
