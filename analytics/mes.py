"""Out-of-trend analytics in the MES: train per-step models from the batch record,
store them as model cards in the ``trend_model`` table, and score each operator step
after it is committed (the ``score_step`` job) - a finding becomes an exception for
review by exception.

What is modelled, per recipe (its key, across its versions):

* per operator step (BPMN id) and numeric form field: a robust ``UnivariateMonitor``
  with Nelson rules 1-4 over the sequence of batches;
* per operator step: a ``DurationMonitor`` on how long the step took. The batch record
  has no "task became ready" time, so the start of a step is approximated by the
  previous step record of the batch (any kind: operator, timer, message, service
  task), or the batch start for the first step. That is exact for a sequential
  recipe; for parallel branches it over-estimates (the other branch's step may have
  been recorded in between).

Steps repeated within one batch (a loop such as a daily in-process control) get a
duration model but no value models: their values follow the culture age, not the
batch sequence (that is the maturity-aligned time-series path, ``analytics.timeseries``).

The engine never imports this module: ``install(rt)`` registers the ``score_step``
job handler on a runtime, and the engine schedules a job for each operator step in the
step's own transaction once that handler is there.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine import audit, batches
from engine.errors import InvalidInput, NotFound
from engine.models import Batch, BatchException, Correction, RecipeVersion, Step, TrendModel, utcnow
from engine.runtime import Runtime

from .duration import DurationMonitor
from .store import ModelCard
from .univariate import RULES, UnivariateMonitor

#: false-alarm rate per parameter and point of rule 1 (0.0027 = the classic 3 sigma)
ALPHA = 0.0027
#: fewest batches a model is trained on
MIN_BATCHES = 8
#: how many earlier points of the same step and parameter the run rules look at
RUN_WINDOW = 20
DURATION = ""  # ``TrendModel.parameter`` of a step-duration model
UNIVARIATE, DURATION_KIND = "UnivariateMonitor", "DurationMonitor"


# --- reading the batch record ----------------------------------------------------------


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


def _corrections(s: Session, batch_pks: list[int]) -> dict[tuple[int, int], dict[str, Any]]:
    import json

    out: dict[tuple[int, int], dict[str, Any]] = defaultdict(dict)
    if not batch_pks:
        return out
    for c in s.scalars(select(Correction).where(Correction.batch_id.in_(batch_pks)).order_by(Correction.id)):
        out[(c.batch_id, c.step_seq)][c.field] = json.loads(c.new)
    return out


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
        stmt = stmt.where(Batch.state != "aborted")
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
    fixes = _corrections(s, list(batch_rows))
    out = []
    previous: dict[int, datetime] = {}
    for batch_pk, seq, kind, step_bpmn, form_id, rv_id, recorded_at, values in rows:
        batch = batch_rows[batch_pk]
        start = previous.get(batch_pk, batch.created_at)
        previous[batch_pk] = recorded_at
        if kind != "user_task" or (bpmn_id is not None and step_bpmn != bpmn_id):
            continue
        current = dict(values or {})
        current.update(fixes.get((batch_pk, seq), {}))
        minutes = max((recorded_at - start).total_seconds() / 60.0, 0.0)
        out.append(
            StepPoint(
                batch_pk,
                batch.batch_id,
                batch.state,
                batch.state == "complete" and batch.reviewed_at is not None,
                seq,
                step_bpmn,
                form_id,
                rv_id,
                recorded_at,
                minutes,
                current,
            )
        )
    out.sort(key=lambda p: (p.recorded_at, p.batch_pk, p.seq))
    return out


# --- training --------------------------------------------------------------------------


@dataclass
class TrainResult:
    recipe: str
    recipe_version: int
    batches: int
    models: list[dict[str, Any]]
    skipped: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "recipe_version": self.recipe_version,
            "batches": self.batches,
            "models": self.models,
            "skipped": self.skipped,
        }


def _newest_version(versions: dict[int, RecipeVersion]) -> RecipeVersion:
    approved = [rv for rv in versions.values() if rv.status == "approved"]
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

    ``released_only``: there is no release workflow yet, so "released" means a batch
    in state ``complete`` whose record QA has reviewed (``reviewed_at`` set); pass
    False to train on every completed batch (demo, tests). Each model gets the next
    version number and the previous version is deactivated; the training is one
    transaction with one audit entry (``analytics.train``).
    ``progress(done, total)`` is called per step trained (the CLI's progress bar)."""
    if not isinstance(recipe_key, str) or not recipe_key:
        raise InvalidInput("recipe is required", code="recipe_invalid")
    with rt.transaction() as s:
        versions = recipe_versions(s, recipe_key)
        if not versions:
            raise NotFound(f"recipe {recipe_key!r} not found", code="recipe_not_found")
        target = _newest_version(versions)
        points = [
            p for p in step_points(s, recipe_key) if (p.released if released_only else p.batch_state == "complete")
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
        made, skipped = [], []
        steps = sorted(by_step)
        for done, bpmn_id in enumerate(steps, 1):
            step_pts = by_step[bpmn_id]
            batch_ids = list(dict.fromkeys(p.batch_id for p in step_pts))
            if len(batch_ids) < min_batches:
                skipped.append(
                    {
                        "bpmn_id": bpmn_id,
                        "parameter": None,
                        "reason": f"{len(batch_ids)} batches, at least {min_batches} needed",
                    }
                )
                if progress:
                    progress(done, len(steps))
                continue
            candidates: list[tuple[str, str, np.ndarray, list[str], NumberField | None]] = []
            candidates.append((DURATION_KIND, DURATION, np.array([[p.minutes] for p in step_pts]), batch_ids, None))
            repeated = len(step_pts) > len(batch_ids)
            known: dict[str, NumberField] = {}
            for p in step_pts:
                for key, f in fields_of(p).items():
                    known.setdefault(key, f)
            for key, f in sorted(known.items()):
                if repeated:
                    skipped.append(
                        {
                            "bpmn_id": bpmn_id,
                            "parameter": key,
                            "reason": "step repeats within a batch (values follow the batch age)",
                        }
                    )
                    continue
                vals = [(p.batch_id, as_number(p.values.get(key))) for p in step_pts]
                vals = [(b, v) for b, v in vals if v is not None]
                if len(vals) < min_batches:
                    skipped.append(
                        {
                            "bpmn_id": bpmn_id,
                            "parameter": key,
                            "reason": f"{len(vals)} values, at least {min_batches} needed",
                        }
                    )
                    continue
                candidates.append((UNIVARIATE, key, np.array([[v] for _, v in vals]), [b for b, _ in vals], f))
            for kind, parameter, X, trained_on, f in candidates:
                monitor = (
                    DurationMonitor(alpha=alpha)
                    if kind == DURATION_KIND
                    else UnivariateMonitor(alpha=alpha, rules=(1, 2, 3, 4))
                )
                monitor.fit(X)
                prior = latest.get((bpmn_id, parameter, kind))
                version = (prior.version + 1) if prior else 1
                card = ModelCard.for_monitor(
                    monitor,
                    recipe_id=recipe_key,
                    recipe_version=str(target.version),
                    step_id=bpmn_id,
                    parameter_names=[parameter or "duration_min"],
                    training_batch_ids=trained_on,
                    version=version,
                    trained_at=now,
                )
                for old in s.scalars(
                    select(TrendModel).where(
                        TrendModel.recipe == recipe_key,
                        TrendModel.bpmn_id == bpmn_id,
                        TrendModel.parameter == parameter,
                        TrendModel.kind == kind,
                        TrendModel.active.is_(True),
                    )
                ):
                    old.active = False
                row = TrendModel(
                    recipe=recipe_key,
                    recipe_version_id=target.id,
                    bpmn_id=bpmn_id,
                    parameter=parameter,
                    kind=kind,
                    version=version,
                    unit="min" if kind == DURATION_KIND else (f.unit if f else None),
                    critical=bool(f and f.critical),
                    card=card.to_dict(),
                    trained_at=now,
                    trained_by=user,
                    active=True,
                )
                s.add(row)
                made.append(
                    {
                        "bpmn_id": bpmn_id,
                        "parameter": parameter,
                        "kind": kind,
                        "version": version,
                        "batches": len(set(trained_on)),
                    }
                )
            if progress:
                progress(done, len(steps))
        # equipment time series: one model per unit procedure (``analytics.equipment``)
        from .equipment import train_in_session

        ts_made, ts_skipped, ts_batches = train_in_session(
            s, recipe_key, target, versions, user=user, released_only=released_only, min_batches=min_batches, now=now
        )
        made += ts_made
        skipped += ts_skipped
        trained_batches = sorted({p.batch_id for p in points} | set(ts_batches))
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
                "batches": trained_batches,
                "versions": sorted({(m["bpmn_id"], m["parameter"], m["kind"], m["version"]) for m in made}),
            },
            reason="retraining of out-of-trend models",
        )
        return TrainResult(recipe_key, target.version, len(trained_batches), made, skipped).to_dict()


