"""A person working through a demo batch with nominal values (the demo's crew), while the
job worker runs: used by the demo-plant tests and by ``python -m tests.demo_plant.drive``,
which measures the trend findings of a nominal production run on the equipment simulator."""

from __future__ import annotations

import sys
import threading
import time

from analytics.equipment import sample_count
from analytics.equipment.scoring import running_since
from engine import batches, jobs
from engine.errors import Conflict, NotFound
from forms import load_form
from web import demo, demo_review

UP = "up_production"


def complete_next(rt, batch_id: str, crew, *, skip=()) -> str | None:
    """Complete the batch's first ready task (not in ``skip`` by prefix) with nominal values."""
    from analytics import nominal

    for task in batches.ready_tasks(rt, batch_id):
        if any(task["bpmn_id"].startswith(p) for p in skip):
            continue
        form = load_form(task["form_definition"]) if task.get("form_definition") else None
        values = nominal.valid_values(form, crew) if form else {}
        signer, witness = crew.signers(task, form)
        batches.open_task(rt, batch_id, task["id"], user=signer.username)
        try:
            batches.complete_task(
                rt, batch_id, task["id"], values, user=signer.username, signer=signer, witness=witness, actor=signer
            )
        except Conflict as exc:  # the phase watcher and monitoring change the batch too: repeat, as asked
            if exc.code != "concurrent_change":
                raise
            return None
        return task["bpmn_id"]
    return None


def run_production(rt, batch_id: str, simulator, *, timeout: float = 600.0, log=lambda *_: None) -> dict:
    """Work the batch until its production unit procedure has run and ended: the operators'
    production tasks wait until the bioreactor's phase is complete. Returns figures."""
    crew = demo_review.crew(demo.PEOPLE, demo.lot_for, demo.equipment_for)
    deadline = time.monotonic() + timeout
    started = ended = None
    done: list[str] = []
    while time.monotonic() < deadline:
        running = running_since(rt, batch_id, UP)
        if running and started is None:
            started = time.monotonic()
            log(f"production started after {len(done)} tasks")
        if started is not None and running is None:
            ended = time.monotonic()
            break
        phase_done = simulator.equipment.phases.state == "Complete" and started is not None
        got = complete_next(rt, batch_id, crew, skip=() if phase_done else ("pr_",))
        if got:
            done.append(got)
        else:
            time.sleep(0.2)
    return {
        "tasks": done,
        "production_seconds": None if started is None or ended is None else ended - started,
        "samples": sample_count(rt, batch_id, UP),
    }


def trend_findings(rt, batch_id: str) -> list[dict]:
    return [e for e in batches.exceptions(rt, batch_id) if (e["parameter"] or "").startswith(f"{UP}:")]


def main(argv: list[str]) -> int:  # pragma: no cover - a measurement, run by hand
    """python -m tests.demo_plant.drive DB_URL [SPEED] [PERIOD]"""
    from engine.config import load_settings
    from engine.runtime import Runtime
    from web import demo_plant

    url = argv[0]
    speed = float(argv[1]) if len(argv) > 1 else 18000.0
    period = float(argv[2]) if len(argv) > 2 else 3600.0 / speed
    rt = Runtime(load_settings(database_url=url, worker_poll_seconds=0.05))
    rt.create_schema()
    t0 = time.monotonic()
    demo_plant.setup(rt)
    print(f"setup {time.monotonic() - t0:.0f} s", flush=True)
    from analytics import nominal

    systems = nominal.Systems()
    systems.connect(rt)
    simulator, connector = demo_plant.start_equipment(rt, port=0, speed=speed, period=period)
    stop = threading.Event()
    worker = threading.Thread(target=jobs.work, args=(rt,), kwargs={"stop": stop}, daemon=True)
    worker.start()

    def lims_answers():
        while not stop.wait(0.5):
            for sample in list(systems.pending):
                try:  # the batch may not wait for the result yet: try again next time
                    batches.deliver_message(rt, "lims_result", {"sample_id": sample, "titre": 4.8}, user="svc.lims")
                except NotFound:
                    continue
                systems.pending.remove(sample)

    threading.Thread(target=lims_answers, daemon=True).start()
    try:
        figures = run_production(rt, demo.DEMO_BATCH, simulator, log=print)
        found = trend_findings(rt, demo.DEMO_BATCH)
        print({k: v for k, v in figures.items() if k != "tasks"})
        print(f"trend findings on the nominal run: {len(found)}")
        for e in found:
            print(" ", e["message"])
    finally:
        stop.set()
        connector.close()
        simulator.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
