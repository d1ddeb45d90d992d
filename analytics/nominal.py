"""Complete a recipe through the engine as a nominal batch would run: every ready task
done with valid values, numeric ones drawn like the demo history (``history.demo_batches``:
each field in its alert range, moving with the simulated fermentation), every due job run
(timers, service tasks, out-of-trend scoring), LIMS results delivered.

Unlike ``history.write_history`` (demo data written straight into the record), these are
real batches: every step goes through ``engine.batches.complete_task`` with its
signatures, limits, exceptions and audit trail — what the review-by-exception benchmark
(``bench/review.py``) measures and what the demo's batch awaiting review is made of.
The people signing are passed in (``Crew``); the engine trusts its caller's
authentication, as it does for a job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine import batches, jobs
from engine.connectors import Completed
from engine.errors import NotFound
from engine.runtime import Runtime
from engine.users import Person

from .history import demo_batches

#: what the loops of the mAb recipe need to end (BPMN id -> values by iteration)
MAB_LOOPS: dict[str, Callable[[int], dict[str, Any]]] = {
    "st_passage": lambda i: {"ready_for_n2": i >= 1},
    "pr_daily_ipc": lambda i: {"culture_day": (3, 7, 14, 14)[min(i, 3)], "harvest_criteria_met": i >= 2},
}
#: what the loops of the library's operation templates need to end (a nominal run goes
#: round a few times, as a real batch would): seed passages, daily bioreactor samples,
#: CAR-T expansion counts — and the mAb loops, so one map drives every library entry
LIBRARY_LOOPS: dict[str, Callable[[int], dict[str, Any]]] = {
    **MAB_LOOPS,
    "tpl_sps_passage": lambda i: {"sps_passage_no": i + 1, "sps_ready": i >= 1},
    "tpl_bds_sample": lambda i: {"bds_culture_day": (3, 7, 14)[min(i, 2)], "bds_harvest_ready": i >= 2},
    "tpl_tex_count": lambda i: {"tex_day": (3, 5, 7)[min(i, 2)], "tex_harvest_ready": i >= 2},
}
PATTERN_SAMPLES = {
    "[0-9]{10}": "4500012345",
    "[0-9]{6}": "000123",
    "[A-Z]{2}-[0-9]{6}": "CC-000123",
    "CC-[0-9]{6}": "CC-000123",
    "CAPA-[0-9]{6}": "CAPA-000007",
    "[0-9]{1,4}": "17",
    "S-[0-9]{6}": "S-000123",
    "DEV-[0-9]{6}": "DEV-000001",
}


@dataclass
class Crew:
    """Who signs: a person per task role, and witnesses by role."""

    operator: Person
    operator_witness: Person
    supervisor: Person
    qa: Person
    qa_witness: Person
    lot_for: Callable[[str], str]
    equipment_for: Callable[[str], str]

    def signers(self, task: dict[str, Any], form) -> tuple[Person, Person | None]:
        signer = {"supervisor": self.supervisor, "qa": self.qa}.get(task.get("role") or "operator", self.operator)
        if form is None or not form.witness_required:
            return signer, None
        wanted = (form.witness_role or "").lower()
        if wanted == "qa" or (wanted == "supervisor" and signer is self.supervisor):
            return signer, self.qa_witness if signer is not self.qa_witness else self.qa
        if wanted == "supervisor":
            return signer, self.supervisor
        return signer, self.operator_witness if signer is self.operator else self.operator


@dataclass
class Systems:
    """ERP and LIMS that answer at once; LIMS results are delivered when the batch waits."""

    pending: list[str] = field(default_factory=list)
    calls: int = 0

    def connect(self, rt: Runtime) -> None:
        rt.connectors.register("erp", self.erp)
        rt.connectors.register("lims", self.lims)

    def erp(self, call):
        self.calls += 1
        return Completed({"document": f"MAT-{self.calls:05d}"})

    def lims(self, call):
        self.calls += 1
        sample = f"S-{call.batch_id}-{self.calls}"
        self.pending.append(sample)
        return Completed({"sample_id": sample})


def _middle(f) -> str:
    lim = f.limits
    lows = [lim[n] for n in ("hardMin", "actionLow", "alertLow") if n in lim]
    highs = [lim[n] for n in ("alertHigh", "actionHigh", "hardMax") if n in lim]
    low, high = (max(lows) if lows else None), (min(highs) if highs else None)
    if low is not None and high is not None:
        value = (low + high) / 2
    elif low is not None:
        value = low + 1
    elif high is not None:
        value = high - 1 if high >= 1 else high
    else:
        value = 1
    places = f.decimals or 0
    return f"{float(value):.{places}f}"


def valid_values(form, crew: Crew) -> dict[str, Any]:
    """A valid value for every input of a form (numbers in the middle of their limits)."""
    values: dict[str, Any] = {}
    for f in form.fields:
        if f.calculation is not None:
            continue
        kind = f.kind
        if kind == "number":
            values[f.key] = _middle(f)
        elif kind == "materialLot":
            values[f.key] = crew.lot_for(f.material)
        elif kind == "equipment":
            values[f.key] = crew.equipment_for(f.equipment_class)
        elif kind == "checkbox":
            values[f.key] = True
        elif kind == "checklist":
            values[f.key] = [o.value for o in f.options]
        elif kind in ("select", "radio"):
            values[f.key] = f.options[0].value
        elif kind == "datetime":
            values[f.key] = {"date": "2026-03-01", "time": "08:00"}.get(f.subtype, "2026-03-01T08:00:00+00:00")
        elif kind == "textfield":
            values[f.key] = PATTERN_SAMPLES.get(f.pattern or "", "ok")
        elif kind == "textarea":
            values[f.key] = "As planned."
    return values


def history_values(rt: Runtime, recipe: str, n: int, seed: int) -> list[dict[str, dict[str, Any]]]:
    """Per batch: BPMN id -> numeric values drawn like the demo history."""
    return [{s.bpmn_id: s.values for s in spec["steps"]} for spec in demo_batches(rt, recipe, n, seed, prefix="N")]


def history_minutes(rt: Runtime, recipe: str, n: int, seed: int) -> list[dict[str, float]]:
    """Per batch: BPMN id -> how long the step takes, drawn like the demo history (the same
    draw as ``history_values`` for the same seed)."""
    return [{s.bpmn_id: s.minutes for s in spec["steps"]} for spec in demo_batches(rt, recipe, n, seed, prefix="N")]


def run_batch(
    rt: Runtime,
    recipe: str,
    batch_id: str,
    crew: Crew,
    systems: Systems,
    *,
    drawn: dict[str, dict[str, Any]] | None = None,
    loops: dict[str, Callable[[int], dict[str, Any]]] | None = None,
    parameters: dict[str, Any] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    timeout: float = 120.0,
    before_task: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Start ``batch_id`` and drive it to complete; returns how often each task ran.
    ``before_task(bpmn_id)`` is called before each task is completed (a simulated plant
    clock moves on there, ``bench/review.py``)."""
    from forms import load_form

    loops = MAB_LOOPS if loops is None else loops
    batches.start_batch(rt, recipe, batch_id, user=crew.supervisor.username, parameters=parameters or {})
    done: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while batches.get_batch(rt, batch_id)["state"] not in ("complete", "released", "rejected"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{batch_id} did not complete; steps so far: {done}")
        tasks = batches.ready_tasks(rt, batch_id)
        if tasks:
            task = tasks[0]
            bpmn_id = task["bpmn_id"]
            form = load_form(task["form_definition"]) if task.get("form_definition") else None
            values = valid_values(form, crew) if form else {}
            values.update({k: v for k, v in (drawn or {}).get(bpmn_id, {}).items() if k in values})
            if bpmn_id in loops:
                values.update(loops[bpmn_id](done.get(bpmn_id, 0)))
            values.update((overrides or {}).get(bpmn_id, {}))
            signer, witness = crew.signers(task, form)
            # the operator opens the task, then works (the plant clock moves on there):
            # the step's duration runs from the opening (analytics.batch_record)
            batches.open_task(rt, batch_id, task["id"], user=signer.username)
            if before_task is not None:
                before_task(bpmn_id)
            batches.complete_task(
                rt, batch_id, task["id"], values, user=signer.username, signer=signer, witness=witness, actor=signer
            )
            done[bpmn_id] = done.get(bpmn_id, 0) + 1
            continue
        if systems.pending:
            try:
                result = {"sample_id": systems.pending[0], "titre": 4.8, "bioburden": 0}
                batches.deliver_message(rt, "lims_result", result, user="svc.lims")
                systems.pending.pop(0)
                continue
            except NotFound:
                pass  # not waiting for it yet
        if jobs.run_due(rt) == 0:
            time.sleep(0.05)
    while jobs.run_due(rt):  # the last steps' out-of-trend scoring
        pass
    return done
