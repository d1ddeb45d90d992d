"""Scoring one operator step after it is committed (the ``score_step`` job): its values
against the active value models of its recipe step (rule 1 on the value, run rules over
the recent history of the step in other batches), its duration against the duration
model; each finding becomes an exception for review by exception.

Exactly once: each finding carries a key (batch, recipe step, parameter, rule, model) that
the database holds unique (``batch_exception.finding_key``), so two workers scoring the
same step at the same moment raise it once; the read of what was raised already below
only saves work. Titles and severities say what a finding is - out of trend, by which
rule, against which model and history (``engine.vocabulary.exception_title``) - never a
limit breach: the value may well be inside its alert and action limits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import select

from engine import batches
from engine.models import Batch, BatchException, RecipeVersion, Step, TrendModel
from engine.runtime import Runtime
from engine.vocabulary import ExceptionSource, LimitLevel, StepKind

from .batch_record import DURATION_BASIS, NumberField, StepPoint, as_number, number_fields, recent_values, step_points
from .catalogue import DURATION_KIND, UNIVARIATE, active_models, scalar_limits
from .store import ModelCard
from .univariate import RULES

#: how many earlier points of the same step and parameter the run rules look at
RUN_WINDOW = 20


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
        if step is None or step.kind != StepKind.USER_TASK:
            return []
        rv = s.get(RecipeVersion, step.recipe_version_id)
        recipe = rv.recipe
        models = active_models(s, recipe, step.bpmn_id)
        if not models:
            return []
        batch_pk = batch.id
        # one finding per parameter and rule for a step in a batch: the instances of a
        # multi-instance or repeated step are scored each, but a reviewer decides once
        raised = {
            (e.parameter, (e.details or {}).get("rule"))
            for e in s.scalars(
                select(BatchException).where(
                    BatchException.batch_id == batch.id,
                    BatchException.source == ExceptionSource.TREND,
                )
            )
            if e.step_seq == seq or (e.details or {}).get("bpmn_id") == step.bpmn_id
        }
        fields = number_fields(rv.forms.get(step.form_id) if step.form_id else None)
        this = next(
            (p for p in step_points(s, recipe, bpmn_id=step.bpmn_id, batch_pks=[batch.id]) if p.seq == seq), None
        )
        if this is None:
            return []
        univariate = [m for m in models if m.kind == UNIVARIATE and m.parameter in this.values]
        history = recent_values(s, recipe, step.bpmn_id, RUN_WINDOW, before=this) if univariate else []
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
        d = finding["details"]
        # one finding per batch, recipe step, parameter, rule and model (the instances of a
        # multi-instance step are decided once, as above), enforced by the database
        key = f"oot|{batch_pk}|{d['bpmn_id']}|{finding['parameter'] or 'duration'}|{d['rule']}|model {d['model_id']}"
        out.append(
            batches.raise_exception(
                rt, batch_id, source=ExceptionSource.TREND, step_seq=seq, finding_key=key, **finding
            )
        )
    return out


def _history(m: TrendModel) -> dict[str, Any]:
    """Which model raised a finding and what it learned from (shown in its title)."""
    card = m.card or {}
    return {
        "model_id": m.id,
        "model_version": m.version,
        "training_batches": len(card.get("training_batch_ids") or []),
        "trained_at": card.get("trained_at"),
    }


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
    lim = scalar_limits(m.kind, m.card["limits"])
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
            + f" (model v{m.version}, {len((m.card or {}).get('training_batch_ids') or [])} batches)"
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
            **_history(m),
            "points_in_sequence": len(X),
        }
        out.append(
            {
                "severity": LimitLevel.ACTION if (rule1 and critical) else LimitLevel.ALERT,
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
    lim = scalar_limits(m.kind, m.card["limits"])
    long = bool(monitor.too_long(X)[0, 0])
    z = float(monitor.explain(X)[0, 0])
    message = (
        f"step {m.bpmn_id} took {this.minutes:.1f} min ({DURATION_BASIS[this.basis]}), "
        f"{'longer' if long else 'shorter'} than usual "
        f"({_fmt(lim['lower'])} to {_fmt(lim['upper'])} min, median {_fmt(lim['centre'])} min; "
        f"model v{m.version})"
    )
    details = {
        "value": round(this.minutes, 3),
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
        **_history(m),
        "duration_basis": this.basis,
        "duration_measured": DURATION_BASIS[this.basis],
        "ready_at": this.ready_at.isoformat() if this.ready_at else None,
        "opened_at": this.opened_at.isoformat() if this.opened_at else None,
        "completed_at": this.recorded_at.isoformat(),
    }
    return [
        {"severity": LimitLevel.ALERT, "message": message, "parameter": None, "details": details, "deviation": False}
    ]
