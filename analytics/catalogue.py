"""The catalogue of trained out-of-trend models: the ``trend_model`` rows (one per
recipe step and parameter, or per unit procedure, each a versioned model card), which
of them are active, and how a model and its limits are described to a person or the API.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import TrendModel
from engine.runtime import Runtime

from .store import ModelCard

#: ``TrendModel.kind`` of a per-parameter value model and of a step-duration model
UNIVARIATE, DURATION_KIND = "UnivariateMonitor", "DurationMonitor"
DURATION = ""  # ``TrendModel.parameter`` of a step-duration model


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


def active_models(
    s: Session, recipe: str, bpmn_id: str, parameter: str | None = None, kind: str | None = None
) -> list[TrendModel]:
    """The active models of a recipe step (optionally of one parameter and kind)."""
    stmt = select(TrendModel).where(
        TrendModel.recipe == recipe, TrendModel.bpmn_id == bpmn_id, TrendModel.active.is_(True)
    )
    if parameter is not None:
        stmt = stmt.where(TrendModel.parameter == parameter)
    if kind is not None:
        stmt = stmt.where(TrendModel.kind == kind)
    return list(s.scalars(stmt.order_by(TrendModel.kind, TrendModel.parameter)))


def add_version(s: Session, row: TrendModel) -> None:
    """Add a newly trained model as the active one: the model it replaces (same recipe,
    step or unit procedure, parameter and kind) stays in the catalogue, inactive."""
    for old in s.scalars(
        select(TrendModel).where(
            TrendModel.recipe == row.recipe,
            TrendModel.bpmn_id == row.bpmn_id,
            TrendModel.parameter == row.parameter,
            TrendModel.kind == row.kind,
            TrendModel.active.is_(True),
        )
    ):
        old.active = False
    row.active = True
    s.add(row)