# --- reading models --------------------------------------------------------------------


def describe_model(m: TrendModel, *, with_card: bool = False) -> dict[str, Any]:
    limits = m.card.get("limits", {})
    out = {
        "id": m.id,
        "recipe": m.recipe,
        "recipe_version_id": m.recipe_version_id,
        "recipe_version": m.card.get("recipe_version"),
        "bpmn_id": m.bpmn_id,
        "parameter": m.parameter or None,
        "kind": m.kind,
        "version": m.version,
        "unit": m.unit,
        "critical": m.critical,
        "active": m.active,
        "trained_at": m.trained_at.isoformat(),
        "trained_by": m.trained_by,
        "training_batches": len(m.card.get("training_batch_ids", [])),
        "limits": _scalar_limits(m.kind, limits),
    }
    if with_card:
        out["card"] = m.card
    return out


def _scalar_limits(kind: str, limits: dict[str, Any]) -> dict[str, Any]:
    """The one-column limits of a per-parameter model, as plain numbers."""
    first = lambda key: (limits.get(key) or [None])[0]  # noqa: E731
    if kind == UNIVARIATE:
        return {
            "centre": first("centre"),
            "lower": first("lower"),
            "upper": first("upper"),
            "scale": first("scale"),
            "rule1_z": limits.get("rule1_z"),
            "rules": limits.get("rules"),
        }
    if kind == DURATION_KIND:
        return {"centre": first("median"), "lower": first("lower"), "upper": first("upper")}
    return limits


