"""What the out-of-trend models read from the batch record: the operator steps of a
recipe's batches as points (values as corrected, duration, batch state), the numeric
fields of a step's form, and the recent history of a step that the run rules look at.

Values are read *as corrected* through ``engine.record`` (the one home of that rule):
a corrected value replaces the original in training and in scoring, while the original
stays visible in the record.

Duration: the batch record has no "task became ready" time, so the start of a step is
approximated by the previous step record of the batch (any kind: operator, timer,
message, service task), or the batch start for the first step. That is exact for a
sequential recipe; for parallel branches it over-estimates (the other branch's step may
have been recorded in between).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Batch, RecipeVersion, Step
from engine.record import as_corrected, corrections_by_step
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
    minutes: float  # since the previous step record (or the batch start)
    values: dict[str, Any] = field(default_factory=dict)


def recipe_versions(s: Session, recipe: str) -> dict[int, RecipeVersion]:
    rows = s.scalars(select(RecipeVersion).where(RecipeVersion.recipe == recipe).order_by(RecipeVersion.version))
    return {rv.id: rv for rv in rows}


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
    versions = recipe_versions(s, recipe)
    if not versions:
        return []
    stmt = select(Batch).where(Batch.recipe_version_id.in_(list(versions)))
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
    out = []
    previous: dict[int, datetime] = {}
    for batch_pk, seq, kind, step_bpmn, form_id, rv_id, recorded_at, values in rows:
        batch = batch_rows[batch_pk]
        start = previous.get(batch_pk, batch.created_at)
        previous[batch_pk] = recorded_at
        if kind != StepKind.USER_TASK or (bpmn_id is not None and step_bpmn != bpmn_id):
            continue
        minutes = max((recorded_at - start).total_seconds() / 60.0, 0.0)
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
            )
        )
    out.sort(key=lambda p: (p.recorded_at, p.batch_pk, p.seq))
    return out


def recent_values(s: Session, recipe: str, bpmn_id: str, n: int, *, before: StepPoint) -> list[dict[str, Any]]:
    """Values (as corrected) of a step in the last ``n`` other batches of the recipe
    (aborted ones left out) recorded before ``before``, oldest first: one point per batch
    (its last record of the step). Run rules read a batch-to-batch sequence; the instances
    of a multi-instance or repeated step within one batch are alike, and counted as
    separate points they make runs that no process change caused."""
    versions = list(recipe_versions(s, recipe))
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
