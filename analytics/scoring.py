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

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import batches
from engine.models import Batch, BatchException, RecipeVersion, Step
from engine.runtime import Runtime
from engine.vocabulary import ExceptionSource, LimitLevel, StepKind

from .batch_record import (
    DURATION_BASIS,
    NumberField,
    StepPoint,
    as_number,
    number_fields,
    recent_values,
    step_point,
    version_ids,
)
from .catalogue import DURATION_KIND, UNIVARIATE
from .scoring_queue import claim_waiting, finish_claimed
from .step_models import StepModel, duration_check, rule_hits, step_models
from .univariate import RULES

#: how many earlier points of the same step and parameter the run rules look at
RUN_WINDOW = 20


def _fmt(x: float | None) -> str:
    return "?" if x is None else f"{x:.4g}"


def score_step(rt: Runtime, batch_id: str, task_id: Any, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Score one committed operator step against the active models of its recipe step
    and raise an exception per finding; then score the other steps whose scoring jobs
    are waiting (``analytics.scoring_queue``), so a busy plant pays the job overhead once
    for many steps. Safe to run twice: a finding already raised for this step,
    parameter and rule is not raised again. Returns this step's exceptions."""
    seq = int(payload["seq"])
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            return []
        findings = score_in(s, batch, seq)
        claimed = claim_waiting(rt, s, score_in)
    out = raise_findings(rt, batch_id, seq, findings)
    finish_claimed(rt, claimed, raise_findings)
    return out


def score_in(s: Session, batch: Batch, seq: int, memo: dict[Any, Any] | None = None) -> list[dict[str, Any]]:
    """The findings of step ``seq`` of ``batch`` (nothing raised yet), reading only that
    step, its corrections and task times, and the last ``RUN_WINDOW`` batches' values of
    the same recipe step - not the whole record of the batch or the recipe. ``memo``:
    what one transaction scoring many steps reads once (the models in force and the
    recipe's versions cannot change under it)."""
    memo = {} if memo is None else memo
    step = s.scalars(select(Step).where(Step.batch_id == batch.id, Step.seq == seq)).first()
    if step is None or step.kind != StepKind.USER_TASK:
        return []
    recipe = _recipe_of(s, step.recipe_version_id, memo)
    if ("models", recipe, step.bpmn_id) not in memo:
        memo["models", recipe, step.bpmn_id] = step_models(s, recipe, step.bpmn_id)
    models = memo["models", recipe, step.bpmn_id]
    if not models:
        return []
    this = step_point(s, batch, step)
    if this is None:
        return []
    findings: list[dict[str, Any]] = []
    univariate = [m for m in models if m.kind == UNIVARIATE and m.parameter in this.values]
    if univariate and ("versions", recipe) not in memo:
        memo["versions", recipe] = version_ids(s, recipe)
    history = (
        recent_values(s, recipe, step.bpmn_id, RUN_WINDOW, before=this, versions=memo["versions", recipe])
        if univariate
        else []
    )
    fields: dict[str, NumberField] | None = None
    for m in univariate:
        x = as_number(this.values.get(m.parameter))
        recorded_unit = (step.units or {}).get(m.parameter)
        if x is None or (recorded_unit and m.unit and recorded_unit != m.unit):
            continue  # nothing to compare, or the form changed the unit since training
        seq_values = [v for v in (as_number(values.get(m.parameter)) for values in history) if v is not None]
        hits, contribution = rule_hits(m, seq_values + [x])
        if hits:
            if fields is None:  # the form is read only for a finding's label
                rv = s.get(RecipeVersion, step.recipe_version_id)
                fields = number_fields(rv.forms.get(step.form_id) if step.form_id else None)
            findings += _univariate_findings(m, x, hits, contribution, len(seq_values) + 1, fields.get(m.parameter))
    for m in models:
        if m.kind == DURATION_KIND:
            findings += _duration_findings(m, this)
    if findings:
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
        findings = [f for f in findings if (f["parameter"], f["details"]["rule"]) not in raised]
    for f in findings:
        d = f["details"]
        # one finding per batch, recipe step, parameter, rule and model (the instances of a
        # multi-instance step are decided once, as above), enforced by the database
        f["finding_key"] = (
            f"oot|{batch.id}|{d['bpmn_id']}|{f['parameter'] or 'duration'}|{d['rule']}|model {d['model_id']}"
        )
    return findings


def raise_findings(rt: Runtime, batch_id: str, seq: int, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Raise each finding as a trend exception of step ``seq`` (once: ``finding_key``)."""
    return [
        batches.raise_exception(rt, batch_id, source=ExceptionSource.TREND, step_seq=seq, **finding)
        for finding in findings
    ]


def _recipe_of(s: Session, recipe_version_id: int, memo: dict[Any, Any]) -> str:
    """The recipe of a recipe version (read once per transaction: a version never moves
    to another recipe; not kept per process, where ids of other databases could meet)."""
    if ("recipe", recipe_version_id) not in memo:
        memo["recipe", recipe_version_id] = s.scalars(
            select(RecipeVersion.recipe).where(RecipeVersion.id == recipe_version_id)
        ).one()
    return memo["recipe", recipe_version_id]


def _history(m: StepModel) -> dict[str, Any]:
    """Which model raised a finding and what it learned from (shown in its title)."""
    card = m.card or {}
    return {
        "model_id": m.id,
        "model_version": m.version,
        "training_batches": len(card.get("training_batch_ids") or []),
        "trained_at": card.get("trained_at"),
    }


def _univariate_findings(
    m: StepModel, x: float, hits: list[int], contribution: float, points: int, f: NumberField | None
) -> list[dict[str, Any]]:
    lim = m.limits
    label = f.label if f else m.parameter
    unit = f" {m.unit}" if m.unit else ""
    critical = bool(f.critical if f else m.critical)
    out = []
    for rule in hits:
        rule1 = rule == 1
        where = "above" if x > lim["centre"] else "below"
        message = (
            f"{label} {_fmt(x)}{unit} is out of trend (rule {rule}: {RULES[rule]}); "
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
            "rule": rule,
            "rule_description": RULES[rule],
            "statistic": "z / rule-1 limit",
            "z_over_limit": contribution,
            "contributions": {m.parameter: contribution},
            "critical": critical,
            "bpmn_id": m.bpmn_id,
            **_history(m),
            "points_in_sequence": points,
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


def _duration_findings(m: StepModel, this: StepPoint) -> list[dict[str, Any]]:
    out_of_trend, long, z = duration_check(m, this.minutes)
    if not out_of_trend:
        return []
    lim = m.limits
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