def list_models(rt: Runtime, recipe: str | None = None, *, active_only: bool = True) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        stmt = select(TrendModel).order_by(
            TrendModel.recipe, TrendModel.bpmn_id, TrendModel.kind, TrendModel.parameter, TrendModel.version
        )
        if recipe:
            stmt = stmt.where(TrendModel.recipe == recipe)
        if active_only:
            stmt = stmt.where(TrendModel.active.is_(True))
        return [describe_model(m) for m in s.scalars(stmt)]


def model_cards(rt: Runtime, recipe: str | None = None) -> list[ModelCard]:
    """The active models as ModelCards (for ``analytics.report.format_models``)."""
    with rt.transaction() as s:
        stmt = (
            select(TrendModel)
            .where(TrendModel.active.is_(True))
            .order_by(TrendModel.recipe, TrendModel.bpmn_id, TrendModel.kind, TrendModel.parameter)
        )
        if recipe:
            stmt = stmt.where(TrendModel.recipe == recipe)
        return [ModelCard.from_dict(m.card) for m in s.scalars(stmt)]


def _active(
    s: Session, recipe: str, bpmn_id: str, parameter: str | None = None, kind: str | None = None
) -> list[TrendModel]:
    stmt = select(TrendModel).where(
        TrendModel.recipe == recipe, TrendModel.bpmn_id == bpmn_id, TrendModel.active.is_(True)
    )
    if parameter is not None:
        stmt = stmt.where(TrendModel.parameter == parameter)
    if kind is not None:
        stmt = stmt.where(TrendModel.kind == kind)
    return list(s.scalars(stmt.order_by(TrendModel.kind, TrendModel.parameter)))


# --- scoring one step (the ``score_step`` job) -----------------------------------------


def _fmt(x: float | None) -> str:
    return "?" if x is None else f"{x:.4g}"


