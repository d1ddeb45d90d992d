"""Review-by-exception benchmark: how much of a nominal batch record still needs a person.

Sets up what ``batchline demo`` does (the demo people, lots and equipment, the workflow
library approved, the 30 demo history batches and the out-of-trend models trained on
them), imports the default exception rules (``workflows/qa/exception_rules.json``) by one
QA person and approves them by another, then completes the demo mAb recipe nominally
N times through the engine (``analytics.nominal``: values drawn like the demo history,
every step signed, limits checked, out-of-trend scoring run). It prints, per batch and
overall, the reviewer items (exceptions a person must decide: not closed by rule) ÷ the
record entries (steps). The goal is ≤ 5 %.

Step durations: a step's duration is the time at the task (first opened -> completed,
``analytics.batch_record``), and the bench completes a batch in seconds where the plant's
operators spend minutes to tens of minutes at a task. So the bench runs on a simulated plant
clock (``PlantClock``: ``engine.models.utcnow`` reads it): each task is opened
(``analytics.nominal.run_batch``), then the clock moves on by that step's time at the task
drawn like the demo history, then the task is completed. ``--wall-clock`` runs without it,
to show what that changes.

Usage: python bench/review.py [--batches 20] [--seed 11]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from contextlib import nullcontext
from datetime import UTC, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics import nominal  # noqa: E402
from engine import batches  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.vocabulary import Decision  # noqa: E402

RECIPE = "mab_upstream"
GOAL = 0.05


class PlantClock:
    """A simulated plant clock for the bench: ``engine.models.utcnow`` (record times, job
    due times) reads it. It runs with the real clock plus an offset that grows by each
    step's drawn duration, so it never stands still (timers still come due)."""

    def __init__(self) -> None:
        import engine.models as models

        self.models = models
        self.real = models.datetime
        self.offset = timedelta(0)
        clock = self

        class Simulated(self.real):  # type: ignore[misc, valid-type]
            @classmethod
            def now(cls, tz=None):
                at = clock.real.now(UTC) + clock.offset
                return at if tz is not None else at.replace(tzinfo=None)

        self.simulated = Simulated

    def __enter__(self) -> PlantClock:
        self.models.datetime = self.simulated
        return self

    def __exit__(self, *exc) -> None:
        self.models.datetime = self.real

    def advance(self, minutes: float) -> None:
        self.offset += timedelta(minutes=minutes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--wall-clock", action="store_true", help="stamp steps with the real clock (seconds apart)")
    args = parser.parse_args()

    from web import demo, demo_review

    folder = tempfile.mkdtemp(prefix="batchline-review-bench-")
    # batch after batch on the demo's one set of equipment, with no cleaning between
    # them: equipment status by use (engine.master_data.equipment_use) is off here
    settings = load_settings(
        database_url=f"sqlite:///{folder}/bench.db", webhook_urls=(), equipment_status_by_use=False
    )
    rt = Runtime(settings, load_connectors=False)
    rt.create_schema()
    t0 = time.monotonic()
    demo.setup(rt)  # people, lots, equipment, library, history + trained trend models
    version = demo_review.approve_default_rules(rt, demo.PEOPLE)
    setup_s = time.monotonic() - t0
    crew, systems = demo_review.crew(demo.PEOPLE, demo.lot_for, demo.equipment_for), nominal.Systems()
    systems.connect(rt)
    drawn = nominal.history_values(rt, RECIPE, args.batches, args.seed)
    minutes = nominal.history_minutes(rt, RECIPE, args.batches, args.seed)
    clock = None if args.wall_clock else PlantClock()

    print(f"rule set v{version} in force; demo set up in {setup_s:.0f} s")
    print(f"{'batch':<14}{'entries':>8}{'raised':>8}{'by rule':>8}{'review':>8}{'ratio':>8}   reviewer items")
    total_entries = total_items = total_raised = 0
    categories: Counter[str] = Counter()
    t1 = time.monotonic()
    for i in range(args.batches):
        batch_id = f"MAB-BENCH-{i + 1:03d}"
        took = minutes[i]

        def before_task(bpmn_id: str, took=took) -> None:
            if clock is not None:
                clock.advance(took.get(bpmn_id, 30.0))

        with clock if clock is not None else nullcontext():
            nominal.run_batch(
                rt,
                RECIPE,
                batch_id,
                crew,
                systems,
                drawn=drawn[i],
                parameters={"batch_id": batch_id, "hold_time": "PT1S"},
                before_task=before_task,
            )
        entries = len(batches.steps(rt, batch_id))
        raised = batches.exceptions(rt, batch_id)
        auto = [e for e in raised if any(d["decision"] == Decision.AUTO_CLOSE for d in e["dispositions"])]
        items = [e for e in raised if e not in auto]
        categories.update(f"{e['category']}:{e['parameter'] or ''}" for e in items)
        total_entries += entries
        total_items += len(items)
        total_raised += len(raised)
        shown = Counter(f"{e['category']}({e['parameter'] or '-'})" for e in items)
        what = ", ".join(f"{k} x{n}" if n > 1 else k for k, n in shown.most_common()) or "-"
        print(
            f"{batch_id:<14}{entries:>8}{len(raised):>8}{len(auto):>8}{len(items):>8}"
            f"{len(items) / entries:>8.1%}   {what}"
        )
    run_s = time.monotonic() - t1
    durations = sum(n for k, n in categories.items() if k.startswith("oot.duration"))
    ratio = total_items / total_entries if total_entries else 0.0
    print(
        f"{'overall':<14}{total_entries:>8}{total_raised:>8}{total_raised - total_items:>8}{total_items:>8}"
        f"{ratio:>8.1%}   goal <= {GOAL:.0%}: {'met' if ratio <= GOAL else 'NOT met'}"
    )
    print(
        f"clock: {'wall clock (steps seconds apart)' if clock is None else 'simulated plant clock'}; "
        f"of the reviewer items, {durations} are step durations"
    )
    print(f"{args.batches} batches through the engine in {run_s:.0f} s ({run_s / max(args.batches, 1):.1f} s each)")
    if categories:
        print("reviewer items by category:parameter: " + ", ".join(f"{k} x{n}" for k, n in categories.most_common()))


if __name__ == "__main__":
    from engine.errors import BatchlineError

    try:
        main()
    except BatchlineError as exc:
        sys.exit(f"{exc.code}: {exc.message} {exc.details or ''}")
