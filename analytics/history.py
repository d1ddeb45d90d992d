"""Batch history written straight into the batch record: the demo's earlier batches
(and test fixtures), so that out-of-trend models have something to learn from.

This is demo data, and it says so: each batch it writes carries the parameter
``demo_history: true`` and an audit entry ``demo.history``; its steps have no
signatures and no workflow state (the batches are ``complete`` and reviewed, so
nothing ever loads or changes them). Never use it on a production database.

The values come from ``analytics.simulator.history_for_demo``: the simulated
fed-batch fermentations give each batch its own, realistic batch-to-batch variation
(titre, biomass, dissolved O2, volumes, phase length) and the four simulated
manual-step durations. Each numeric form field of the recipe is placed in its alert
range (centre of the range, an eighth of its width as one standard deviation) and
moves with the simulated parameter it resembles most (or one chosen by its name), plus
its own noise; calculated fields are computed with the form's own calculation.
"""

from __future__ import annotations

import math
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from sqlalchemy import select

from engine import audit
from engine.batches.task_times import OPENED, READY
from engine.errors import Conflict
from engine.models import Batch, RecipeVersion, Step, TaskTime, utcnow
from engine.quality.release import record_imported_release
from engine.recipes import find_version
from engine.runtime import Runtime
from engine.vocabulary import BatchState, StepKind
from engine.workflow_store import canonical, sha256

from .catalogue import list_models
from .equipment.simulated import SampleSource, write_simulated_history
from .simulator import PARAMETER_NAMES, history_for_demo
from .training import train


@dataclass
class HistoryStep:
    """One step of a history batch: after the previous step (or the batch start) its task
    is ready, someone opens it ``waited`` minutes later and completes it ``minutes`` after
    opening (the duration the models use, ``analytics.batch_record``)."""

    bpmn_id: str
    values: dict[str, Any]
    minutes: float  # first opened -> completed
    user: str = "op.anna"
    waited: float = 0.0  # ready -> first opened


def write_history(
    rt: Runtime, recipe_key: str, batches: list[dict[str, Any]], *, user: str = "demo", reviewed: bool = True
) -> list[str]:
    """Write complete batches with their operator steps, on the newest approved version
    of the recipe. Each batch: ``{"batch_id", "started_at", "steps": [HistoryStep]}``.
    Returns the batch ids written (existing ones are left alone)."""
    written = []
    with rt.transaction() as s:
        rv = find_version(s, recipe_key, approved=True)
        tasks = {t["bpmn_id"]: t for t in rv.tasks if t.get("kind", "user") == "user"}
        from forms import definition_hash, load_form

        for spec in batches:
            batch_id = spec["batch_id"]
            if s.scalars(select(Batch.id).where(Batch.batch_id == batch_id)).first() is not None:
                continue
            at: datetime = spec["started_at"]
            batch = Batch(
                batch_id=batch_id,
                recipe_version_id=rv.id,
                recipe_hash=rv.content_hash,
                state=BatchState.COMPLETE,
                parameters={"batch_id": batch_id, "demo_history": True},
                created_at=at,
                created_by=user,
                step_count=0,
            )
            s.add(batch)
            s.flush()
            rows: list[Step] = []
            times: list[TaskTime] = []
            for step in spec["steps"]:
                task = tasks.get(step.bpmn_id)
                if task is None:
                    raise Conflict(f"recipe {recipe_key} has no user task {step.bpmn_id}", code="task_unknown")
                ready = at
                opened = ready + timedelta(minutes=step.waited)
                at = opened + timedelta(minutes=step.minutes)
                form = rv.forms.get(task.get("form")) if task.get("form") else None
                units = {}
                if form:
                    units = {f.key: f.unit for f in load_form(form).fields if f.unit and f.key in step.values}
                batch.step_count += 1
                task_id = str(uuid.uuid4())
                times += [
                    TaskTime(batch_id=batch.id, task_id=task_id, kind=READY, bpmn_id=step.bpmn_id, at=ready),
                    TaskTime(
                        batch_id=batch.id, task_id=task_id, kind=OPENED, bpmn_id=step.bpmn_id, at=opened, by=step.user
                    ),
                ]
                rows.append(
                    Step(
                        batch_id=batch.id,
                        seq=batch.step_count,
                        kind=StepKind.USER_TASK,
                        task_id=task_id,
                        bpmn_id=step.bpmn_id,
                        task_name=task.get("name") or step.bpmn_id,
                        form_id=task.get("form"),
                        recipe_version_id=rv.id,
                        user=step.user,
                        recorded_at=at,
                        values=step.values,
                        units=units,
                        form_hash=definition_hash(form) if form else None,
                        values_hash=sha256(canonical(step.values)),
                    )
                )
            s.add_all(rows)
            s.add_all(times)
            batch.completed_at = at
            audit.record(
                s,
                user=user,
                action="demo.history",
                object_type="batch",
                object_id=batch_id,
                new={"recipe": recipe_key, "version": rv.version, "steps": batch.step_count, "reviewed": reviewed},
                reason="demo data: an earlier batch written for the out-of-trend demo",
                binds=rows,  # the steps are bound into the audit trail like any other
            )
            if reviewed:  # an earlier batch QA released: its release comes with the imported record
                record_imported_release(s, batch, by=user, at=at + timedelta(hours=4))
            written.append(batch_id)
    return written


