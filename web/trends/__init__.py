"""Trend pages for review by exception: a control chart per step parameter across
batches (centre line, limits, the current batch highlighted, points that broke a rule
marked), a control chart of step durations, and a dashboard of out-of-trend findings
per recipe.

Charts are drawn on the server as SVG by a Jinja template (every text autoescaped; no
CDN, no chart library, no script). The pages need a logged-in person holding
``analytics.read``; the data comes from ``analytics.charts``, ``analytics.findings`` and
``analytics.catalogue`` as for the JSON API.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, redirect, render_template, request

from analytics import catalogue, charts, findings
from engine import permissions
from engine.errors import NotFound

from ..auth import session_person
from ..runtime import runtime

bp = Blueprint(
    "trends",
    __name__,
    url_prefix="/trends",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

WIDTH, HEIGHT = 880, 340
MARGIN = {"left": 70, "right": 20, "top": 16, "bottom": 62}


@bp.before_request
def _logged_in():
    person = session_person()
    if person is None:
        target = request.full_path.rstrip("?")
        return redirect("/login?next=" + quote(target, safe="/"))
    if not permissions.allowed(person.roles, "analytics.read"):
        abort(403)
    request.trends_person = person
    return None


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return render_template("trends/message.html", title="Not found", message=exc.message), 404


@bp.errorhandler(403)
def _forbidden(_exc):
    return render_template(
        "trends/message.html",
        title="Not allowed",
        message="The trend pages need the permission analytics.read (operator, supervisor or QA).",
    ), 403


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
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


def _label(value: float) -> str:
    return f"{value:.4g}"


def chart_geometry(data: dict[str, Any]) -> dict[str, Any]:
    """Coordinates for the SVG chart template: points, centre and limit lines, ticks."""
    points = data["points"]
    limits = (data.get("model") or {}).get("limits") or {}
    centre, lower, upper = limits.get("centre"), limits.get("lower"), limits.get("upper")
    values = [p["value"] for p in points] + [v for v in (centre, lower, upper) if v is not None]
    plot_w = WIDTH - MARGIN["left"] - MARGIN["right"]
    plot_h = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    if not values:
        return {"width": WIDTH, "height": HEIGHT, "empty": True}
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or (abs(hi) * 0.05 or 1.0)
    lo, hi = lo - pad, hi + pad

    def y(v: float) -> float:
        return round(MARGIN["top"] + plot_h * (hi - v) / (hi - lo), 2)

    n = len(points)

    def x(i: int) -> float:
        return round(MARGIN["left"] + (plot_w * (i + 0.5) / n if n else 0), 2)

    marks = []
    for i, p in enumerate(points):
        flagged = bool(p["rules"])
        marks.append(
            {
                "x": x(i),
                "y": y(p["value"]),
                "current": p["current"],
                "flagged": flagged,
                "training": p["training"],
                "title": f"{p['batch_id']} (step {p['seq']}): {_label(p['value'])}"
                + (f" {data.get('unit')}" if data.get("unit") else "")
                + (f" - broke: {', '.join(_rule_name(r) for r in p['rules'])}" if flagged else "")
                + (" - current batch" if p["current"] else "")
                + (" - in training set" if p["training"] else ""),
            }
        )
    lines = [
        {"name": name, "y": y(v), "value": _label(v)}
        for name, v in (("upper", upper), ("centre", centre), ("lower", lower))
        if v is not None
    ]
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
        "lines": lines,
        "xlabels": xlabels,
        "yticks": [{"y": y(t), "text": _label(t)} for t in _nice_ticks(lo, hi) if lo <= t <= hi],
    }


def _rule_name(rule: Any) -> str:
    if isinstance(rule, int):
        return f"rule {rule}"
    return str(rule).replace("_", " ")


def _query() -> tuple[str | None, int]:
    batch = request.args.get("batch") or None
    try:
        limit = max(1, min(int(request.args.get("limit", 100)), 1000))
    except ValueError:
        limit = 100
    return batch, limit


@bp.route("/")
def dashboard():
    recipe = request.args.get("recipe") or None
    data = findings.findings(runtime(), recipe, limit=100)
    models = catalogue.list_models(runtime(), recipe)
    by_recipe: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for m in models:
        by_recipe.setdefault(m["recipe"], {}).setdefault(m["bpmn_id"], []).append(m)
    return render_template(
        "trends/dashboard.html",
        recipe=recipe,
        summary=data["recipes"],
        findings=data["findings"],
        models=by_recipe,
        person=request.trends_person,
    )


@bp.route("/<recipe>/steps/<bpmn_id>/<parameter>")
def parameter_chart(recipe: str, bpmn_id: str, parameter: str):
    batch, limit = _query()
    data = charts.trend(runtime(), recipe, bpmn_id, parameter, batch=batch, limit=limit)
    return render_template(
        "trends/chart.html",
        data=data,
        chart=chart_geometry(data),
        batch=batch,
        title=f"{parameter} at {bpmn_id}",
        person=request.trends_person,
    )


@bp.route("/<recipe>/durations/<bpmn_id>")
def duration_chart(recipe: str, bpmn_id: str):
    batch, limit = _query()
    data = charts.durations(runtime(), recipe, bpmn_id, batch=batch, limit=limit)
    return render_template(
        "trends/chart.html",
        data=data,
        chart=chart_geometry(data),
        batch=batch,
        title=f"Duration of {bpmn_id}",
        person=request.trends_person,
    )
