"""What the out-of-trend models read from the batch record: the operator steps of a
recipe's batches as points (values as corrected, duration, batch state), the numeric
fields of a step's form, and the recent history of a step that the run rules look at.

Values are read *as corrected* through ``engine.record`` (the one home of that rule):
a corrected value replaces the original in training and in scoring, while the original
stays visible in the record.

Duration (``StepPoint.minutes``, what the duration models learn and score): the time
the operator spent at the task - from when it was first opened (its page or the task's
API GET) to its completion. A task completed without being opened (straight over the
API) is measured from when it became ready; both times come from ``task_time``
(``engine.batches.task_times``), recorded for the step's own task, so parallel branches
do not borrow each other's time. Steps recorded before task times existed fall back to
the old approximation - since the previous step record of the batch (or the batch start)
- and say so (``basis``). Opened rather than ready: ready -> completed includes the wait
until someone gets to the task (a shift change, a walk to the suite), which says little
about the step; opened -> completed is what the operator actually spends on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.batches.task_times import TaskTimes, times_of, times_of_task
from engine.models import Batch, RecipeVersion, Step
from engine.record import as_corrected, corrections_by_step, current_values
from engine.vocabulary import BatchState, StepKind


@dataclass
class NumberField:
    key: str
    label: str
    unit: str | None
    critical: bool


def number_fields(form_definition: dict[str, Any] | None) -> dict[str, NumberField]:
    """The numeric fields of a form (entered or calculated), by key."""
    if not form_definition:
        return {}
    from forms import load_form

    try:
        definition = load_form(form_definition)
    except Exception:  # a broken form has no numbers to trend
        return {}
    return {
        f.key: NumberField(f.key, f.label or f.key, f.unit, bool(f.critical))
        for f in definition.fields
        if f.component_type == "number"
    }


def as_number(value: Any) -> float | None:
    """A recorded value (numbers are stored as decimal text) as a float, else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class StepPoint:
    """One operator step of one batch as the models see it."""

    batch_pk: int
    batch_id: str
    batch_state: str
    released: bool
    seq: int
    bpmn_id: str
    form_id: str | None
    recipe_version_id: int
    recorded_at: datetime
    minutes: float  # the duration the models use (see ``basis`` and the module note)
    values: dict[str, Any] = field(default_factory=dict)
    ready_at: datetime | None = None
    opened_at: datetime | None = None
    #: what ``minutes`` is measured from: "opened", "ready" or "previous_record" (approximation)
    basis: str = "previous_record"

    @property
    def ready_minutes(self) -> float | None:
        """Ready -> completed (includes the wait until someone opened the task)."""
        return None if self.ready_at is None else _minutes(self.ready_at, self.recorded_at)


#: what each ``StepPoint.basis`` means, for model details and findings
DURATION_BASIS = {
    "opened": "first opened -> completed",
    "ready": "ready -> completed (never opened before completion)",
    "previous_record": "since the previous step record of the batch (approximation: recorded before task times)",
}


def _minutes(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds() / 60.0, 0.0)


def duration(ready_at: datetime | None, opened_at: datetime | None, previous: datetime, completed: datetime):
    """(minutes, basis) of one step (see the module note)."""
    if opened_at is not None:
        return _minutes(opened_at, completed), "opened"
    if ready_at is not None:
        return _minutes(ready_at, completed), "ready"
    return _minutes(previous, completed), "previous_record"


def recipe_versions(s: Session, recipe: str) -> dict[int, RecipeVersion]:
    rows = s.scalars(select(RecipeVersion).where(RecipeVersion.recipe == recipe).order_by(RecipeVersion.version))
    return {rv.id: rv for rv in rows}


def version_ids(s: Session, recipe: str) -> list[int]:
    """The ids of the recipe's versions (without their forms and diagrams)."""
    return list(s.scalars(select(RecipeVersion.id).where(RecipeVersion.recipe == recipe)))


