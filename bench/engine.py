"""Engine benchmark: the cost of a durable step over a long batch, against the naive
whole-workflow blob, and durable vs in-memory throughput. Prints one table.

Figures, not pass/fail. Everything is measured in one run so ratios compare like with
like on a shared, noisy machine:

* A standard-loop recipe accumulates STEPS completed operator steps through Batchline's
  real step path (``engine.batches.complete_task``: lock, validate, advance, step record,
  audit, outbox, changed task rows, commit). p50 of the steps around 30, 300, 1,000 and
  STEPS, and the ratio last ÷ 30 (goal ≤ 2.0).
* The same recipe persisted the naive way: SpiffWorkflow's own engine, whole-workflow
  ``serialize_json`` written as one blob per step (same database, same fsync). The
  workflow is advanced in memory to each checkpoint once, then WINDOW durable steps are
  timed there. Ratio naive ÷ Batchline at STEPS (goal ≥ 10).
* A 10-step recipe: durable batches/s ÷ the same recipe run in memory by SpiffWorkflow
  with no persistence (goal ≥ 0.25).
* The commit floor: p50 of the smallest durable transaction (a one-row INSERT + COMMIT)
  on the same database file/server with the same settings, measured in the same run, and
  the ratio durable step p50 (steps 11..STEPS of the long batch) ÷ commit floor (goal ≤ 4),
  with the SQL statements one step sends (counted with a ``before_cursor_execute``
  listener, BEGIN/COMMIT not included).

Usage: python bench/engine.py [--steps 3000] [--batches 30] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402

from engine import batches, recipes  # noqa: E402
from engine.bpmn import make_serializer, parse_recipe  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.scripting import make_script_engine  # noqa: E402
from engine.users import Person  # noqa: E402

RECIPES = ROOT / "tests" / "recipes"
PG_ADMIN = os.environ.get("BATCHLINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
WINDOW = 20

#: the engine trusts its caller's authentication and checks what the role allows (engine.duties)
BENCH_OPERATOR = Person("bench", "Bench Operator", ("operator",))


def checkpoints(steps: int) -> list[int]:
    return [p for p in (30, 300, 1000) if p < steps] + [steps]


def p50(values):
    return statistics.median(values) * 1000.0


# --- databases -----------------------------------------------------------------------


class Database:
    def __init__(self, kind: str):
        self.kind = kind
        self.name = None
        if kind == "sqlite":
            self.dir = tempfile.mkdtemp(prefix="batchline-bench-")
            self.url = f"sqlite:///{self.dir}/bench.db"
        else:
            self.name = f"batchline_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{self.name}"'))
            admin.dispose()
            self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + self.name

    def runtime(self) -> Runtime:
        rt = Runtime(load_settings(database_url=self.url, webhook_urls=()), load_connectors=False)
        rt.create_schema()
        return rt

    def drop(self):
        if self.name:
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()


# --- Batchline: a long batch ---------------------------------------------------------


class StatementCounter:
    """Counts the statements the runtime's engine sends (``before_cursor_execute``)."""

    def __init__(self, rt: Runtime):
        self.n = 0
        event.listen(rt.db, "before_cursor_execute", self._count)

    def _count(self, *_args) -> None:
        self.n += 1


def batchline_long(rt: Runtime, steps: int, counter: StatementCounter | None = None) -> dict[int, float]:
    recipes.import_recipe(rt, {"loop.bpmn": (RECIPES / "loop.bpmn").read_bytes()}, user="bench", approve=True)
    batches.start_batch(rt, "sampling_loop", "LONG-1", user="bench", parameters={"done": False})
    task_id = batches.ready_tasks(rt, "LONG-1")[0]["id"]
    times, statements = [], []
    for i in range(1, steps + 1):
        before = counter.n if counter else 0
        t0 = time.perf_counter()
        out = batches.complete_task(
            rt, "LONG-1", task_id, {"reading": i, "done": i == steps}, user="bench", actor=BENCH_OPERATOR
        )
        times.append(time.perf_counter() - t0)
        statements.append((counter.n if counter else 0) - before)
        if out.body["next_tasks"]:
            task_id = out.body["next_tasks"][0]["id"]
    assert out.body["batch"]["state"] == "complete", out.body
    result = {}
    for cp in checkpoints(steps):
        lo = max(0, cp - WINDOW)
        result[cp] = p50(times[lo:cp])
    result[0] = statistics.median(statements[10:30])  # statements per step (not ms)
    result[-1] = p50(times[10:])  # every step after the first ten (warm-up): the step p50
    return result


# --- naive: the whole workflow as one blob per step -----------------------------------


def naive_snapshots(steps: int) -> dict[int, str]:
    """Advance the loop recipe in memory with Spiff's own engine; keep the serialized
    workflow just before each checkpoint's timing window."""
    parsed = parse_recipe({"loop.bpmn": (RECIPES / "loop.bpmn").read_bytes()})
    serializer = make_serializer()
    wf = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=make_script_engine())
    wf.task_tree.data["done"] = False
    wf.do_engine_steps()
    wanted = {max(0, cp - WINDOW): cp for cp in checkpoints(steps)}
    snaps = {}
    for i in range(0, steps):
        if i in wanted:
            snaps[wanted[i]] = serializer.serialize_json(wf)
        task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
        task.data.update({"reading": i + 1, "done": False})
        task.run()
        wf.do_engine_steps()
    return snaps


