"""Coordinates for the server-drawn SVG charts of the trend pages (no chart library, no
script): the control chart of a step parameter or duration across batches - points, the
statistical centre and usual range, the recipe's alert/action limits, ticks and a legend
in users' words - and the equipment chart of one batch (T² or SPE over hours, its limit,
the flagged points)."""

from __future__ import annotations

import math
from typing import Any

WIDTH, HEIGHT = 880, 340
MARGIN = {"left": 70, "right": 130, "top": 16, "bottom": 62}
#: equipment panels (T², SPE): wider plot, hours on the x axis
TS_HEIGHT = 240
TS_MARGIN = {"left": 70, "right": 110, "top": 14, "bottom": 40}
#: vertical room a line label needs (px): labels closer than this are pushed apart
LABEL_GAP = 13

#: Nelson rules (``analytics.univariate.RULES``) and duration flags in a reviewer's words
RULE_WORDS = {
    1: "outside the usual range",
    2: "9 batches in a row on one side of the centre",
    3: "6 batches in a row steadily rising or falling",
    4: "14 batches in a row alternating up and down",
    5: "2 of 3 batches near the edge of the usual range",
    6: "4 of 5 batches away from the centre, same side",
    "too_long": "took longer than usual",
    "too_short": "was quicker than usual",
}
#: recipe limit level -> how the chart names the point
LEVEL_WORDS = {
    "hard": "outside the hard limits",
    "action": "outside the action limits",
    "alert": "outside the alert limits",
}


def rule_words(rule: Any) -> str:
    return RULE_WORDS.get(rule, f"rule {rule}" if isinstance(rule, int) else str(rule).replace("_", " "))


def number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _spread_labels(lines: list[dict[str, Any]], top: float, bottom: float) -> None:
    """Give each line a label position (``label_y``) at least LABEL_GAP apart, in order."""
    ordered = sorted(lines, key=lambda line: line["y"])
    previous = top - LABEL_GAP
    for line in ordered:
        line["label_y"] = max(line["y"] + 4, previous + LABEL_GAP)
        previous = line["label_y"]
    overflow = previous - (bottom + 4)
    if overflow > 0:  # pushed below the plot: shift the stack up
        for line in ordered:
            line["label_y"] -= overflow


def _legend_lines(data: dict[str, Any], model_limits: dict[str, Any]) -> list[dict[str, Any]]:
    """The horizontal lines of a control chart, outermost recipe limits first, each with
    its kind (CSS class), the label people read and its value."""
    unit = f" {data['unit']}" if data.get("unit") else ""
    recipe = data.get("recipe_limits") or {}
    lines = []
    for level, low, high, label in (
        ("action", "actionLow", "actionHigh", "Action limit"),
        ("alert", "alertLow", "alertHigh", "Alert limit"),
    ):
        for side in (low, high):
            if side in recipe:
                lines.append({"kind": level, "label": label, "value": recipe[side], "unit": unit})
    model = data.get("model") or {}
    n = model.get("training_batches")
    usual = f"Usual range (from {n} batches)" if n else "Usual range"
    for key in ("lower", "upper"):
        if model_limits.get(key) is not None:
            lines.append({"kind": "usual", "label": usual, "value": model_limits[key], "unit": unit})
    if model_limits.get("centre") is not None:
        centre = "Median" if data.get("kind") == "DurationMonitor" else "Centre"
        lines.append({"kind": "centre", "label": centre, "value": model_limits["centre"], "unit": unit})
    return lines


def chart_geometry(data: dict[str, Any]) -> dict[str, Any]:
    """Coordinates for the SVG control chart: points, the statistical centre and usual
    range, the recipe's alert and action limits, ticks, x labels and the legend."""
    points = data["points"]
    model_limits = (data.get("model") or {}).get("limits") or {}
    lines = _legend_lines(data, model_limits)
    values = [p["value"] for p in points] + [line["value"] for line in lines]
    plot_w = WIDTH - MARGIN["left"] - MARGIN["right"]
    plot_h = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    legend = _legend(lines, points)
    if not points:
        return {"width": WIDTH, "height": HEIGHT, "empty": True, "legend": legend}
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or (abs(hi) * 0.05 or 1.0)
    lo, hi = lo - pad, hi + pad

    def y(v: float) -> float:
        return round(MARGIN["top"] + plot_h * (hi - v) / (hi - lo), 2)

    n = len(points)

    def x(i: int) -> float:
        return round(MARGIN["left"] + (plot_w * (i + 0.5) / n if n else 0), 2)

    unit = f" {data['unit']}" if data.get("unit") else ""
    marks = []
    for i, p in enumerate(points):
        out_of_trend = bool(p["rules"])
        level = p.get("recipe_level")
        what = [LEVEL_WORDS[level]] if level else []
        if out_of_trend:
            what.append("out of trend: " + ", ".join(rule_words(r) for r in p["rules"]))
        if out_of_trend and not level and data.get("recipe_limits"):
            what.append("inside the recipe limits (not a limit breach)")
        marks.append(
            {
                "x": x(i),
                "y": y(p["value"]),
                "current": p["current"],
                "flagged": out_of_trend,
                "level": level,
                "training": p["training"],
                "batch_id": p["batch_id"],
                "title": f"{p['batch_id']}: {number(p['value'])}{unit}"
                + (f" - {'; '.join(what)}" if what else "")
                + (" - this batch" if p["current"] else "")
                + (" - used to set the usual range" if p["training"] else ""),
            }
        )
    drawn = []
    for line in lines:
        short = "Usual range" if line["kind"] == "usual" else line["label"]
        drawn.append({**line, "y": y(line["value"]), "text": f"{short} {number(line['value'])}"})
    _spread_labels(drawn, MARGIN["top"], HEIGHT - MARGIN["bottom"])
    every = max(1, math.ceil(n / 10))
    xlabels = [
        {"x": m["x"], "text": points[i]["batch_id"]}
        for i, m in enumerate(marks)
        if i % every == 0 or points[i]["current"]
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "empty": False,
        "left": MARGIN["left"],
        "top": MARGIN["top"],
        "right": WIDTH - MARGIN["right"],
        "bottom": HEIGHT - MARGIN["bottom"],
        "path": " ".join(f"{'M' if i == 0 else 'L'}{m['x']},{m['y']}" for i, m in enumerate(marks)),
        "marks": marks,
        "lines": drawn,
        "xlabels": xlabels,
        "yticks": [{"y": y(t), "text": number(t)} for t in nice_ticks(lo, hi) if lo <= t <= hi],
        "legend": legend,
    }


