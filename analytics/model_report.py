"""The evaluation report of a training run: what QA reads before approving models.

Per model: its features (step, parameter, unit, kind), its limits, the batches it was
trained on, and how often it raised a false alarm on released batches it was *not*
fitted on - a claim about the limits ("1 false alarm in 370 points") is worth little if
it is only checked on the data the limits came from. Two held-out measurements:

* ``newest``: fit on the older batches, score the newest ``HOLDOUT`` of them in batch
  order (run rules see the earlier batches, as they do when a new batch is scored) -
  the question "would this model have flooded review over the last batches?";
* ``cross_validated``: leave one batch out at a time (rule 1 only: run rules need a
  sequence), or the monitor's own held-out statistics (``cv_statistic_``) when the
  monitor keeps them.

Every parameter that could not be trained honestly is listed with why ("not enough
history"). The report is plain JSON; its SHA-256 is what QA's signature names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from . import base as _base
from .base import _json_value
from .catalogue import scalar_limits

#: share of the newest batches held out of the fit for the ``newest`` measurement
HOLDOUT = 0.25
#: fewest batches the held-out fit keeps (else no held-out figure, and the report says so)
MIN_FIT = 5
#: leave-one-batch-out refits at most this many batches (beyond: the newest split only)
MAX_LOBO = 200
#: raised by a monitor's fit when it cannot hold its false-alarm rate with the rows given
#: (the monitors that know it: ``analytics.base.NotEnoughHistory``)
NOT_ENOUGH: tuple[type[Exception], ...] = tuple(
    e for e in (getattr(_base, "NotEnoughHistory", None),) if isinstance(e, type)
)
FEATURE_KINDS = {
    "UnivariateMonitor": "value",
    "DurationMonitor": "duration",
    "TimeSeriesModel": "equipment time series",
}


def fit(monitor: Any, X: np.ndarray, batch_ids: list[str]) -> Any:
    """Fit with the batch of each row as its group when the monitor takes groups
    (held-out limits per batch), else plainly."""
    if "groups" in inspect.signature(monitor.fit).parameters:
        return monitor.fit(X, groups=np.asarray(batch_ids))
    return monitor.fit(X)


def _rate(flagged: set[str], batches: list[str]) -> float | None:
    return round(len(flagged) / len(batches), 4) if batches else None


def held_out(make: Callable[[], Any], X: np.ndarray, batch_ids: list[str]) -> dict[str, Any]:
    """False alarms of a monitor built by ``make`` on released batches it was not fitted
    on (rows of ``X`` in batch order; ``batch_ids`` one per row)."""
    batches = list(dict.fromkeys(batch_ids))
    out: dict[str, Any] = {"newest": _newest(make, X, batch_ids, batches)}
    out["cross_validated"] = _cross_validated(make, X, batch_ids, batches)
    return out


def _newest(make: Callable[[], Any], X: np.ndarray, batch_ids: list[str], batches: list[str]) -> dict[str, Any]:
    n_hold = max(2, round(len(batches) * HOLDOUT))
    fit_batches, hold = batches[:-n_hold], batches[-n_hold:]
    method = f"fit on the {len(fit_batches)} older batches, scored the newest {len(hold)} in batch order"
    if len(fit_batches) < MIN_FIT:
        return {"method": method, "false_alarm_rate": None, "reason": f"fewer than {MIN_FIT} batches left to fit on"}
    held = set(hold)
    in_fit = np.array([b not in held for b in batch_ids])
    try:
        monitor = fit(make(), X[in_fit], [b for b, f in zip(batch_ids, in_fit) if f])
    except (ValueError, *NOT_ENOUGH) as exc:
        return {"method": method, "false_alarm_rate": None, "reason": str(exc)[:300]}
    flags = monitor.predict(X) == -1  # the whole sequence: run rules look back over earlier batches
    flagged = {b for b, f in zip(batch_ids, flags) if f and b in held}
    return {
        "method": method,
        "held_out_batches": len(hold),
        "held_out_batch_ids": hold,
        "false_alarms": len(flagged),
        "false_alarm_batch_ids": [b for b in hold if b in flagged],
        "false_alarm_rate": _rate(flagged, hold),
    }


def _cross_validated(
    make: Callable[[], Any], X: np.ndarray, batch_ids: list[str], batches: list[str]
) -> dict[str, Any]:
    full = make()
    try:
        fit(full, X, batch_ids)
    except (ValueError, *NOT_ENOUGH) as exc:
        return {"method": "leave one batch out", "false_alarm_rate": None, "reason": str(exc)[:300]}
    cv = getattr(full, "cv_statistic_", None)
    if cv is not None:  # the monitor's own held-out statistics, on the scale of its threshold
        cv = np.asarray(cv, dtype=float).ravel()
        over = int(np.sum(cv > full.threshold_))
        return {
            "method": "the monitor's held-out statistics (cv_statistic_)",
            "held_out": int(cv.size),
            "false_alarms": over,
            "false_alarm_rate": round(over / cv.size, 4) if cv.size else None,
        }
    if len(batches) > MAX_LOBO or len(batches) < MIN_FIT + 1:
        reason = "too many batches to refit per batch" if len(batches) > MAX_LOBO else "too few batches"
        return {"method": "leave one batch out", "false_alarm_rate": None, "reason": reason}
    ids = np.asarray(batch_ids)
    flagged: set[str] = set()
    for b in batches:
        out = ids == b
        single = make()
        if hasattr(single, "rules"):  # run rules need the sequence: a lone batch is judged by rule 1
            single.set_params(rules=(1,))
        try:
            fit(single, X[~out], list(ids[~out]))
        except (ValueError, *NOT_ENOUGH):
            continue
        if (single.predict(X[out]) == -1).any():
            flagged.add(b)
    return {
        "method": "leave one batch out" + (" (rule 1)" if hasattr(full, "rules") else ""),
        "held_out": len(batches),
        "false_alarms": len(flagged),
        "false_alarm_batch_ids": [b for b in batches if b in flagged],
        "false_alarm_rate": _rate(flagged, batches),
    }


def features(kind: str, bpmn_id: str, names: list[str], unit: str | None) -> list[dict[str, Any]]:
    """What a model looks at, in QA's words: step, parameter, unit, kind of value."""
    what = FEATURE_KINDS.get(kind, kind)
    return [
        {"step": bpmn_id, "parameter": "duration" if what == "duration" else name, "unit": unit, "kind": what}
        for name in names
    ]


