"""Trend pages for review by exception: a control chart per step parameter across
batches (usual range and centre from the model, the recipe's alert and action limits,
the current batch highlighted, points out of trend marked apart from limit breaches), a
control chart of step durations, the equipment time series of one batch's unit
procedure (T² and SPE over hours against their limits, the variables behind each flagged
point), and a dashboard of out-of-trend findings per recipe with what no model watches
yet and why.

The pages use the application's layout and main navigation (``ui/base.html``). Charts
are drawn on the server as SVG by Jinja templates (every text autoescaped; no CDN, no
chart library); the only script turns UTC times into the reader's local time. The pages
need a logged-in person holding ``analytics.read``; the data comes from
``analytics.charts``, ``analytics.equipment_chart``, ``analytics.findings`` and
``analytics.catalogue`` as for the JSON API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, g, redirect, render_template, request
from markupsafe import Markup, escape

from analytics import catalogue, charts, equipment, findings
from analytics.equipment_chart import equipment_chart as equipment_data
from engine import permissions
from engine.errors import NotFound

from ..auth import session_person
from ..runtime import runtime
from ..ui.pages import _context as page_context
from .geometry import chart_geometry, rule_words, ts_geometry

__all__ = ["bp", "chart_geometry", "ts_geometry"]

bp = Blueprint(
    "trends",
    __name__,
    url_prefix="/trends",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
# the layout's navigation, name, roles and log-out button need what every UI page gets
bp.context_processor(page_context)


@bp.before_request
def _logged_in():
    person = session_person()
    if person is None:
        target = request.full_path.rstrip("?")
        return redirect("/login?next=" + quote(target, safe="/"))
    g.person = person
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


@bp.app_template_filter("local_time")
def local_time(value: Any) -> Markup:
    """An ISO time as ``<time>``: readable UTC on the server ("2026-12-01 14:03 UTC"),
    turned into the reader's local time by ``local-time.js``."""
    if not value:
        return Markup("—")
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return Markup(escape(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return Markup('<time class="local-time" datetime="{}">{}</time>').format(
        moment.isoformat(timespec="seconds"), moment.strftime("%Y-%m-%d %H:%M UTC")
    )


bp.add_app_template_filter(rule_words, "rule_words")


def _query() -> tuple[str | None, int]:
    batch = request.args.get("batch") or None
    try:
        limit = max(1, min(int(request.args.get("limit", 100)), 1000))
    except ValueError:
        limit = 100
    return batch, limit


class _Words:
    """Step and field names per recipe, read once per page."""

    def __init__(self) -> None:
        self._steps: dict[str, dict[str, str]] = {}
        self._fields: dict[str, dict[tuple[str, str], str]] = {}

    def step(self, recipe: str, bpmn_id: str | None) -> str:
        if not bpmn_id:
            return ""
        if recipe not in self._steps:
            with runtime().transaction() as s:
                self._steps[recipe] = charts.step_names(s, recipe)
        return self._steps[recipe].get(bpmn_id, bpmn_id)

    def field(self, recipe: str, bpmn_id: str | None, parameter: str | None) -> str:
        if not parameter:
            return "Duration"
        if ":" in parameter:  # equipment: "<unit procedure>:T2"
            return "Equipment " + parameter.split(":", 1)[1].replace("T2", "T²")
        if recipe not in self._fields:
            with runtime().transaction() as s:
                self._fields[recipe] = charts.field_labels(s, recipe)
        return self._fields[recipe].get((bpmn_id or "", parameter), parameter)


def _finding_links(f: dict[str, Any], words: _Words) -> dict[str, Any]:
    """A finding with its names in words and where it links: its chart, its batch, and
    the exception on QA's review page."""
    details = f.get("details") or {}
    up = details.get("unit_procedure")
    if up:
        chart = ("trends.equipment_chart", {"batch_id": f["batch_id"], "unit_procedure": up})
    elif f.get("bpmn_id") and f.get("parameter"):
        chart = (
            "trends.parameter_chart",
            {"recipe": f["recipe"], "bpmn_id": f["bpmn_id"], "parameter": f["parameter"], "batch": f["batch_id"]},
        )
    elif f.get("bpmn_id"):
        chart = ("trends.duration_chart", {"recipe": f["recipe"], "bpmn_id": f["bpmn_id"], "batch": f["batch_id"]})
    else:
        chart = None
    return {
        **f,
        "step_name": words.step(f["recipe"], f.get("bpmn_id")),
        "what": words.field(f["recipe"], f.get("bpmn_id"), f.get("parameter")),
        "chart": chart,
    }


@bp.route("/")
def dashboard():
    recipe = request.args.get("recipe") or None
    data = findings.findings(runtime(), recipe, limit=100)
    models = catalogue.list_models(runtime(), recipe)
    words = _Words()
    by_recipe: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for m in models:
        by_recipe.setdefault(m["recipe"], {}).setdefault(m["bpmn_id"], []).append(m)
    recipes = sorted({r["recipe"] for r in data["recipes"]} | set(by_recipe) | ({recipe} if recipe else set()))
    unwatched = {}
    for rec in recipes:
        try:
            unwatched[rec] = [c for c in charts.coverage(runtime(), rec) if not c["watched"]]
        except NotFound:
            unwatched[rec] = []
    summary = [
        {
            **r,
            "frequent": [
                (words.step(r["recipe"], key.split(" / ")[0]) + " / " + _frequent_field(words, r["recipe"], key), n)
                for key, n in sorted(r["by_step"].items(), key=lambda kv: -kv[1])[:3]
            ],
        }
        for r in data["recipes"]
    ]
    return render_template(
        "trends/dashboard.html",
        recipe=recipe,
        summary=summary,
        findings=[_finding_links(f, words) for f in data["findings"]],
        models=by_recipe,
        unwatched=unwatched,
        words=words,
    )


def _frequent_field(words: _Words, recipe: str, key: str) -> str:
    step, _, parameter = key.partition(" / ")
    return words.field(recipe, step, None if parameter == "duration" else parameter)


def _coverage_of(recipe: str, bpmn_id: str, parameter: str | None) -> dict[str, Any] | None:
    """Why a chart has no model (not enough history, repeated step), when it has none."""
    try:
        rows = charts.coverage(runtime(), recipe)
    except NotFound:
        return None
    return next((c for c in rows if c["bpmn_id"] == bpmn_id and c["parameter"] == parameter), None)


@bp.route("/<recipe>/steps/<bpmn_id>/<parameter>")
def parameter_chart(recipe: str, bpmn_id: str, parameter: str):
    batch, limit = _query()
    data = charts.trend(runtime(), recipe, bpmn_id, parameter, batch=batch, limit=limit)
    return render_template(
        "trends/chart.html",
        data=data,
        chart=chart_geometry(data),
        batch=batch,
        title=f"{data['label']} at {data['step_name']}",
        coverage=None if data["model"] else _coverage_of(recipe, bpmn_id, parameter),
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
        title=f"Duration of {data['step_name']}",
        coverage=None if data["model"] else _coverage_of(recipe, bpmn_id, None),
    )


@bp.route("/batches/<batch_id>/equipment/<unit_procedure>")
def equipment_chart(batch_id: str, unit_procedure: str):
    if not equipment.UNIT_PROCEDURE.match(unit_procedure):  # not a BPMN id: no such unit procedure
        raise NotFound("no unit procedure of that name", code="unit_procedure_not_found")
    data = equipment_data(runtime(), batch_id, unit_procedure)
    limits = data["limits"] or {}
    panels = [
        ts_geometry(data["scores"], "t2", limits.get("t2"), "T²", data["findings"]),
        ts_geometry(data["scores"], "spe", limits.get("spe"), "SPE", data["findings"]),
    ]
    return render_template(
        "trends/equipment.html",
        data=data,
        panels=panels,
        title=f"Equipment of {data['name']} in {batch_id}",
    )
