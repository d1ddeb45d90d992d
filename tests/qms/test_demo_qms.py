"""The QMS in its own process, down while 20 deviations are requested, then up: all 20
arrive, each deviation is opened once (20 distinct numbers), each callback counts once.
Batchline's API runs on a real HTTP server (a thread of this process, sharing the test's
runtime); the job worker is ``engine.jobs.run_due``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from engine import jobs
from engine.models import AuditEvent, BatchException, Job, OutboxEvent, QmsDeviation, QmsInboundEvent
from tests.support import make_runtime
from tests.web.live_server import free_port

from .helpers import SECRET, add_qms, batch_with_exceptions, request_deviations

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def qrt(db_url):
    rt = make_runtime(db_url, job_max_attempts=40)
    yield rt
    rt.close()


@contextmanager
def batchline_server(rt):
    from web.app import create_app

    server = make_server("127.0.0.1", 0, create_app(runtime=rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@contextmanager
def demo_qms(port: int, batchline: str, state: Path, log: Path, *extra: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHLINE_")}
    env["PYTHONPATH"] = str(ROOT)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "web.cli",
                "qms-demo",
                "--port",
                str(port),
                "--batchline",
                batchline,
                "--secret",
                SECRET,
                "--state",
                str(state),
                *extra,
            ],
            env=env,
            cwd=state.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                requests.get(f"http://127.0.0.1:{port}/deviations", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def work_until(rt, done, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        if jobs.run_due(rt, limit=50) == 0:
            time.sleep(0.05)


def count(rt, model, *where) -> int:
    with rt.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_qms_down_while_20_are_requested_then_up_each_opened_once(qrt, tmp_path):
    rt = qrt
    ids = batch_with_exceptions(rt, 20)
    port = free_port()
    add_qms(rt, url=f"http://127.0.0.1:{port}/events")
    request_deviations(rt, ids)
    assert count(rt, Job, Job.kind == "deliver", Job.state == "pending") == 20

    # the QMS is down: every delivery fails and is retried later, none is lost
    for _ in range(3):
        jobs.run_due(rt, limit=50)
        time.sleep(0.1)
    assert count(rt, Job, Job.kind == "deliver", Job.state == "pending") == 20
    assert count(rt, Job, Job.kind == "deliver", Job.attempts >= 1) == 20

    state, log = tmp_path / "qms.sqlite", tmp_path / "qms.log"
    with batchline_server(rt) as url, demo_qms(port, url, state, log) as qms:
        work_until(rt, lambda: count(rt, QmsDeviation) == 20)
        assert count(rt, Job, Job.kind == "deliver", Job.state == "done") == 20
        numbers = [d["number"] for d in requests.get(qms + "/deviations", timeout=5).json()["deviations"]]
        assert len(numbers) == len(set(numbers)) == 20
        assert all(n.startswith("DEV-") and len(n) == len("DEV-2026-0001") for n in numbers)

        # at least once: the same 20 events delivered again (a worker died after the POST)
        with rt.transaction() as s:
            for seq in s.scalars(select(OutboxEvent.seq).where(OutboxEvent.type.like("%deviation.requested"))):
                s.add(Job(kind="deliver", payload={"seq": seq, "subscriber": 1}, max_attempts=5))
        work_until(rt, lambda: count(rt, Job, Job.kind == "deliver", Job.state == "pending") == 0)
        time.sleep(1.0)  # any (wrong) second callback would arrive now

    # the QMS restarts on its state file: no renumbering, nothing opened twice
    with batchline_server(rt) as url, demo_qms(port, url, state, log) as qms:
        again = [d["number"] for d in requests.get(qms + "/deviations", timeout=5).json()["deviations"]]
        assert sorted(again) == sorted(numbers)

    with rt.transaction() as s:
        linked = s.execute(select(QmsDeviation.exception_id, QmsDeviation.number)).all()
    assert sorted(e for e, _ in linked) == sorted(ids)
    assert sorted(n for _, n in linked) == sorted(numbers)
    assert count(rt, AuditEvent, AuditEvent.action == "qms.deviation.opened") == 20
    assert count(rt, QmsInboundEvent) == 20
    assert count(rt, OutboxEvent, OutboxEvent.type == "org.batchline.qms.deviation.updated") == 20


def test_the_qms_closes_a_deviation_with_a_capa(qrt, tmp_path):
    rt = qrt
    ids = batch_with_exceptions(rt, 1)
    port = free_port()
    add_qms(rt, url=f"http://127.0.0.1:{port}/events")
    request_deviations(rt, ids)
    with (
        batchline_server(rt) as url,
        demo_qms(port, url, tmp_path / "q.sqlite", tmp_path / "q.log", "--auto-close-after", "0.2"),
    ):
        work_until(rt, lambda: count(rt, QmsDeviation, QmsDeviation.status == "closed") == 1)
    with rt.transaction() as s:
        dev = s.scalars(select(QmsDeviation)).one()
        assert dev.capa.startswith("CAPA-")
        assert s.get(BatchException, ids[0]).status == "closed"
    assert count(rt, AuditEvent, AuditEvent.action == "qms.deviation.closed") == 1


def test_a_wrongly_signed_delivery_is_refused_by_the_qms(qrt, tmp_path):
    """The demo QMS checks Batchline's signature: a subscriber with another secret gets 401."""
    rt = qrt
    ids = batch_with_exceptions(rt, 1)
    port = free_port()
    add_qms(rt, url=f"http://127.0.0.1:{port}/events", secret="whsec_" + "C" * 32, name="wrong")
    request_deviations(rt, ids)
    with batchline_server(rt) as url, demo_qms(port, url, tmp_path / "q.sqlite", tmp_path / "q.log"):
        work_until(rt, lambda: count(rt, Job, Job.kind == "deliver", Job.state != "pending") == 1)
        assert requests.get(f"http://127.0.0.1:{port}/deviations", timeout=5).json()["deviations"] == []
    with rt.transaction() as s:
        job = s.scalars(select(Job).where(Job.kind == "deliver")).one()
        assert job.state == "failed" and "401" in job.last_error