def score_step(rt: Runtime, batch_id: str, task_id: Any, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Score one committed operator step against the active models of its recipe step
    and raise an exception per finding. Safe to run twice: a finding already raised
    for this step, parameter and rule is not raised again."""
    seq = int(payload["seq"])
    findings: list[dict[str, Any]] = []
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            return []
        step = s.scalars(select(Step).where(Step.batch_id == batch.id, Step.seq == seq)).first()
        if step is None or step.kind != "user_task":
            return []
        rv = s.get(RecipeVersion, step.recipe_version_id)
        recipe = rv.recipe
        models = _active(s, recipe, step.bpmn_id)
        if not models:
            return []
        raised = {
            (e.parameter, (e.details or {}).get("rule"))
            for e in s.scalars(
                select(BatchException).where(
                    BatchException.batch_id == batch.id,
                    BatchException.step_seq == seq,
                    BatchException.source == "trend",
                )
            )
        }
        fields = number_fields(rv.forms.get(step.form_id) if step.form_id else None)
        this = next(
            (p for p in step_points(s, recipe, bpmn_id=step.bpmn_id, batch_pks=[batch.id]) if p.seq == seq), None
        )
        if this is None:
            return []
        univariate = [m for m in models if m.kind == UNIVARIATE and m.parameter in this.values]
        history = _recent_values(s, recipe, step.bpmn_id, RUN_WINDOW, before=this) if univariate else []
        for m in univariate:
            x = as_number(this.values.get(m.parameter))
            recorded_unit = (step.units or {}).get(m.parameter)
            if x is None or (recorded_unit and m.unit and recorded_unit != m.unit):
                continue  # nothing to compare, or the form changed the unit since training
            f = fields.get(m.parameter)
            findings += _univariate_findings(m, x, history, f)
        for m in models:
            if m.kind == DURATION_KIND:
                findings += _duration_findings(m, this)
    out = []
    for finding in findings:
        if (finding["parameter"], finding["details"]["rule"]) in raised:
            continue
        out.append(batches.raise_exception(rt, batch_id, source="trend", step_seq=seq, **finding))
    return out


def _recent_values(s: Session, recipe: str, bpmn_id: str, n: int, *, before: StepPoint) -> list[dict[str, Any]]:
    """Values (as corrected) of the last ``n`` records of a step in other batches of the
    recipe (aborted ones left out) recorded before ``before``, oldest first."""
    versions = list(recipe_versions(s, recipe))
    rows = list(
        s.execute(
            select(Step.batch_id, Step.seq, Step.values)
            .join(Batch, Batch.id == Step.batch_id)
            .where(
                Batch.recipe_version_id.in_(versions),
                Batch.state != "aborted",
                Step.bpmn_id == bpmn_id,
                Step.kind == "user_task",
                Step.batch_id != before.batch_pk,
                Step.recorded_at <= before.recorded_at,
            )
            .order_by(Step.recorded_at.desc(), Step.batch_id.desc(), Step.seq.desc())
            .limit(n)
        )
    )
    rows.reverse()
    fixes = _corrections(s, sorted({r[0] for r in rows}))
    return [{**(values or {}), **fixes.get((batch_pk, seq), {})} for batch_pk, seq, values in rows]


def _univariate_findings(
    m: TrendModel, x: float, history: list[dict[str, Any]], f: NumberField | None
) -> list[dict[str, Any]]:
    monitor = ModelCard.from_dict(m.card).monitor()
    seq_values = [v for v in (as_number(values.get(m.parameter)) for values in history) if v is not None]
    X = np.array([[v] for v in seq_values + [x]])
    last = len(X) - 1
    hits = [v for v in monitor.rule_violations(X) if v.row == last]
    if not hits:
        return []
    lim = _scalar_limits(m.kind, m.card["limits"])
    label = f.label if f else m.parameter
    unit = f" {m.unit}" if m.unit else ""
    critical = bool(f.critical if f else m.critical)
    contribution = float(monitor.explain(X[last:])[0, 0])
    out = []
    for hit in hits:
        rule1 = hit.rule == 1
        where = "above" if x > lim["centre"] else "below"
        message = (
            f"{label} {_fmt(x)}{unit} is out of trend (rule {hit.rule}: {RULES[hit.rule]}); "
            f"expected {_fmt(lim['lower'])} to {_fmt(lim['upper'])}{unit}, centre {_fmt(lim['centre'])}"
            + (f", {where} the centre" if not rule1 else "")
            + (" - critical process parameter" if critical else "")
        )
        details = {
            "value": x,
            "unit": m.unit,
            "centre": lim["centre"],
            "lower": lim["lower"],
            "upper": lim["upper"],
            "limit": (lim["upper"] - lim["centre"]),
            "expected": f"{_fmt(lim['centre'])} ± {_fmt(lim['upper'] - lim['centre'])}",
            "rule": hit.rule,
            "rule_description": RULES[hit.rule],
            "statistic": "z / rule-1 limit",
            "z_over_limit": contribution,
            "contributions": {m.parameter: contribution},
            "critical": critical,
            "bpmn_id": m.bpmn_id,
            "model_id": m.id,
            "model_version": m.version,
            "points_in_sequence": len(X),
        }
        out.append(
            {
                "severity": "action" if (rule1 and critical) else "alert",
                "message": message,
                "parameter": m.parameter,
                "details": details,
                "deviation": bool(rule1 and critical),
            }
        )
    return out


def _duration_findings(m: TrendModel, this: StepPoint) -> list[dict[str, Any]]:
    monitor = ModelCard.from_dict(m.card).monitor()
    X = np.array([[this.minutes]])
    if monitor.predict(X)[0] == 1:
        return []
    lim = _scalar_limits(m.kind, m.card["limits"])
    long = bool(monitor.too_long(X)[0, 0])
    z = float(monitor.explain(X)[0, 0])
    message = (
        f"step {m.bpmn_id} took {this.minutes:.0f} min, {'longer' if long else 'shorter'} than usual "
        f"({_fmt(lim['lower'])} to {_fmt(lim['upper'])} min, median {_fmt(lim['centre'])} min)"
    )
    details = {
        "value": this.minutes,
        "unit": "min",
        "centre": lim["centre"],
        "lower": lim["lower"],
        "upper": lim["upper"],
        "expected": f"{_fmt(lim['lower'])} to {_fmt(lim['upper'])} min",
        "rule": "duration",
        "statistic": "log-duration z / limit",
        "z_over_limit": z,
        "direction": "too_long" if long else "too_short",
        "contributions": {"duration": z},
        "bpmn_id": m.bpmn_id,
        "model_id": m.id,
        "model_version": m.version,
        "approximation": "time since the previous step record of the batch",
    }
    return [{"severity": "alert", "message": message, "parameter": None, "details": details, "deviation": False}]


def install(rt: Runtime) -> None:
    """Register the ``score_step`` job handler on this runtime: from then on every
    operator step schedules its scoring job in its own transaction. Also registers
    ``score_samples`` (equipment time series, ``analytics.equipment``)."""
    from .equipment import JOB, score_samples

    rt.job_handlers["score_step"] = score_step
    rt.job_handlers[JOB] = score_samples


# --- charts: values across batches, with the limits and the rules they broke ----------


def trend(
    rt: Runtime, recipe: str, bpmn_id: str, parameter: str, *, batch: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """The values of one step parameter across batches (oldest first, at most ``limit``),
    with the active model's centre and limits and the rules each point broke (run rules
    evaluated over the points shown, in order)."""
    with rt.transaction() as s:
        if not recipe_versions(s, recipe):
            raise NotFound(f"recipe {recipe!r} not found", code="recipe_not_found")
        models = _active(s, recipe, bpmn_id, parameter, UNIVARIATE)
        model = models[0] if models else None
        pts = [p for p in step_points(s, recipe, bpmn_id=bpmn_id) if as_number(p.values.get(parameter)) is not None]
        pts = _keep_current(pts, batch, limit)
        values = [as_number(p.values[parameter]) for p in pts]
        rules_by_row: dict[int, list[int]] = defaultdict(list)
        if model is not None and values:
            monitor = ModelCard.from_dict(model.card).monitor()
            for v in monitor.rule_violations(np.array([[v] for v in values])):
                rules_by_row[v.row].append(v.rule)
        trained = set(model.card.get("training_batch_ids", [])) if model else set()
        return {
            "recipe": recipe,
            "bpmn_id": bpmn_id,
            "parameter": parameter,
            "kind": UNIVARIATE,
            "unit": model.unit if model else None,
            "model": describe_model(model) if model else None,
            "points": [
                _describe_point(p, v, rules_by_row.get(i, []), p.batch_id in trained, batch)
                for i, (p, v) in enumerate(zip(pts, values))
            ],
        }


def durations(rt: Runtime, recipe: str, bpmn_id: str, *, batch: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Durations of one step across batches with the duration model's median and limits."""
    with rt.transaction() as s:
        if not recipe_versions(s, recipe):
            raise NotFound(f"recipe {recipe!r} not found", code="recipe_not_found")
        models = _active(s, recipe, bpmn_id, DURATION, DURATION_KIND)
        model = models[0] if models else None
        pts = _keep_current(step_points(s, recipe, bpmn_id=bpmn_id), batch, limit)
        flags: list[list[Any]] = [[] for _ in pts]
        if model is not None and pts:
            monitor = ModelCard.from_dict(model.card).monitor()
            X = np.array([[p.minutes] for p in pts])
            for i, (hi, lo) in enumerate(zip(monitor.too_long(X)[:, 0], monitor.too_short(X)[:, 0])):
                if hi:
                    flags[i].append("too_long")
                elif lo:
                    flags[i].append("too_short")
        trained = set(model.card.get("training_batch_ids", [])) if model else set()
        return {
            "recipe": recipe,
            "bpmn_id": bpmn_id,
            "parameter": None,
            "kind": DURATION_KIND,
            "unit": "min",
            "model": describe_model(model) if model else None,
            "points": [
                _describe_point(p, p.minutes, flags[i], p.batch_id in trained, batch) for i, p in enumerate(pts)
            ],
        }


