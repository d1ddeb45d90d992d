"""Training the out-of-trend models of a recipe (its key, across its versions) from the
batch record of its earlier batches, stored in the model catalogue (``analytics.catalogue``):

* per operator step (BPMN id) and numeric form field: a robust ``UnivariateMonitor``
  with Nelson rules 1-4 over the sequence of batches;
* per operator step: a ``DurationMonitor`` on how long the step took (how the duration
  is approximated: ``analytics.batch_record``);
* per unit procedure with equipment samples: a time-series model (``analytics.equipment``).

Each run is a GMP record (``analytics.model_review``): its models are new *pending*
versions with an evaluation report (``analytics.model_report``: features, limits,
training batches, false alarms on held-out released batches, what had not enough
history); they score only once QA approves the run with an e-signature.

Steps repeated within one batch (a loop such as a daily in-process control) get a
duration model but no value models: their values follow the culture age, not the
batch sequence (that is the maturity-aligned time-series path, ``analytics.timeseries``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select

from engine import audit
from engine.errors import InvalidInput, NotFound
from engine.models import RecipeVersion, TrendModel, TrendTraining, utcnow
from engine.runtime import Runtime
from engine.vocabulary import BatchState, RecipeStatus
from engine.workflow_store import canonical, sha256

from . import model_report
from .batch_record import NumberField, StepPoint, as_number, number_fields, recipe_versions, step_points
from .catalogue import ADDED, DURATION, DURATION_KIND, UNIVARIATE, add_version
from .duration import DurationMonitor
from .equipment.training import train_in_session
from .store import ModelCard
from .univariate import UnivariateMonitor

#: false-alarm rate per parameter and point of rule 1 (0.0027 = the classic 3 sigma)
ALPHA = 0.0027
#: fewest batches a model is trained on
MIN_BATCHES = 8


@dataclass
class TrainResult:
    recipe: str
    recipe_version: int
    batches: int
    models: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    training_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "recipe_version": self.recipe_version,
            "batches": self.batches,
            "models": self.models,
            "skipped": self.skipped,
            "training_id": self.training_id,
            "status": "pending" if self.training_id is not None else None,
        }


def _newest_version(versions: dict[int, RecipeVersion]) -> RecipeVersion:
    approved = [rv for rv in versions.values() if rv.status == RecipeStatus.APPROVED]
    return max(approved or versions.values(), key=lambda rv: rv.version)


def train(
    rt: Runtime,
    recipe_key: str,
    *,
    user: str,
    released_only: bool = True,
    alpha: float = ALPHA,
    min_batches: int = MIN_BATCHES,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """(Re)train every model of a recipe from the history of its earlier batches.

    ``released_only``: train on batches QA released (state ``released``, an e-signed
    release, ``engine.quality.release``); pass False to train on every completed or
    released batch (demo, tests). Each model gets the next version number, *pending*:
    the versions in force keep scoring until QA approves this run
    (``analytics.model_review.approve``). The run and its evaluation report are one
    ``trend_training`` row (``training_id``; none when nothing could be trained); the
    training is one transaction with one audit entry (``analytics.train``).
    ``progress(done, total)`` is called per step trained (the CLI's progress bar)."""
    if not isinstance(recipe_key, str) or not recipe_key:
        raise InvalidInput("recipe is required", code="recipe_invalid")
    with rt.transaction() as s:
        versions = recipe_versions(s, recipe_key)
        if not versions:
            raise NotFound(f"recipe {recipe_key!r} not found", code="recipe_not_found")
        target = _newest_version(versions)
        points = [
            p
            for p in step_points(s, recipe_key)
            if (p.released if released_only else p.batch_state in (BatchState.COMPLETE, BatchState.RELEASED))
        ]
        by_step: dict[str, list[StepPoint]] = defaultdict(list)
        for p in points:
            by_step[p.bpmn_id].append(p)
        fields_by_form: dict[tuple[int, str], dict[str, NumberField]] = {}

        def fields_of(p: StepPoint) -> dict[str, NumberField]:
            key = (p.recipe_version_id, p.form_id or "")
            if key not in fields_by_form:
                rv = versions.get(p.recipe_version_id)
                fields_by_form[key] = number_fields(rv.forms.get(p.form_id) if rv and p.form_id else None)
            return fields_by_form[key]

        latest = {
            (m.bpmn_id, m.parameter, m.kind): m
            for m in s.scalars(select(TrendModel).where(TrendModel.recipe == recipe_key).order_by(TrendModel.version))
        }
        now = utcnow()
        made: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        steps = sorted(by_step)
        evaluated: list[tuple[TrendModel, dict[str, Any]]] = []
        for done, bpmn_id in enumerate(steps, 1):
            for c in _candidates(bpmn_id, by_step[bpmn_id], fields_of, min_batches, skipped):
                prior = latest.get((bpmn_id, c.parameter, c.kind))
                version = (prior.version + 1) if prior else 1
                try:
                    row = _fit(c, recipe_key, target, bpmn_id, alpha, version, user, now)
                except model_report.NOT_ENOUGH as exc:  # the monitor cannot hold its rate on so few
                    skipped.append({"bpmn_id": bpmn_id, "parameter": c.parameter or None, "reason": str(exc)})
                    continue
                add_version(s, row)
                evaluated.append((row, model_report.held_out(_maker(c, alpha), c.X, c.batch_ids)))
                made.append(
                    {
                        "bpmn_id": bpmn_id,
                        "parameter": c.parameter,
                        "kind": c.kind,
                        "version": version,
                        "batches": len(set(c.batch_ids)),
                    }
                )
            if progress:
                progress(done, len(steps))
        # equipment time series: one model per unit procedure (``analytics.equipment``)
        ts_made, ts_skipped, ts_batches = train_in_session(
            s, recipe_key, target, versions, user=user, released_only=released_only, min_batches=min_batches, now=now
        )
        made += ts_made
        skipped += ts_skipped
        trained_batches = sorted({p.batch_id for p in points} | set(ts_batches))
        training_id = _record_run(
            s,
            recipe_key,
            target,
            user=user,
            now=now,
            released_only=released_only,
            alpha=alpha,
            batches=trained_batches,
            evaluated=evaluated,
            skipped=skipped,
        )
        audit.record(
            s,
            user=user,
            action="analytics.train",
            object_type="recipe",
            object_id=recipe_key,
            field=f"version {target.version}",
            new={
                "models": len(made),
                "released_only": released_only,
                "alpha": alpha,
                "training_id": training_id,
                "batches": trained_batches,
                "versions": sorted({(m["bpmn_id"], m["parameter"], m["kind"], m["version"]) for m in made}),
            },
            reason="retraining of out-of-trend models",
        )
        return TrainResult(recipe_key, target.version, len(trained_batches), made, skipped, training_id).to_dict()


def _record_run(
    s: Any,
    recipe_key: str,
    target: RecipeVersion,
    *,
    user: str,
    now: datetime,
    released_only: bool,
    alpha: float,
    batches: list[str],
    evaluated: list[tuple[TrendModel, dict[str, Any]]],
    skipped: list[dict[str, Any]],
) -> int | None:
    """The run's ``trend_training`` row with its evaluation report, and its id on every
    model this transaction added (value, duration and equipment models alike)."""
    rows = s.info.pop(ADDED, [])
    if not rows:
        return None
    s.flush()
    by_id = {row.id: ev for row, ev in evaluated}
    equipment = {"method": "cross-conformal over the training batches (analytics.equipment.training)"}
    models = [
        model_report.model_entry(
            row,
            by_id.get(row.id) or {**equipment, "target_batch_false_alarm_rate": row.card["params"].get("batch_alpha")},
            alpha if row.id in by_id else row.card["params"].get("batch_alpha"),
        )
        for row in sorted(rows, key=lambda r: (r.bpmn_id, r.kind, r.parameter))
    ]
    report = {
        "recipe": recipe_key,
        "recipe_version": target.version,
        "trained_by": user,
        "trained_at": now.isoformat(),
        "released_only": released_only,
        "alpha": alpha,
        "batches": batches,
        "models": models,
        "not_enough_history": model_report.not_enough_history(skipped),
        "summary": model_report.summary(models),
    }
    run = TrendTraining(
        recipe=recipe_key,
        recipe_version_id=target.id,
        trained_by=user,
        trained_at=now,
        released_only=released_only,
        report=report,
        report_hash=sha256(canonical(report)),
    )
    s.add(run)
    s.flush()
    for row in rows:
        row.training_id = run.id
    return run.id


@dataclass
class _Candidate:
    """A model one step's history can train: its kind, parameter and training data."""

    kind: str
    parameter: str
    X: np.ndarray
    batch_ids: list[str]
    field: NumberField | None = None


def _candidates(
    bpmn_id: str,
    points: list[StepPoint],
    fields_of: Callable[[StepPoint], dict[str, NumberField]],
    min_batches: int,
    skipped: list[dict[str, Any]],
) -> list[_Candidate]:
    """The models a step's points can train - its duration, and each numeric field with
    enough values unless the step repeats within a batch; what cannot be trained goes
    to ``skipped`` with the reason."""
    batch_ids = list(dict.fromkeys(p.batch_id for p in points))
    if len(batch_ids) < min_batches:
        reason = f"{len(batch_ids)} batches, at least {min_batches} needed"
        skipped.append({"bpmn_id": bpmn_id, "parameter": None, "reason": reason})
        return []
    out = [_Candidate(DURATION_KIND, DURATION, np.array([[p.minutes] for p in points]), batch_ids)]
    repeated = len(points) > len(batch_ids)
    known: dict[str, NumberField] = {}
    for p in points:
        for key, f in fields_of(p).items():
            known.setdefault(key, f)
    for key, f in sorted(known.items()):
        if repeated:
            reason = "step repeats within a batch (values follow the batch age)"
            skipped.append({"bpmn_id": bpmn_id, "parameter": key, "reason": reason})
            continue
        vals = [(p.batch_id, as_number(p.values.get(key))) for p in points]
        vals = [(b, v) for b, v in vals if v is not None]
        if len(vals) < min_batches:
            skipped.append(
                {"bpmn_id": bpmn_id, "parameter": key, "reason": f"{len(vals)} values, at least {min_batches} needed"}
            )
            continue
        out.append(_Candidate(UNIVARIATE, key, np.array([[v] for _, v in vals]), [b for b, _ in vals], f))
    return out


def _maker(c: _Candidate, alpha: float) -> Callable[[], Any]:
    """A fresh, unfitted monitor of the candidate's kind (for the held-out evaluation)."""
    if c.kind == DURATION_KIND:
        return lambda: DurationMonitor(alpha=alpha)
    return lambda: UnivariateMonitor(alpha=alpha, rules=(1, 2, 3, 4))


def _fit(
    c: _Candidate,
    recipe_key: str,
    target: RecipeVersion,
    bpmn_id: str,
    alpha: float,
    version: int,
    user: str,
    now: datetime,
) -> TrendModel:
    """Fit the candidate's monitor and make its catalogue row (model card inside)."""
    monitor = model_report.fit(_maker(c, alpha)(), c.X, c.batch_ids)
    card = ModelCard.for_monitor(
        monitor,
        recipe_id=recipe_key,
        recipe_version=str(target.version),
        step_id=bpmn_id,
        parameter_names=[c.parameter or "duration_min"],
        training_batch_ids=c.batch_ids,
        version=version,
        trained_at=now,
    )
    return TrendModel(
        recipe=recipe_key,
        recipe_version_id=target.id,
        bpmn_id=bpmn_id,
        parameter=c.parameter,
        kind=c.kind,
        version=version,
        unit="min" if c.kind == DURATION_KIND else (c.field.unit if c.field else None),
        critical=bool(c.field and c.field.critical),
        card=card.to_dict(),
        trained_at=now,
        trained_by=user,
    )
