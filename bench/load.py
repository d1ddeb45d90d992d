"""Load benchmark: operators completing steps through the HTTP API of real server
processes, on SQLite (one node) and PostgreSQL (two nodes, two job workers).

What runs, all on this machine and on 127.0.0.1 only:

* (a) SQLite: one ``batchline serve --workers 2`` (gunicorn, gthread) and one
  ``batchline worker``;
* (b) PostgreSQL, a fresh database created for the run and dropped after it: two
  ``batchline serve --workers 1`` on two ports (the client spreads the operators over
  them, as a load balancer would) and two ``batchline worker`` processes.

Each operator has an API token of their own and a batch of their own (the sampling-loop
recipe of tests/recipes/loop.bpmn: one step after the other, for ever). The client is
one bounded asyncio loop (httpx), one connection per operator.

* closed loop: 1, 8 and 32 operators, each completing the next step as soon as the last
  one is answered, for ``--closed-seconds`` (after a short warm-up that is not counted);
  steps/s, p50, p95.
* open loop: 100 operators each completing a step every 2 s (50 steps/s offered) for
  ``--open-seconds``; latency counted from when the step was due to be sent (a step that
  waits for its operator's previous one waits in the figure too); p50, p95, errors.

An answer the API marks as retryable (409 ``concurrent_change``, 503 ``database_busy``
with Retry-After) is retried with the same Idempotency-Key and counted as ``retried``;
anything else not 200 is an error. At the end every acknowledged step must be in the
database exactly once, and ``batchline audit verify`` must pass.

Usage: python bench/load.py [--db sqlite|postgresql|both] [--closed-seconds 15] [--open-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from engine import batches, users  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.models import Batch, Step  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from tests.server import processes  # noqa: E402
from tests.support import PG_ADMIN_URL, approved_recipe, read_recipe  # noqa: E402

RETRIED = {"database_busy", "concurrent_change", "busy"}
OPEN_OPERATORS = 100
OPEN_PERIOD = 2.0
GOAL_OPEN_P95_MS = 150


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")


@dataclass
class Operator:
    token: str
    batch_id: str
    base: str
    task: str | None = None
    n: int = 0


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retried: int = 0
    resent: list[str] = field(default_factory=list)  # after a broken connection, same Idempotency-Key

    @property
    def steps_per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def row(self, goal: str = "") -> str:
        lat = self.latencies
        p50 = statistics.median(lat) * 1000 if lat else 0
        return (
            f"| {self.name} | {len(lat)} | {self.steps_per_second:.1f} | {p50:.0f} "
            f"| {percentile(lat, 95) * 1000:.0f} | {len(self.errors)} | {self.retried} / {len(self.resent)} | {goal} |"
        )


class Client:
    """Completes one operator's next step; records what was acknowledged."""

    def __init__(self, http: dict[str, httpx.AsyncClient]):
        self.http = http
        self.acknowledged: list[tuple[str, str]] = []  # (batch id, task id)

    async def next_task(self, op: Operator) -> None:
        for attempt in range(3):  # a read: safe to send again
            try:
                r = await self.http[op.base].get(f"/api/batches/{op.batch_id}/tasks", headers=self.auth(op))
                break
            except httpx.TransportError:
                if attempt == 2:
                    raise
        r.raise_for_status()
        op.task = r.json()[0]["id"]

    @staticmethod
    def auth(op: Operator) -> dict[str, str]:
        return {"Authorization": f"Bearer {op.token}"}

    async def step(self, op: Operator, result: Result | None) -> None:
        if op.task is None:
            await self.next_task(op)
        op.n += 1
        key = f"{op.batch_id}-{op.n}-{uuid.uuid4().hex[:8]}"
        headers = {**self.auth(op), "Idempotency-Key": key}
        body = {"data": {"reading": op.n, "done": False}}
        resends = 0
        for _attempt in range(50):
            try:
                r = await self.http[op.base].post(
                    f"/api/batches/{op.batch_id}/tasks/{op.task}/complete", json=body, headers=headers
                )
            except httpx.TransportError as exc:
                # the connection broke (e.g. a kept-alive one the server closed as we sent):
                # sent again with the same Idempotency-Key, as a client should; counted apart
                resends += 1
                if result is not None:
                    result.resent.append(type(exc).__name__)
                if resends > 3:
                    if result is not None:
                        result.errors.append(f"{type(exc).__name__}: {exc}")
                    op.task = None
                    return
                continue
            if r.status_code in (409, 503) and r.json().get("code") in RETRIED:
                if result is not None:
                    result.retried += 1
                await asyncio.sleep(
                    float(r.headers.get("Retry-After", "0.05") or 0.05) if r.status_code == 503 else 0.02
                )
                continue
            break
        if r.status_code != 200:
            if result is not None:
                result.errors.append(f"HTTP {r.status_code} {r.text[:200]}")
            op.task = None
            return
        self.acknowledged.append((op.batch_id, op.task))
        nxt = r.json()["next_tasks"]
        op.task = nxt[0]["id"] if nxt else None