def _keep_current(pts: list[StepPoint], batch: str | None, limit: int) -> list[StepPoint]:
    """The newest ``limit`` points, always including those of ``batch``."""
    limit = max(1, min(int(limit), 1000))
    if len(pts) <= limit:
        return pts
    tail = pts[-limit:]
    if batch and not any(p.batch_id == batch for p in tail):
        mine = [p for p in pts if p.batch_id == batch]
        tail = sorted(tail[len(mine) :] + mine, key=lambda p: (p.recorded_at, p.batch_pk, p.seq))
    return tail


def _describe_point(p: StepPoint, value: float, rules: list, trained: bool, batch: str | None) -> dict[str, Any]:
    return {
        "batch_id": p.batch_id,
        "seq": p.seq,
        "recorded_at": p.recorded_at.isoformat(),
        "value": value,
        "batch_state": p.batch_state,
        "released": p.released,
        "training": trained,
        "current": bool(batch) and p.batch_id == batch,
        "rules": sorted(set(rules), key=str),
    }


def findings(rt: Runtime, recipe: str | None = None, *, limit: int = 200) -> dict[str, Any]:
    """Out-of-trend findings (exceptions with source ``trend``), newest first, and a
    summary per recipe: how many, how many still open, which steps and parameters."""
    with rt.transaction() as s:
        stmt = (
            select(BatchException, Batch.batch_id, RecipeVersion.recipe, RecipeVersion.version)
            .join(Batch, Batch.id == BatchException.batch_id)
            .join(RecipeVersion, RecipeVersion.id == Batch.recipe_version_id)
            .where(BatchException.source == "trend")
        )
        if recipe:
            stmt = stmt.where(RecipeVersion.recipe == recipe)
        rows = list(s.execute(stmt.order_by(BatchException.id.desc())))
        summary: dict[str, dict[str, Any]] = {}
        for exc, batch_id, rec, _ver in rows:
            entry = summary.setdefault(
                rec,
                {"recipe": rec, "findings": 0, "open": 0, "action": 0, "batches": set(), "by_step": defaultdict(int)},
            )
            entry["findings"] += 1
            entry["open"] += exc.status == "open"
            entry["action"] += exc.severity == "action"
            entry["batches"].add(batch_id)
            step = (exc.details or {}).get("bpmn_id") or "?"
            entry["by_step"][f"{step} / {exc.parameter or 'duration'}"] += 1
        models = dict(
            s.execute(
                select(TrendModel.recipe, func.count()).where(TrendModel.active.is_(True)).group_by(TrendModel.recipe)
            ).all()
        )
        recipes = []
        for rec in sorted(set(summary) | set(models)):
            entry = summary.get(
                rec, {"recipe": rec, "findings": 0, "open": 0, "action": 0, "batches": set(), "by_step": {}}
            )
            recipes.append(
                {
                    **entry,
                    "batches": len(entry["batches"]),
                    "by_step": dict(entry["by_step"]),
                    "models": models.get(rec, 0),
                }
            )
        items = []
        for exc, batch_id, rec, ver in rows[:limit]:
            d = batches.describe_exception(exc)
            items.append(
                {
                    **d,
                    "batch_id": batch_id,
                    "recipe": rec,
                    "recipe_version": ver,
                    "bpmn_id": (exc.details or {}).get("bpmn_id"),
                }
            )
        return {"recipes": recipes, "findings": items}