def model_entry(row: Any, evaluation: dict[str, Any], nominal: float | None) -> dict[str, Any]:
    """One model of the report (``row`` a flushed ``TrendModel``)."""
    card = row.card
    return _json_value(
        {
            "model_id": row.id,
            "bpmn_id": row.bpmn_id,
            "parameter": row.parameter or None,
            "kind": row.kind,
            "version": row.version,
            "critical": bool(row.critical),
            "features": features(row.kind, row.bpmn_id, list(card.get("parameter_names", [])), row.unit),
            "limits": scalar_limits(row.kind, card.get("limits", {})),
            "training_batches": len(card.get("training_batch_ids", [])),
            "training_batch_ids": list(card.get("training_batch_ids", [])),
            "nominal_false_alarm_rate": nominal,
            "evaluation": evaluation,
        }
    )


def not_enough_history(skipped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parameters no model was trained for, each with why."""
    return [{"bpmn_id": s["bpmn_id"], "parameter": s.get("parameter") or None, "reason": s["reason"]} for s in skipped]


def summary(models: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst and pooled held-out false-alarm rates over the models that have one."""
    rates = [
        m["evaluation"].get("newest", {}).get("false_alarm_rate")
        for m in models
        if m["evaluation"].get("newest", {}).get("false_alarm_rate") is not None
    ]
    alarms = sum(m["evaluation"].get("newest", {}).get("false_alarms", 0) for m in models)
    held = sum(m["evaluation"].get("newest", {}).get("held_out_batches", 0) for m in models)
    return {
        "models": len(models),
        "evaluated": len(rates),
        "worst_false_alarm_rate": max(rates) if rates else None,
        "pooled_false_alarm_rate": round(alarms / held, 4) if held else None,
    }