def naive_durable(url: str, snaps: dict[int, str]) -> dict[int, float]:
    serializer = make_serializer()
    eng = create_engine(url)
    if url.startswith("sqlite"):
        from engine.db import make_engine

        eng = make_engine(load_settings(database_url=url))
    with eng.begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS naive_workflow (id INTEGER PRIMARY KEY, body TEXT)"))
        c.execute(text("DELETE FROM naive_workflow"))
        c.execute(text("INSERT INTO naive_workflow (id, body) VALUES (1, '')"))
    result = {}
    for cp, snap in snaps.items():
        wf = serializer.deserialize_json(snap)
        wf.script_engine = make_script_engine()
        times = []
        for i in range(WINDOW):
            t0 = time.perf_counter()
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.data.update({"reading": i, "done": False})
            task.run()
            wf.do_engine_steps()
            body = serializer.serialize_json(wf)
            with eng.begin() as c:
                c.execute(text("UPDATE naive_workflow SET body = :b WHERE id = 1"), {"b": body})
            times.append(time.perf_counter() - t0)
        result[cp] = p50(times)
    eng.dispose()
    return result


# --- the floor: one durable commit --------------------------------------------------


def commit_floor(url: str, n: int = 100) -> float:
    """p50 of the smallest durable transaction (one INSERT + COMMIT) on the same
    database: every durable step pays at least this."""
    from engine.db import make_engine

    eng = make_engine(load_settings(database_url=url))
    with eng.begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS commit_probe (id INTEGER PRIMARY KEY, v INTEGER)"))
        c.execute(text("DELETE FROM commit_probe"))
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        with eng.begin() as c:
            c.execute(text("INSERT INTO commit_probe (id, v) VALUES (:i, :i)"), {"i": i})
        times.append(time.perf_counter() - t0)
    eng.dispose()
    return p50(times)


# --- a 10-step recipe: durable vs in memory ------------------------------------------


def ten_step_durable(rt: Runtime, n: int) -> float:
    recipes.import_recipe(rt, {"ten_steps.bpmn": (RECIPES / "ten_steps.bpmn").read_bytes()}, user="bench", approve=True)
    t0 = time.perf_counter()
    for b in range(n):
        bid = f"TEN-{b}"
        batches.start_batch(rt, "ten_steps", bid, user="bench")
        task_id = batches.ready_tasks(rt, bid)[0]["id"]
        for step in range(10):
            out = batches.complete_task(rt, bid, task_id, {"value": step}, user="bench", actor=BENCH_OPERATOR)
            if out.body["next_tasks"]:
                task_id = out.body["next_tasks"][0]["id"]
        assert out.body["batch"]["state"] == "complete"
    return n / (time.perf_counter() - t0)


def ten_step_memory(n: int) -> float:
    parsed = parse_recipe({"ten_steps.bpmn": (RECIPES / "ten_steps.bpmn").read_bytes()})
    t0 = time.perf_counter()
    for _ in range(n):
        wf = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=make_script_engine())
        wf.do_engine_steps()
        for step in range(10):
            task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
            task.data.update({"value": step})
            task.run()
            wf.do_engine_steps()
        assert wf.is_completed()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    args = ap.parse_args()
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]

    print(f"advancing the naive workflow in memory to {args.steps} steps ...", file=sys.stderr)
    t0 = time.perf_counter()
    snaps = naive_snapshots(args.steps)
    print(f"  done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    mem_rate = ten_step_memory(args.batches * 3)

    rows = []
    for kind in kinds:
        db = Database(kind)
        try:
            print(f"{kind}: {args.steps} durable steps ...", file=sys.stderr)
            rt = db.runtime()
            floor = commit_floor(db.url)  # (measured again after, the lower p50 counts: a noisy machine)
            long_ = batchline_long(rt, args.steps, StatementCounter(rt))
            naive = naive_durable(db.url, snaps)
            rate = ten_step_durable(rt, args.batches)
            rt.close()
            floor = min(floor, commit_floor(db.url))
            rows.append((kind, long_, naive, rate, floor))
        finally:
            db.drop()

    cps = checkpoints(args.steps)
    last = cps[-1]
    print()
    print(f"Batchline engine benchmark — p50 of {WINDOW} durable steps (ms) near each step count")
    header = (
        ["database"]
        + [f"step {c}" for c in cps]
        + [
            f"ratio {last}/30",
            f"naive@{last}",
            f"naive/batchline@{last}",
            "10-step batches/s",
            "in-memory/s",
            "durable/in-memory",
            "commit floor ms",
            "step p50 ms",
            "step / floor",
            "statements/step",
            "ceiling durable/in-memory",
        ]
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for kind, long_, naive, rate, floor in rows:
        cells = [kind] + [f"{long_[c]:.2f}" for c in cps]
        # 11 durable transactions per 10-step batch (start + 10 steps) cannot beat 11 commits
        ceiling = (1.0 / (11 * floor / 1000.0)) / mem_rate
        cells += [
            f"{long_[last] / long_[cps[0]]:.2f}",
            f"{naive[last]:.2f}",
            f"{naive[last] / long_[last]:.1f}",
            f"{rate:.2f}",
            f"{mem_rate:.2f}",
            f"{rate / mem_rate:.3f}",
            f"{floor:.2f}",
            f"{long_[-1]:.2f}",
            f"{long_[-1] / floor:.1f}",
            f"{long_[0]:.0f}",
            f"{ceiling:.3f}",
        ]
        print(" | ".join(cells))
    print()
    print(
        "naive (whole-workflow blob) p50 ms: "
        + "; ".join(f"{kind}: " + ", ".join(f"step {c}={naive[c]:.1f}" for c in cps) for kind, _, naive, _, _ in rows)
    )
    print("goals: ratio ≤ 2.0; naive/batchline ≥ 10; durable/in-memory ≥ 0.25; step p50 / commit floor ≤ 4")
    print("ceiling = the durable/in-memory ratio if a step cost nothing but its commit (fsync)")


if __name__ == "__main__":
    main()
