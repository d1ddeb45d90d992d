"""Values as corrected: the one place that applies the GMP correction rule.

A recorded value is never changed. A correction is a row of its own (old, new, reason,
who, when, signed); from then on the corrected value replaces the original in every
later use — the batch record's ``current_values``, the next correction's form check,
analytics training and scoring — while the original stays visible in the record.
Everything that needs "the value as it stands now" reads it through this module, so
the rule cannot drift between its users.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Correction, Step
from .workflow_store import canonical


def correction_text(value: Any) -> str:
    """Corrections keep old and new values as canonical JSON text, so any JSON type
    comes back exactly as it was entered."""
    return canonical(value)


def corrected_value(correction: Correction) -> Any:
    """The value a correction put in place (a NULL column, never written by Batchline,
    reads as a null value rather than an error)."""
    return None if correction.new is None else json.loads(correction.new)


def replaced_value(correction: Correction) -> Any:
    """The value a correction replaced (kept, never changed: the original stays visible)."""
    return None if correction.old is None else json.loads(correction.old)


def as_corrected(values: Mapping[str, Any] | None, corrections: Iterable[Correction]) -> dict[str, Any]:
    """``values`` with each correction applied in the order it was made (a later
    correction of the same field wins)."""
    current = dict(values or {})
    for corr in corrections:
        current[corr.field] = corrected_value(corr)
    return current


def corrections_by_step(s: Session, batch_pks: Iterable[int]) -> dict[tuple[int, int], list[Correction]]:
    """Every correction of the given batches, keyed by (batch primary key, step seq),
    oldest first."""
    pks = sorted(set(batch_pks))
    out: dict[tuple[int, int], list[Correction]] = {}
    if not pks:
        return out
    for corr in s.scalars(select(Correction).where(Correction.batch_id.in_(pks)).order_by(Correction.id)):
        out.setdefault((corr.batch_id, corr.step_seq), []).append(corr)
    return out


def current_values(s: Session, step: Step) -> dict[str, Any]:
    """One step's values as corrected."""
    rows = s.scalars(
        select(Correction)
        .where(Correction.batch_id == step.batch_id, Correction.step_seq == step.seq)
        .order_by(Correction.id)
    )
    return as_corrected(step.values, rows)
