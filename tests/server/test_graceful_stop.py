"""Graceful stop with real processes: ``batchline serve --workers 2`` (gunicorn) told to
stop (SIGTERM) while a step is in flight answers that step and records it, refuses new
connections and exits within its graceful timeout; ``batchline worker`` told to stop
while it holds claimed jobs finishes the job it is running and gives the others back at
once (not after ``job_lock_seconds``), and its heartbeat row says so.

The step is held in flight by the test itself: it takes the lock the step needs (the
batch row on PostgreSQL, the write lock on SQLite) and lets go after the SIGTERM.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from engine import batches, users
from engine.models import Job, WorkerHeartbeat
from tests.support import PASSWORD, approved_recipe, audit_dir_of, make_runtime, read_recipe

from . import processes

pytestmark = pytest.mark.slow


def server_env(db_url, workdir, **settings):
    if not db_url.startswith("sqlite"):
        settings.setdefault("audit_key_file", audit_dir_of(db_url) / "audit.key")
    return processes.environment(db_url, workdir, session_cookie_secure="false", **settings)


def plant(db_url) -> str:
    """An operator's token and a running loop batch B-1."""
    rt = make_runtime(db_url)
    try:
        users.create_user(rt, "op", "Op", ["operator"], by="test", password=PASSWORD)
        approved_recipe(rt, read_recipe("loop.bpmn"))
        batches.start_batch(rt, "sampling_loop", "B-1", user="test", parameters={"done": False})
        return users.create_token(rt, "op", "test", by="test")
    finally:
        rt.close()


class HeldLock:
    """Holds the lock a step on batch B-1 needs until ``release``."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        if db_url.startswith("sqlite"):
            self.conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.engine = create_engine(db_url)
            self.conn = self.engine.connect()
            self.tx = self.conn.begin()
            self.conn.execute(text("SELECT id FROM batch WHERE batch_id = 'B-1' FOR UPDATE"))

    def release(self) -> None:
        if self.db_url.startswith("sqlite"):
            self.conn.execute("ROLLBACK")
            self.conn.close()
        else:
            self.tx.rollback()
            self.conn.close()
            self.engine.dispose()


def test_sigterm_finishes_the_step_in_flight(db_url, tmp_path):
    token = plant(db_url)
    auth = {"Authorization": f"Bearer {token}"}
    node = processes.server("node", server_env(db_url, tmp_path), tmp_path, workers=2, graceful=20).start()
    try:
        node.wait_answering()
        # a client on 127.0.0.1 cannot make itself HTTPS: gunicorn leaves X-Forwarded-Proto alone
        spoofed = httpx.get(node.url + "/api/health", headers={"X-Forwarded-Proto": "https"}, timeout=10)
        assert spoofed.status_code == 200 and "Strict-Transport-Security" not in spoofed.headers
        task = httpx.get(node.url + "/api/batches/B-1/tasks", headers=auth, timeout=10).json()[0]["id"]
        lock = HeldLock(db_url)
        answer: dict = {}

        def complete():
            try:
                answer["r"] = httpx.post(
                    f"{node.url}/api/batches/B-1/tasks/{task}/complete",
                    json={"data": {"reading": 7, "done": False}},
                    headers={**auth, "Idempotency-Key": "held-step"},
                    timeout=60,
                )
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                answer["error"] = exc

        client = threading.Thread(target=complete)
        client.start()
        time.sleep(1.5)  # the step is in the server, waiting for the lock
        assert client.is_alive() and not answer
        node.terminate()
        time.sleep(1.5)
        with pytest.raises(httpx.ConnectError):  # no longer accepting
            httpx.get(node.url + "/api/health", timeout=2)
        assert node.popen.poll() is None  # ... but still finishing the step
        lock.release()
        client.join(30)
        assert node.wait(30) == 0
    finally:
        node.stop()
    assert "error" not in answer, answer
    r = answer["r"]
    assert r.status_code == 200, r.text
    assert r.json()["step"]["values"] == {"reading": 7, "done": False}
    rt = make_runtime(db_url)
    try:
        record = batches.steps(rt, "B-1")
    finally:
        rt.close()
    assert [s["task_id"] for s in record if s["kind"] == "user_task"] == [task]


class SlowErp:
    """An ERP that takes ``delay`` seconds to answer each confirmation."""

    def __init__(self, delay: float):
        self.calls: list[dict] = []
        self.first = threading.Event()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                me.calls.append(json.loads(body))
                me.first.set()
                time.sleep(delay)
                data = b'{"doc": "4711"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/confirm"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def job_rows(db_url):
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            jobs = conn.execute(select(Job.id, Job.state, Job.locked_by).where(Job.kind == "service_task")).all()
            beats = conn.execute(select(WorkerHeartbeat.stopped_at, WorkerHeartbeat.released_jobs)).all()
        return jobs, beats
    finally:
        engine.dispose()


def test_sigterm_worker_finishes_its_job_and_releases_the_others(db_url, tmp_path):
    erp = SlowErp(delay=3)
    rt = make_runtime(db_url)
    try:
        approved_recipe(rt, read_recipe("http_service.bpmn"))
        for i in range(3):
            batches.start_batch(rt, "http_confirmation", f"HT-{i}", user="test",
                                parameters={"erp_url": erp.url, "order_id": f"PO-{i}"})  # fmt: skip
    finally:
        rt.close()
    env = server_env(db_url, tmp_path, worker_heartbeat_seconds=0.5, job_lock_seconds=300)
    first = processes.worker("worker1", env, tmp_path).start()
    second = None
    try:
        assert erp.first.wait(60), first.log.read_text()
        jobs, _ = job_rows(db_url)
        assert sorted(locked is not None for _, _, locked in jobs) == [True, True, True]  # all three claimed
        first.terminate()
        assert first.wait(20) == 0, first.log.read_text()
        assert len(erp.calls) == 1  # the running job finished; no new one started
        jobs, beats = job_rows(db_url)
        assert sorted(state for _, state, _ in jobs) == ["done", "pending", "pending"]
        assert all(locked is None for _, _, locked in jobs)  # nothing left locked
        assert [(stopped is not None, released) for stopped, released in beats] == [(True, 2)]
        assert "stopped after 1 job(s)" in first.log.read_text()
        # another worker takes them at once, not after job_lock_seconds (300 s)
        second = processes.worker("worker2", env, tmp_path).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            jobs, _ = job_rows(db_url)
            if all(state == "done" for _, state, _ in jobs):
                break
            time.sleep(0.3)
        assert all(state == "done" for _, state, _ in jobs), jobs
        assert sorted(c["order"] for c in erp.calls) == ["PO-0", "PO-1", "PO-2"]
    finally:
        first.stop()
        if second is not None:
            second.stop()
        erp.close()