# --- the mAb demo history -------------------------------------------------------------

#: the order a mAb upstream batch runs its processes in (the top process's own tasks:
#: batch start first, record review last)
PROCESS_ORDER = ("up_seed_train", "up_media_prep", "up_production", "up_harvest")
#: the unit procedure whose (simulated) bioreactor time series the demo history carries
EQUIPMENT_UP = "up_production"
#: the demo history's equipment sample source for the calls inside a ``demo_equipment_samples`` block
DEMO_EQUIPMENT_SAMPLES: ContextVar[SampleSource | None] = ContextVar("demo_equipment_samples", default=None)


@contextmanager
def demo_equipment_samples(source: SampleSource) -> Iterator[None]:
    """Within the block, ``seed_demo_history`` takes its bioreactor samples from ``source``
    (for callers that set the demo up through code they do not own)."""
    token = DEMO_EQUIPMENT_SAMPLES.set(source)
    try:
        yield
    finally:
        DEMO_EQUIPMENT_SAMPLES.reset(token)


#: exception paths and loops left out of the demo history
SKIP = {"st_supervisor_decision", "pr_daily_ipc"}
#: simulated manual steps -> recipe steps (their durations come from the simulator)
STEP_DURATIONS = {
    "charge media": "pr_media_charge",
    "inoculate": "pr_inoculate",
    "sample": "pr_review_lims",
    "harvest": "hv_clarification",
}
#: fields that follow one simulated parameter closely
FOLLOWS = {
    "hccf_titre": "final_titre",
    "preharvest_titre": "final_titre",
    "final_vcd": "peak_biomass",
    "n1_vcd": "peak_biomass",
    "passage_vcd": "peak_biomass",
    "n2_final_vcd": "peak_biomass",
    "pr_do": "mean_do_fed_batch",
    "inoc_do": "mean_do_fed_batch",
    "n1_do": "min_do",
    "harvest_volume_l": "final_volume",
    "hccf_volume_l": "final_volume",
    "feed_a_volume_l": "total_feed",
    "final_culture_day": "batch_phase_length",
    "final_viability": "mean_our_fed_batch",
}
#: typical value and spread for fields without a two-sided alert range
TYPICAL = {
    "inoc_n1_vcd": (7.0, 0.35),
    "final_vcd": (18.0, 1.2),
    "hccf_titre": (5.0, 0.35),
    "preharvest_titre": (5.2, 0.35),
    "passage_volume_l": (1.0, 0.04),
    "final_viability": (86.0, 2.5),
    "flush_volume": (150.0, 8.0),
    "n1_viability": (98.0, 0.6),
    "n2_final_viability": (98.0, 0.6),
    "passage_viability": (98.0, 0.6),
    "post_thaw_viability": (95.0, 1.2),
    "passage_number": (3.0, 0.0),
    "preharvest_bioburden": (0.0, 0.0),
    "deviations_opened": (0.0, 0.0),
}


