"""How a batch, a step, a signature and an exception are shown — the same JSON shapes
for the API, the CLI, the batch page and the events."""

from __future__ import annotations

from typing import Any

from ..models import Batch, BatchException, RecipeVersion, Signature, Step
from ..vocabulary import exception_title


def describe(batch: Batch, rv: RecipeVersion | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "batch_id": batch.batch_id,
        "state": batch.state,
        "recipe_version_id": batch.recipe_version_id,
        "recipe_hash": batch.recipe_hash,
        "parameters": batch.parameters,
        "steps": batch.step_count,
        "created_at": batch.created_at.isoformat(),
        "created_by": batch.created_by,
        "completed_at": batch.completed_at.isoformat() if batch.completed_at else None,
        "reviewed_at": batch.reviewed_at.isoformat() if batch.reviewed_at else None,
        "hold": (
            {
                "by": batch.held_by,
                "at": batch.held_at.isoformat() if batch.held_at else None,
                "reason": batch.hold_reason,
            }
            if batch.held_by
            else None
        ),
    }
    if rv is not None:
        out["recipe"] = {"id": rv.id, "recipe": rv.recipe, "version": rv.version, "name": rv.name}
    return out


def describe_step(step: Step) -> dict[str, Any]:
    return {
        "seq": step.seq,
        "kind": step.kind,
        "task_id": step.task_id,
        "bpmn_id": step.bpmn_id,
        "task_name": step.task_name,
        "form": step.form_id,
        "user": step.user,
        "recorded_at": step.recorded_at.isoformat(),
        "values": step.values,
        "values_hash": step.values_hash,
        "recipe_version_id": step.recipe_version_id,
        "units": step.units,
        "form_hash": step.form_hash,
    }


def describe_signature(sig: Signature, superseded: bool) -> dict[str, Any]:
    return {
        "role": sig.role,
        "username": sig.username,
        "printed_name": sig.printed_name,
        "meaning": sig.meaning,
        "signed_at": sig.signed_at.isoformat(),
        "content_hash": sig.content_hash,
        "superseded": superseded,
    }


def describe_exception(exc: BatchException) -> dict[str, Any]:
    """An exception as raised (the step path's answer); with its dispositions and
    deviation it is ``engine.quality.exceptions.describe``."""
    return {
        "id": exc.id,
        "step_seq": exc.step_seq,
        "category": exc.category,
        "title": exception_title(exc.category, exc.details),
        "source": exc.source,
        "severity": exc.severity,
        "parameter": exc.parameter,
        "message": exc.message,
        "value": exc.value,
        "limits": exc.limits,
        "details": exc.details,
        "status": exc.status,
        "signatures_required": exc.signatures_required,
        "blocks_release": exc.blocks_release,
        "created_at": exc.created_at.isoformat(),
    }
