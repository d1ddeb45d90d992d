"""The catalogue of trained out-of-trend models: the ``trend_model`` rows (one per
recipe step and parameter, or per unit procedure, each a versioned model card), which
of them are active, and how a model and its limits are described to a person or the API.

A model is a GMP record: training adds *pending* versions (``add_version``) that score
nothing; QA's e-signed approval of their training run (``analytics.model_review``)
makes them active and retires the versions they replace. Only active versions of an
approved run score (``active_models``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import TrendModel, TrendTrainingDecision
from engine.runtime import Runtime

from .store import ModelCard

#: ``TrendModel.kind`` of a per-parameter value model and of a step-duration model
UNIVARIATE, DURATION_KIND = "UnivariateMonitor", "DurationMonitor"
DURATION = ""  # ``TrendModel.parameter`` of a step-duration model
#: ``Session.info`` key of the models added in this transaction (their training run is
#: recorded once they are all trained: ``analytics.training``)
ADDED = "analytics.added_models"
APPROVED = "approved"


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
        "training_id": m.training_id,
        "training_batches": len(m.card.get("training_batch_ids", [])),
        "limits": scalar_limits(m.kind, limits),
    }
    if with_card:
        out["card"] = m.card
    return out


def scalar_limits(kind: str, limits: dict[str, Any]) -> dict[str, Any]:
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


def _approved():
    """Models whose training run QA approved (e-signed decision ``approved``)."""
    return TrendModel.training_id.in_(
        select(TrendTrainingDecision.training_id).where(TrendTrainingDecision.decision == APPROVED)
    )


def active_models(
    s: Session, recipe: str, bpmn_id: str, parameter: str | None = None, kind: str | None = None
) -> list[TrendModel]:
    """The models of a recipe step (optionally of one parameter and kind) that score:
    active versions of an approved training run - never a pending or rejected one."""
    stmt = select(TrendModel).where(*_scoring(recipe, bpmn_id))
    if parameter is not None:
        stmt = stmt.where(TrendModel.parameter == parameter)
    if kind is not None:
        stmt = stmt.where(TrendModel.kind == kind)
    return list(s.scalars(stmt.order_by(TrendModel.kind, TrendModel.parameter)))


def _scoring(recipe: str, bpmn_id: str) -> tuple[Any, ...]:
    """The condition of "scores now": active and of an approved training run."""
    return (TrendModel.recipe == recipe, TrendModel.bpmn_id == bpmn_id, TrendModel.active.is_(True), _approved())


def active_model_keys(s: Session, recipe: str, bpmn_id: str) -> list[tuple[Any, ...]]:
    """(id, training run, trained at, kind, parameter) of each of ``active_models``,
    without reading their cards: enough to know a model parsed before is this very row
    (``analytics.step_models`` keeps them parsed)."""
    stmt = select(
        TrendModel.id, TrendModel.training_id, TrendModel.trained_at, TrendModel.kind, TrendModel.parameter
    ).where(*_scoring(recipe, bpmn_id))
    return [tuple(row) for row in s.execute(stmt.order_by(TrendModel.id))]


def add_version(s: Session, row: TrendModel) -> None:
    """Add a newly trained model as a *pending* version of the training run in progress
    (kept in ``s.info[ADDED]`` until the run is recorded): inactive, so it scores nothing
    until QA approves the run; the version in force (same recipe, step or unit
    procedure, parameter and kind) keeps scoring until then (``activate``)."""
    row.active = False
    s.add(row)
    s.info.setdefault(ADDED, []).append(row)


def activate(s: Session, training_id: int) -> list[TrendModel]:
    """Put an approved run's models in force: each replaces the active version of the
    same recipe, step, parameter and kind, which stays in the catalogue, inactive."""
    made = list(s.scalars(select(TrendModel).where(TrendModel.training_id == training_id)))
    for row in made:
        for old in s.scalars(
            select(TrendModel).where(
                TrendModel.recipe == row.recipe,
                TrendModel.bpmn_id == row.bpmn_id,
                TrendModel.parameter == row.parameter,
                TrendModel.kind == row.kind,
                TrendModel.active.is_(True),
                TrendModel.id != row.id,
            )
        ):
            old.active = False
        row.active = True
    return made