def _centre_and_spread(field) -> tuple[float, float] | None:
    if field.key in TYPICAL:
        return TYPICAL[field.key]
    lim = {k: float(v) for k, v in field.limits.items()}
    lo = lim.get("alertLow", lim.get("actionLow"))
    hi = lim.get("alertHigh", lim.get("actionHigh"))
    if lo is not None and hi is not None:
        return (lo + hi) / 2, (hi - lo) / 8
    if hi is not None:
        bottom = lim.get("hardMin", 0.0)
        centre = bottom + 0.4 * (hi - bottom)
        return centre, (hi - centre) / 4
    if lo is not None:
        top = lim.get("hardMax", lo * 1.5)
        centre = lo + 0.6 * (top - lo)
        return centre, (centre - lo) / 4
    return None


def _number_text(value: float, field) -> str:
    lim = {k: float(v) for k, v in field.limits.items()}
    value = float(min(max(float(value), lim.get("hardMin", -math.inf)), lim.get("hardMax", math.inf)))
    places = field.decimals if field.decimals is not None else 2
    number = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return format(abs(number) if number == 0 else number, "f")


def _ordered_tasks(rv: RecipeVersion) -> list[dict[str, Any]]:
    user_tasks = [t for t in rv.tasks if t.get("kind", "user") == "user" and t["bpmn_id"] not in SKIP]
    top = [t for t in user_tasks if t.get("process") not in PROCESS_ORDER]
    rank = {p: i for i, p in enumerate(PROCESS_ORDER)}
    inner = sorted((t for t in user_tasks if t.get("process") in rank), key=lambda t: rank[t["process"]])
    return top[:1] + inner + top[1:]


#: minutes at a record-only task: to read it, enter each field and sign (log-normal, σ below)
ENTRY_BASE, ENTRY_PER_FIELD, ENTRY_SIGMA = 0.5, 0.2, 0.45


def _step_times(bpmn_id: str, form, durations: dict[str, float], rng, entry_rng) -> tuple[float, float]:
    """(minutes at the task, minutes waited before opening it) of one history step.

    The four steps the simulator times (charge media, inoculate, sample, harvest) are
    done with the task open - the operator follows its instructions on the screen - so
    their simulated duration is time at the task, after a short wait. Every other step
    records what was done: tens of minutes pass between ready and opened (preparing,
    walking to the suite), and the time at the task is reading and entering its fields
    and signing - which is what a quick click-through of the demo batch is compared with.
    """
    at_task = durations.get(bpmn_id)
    median = 30.0 + (zlib.crc32(bpmn_id.encode()) % 40)
    elapsed = float(median * math.exp(0.12 * rng.standard_normal())) if at_task is None else 0.0
    if at_task is not None:
        return at_task, float(3.0 * math.exp(0.5 * entry_rng.standard_normal()))
    fields = sum(1 for f in form.fields if not f.is_calculated) if form is not None else 0
    entry = (ENTRY_BASE + ENTRY_PER_FIELD * fields) * math.exp(ENTRY_SIGMA * entry_rng.standard_normal())
    return float(entry), max(elapsed - entry, 0.0)


