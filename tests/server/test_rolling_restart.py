"""Rolling restart under load: two app nodes (``batchline serve --workers 1`` on two
ports) and a job worker on PostgreSQL; operators complete steps continuously while node
1 is stopped (SIGTERM), waited for, started again and waited ready, then node 2.

The client balances as a load balancer with health checks does: each request goes to
the next node, and a refused connection (the node is down: nothing was sent) goes to
the other node. A 503 with Retry-After is the server telling the client to retry (the
same Idempotency-Key); it is counted apart. Anything else — a 5xx, a connection broken
after it was accepted, a timeout — is a failure, and there must be none. At the end
every acknowledged step is in the record exactly once and the audit chain verifies.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from engine import audit, batches, users
from engine.models import Batch, Step
from tests.support import PASSWORD, approved_recipe, audit_dir_of, make_runtime, read_recipe

from . import processes

pytestmark = pytest.mark.slow
OPERATORS = 4


class Balancer:
    """Round-robin over the nodes; failover on connection refused only."""

    def __init__(self, urls: list[str]):
        self.urls = urls
        self.next = 0
        self.lock = threading.Lock()
        self.failovers = 0
        self.told_to_retry = 0
        self.failures: list[str] = []
        self.served: Counter = Counter()
        # a new connection per request: a node that stops is seen as refused, never as a
        # kept-alive connection that dies under the request
        self.http = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))

    def pick(self) -> list[str]:
        with self.lock:
            self.next = (self.next + 1) % len(self.urls)
            return self.urls[self.next :] + self.urls[: self.next]

    def send(self, method: str, path: str, **kw) -> httpx.Response | None:
        for _round in range(100):
            for url in self.pick():
                try:
                    r = self.http.request(method, url + path, **kw)
                except httpx.ConnectError:
                    with self.lock:
                        self.failovers += 1
                    continue
                except httpx.TransportError as exc:
                    self.failures.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                    return None
                if r.status_code == 503 and "Retry-After" in r.headers:
                    with self.lock:
                        self.told_to_retry += 1
                    time.sleep(min(float(r.headers["Retry-After"]), 0.5))
                    break
                if r.status_code >= 500:
                    self.failures.append(f"{method} {path}: HTTP {r.status_code} {r.text[:200]}")
                    return None
                with self.lock:
                    self.served[url] += 1
                return r
            else:
                time.sleep(0.1)  # every node refused: both down for a moment
        self.failures.append(f"{method} {path}: no node answered")
        return None


def operator(lb: Balancer, token: str, batch_id: str, stop: threading.Event, acknowledged: list) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    task = None
    n = 0
    while not stop.is_set():
        if task is None:
            r = lb.send("GET", f"/api/batches/{batch_id}/tasks", headers=auth)
            if r is None:
                return
            task = r.json()[0]["id"]
        n += 1
        r = lb.send(
            "POST",
            f"/api/batches/{batch_id}/tasks/{task}/complete",
            json={"data": {"reading": n, "done": False}},
            headers={**auth, "Idempotency-Key": f"{batch_id}-{n}-{uuid.uuid4().hex[:6]}"},
        )
        if r is None:
            return
        if r.status_code != 200:
            lb.failures.append(f"step {batch_id}/{n}: HTTP {r.status_code} {r.text[:200]}")
            return
        acknowledged.append((batch_id, task))
        task = r.json()["next_tasks"][0]["id"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_rolling_restart_loses_no_request(db_url, tmp_path):
    rt = make_runtime(db_url)
    try:
        approved_recipe(rt, read_recipe("loop.bpmn"))
        tokens = []
        for i in range(OPERATORS):
            users.create_user(rt, f"op{i}", f"Op {i}", ["operator"], by="test", password=PASSWORD)
            tokens.append(users.create_token(rt, f"op{i}", "test", by="test"))
            batches.start_batch(rt, "sampling_loop", f"R-{i}", user="test", parameters={"done": False})
    finally:
        rt.close()
    env = processes.environment(
        db_url, tmp_path, session_cookie_secure="false", audit_key_file=audit_dir_of(db_url) / "audit.key",
        worker_heartbeat_seconds=1,
    )  # fmt: skip
    nodes = [processes.server(f"node{i}", env, tmp_path, workers=1, threads=4, graceful=20) for i in (1, 2)]
    worker = processes.worker("worker", env, tmp_path)
    stop = threading.Event()
    acknowledged: list[tuple[str, str]] = []
    clients: list[threading.Thread] = []
    try:
        for p in (*nodes, worker):
            p.start()
        for node in nodes:
            node.wait_answering("/api/ready")
        lb = Balancer([n.url for n in nodes])
        clients = [
            threading.Thread(target=operator, args=(lb, tokens[i], f"R-{i}", stop, acknowledged))
            for i in range(OPERATORS)
        ]
        for c in clients:
            c.start()
        time.sleep(2)
        restarted = []
        for node in nodes:
            before = len(acknowledged)
            old_pid = node.popen.pid
            node.terminate()
            assert node.wait(30) == 0, node.log.read_text()[-2000:]
            assert len(acknowledged) > before or lb.failures  # the other node kept serving
            node.start()
            node.wait_answering("/api/ready")
            restarted.append(node.popen.pid != old_pid)
            served = lb.served[node.url]
            time.sleep(2)
            assert lb.served[node.url] > served  # the restarted node serves again
        stop.set()
        for c in clients:
            c.join(30)
    finally:
        stop.set()
        for p in (*nodes, worker):
            p.stop()
    assert lb.failures == []
    assert restarted == [True, True]
    assert lb.failovers > 0  # the client did see the nodes go down
    assert len(acknowledged) > 20 and len(set(acknowledged)) == len(acknowledged)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = Counter(
                {
                    (b, t): n
                    for b, t, n in conn.execute(
                        select(Batch.batch_id, Step.task_id, func.count())
                        .join(Batch, Batch.id == Step.batch_id)
                        .where(Step.kind == "user_task")
                        .group_by(Batch.batch_id, Step.task_id)
                    )
                }
            )
    finally:
        engine.dispose()
    assert all(stored[a] == 1 for a in acknowledged)
    rt = make_runtime(db_url)
    try:
        with rt.transaction() as s:
            assert audit.verify(s, settings=rt.settings).ok
    finally:
        rt.close()