def step_points(
    s: Session,
    recipe: str,
    *,
    bpmn_id: str | None = None,
    batch_pks: Iterable[int] | None = None,
    exclude_aborted: bool = True,
) -> list[StepPoint]:
    """Operator steps of the recipe's batches in the order they were recorded, with
    the values as corrected and the step duration (see the module note)."""
    versions = version_ids(s, recipe)
    if not versions:
        return []
    stmt = select(Batch).where(Batch.recipe_version_id.in_(versions))
    if exclude_aborted:
        stmt = stmt.where(Batch.state != BatchState.ABORTED)
    if batch_pks is not None:
        stmt = stmt.where(Batch.id.in_(list(batch_pks)))
    batch_rows = {b.id: b for b in s.scalars(stmt)}
    if not batch_rows:
        return []
    rows = list(
        s.execute(
            select(
                Step.batch_id,
                Step.seq,
                Step.kind,
                Step.task_id,
                Step.bpmn_id,
                Step.form_id,
                Step.recipe_version_id,
                Step.recorded_at,
                Step.values,
            )
            .where(Step.batch_id.in_(list(batch_rows)))
            .order_by(Step.batch_id, Step.seq)
        )
    )
    corrections = corrections_by_step(s, batch_rows)
    times = times_of(s, list(batch_rows))
    out = []
    previous: dict[int, datetime] = {}
    for batch_pk, seq, kind, task_id, step_bpmn, form_id, rv_id, recorded_at, values in rows:
        batch = batch_rows[batch_pk]
        start = previous.get(batch_pk, batch.created_at)
        previous[batch_pk] = recorded_at
        if kind != StepKind.USER_TASK or (bpmn_id is not None and step_bpmn != bpmn_id):
            continue
        at = times.get((batch_pk, task_id)) or TaskTimes()
        minutes, basis = duration(at.ready_at, at.opened_at, start, recorded_at)
        out.append(
            StepPoint(
                batch_pk,
                batch.batch_id,
                batch.state,
                batch.state == BatchState.RELEASED,
                seq,
                step_bpmn,
                form_id,
                rv_id,
                recorded_at,
                minutes,
                as_corrected(values, corrections.get((batch_pk, seq), [])),
                at.ready_at,
                at.opened_at,
                basis,
            )
        )
    out.sort(key=lambda p: (p.recorded_at, p.batch_pk, p.seq))
    return out


def step_point(s: Session, batch: Batch, step: Step) -> StepPoint | None:
    """The point of one operator step, as ``step_points`` gives it, reading only that
    step: its values as corrected, its task's times and (for steps recorded before task
    times) the previous record of its batch. None where ``step_points`` has none (not an
    operator step, or an aborted batch)."""
    if step.kind != StepKind.USER_TASK or batch.state == BatchState.ABORTED:
        return None
    at = times_of_task(s, batch.id, step.task_id)
    previous = batch.created_at
    if at.opened_at is None and at.ready_at is None:
        before = s.scalars(
            select(Step.recorded_at)
            .where(Step.batch_id == batch.id, Step.seq < step.seq)
            .order_by(Step.seq.desc())
            .limit(1)
        ).first()
        previous = before if before is not None else batch.created_at
    minutes, basis = duration(at.ready_at, at.opened_at, previous, step.recorded_at)
    return StepPoint(
        batch.id,
        batch.batch_id,
        batch.state,
        batch.state == BatchState.RELEASED,
        step.seq,
        step.bpmn_id,
        step.form_id,
        step.recipe_version_id,
        step.recorded_at,
        minutes,
        current_values(s, step),
        at.ready_at,
        at.opened_at,
        basis,
    )


def recent_values(
    s: Session, recipe: str, bpmn_id: str, n: int, *, before: StepPoint, versions: list[int] | None = None
) -> list[dict[str, Any]]:
    """Values (as corrected) of a step in the last ``n`` other batches of the recipe
    (aborted ones left out) recorded before ``before``, oldest first: one point per batch
    (its last record of the step). Run rules read a batch-to-batch sequence; the instances
    of a multi-instance or repeated step within one batch are alike, and counted as
    separate points they make runs that no process change caused. ``versions``: the
    recipe's version ids where the caller read them already."""
    versions = version_ids(s, recipe) if versions is None else versions
    rows = list(
        s.execute(
            select(Step.batch_id, Step.seq, Step.values)
            .join(Batch, Batch.id == Step.batch_id)
            .where(
                Batch.recipe_version_id.in_(versions),
                Batch.state != BatchState.ABORTED,
                Step.bpmn_id == bpmn_id,
                Step.kind == StepKind.USER_TASK,
                Step.batch_id != before.batch_pk,
                Step.recorded_at <= before.recorded_at,
            )
            .order_by(Step.recorded_at.desc(), Step.batch_id.desc(), Step.seq.desc())
            .limit(n * 8)
        )
    )
    last_per_batch: dict[int, tuple[int, int, Any]] = {}
    for row in rows:  # newest first: the first record met is the batch's last
        last_per_batch.setdefault(row[0], tuple(row))
    rows = list(last_per_batch.values())[:n]
    rows.reverse()
    corrections = corrections_by_step(s, (batch_pk for batch_pk, _, _ in rows))
    return [as_corrected(values, corrections.get((batch_pk, seq), [])) for batch_pk, seq, values in rows]