def demo_batches(
    rt: Runtime,
    recipe_key: str = "mab_upstream",
    n_batches: int = 30,
    seed: int = 7,
    *,
    prefix: str = "MAB-H",
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """The demo history of a recipe as ``write_history`` input: one batch every three
    days, the newest ending a day before ``end`` (default now)."""
    from forms import load_form
    from forms.calculation import evaluate

    with rt.transaction() as s:
        rv = find_version(s, recipe_key, approved=True)
        tasks = _ordered_tasks(rv)
        forms = {t["form"]: load_form(rv.forms[t["form"]]) for t in tasks if t.get("form") in rv.forms}
    simulated = history_for_demo(n_batches, seed)
    params = np.array([[b["parameters"][p]["value"] for p in PARAMETER_NAMES] for b in simulated])
    z_sim = (params - params.mean(axis=0)) / np.where(params.std(axis=0) > 0, params.std(axis=0), 1.0)
    rng = np.random.default_rng(seed)
    entry_rng = np.random.default_rng([seed, 1])  # time at the task: its own stream, the values stay as they were
    end = end or utcnow()
    out = []
    for i, sim in enumerate(simulated):
        started = end - timedelta(days=1 + 3 * (n_batches - i))
        durations = {STEP_DURATIONS[k]: v for k, v in sim["step_durations"].items() if k in STEP_DURATIONS}
        steps = []
        for task in tasks:
            form = forms.get(task.get("form"))
            values: dict[str, Any] = {}
            if form is not None:
                decimals: dict[str, Decimal] = {}
                for f in form.fields:
                    if f.component_type != "number" or f.is_calculated:
                        continue
                    centre_spread = _centre_and_spread(f)
                    if centre_spread is None:
                        continue
                    centre, spread = centre_spread
                    source = FOLLOWS.get(f.key)
                    weight = 0.8 if source else 0.4
                    column = (
                        PARAMETER_NAMES.index(source) if source else zlib.crc32(f.key.encode()) % len(PARAMETER_NAMES)
                    )
                    z = weight * z_sim[i, column] + math.sqrt(1 - weight**2) * rng.standard_normal()
                    values[f.key] = _number_text(centre + spread * z, f)
                    decimals[f.key] = Decimal(values[f.key])
                for f in form.fields:
                    if f.component_type == "number" and f.is_calculated:
                        try:
                            values[f.key] = _number_text(float(evaluate(f.calculation, decimals)), f)
                        except Exception:  # a calculation over fields the demo leaves out
                            pass
            minutes, waited = _step_times(task["bpmn_id"], form, durations, rng, entry_rng)
            steps.append(HistoryStep(task["bpmn_id"], values, round(minutes, 2), waited=round(waited, 2)))
        out.append({"batch_id": f"{prefix}{i + 1:03d}", "started_at": started, "steps": steps})
    return out


def seed_demo_history(
    rt: Runtime,
    recipe_key: str = "mab_upstream",
    n_batches: int = 30,
    seed: int = 7,
    *,
    user: str = "demo",
    trainer: str = "qa.quinn",
    equipment_samples: SampleSource | None = None,
) -> dict[str, Any]:
    """Write the demo history (once) with simulated bioreactor samples of its production
    unit procedure, and train the recipe's models on it (when something was written or
    the recipe has no active models yet).

    ``equipment_samples`` (n_batches, seed) -> samples per batch is where the bioreactor
    samples come from: by default ``DEMO_EQUIPMENT_SAMPLES`` (set for a block with
    ``demo_equipment_samples``), else the simulated fermentations of
    ``analytics.simulator``. The web demo passes the OPC UA equipment simulator's process
    model, so the models score what monitoring samples (analytics imports no integration)."""
    specs = demo_batches(rt, recipe_key, n_batches, seed)
    written = write_history(rt, recipe_key, specs, user=user)
    samples = write_simulated_history(
        rt,
        [b["batch_id"] for b in specs],
        seed=seed,
        unit_procedure=EQUIPMENT_UP,
        samples=equipment_samples or DEMO_EQUIPMENT_SAMPLES.get(),
    )
    result = None
    if written or samples or not list_models(rt, recipe_key):
        result = train(rt, recipe_key, user=trainer, released_only=True)
    return {"written": written, "samples": samples, "trained": result}