async def closed_loop(client: Client, ops: list[Operator], seconds: float, name: str) -> Result:
    result = Result(name, seconds)
    warm_until = time.monotonic() + 2.0
    while time.monotonic() < warm_until:  # caches, connections, the first step of a batch
        await asyncio.gather(*(client.step(op, None) for op in ops))
    end = time.monotonic() + seconds
    start = time.monotonic()

    async def run(op: Operator) -> None:
        while time.monotonic() < end:
            t0 = time.perf_counter()
            before = len(result.errors)
            await client.step(op, result)
            if len(result.errors) == before:
                result.latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(run(op) for op in ops))
    result.seconds = time.monotonic() - start
    return result


async def open_loop(client: Client, ops: list[Operator], seconds: float, name: str) -> Result:
    result = Result(name, seconds)
    start = time.monotonic()
    end = start + seconds

    async def run(op: Operator) -> None:
        due = start + random.uniform(0, OPEN_PERIOD)
        while due < end:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            before = len(result.errors)
            await client.step(op, result)
            if len(result.errors) == before:
                result.latencies.append(time.monotonic() - due)  # from when it was due
            due += OPEN_PERIOD

    await asyncio.gather(*(run(op) for op in ops))
    result.seconds = time.monotonic() - start  # the steps due in the window, however long they took
    return result


async def drive(bases: list[str], ops: list[Operator], closed_seconds: float, open_seconds: float) -> tuple:
    limits = httpx.Limits(max_connections=OPEN_OPERATORS + 10, max_keepalive_connections=OPEN_OPERATORS + 10)
    http = {b: httpx.AsyncClient(base_url=b, timeout=30, limits=limits) for b in bases}
    client = Client(http)
    results = []
    try:
        for n in (1, 8, 32):
            results.append(await closed_loop(client, ops[:n], closed_seconds, f"closed loop, {n} operator(s)"))
        results.append(
            await open_loop(client, ops[:OPEN_OPERATORS], open_seconds, "open loop, 100 operators x 1 step/2 s")
        )
    finally:
        for c in http.values():
            await c.aclose()
    return results, client.acknowledged


def prepare(env: dict[str, str], n: int, bases: list[str]) -> list[Operator]:
    """Schema, ``n`` operators with a token and a running batch each, the loop recipe."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("BATCHLINE_")})  # as the servers read them
    settings = load_settings()
    rt = Runtime(settings, load_connectors=False)
    try:
        rt.create_schema()
        for qa in ("qa.lead", "qa.approver"):
            users.create_user(rt, qa, qa, ["qa"], by="bench", password="bench password 123")
        approved_recipe(rt, read_recipe("loop.bpmn"))
        ops = []
        for i in range(n):
            name = f"op{i:03d}"
            users.create_user(rt, name, f"Operator {i}", ["operator"], by="bench", password="bench password 123")
            token = users.create_token(rt, name, "load", by="bench")
            batches.start_batch(rt, "sampling_loop", f"L-{i:03d}", user="bench", parameters={"done": False})
            ops.append(Operator(token, f"L-{i:03d}", bases[i % len(bases)]))
        return ops
    finally:
        rt.close()


def check_record(db_url: str, acknowledged: list[tuple[str, str]]) -> str:
    """Every acknowledged step is in the record exactly once."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Batch.batch_id, Step.task_id, func.count())
                .join(Batch, Batch.id == Step.batch_id)
                .where(Step.kind == "user_task")
                .group_by(Batch.batch_id, Step.task_id)
            ).all()
    finally:
        engine.dispose()
    stored = {(b, t): c for b, t, c in rows}
    missing = [a for a in acknowledged if a not in stored]
    twice = [a for a in acknowledged if stored.get(a, 0) > 1]
    dupes = len(acknowledged) - len(set(acknowledged))
    if missing or twice or dupes:
        return f"FAILED: {len(missing)} missing, {len(twice)} stored twice, {dupes} acknowledged twice"
    return f"all {len(acknowledged)} acknowledged steps present once"