def _legend(lines: list[dict[str, Any]], points: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One legend entry per kind of line (low - high joined) and per kind of point shown."""
    entries: dict[str, dict[str, Any]] = {}
    for line in lines:
        entry = entries.setdefault(line["kind"], {"kind": line["kind"], "label": line["label"], "values": []})
        entry["values"].append(line["value"])
    out = []
    for entry in entries.values():
        values = sorted(entry["values"])
        unit = next((line["unit"] for line in lines if line["kind"] == entry["kind"]), "")
        text = " – ".join(number(v) for v in values) + unit
        out.append({"kind": entry["kind"], "label": entry["label"], "text": text})
    if any(p["rules"] and not p.get("recipe_level") for p in points):
        out.append({"kind": "oot", "label": "Out of trend, inside the recipe limits", "text": "not a limit breach"})
    if any(p.get("recipe_level") for p in points):
        out.append({"kind": "breach", "label": "Outside a recipe limit", "text": "a limit breach"})
    if any(p["current"] for p in points):
        out.append({"kind": "current", "label": "This batch", "text": "ringed"})
    return out


def ts_geometry(
    scores: list[dict[str, Any]], key: str, limit: float | None, label: str, findings: list[dict[str, Any]] = ()
) -> dict[str, Any]:
    """One equipment panel: ``key`` ("t2" or "spe") per grid hour, its limit, the points
    over it marked, and a ring where a finding of this statistic was raised."""
    if not scores:
        return {"empty": True, "width": WIDTH, "height": TS_HEIGHT}
    plot_w = WIDTH - TS_MARGIN["left"] - TS_MARGIN["right"]
    plot_h = TS_HEIGHT - TS_MARGIN["top"] - TS_MARGIN["bottom"]
    ts = [p["t_hours"] for p in scores]
    vs = [p[key] for p in scores]
    t_lo, t_hi = 0.0, max(max(ts), 1.0)
    hi = max(vs + ([limit] if limit is not None else [])) * 1.08 or 1.0
    lo = 0.0

    def x(t: float) -> float:
        return round(TS_MARGIN["left"] + plot_w * (t - t_lo) / (t_hi - t_lo), 2)

    def y(v: float) -> float:
        return round(TS_MARGIN["top"] + plot_h * (hi - v) / (hi - lo), 2)

    over = f"{key}_over"
    marks = [
        {
            "x": x(p["t_hours"]),
            "y": y(p[key]),
            "over": p[over],
            "title": f"{number(p['t_hours'])} h: {label} {number(p[key])}"
            + (f" - beyond its limit {number(limit)}" if p[over] else ""),
        }
        for p in scores
    ]
    statistic = {"t2": "T2", "spe": "SPE"}[key]
    rings = []
    for f in findings:
        at = f.get("t_hours")
        point = next((p for p in scores if at is not None and abs(p["t_hours"] - at) < 1e-9), None)
        if f.get("statistic") == statistic and point is not None:
            rings.append({"x": x(at), "y": y(point[key]), "title": f"Finding #{f['id']} raised at {number(at)} h"})
    return {
        "empty": False,
        "width": WIDTH,
        "height": TS_HEIGHT,
        "rings": rings,
        "left": TS_MARGIN["left"],
        "top": TS_MARGIN["top"],
        "right": WIDTH - TS_MARGIN["right"],
        "bottom": TS_HEIGHT - TS_MARGIN["bottom"],
        "label": label,
        "path": " ".join(f"{'M' if i == 0 else 'L'}{m['x']},{m['y']}" for i, m in enumerate(marks)),
        "marks": marks,
        "flagged": sum(1 for m in marks if m["over"]),
        "limit": None if limit is None else {"y": y(limit), "text": f"Limit {number(limit)}"},
        "yticks": [{"y": y(t), "text": number(t)} for t in nice_ticks(lo, hi) if lo <= t <= hi],
        "xticks": [{"x": x(t), "text": number(t)} for t in nice_ticks(t_lo, t_hi, 8) if t_lo <= t <= t_hi],
    }
