"""The approved models of a recipe step as the scoring of one operator step uses them:
parsed once per process, and scored on one value without scikit-learn's input checks.

Why a cache: a ``trend_model`` row never changes once written (retraining adds a new
version; approval and retirement only flip ``active``, which ``active_models`` reads
fresh on every call), so the parsed monitor of a model id is the same for the life of
the process. Rebuilding it from its card on every step cost more than scoring with it.

Why a fast path: scoring one step asks a monitor about one number (or a short run of
numbers for the run rules). scikit-learn's ``validate_data`` costs ~1 ms per call for
that, more than the arithmetic; the values here are already plain finite floats in a
one-column array, which is all the validation would establish. The fast path calls the
same internal statistic the public ``predict`` / ``rule_violations`` / ``explain`` call
after validating, so it finds exactly what they find; a model of any other shape goes
through the public API.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import TrendModel

from .catalogue import active_model_keys, scalar_limits
from .store import ModelCard
from .univariate import nelson_rules

#: parsed models kept per process (a plant has a few hundred active models)
CACHE_SIZE = 2000


@dataclass(frozen=True)
class StepModel:
    """One approved model of a recipe step, parsed: what a finding needs of its row
    (``id``, ``version``, the card's training batches) and the fitted monitor."""

    id: int
    kind: str
    bpmn_id: str
    parameter: str
    unit: str | None
    critical: bool
    version: int
    card: dict[str, Any]
    limits: dict[str, Any]
    monitor: Any

    @property
    def fast(self) -> bool:
        """A one-column monitor: the fast path applies."""
        return int(getattr(self.monitor, "n_features_in_", 0)) == 1


#: keyed by the row's identity (``catalogue.active_model_keys``), not its id alone: a
#: process that meets several databases (tests, tools) never takes one's model for another's
_cache: dict[tuple[Any, ...], StepModel] = {}
_lock = threading.Lock()


def _parse(row: TrendModel) -> StepModel:
    return StepModel(
        row.id,
        row.kind,
        row.bpmn_id,
        row.parameter,
        row.unit,
        bool(row.critical),
        row.version,
        row.card,
        scalar_limits(row.kind, row.card["limits"]),
        ModelCard.from_dict(row.card).monitor(),
    )


def step_models(s: Session, recipe: str, bpmn_id: str) -> list[StepModel]:
    """The models that score this recipe step now (``catalogue.active_models``: active
    versions of an approved run, read fresh on every call), each parsed once per process."""
    keys = active_model_keys(s, recipe, bpmn_id)
    if not keys:
        return []
    got = {key: _cache.get(key) for key in keys}
    missing = {key[0]: key for key, m in got.items() if m is None}
    if missing:
        parsed = {
            missing[row.id]: _parse(row) for row in s.scalars(select(TrendModel).where(TrendModel.id.in_(missing)))
        }
        got.update(parsed)
        with _lock:
            if len(_cache) + len(parsed) > CACHE_SIZE:
                _cache.clear()
            _cache.update(parsed)
    return sorted((m for m in got.values() if m is not None), key=lambda m: (m.kind, m.parameter))


def clear() -> None:
    """Forget the parsed models (tests; a process never needs it: rows are immutable)."""
    with _lock:
        _cache.clear()


# --- the arithmetic on already clean floats ---------------------------------------


def rule_hits(m: StepModel, values: list[float]) -> tuple[list[int], float]:
    """The rules that fire on the last of ``values`` (a batch-to-batch sequence, the
    step's own value last) and its signed distance in units of the rule-1 limit:
    what ``UnivariateMonitor.rule_violations`` and ``explain`` say about that row."""
    X = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    mon = m.monitor
    last = len(X) - 1
    if not m.fast:
        hits = sorted({v.rule for v in mon.rule_violations(X) if v.row == last})
        return hits, float(mon.explain(X[last:])[0, 0])
    z = mon._z(X)
    fired = nelson_rules(z, mon.limit_, [r for r in mon.rules if r != 1])
    if 1 in mon.rules:
        fired[1] = np.abs(z) > mon.limit_ * mon.threshold_
    hits = sorted(rule for rule, flags in fired.items() if bool(flags[last].any()))
    return hits, float(z[last, 0] / mon.limit_)


def duration_check(m: StepModel, minutes: float) -> tuple[bool, bool, float]:
    """(out of trend, too long, signed log-distance in units of the limit) of one step
    duration: what ``DurationMonitor.predict``, ``too_long`` and ``explain`` say."""
    X = np.array([[float(minutes)]], dtype=np.float64)
    mon = m.monitor
    if not m.fast:
        return bool(mon.predict(X)[0] != 1), bool(mon.too_long(X)[0, 0]), float(mon.explain(X)[0, 0])
    statistic = float(mon._statistic(X)[0])
    z = float(mon._z(X)[0, 0] / mon.limit_)
    # predict: -statistic - offset_ >= 0 is normal
    out = not (-statistic - mon.offset_ >= 0)
    return out, z > mon.threshold_, z
