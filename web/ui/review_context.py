"""What a reviewer needs next to an exception to decide it without opening the record:
the step it belongs to (seq and name), its value against its limits in words, and for
an out-of-trend finding the control chart of that parameter (or step duration) across
batches with this batch highlighted (the trend pages' chart, drawn inline)."""

from __future__ import annotations

import logging
from typing import Any

from flask import url_for

from engine.vocabulary import CATEGORY_TITLES

from ..runtime import runtime

log = logging.getLogger("batchline.ui.review")

#: limit names of a limit exception -> how a reviewer reads them
LIMIT_PAIRS = (
    ("action", "actionLow", "actionHigh"),
    ("alert", "alertLow", "alertHigh"),
    ("allowed", "hardMin", "hardMax"),
)


def exception_context(exc: dict[str, Any], steps_by_seq: dict[int, dict[str, Any]]) -> None:
    """Add the step's name and the value's unit to an exception (in place)."""
    step = steps_by_seq.get(exc.get("step_seq")) if exc.get("step_seq") is not None else None
    exc["step_name"] = step["task_name"] if step else None
    exc["step_bpmn_id"] = step["bpmn_id"] if step else (exc.get("details") or {}).get("bpmn_id")
    exc["step_user"] = step["user"] if step else None


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def limits_text(exc: dict[str, Any]) -> str | None:
    """ "6.60 pH · action 6.80 – 7.40 · alert 6.90 – 7.20" or, for a trend finding,
    "41.2 % sat · expected 35.1 – 44.9 (centre 40.0)"."""
    limits = exc.get("limits") or {}
    value = exc.get("value")
    if value is None and not limits:
        return None
    unit = limits.get("unit") or (exc.get("details") or {}).get("unit") or ""
    parts = [f"{_number(value)} {unit}".strip()] if value is not None else []
    if "lower" in limits or "upper" in limits:
        lo, hi = limits.get("lower"), limits.get("upper")
        text = f"expected {_number(lo) if lo is not None else '…'} – {_number(hi) if hi is not None else '…'}"
        if limits.get("centre") is not None:
            text += f" (centre {_number(limits['centre'])})"
        parts.append(text)
    for name, low, high in LIMIT_PAIRS:
        if low in limits or high in limits:
            lo, hi = limits.get(low), limits.get(high)
            if lo is not None and hi is not None:
                parts.append(f"{name} {_number(lo)} – {_number(hi)}")
            elif lo is not None:
                parts.append(f"{name} ≥ {_number(lo)}")
            else:
                parts.append(f"{name} ≤ {_number(hi)}")
    return " · ".join(parts) or None


def trend_charts(batch: dict[str, Any], exceptions: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Exception id -> {chart, title, url} for each out-of-trend finding among ``exceptions``.

    A chart that cannot be drawn (no analytics, recipe unknown to it) is left out: the
    finding is still shown with its values and limits, and the link to the trend page."""
    out: dict[int, dict[str, Any]] = {}
    recipe = (batch.get("recipe") or {}).get("recipe")
    wanted = [e for e in exceptions if str(e.get("category", "")).startswith("oot.") and e.get("step_bpmn_id")]
    if not recipe or not wanted:
        return out
    try:
        from analytics import charts

        from ..trends import chart_geometry
    except ImportError:  # an install without analytics
        return out
    for exc in wanted:
        bpmn_id = exc["step_bpmn_id"]
        up = (exc.get("details") or {}).get("unit_procedure")
        try:
            if up:  # an equipment T²/SPE finding: its time series in this batch, not a chart across batches
                out[exc["id"]] = _equipment_chart(batch["batch_id"], up, exc)
                continue
            if exc["category"] == "oot.duration" or not exc.get("parameter"):
                data = charts.durations(runtime(), recipe, bpmn_id, batch=batch["batch_id"], limit=40)
                title = f"Duration of {exc.get('step_name') or bpmn_id}"
                url = url_for("trends.duration_chart", recipe=recipe, bpmn_id=bpmn_id, batch=batch["batch_id"])
            else:
                parameter = exc["parameter"]
                data = charts.trend(runtime(), recipe, bpmn_id, parameter, batch=batch["batch_id"], limit=40)
                title = f"{parameter} at {exc.get('step_name') or bpmn_id}"
                url = url_for(
                    "trends.parameter_chart",
                    recipe=recipe,
                    bpmn_id=bpmn_id,
                    parameter=parameter,
                    batch=batch["batch_id"],
                )
        except Exception:  # a chart is context, never a reason the review page fails
            log.exception("trend chart for exception %s not drawn", exc.get("id"))
            continue
        out[exc["id"]] = {"chart": chart_geometry(data), "title": title, "url": url, "model": data.get("model")}
    return out


def _equipment_chart(batch_id: str, unit_procedure: str, exc: dict[str, Any]) -> dict[str, Any]:
    """The statistic of an equipment finding (T² or SPE) over the hours of its unit
    procedure in this batch, linked to the full equipment page."""
    from analytics.equipment_chart import equipment_chart

    from ..trends import ts_geometry

    data = equipment_chart(runtime(), batch_id, unit_procedure)
    key, label = ("spe", "SPE") if (exc.get("details") or {}).get("statistic") == "SPE" else ("t2", "T²")
    panel = ts_geometry(data["scores"], key, (data["limits"] or {}).get(key), label, data["findings"])
    return {
        "chart": panel,
        "kind": "equipment",
        "title": f"{label} of {data['name']} over time",
        "url": url_for("trends.equipment_chart", batch_id=batch_id, unit_procedure=unit_procedure),
        "model": data["model"],
    }


#: exception categories in a reviewer's words
CATEGORY_NAMES = CATEGORY_TITLES  # one wording of the categories: engine.vocabulary
