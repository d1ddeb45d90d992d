"""Out-of-trend findings for review by exception: the exceptions the trend models raised
(newest first) and a summary per recipe - how many, how many still open, which steps and
parameters, how many models are active."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from engine import batches
from engine.models import Batch, BatchException, RecipeVersion, TrendModel
from engine.runtime import Runtime
from engine.vocabulary import ExceptionSource, ExceptionStatus, LimitLevel


def findings(rt: Runtime, recipe: str | None = None, *, limit: int = 200) -> dict[str, Any]:
    """Out-of-trend findings (exceptions with source ``trend``), newest first, and a
    summary per recipe: how many, how many still open, which steps and parameters."""
    with rt.transaction() as s:
        stmt = (
            select(BatchException, Batch.batch_id, RecipeVersion.recipe, RecipeVersion.version)
            .join(Batch, Batch.id == BatchException.batch_id)
            .join(RecipeVersion, RecipeVersion.id == Batch.recipe_version_id)
            .where(BatchException.source == ExceptionSource.TREND)
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
            entry["open"] += exc.status == ExceptionStatus.OPEN
            entry["action"] += (exc.details or {}).get("level") == LimitLevel.ACTION
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
