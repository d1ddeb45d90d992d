"""Task-list benchmark: ``GET /api/tasks`` with thousands of running batches. Prints one table.

Figures, not pass/fail (goal: p95 ≤ 100 ms with 2,000 running batches). Batches are
started through the engine (``batches.start_batch``): half of a recipe with three tasks
waiting at once (operator, supervisor, QA roles), half of the sampling loop (operator);
one in twenty is held. Then an operator's first page and, through the ``after`` cursor
of its ``X-Next-After`` header, the second page are requested ROUNDS times each through
the Flask test client (authentication, permission check, query, JSON). For comparison,
the old way — load every running batch's workflow and keep the operator's tasks — is
timed once (``--no-scan`` skips it).

Usage: python bench/tasks.py [--batches 2000] [--rounds 40] [--only sqlite|postgresql] [--no-scan]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from engine import batches, duties, recipes, users  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.models import Batch, ReadyTask  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.users import Person  # noqa: E402

RECIPES = ROOT / "tests" / "recipes"
PG_ADMIN = os.environ.get("BATCHLINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PASSWORD = "bench password 123"

THREE_ROLES = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" targetNamespace="https://batchline.example/bench"
    id="defs_three">
  <bpmn:process id="three_roles" name="Three roles at once" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:parallelGateway id="split"/>
    <bpmn:userTask id="weigh" name="Weigh the buffer salts"/>
    <bpmn:userTask id="check_line" name="Check the line clearance">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="role" value="supervisor"/></spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:userTask id="review_lot" name="Review the lot documents">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="role" value="qa"/></spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:parallelGateway id="join"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="split"/>
    <bpmn:sequenceFlow id="f1" sourceRef="split" targetRef="weigh"/>
    <bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="check_line"/>
    <bpmn:sequenceFlow id="f3" sourceRef="split" targetRef="review_lot"/>
    <bpmn:sequenceFlow id="f4" sourceRef="weigh" targetRef="join"/>
    <bpmn:sequenceFlow id="f5" sourceRef="check_line" targetRef="join"/>
    <bpmn:sequenceFlow id="f6" sourceRef="review_lot" targetRef="join"/>
    <bpmn:sequenceFlow id="f7" sourceRef="join" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000.0


class Database:
    def __init__(self, kind: str):
        self.kind, self.name = kind, None
        if kind == "sqlite":
            self.url = f"sqlite:///{tempfile.mkdtemp(prefix='batchline-bench-tasks-')}/bench.db"
        else:
            self.name = f"batchline_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{self.name}"'))
            admin.dispose()
            self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.name

    def drop(self) -> None:
        if self.name:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()


def populate(rt: Runtime, n: int) -> None:
    recipes.import_recipe(rt, {"three.bpmn": THREE_ROLES}, user="bench", approve=True)
    recipes.import_recipe(rt, {"loop.bpmn": (RECIPES / "loop.bpmn").read_bytes()}, user="bench", approve=True)
    t0 = time.perf_counter()
    for i in range(n):
        if i % 2:
            batches.start_batch(rt, "sampling_loop", f"B-{i:05d}", user="bench", parameters={"done": False})
        else:
            batches.start_batch(rt, "three_roles", f"B-{i:05d}", user="bench")
        if i % 20 == 7:
            batches.change_state(rt, f"B-{i:05d}", "hold", user="bench", reason="bench hold")
        if i % 500 == 499:
            print(f"  {i + 1} batches started ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


def old_scan(rt: Runtime, person: Person) -> int:
    """The previous ``my_tasks``: every running batch's workflow loaded (cache of 256)."""
    with rt.transaction() as s:
        running = list(s.scalars(select(Batch.batch_id).where(Batch.state == "running").order_by(Batch.id)))
    n = 0
    for batch_id in running:
        n += sum(1 for t in batches.ready_tasks(rt, batch_id) if duties.may_complete(person, t["role"]))
    return n


def measure(kind: str, n: int, rounds: int, scan: bool) -> dict:
    db = Database(kind)
    try:
        settings = load_settings(database_url=db.url, webhook_urls=(), argon2_time_cost=1, argon2_memory_kib=1024)
        rt = Runtime(settings, load_connectors=False)
        rt.create_schema()
        print(f"{kind}: starting {n} batches ...", file=sys.stderr)
        t0 = time.perf_counter()
        populate(rt, n)
        started = time.perf_counter() - t0
        users.create_user(rt, "op.bench", "Bench Operator", ["operator"], by="bench", password=PASSWORD)
        token = users.create_token(rt, "op.bench", "bench", by="bench")
        from web.app import create_app

        client = create_app(runtime=rt).test_client()
        headers = {"Authorization": f"Bearer {token}"}
        first, second = [], []
        cursor = None
        for i in range(rounds + 3):
            t0 = time.perf_counter()
            r = client.get("/api/tasks", headers=headers)
            t1 = time.perf_counter()
            assert r.status_code == 200 and len(r.get_json()) == batches.PAGE_DEFAULT, r.status_code
            cursor = r.headers["X-Next-After"]
            t2 = time.perf_counter()
            r2 = client.get(f"/api/tasks?after={cursor}", headers=headers)
            t3 = time.perf_counter()
            assert r2.status_code == 200 and r2.get_json(), r2.status_code
            if i >= 3:  # warm-up: first requests compile templates and fill caches
                first.append(t1 - t0)
                second.append(t3 - t2)
        with rt.transaction() as s:
            rows = s.scalar(select(func.count()).select_from(ReadyTask))
        scan_s = None
        if scan:
            t0 = time.perf_counter()
            old_scan(rt, Person("op.bench", "Bench Operator", ("operator",)))
            scan_s = time.perf_counter() - t0
        rt.close()
        return {
            "kind": kind,
            "rows": rows,
            "started": started,
            "first": (pct(first, 0.5), pct(first, 0.95)),
            "second": (pct(second, 0.5), pct(second, 0.95)),
            "scan": scan_s,
        }
    finally:
        db.drop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--no-scan", action="store_true")
    args = ap.parse_args()
    kinds = [args.only] if args.only else ["postgresql", "sqlite"]
    out = [measure(kind, args.batches, args.rounds, not args.no_scan) for kind in kinds]
    print()
    print(
        f"GET /api/tasks as an operator, {args.batches} running batches (1 in 20 held), "
        f"{args.rounds} requests per page, page = {batches.PAGE_DEFAULT} tasks (ms)"
    )
    header = ["database", "ready rows", "page 1 p50", "page 1 p95", "page 2 p50", "page 2 p95", "old scan (1 call)"]
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in out:
        scan = f"{r['scan'] * 1000:.0f}" if r["scan"] is not None else "-"
        print(
            " | ".join(
                [
                    r["kind"],
                    str(r["rows"]),
                    f"{r['first'][0]:.1f}",
                    f"{r['first'][1]:.1f}",
                    f"{r['second'][0]:.1f}",
                    f"{r['second'][1]:.1f}",
                    scan,
                ]
            )
        )
    took = ", ".join(f"{r['kind']} {r['started']:.0f} s" for r in out)
    print(f"goal: p95 ≤ 100 ms; starting the batches took {took}")


if __name__ == "__main__":
    main()