def audit_verify(env: dict[str, str], workdir: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "web.cli", "audit", "verify"], cwd=workdir, env=env, capture_output=True, text=True
    )
    first = (out.stdout or out.stderr).strip().splitlines()[:1]
    return ("ok" if out.returncode == 0 else "FAILED") + (f" ({first[0]})" if first else "")


def run_setup(kind: str, args, workdir: Path) -> dict:
    if kind == "sqlite":
        db_url = f"sqlite:///{workdir}/load.db"
        nodes, node_workers, job_workers = 1, args.sqlite_workers, 1
    else:
        name = f"batchline_load_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        db_url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
        nodes, node_workers, job_workers = 2, 1, 2
    env = processes.environment(db_url, workdir, session_cookie_secure="false")
    procs: list[processes.Proc] = []
    try:
        ports = [processes.free_port() for _ in range(nodes)]
        ops = prepare(env, OPEN_OPERATORS, [f"http://127.0.0.1:{p}" for p in ports])
        for i, port in enumerate(ports):
            procs.append(
                processes.server(
                    f"{kind}-node{i + 1}", env, workdir, workers=node_workers, threads=args.threads, port=port
                )
            )
        procs += [processes.worker(f"{kind}-worker{i + 1}", env, workdir) for i in range(job_workers)]
        for p in procs:
            p.start()
        for p in procs:
            if p.port:
                p.wait_answering("/api/ready")
        print(f"{kind}: {nodes} node(s) x {node_workers} gunicorn worker(s) x {args.threads} threads, "
              f"{job_workers} job worker(s); driving ...", file=sys.stderr)  # fmt: skip
        results, acknowledged = asyncio.run(
            drive([p.url for p in procs if p.port], ops, args.closed_seconds, args.open_seconds)
        )
    finally:
        for p in procs:
            p.stop()
    record = check_record(db_url, acknowledged)
    audit = audit_verify(env, workdir)
    if kind == "postgresql" and not args.keep:
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()
    shape = f"{nodes} node(s) x {node_workers} worker process(es) x {args.threads} threads, {job_workers} job worker(s)"
    return {"kind": kind, "results": results, "record": record, "audit": audit, "shape": shape}


def report(runs: list[dict]) -> None:
    cores = os.cpu_count() or 1
    print()
    print(f"Batchline load benchmark — {cores} cores, loop recipe, one batch and token per operator")
    for run in runs:
        res = run["results"]
        closed = {r.name: r for r in res}
        one, many = closed["closed loop, 1 operator(s)"], closed["closed loop, 32 operator(s)"]
        ratio = many.steps_per_second / one.steps_per_second if one.steps_per_second else 0
        openr = res[-1]
        print()
        print(f"**{run['kind']}** ({run['shape']})")
        print()
        print("| load | steps | steps/s | p50 (ms) | p95 (ms) | errors | retried (busy / connection) | goal |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in res[:-1]:
            goal = ""
            if r is many:
                verdict = "met" if ratio >= 0.8 * cores else "NOT met"
                goal = f"32 ÷ 1 = {ratio:.2f} (goal ≥ {0.8 * cores:.1f}: {verdict})"
            print(r.row(goal))
        goal = f"0 errors: {'met' if not openr.errors else 'NOT met'}"
        if run["kind"] == "postgresql":
            p95 = percentile(openr.latencies, 95) * 1000
            goal += f"; p95 ≤ {GOAL_OPEN_P95_MS} ms: {'met' if p95 <= GOAL_OPEN_P95_MS else 'NOT met'}"
        print(openr.row(goal))
        print()
        errors = [e for r in res for e in r.errors]
        print(f"record: {run['record']}; audit verify: {run['audit']}; errors in all phases: {len(errors)}")
        for e in sorted(set(errors))[:5]:
            print(f"  error: {e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--closed-seconds", type=float, default=15)
    ap.add_argument("--open-seconds", type=float, default=30)
    ap.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker process")
    ap.add_argument("--sqlite-workers", type=int, default=2, help="gunicorn worker processes of the SQLite node")
    ap.add_argument("--pg-url", default=PG_ADMIN_URL, help="PostgreSQL admin URL (a database is created and dropped)")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL database and the work directory")
    args = ap.parse_args()
    runs = []
    for kind in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        workdir = Path(tempfile.mkdtemp(prefix=f"batchline-load-{kind}-"))
        runs.append(run_setup(kind, args, workdir))
        print(f"{kind}: logs in {workdir}", file=sys.stderr)
    report(runs)


if __name__ == "__main__":
    main()
