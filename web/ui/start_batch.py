"""A supervisor starts a batch from the browser: the recipe (its effective version — what
new batches take), the batch id and the batch parameters. The same call as
``POST /api/batches`` and ``batchline batch start`` (``engine.batches.start_batch``):
the engine checks the id, the parameters and the recipe's status; this page only says
what it answered. A second submit of the same form meets the batch it started
(``batch_exists``), so a double click starts one batch."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from engine import batches
from engine.errors import BatchlineError, InvalidInput
from engine.models import RecipeVersion
from engine.quality.processes import FLOWS
from engine.vocabulary import RecipeStatus

from ..runtime import runtime
from .pages import bp, require, sentence

#: how many parameter lines a start takes (the engine bounds them again)
MAX_PARAMETER_LINES = 50


def startable() -> list[dict[str, Any]]:
    """The recipes with an effective version, QA's own flows left out (the engine starts those)."""
    with runtime().transaction() as s:
        rows = s.scalars(
            select(RecipeVersion)
            .where(RecipeVersion.status == RecipeStatus.EFFECTIVE, RecipeVersion.recipe.not_in(tuple(FLOWS.values())))
            .order_by(RecipeVersion.recipe)
        )
        return [{"recipe": rv.recipe, "version": rv.version, "name": rv.name} for rv in rows]


def parse_parameters(text: str) -> dict[str, Any]:
    """``name = value`` lines: numbers and true/false as such, anything else as text."""
    from ..cli.batches import parse_value

    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_PARAMETER_LINES:
        raise InvalidInput(f"at most {MAX_PARAMETER_LINES} parameters", code="parameters_invalid")
    out: dict[str, Any] = {}
    for line in lines:
        name, eq, value = line.partition("=")
        if not eq or not name.strip():
            raise InvalidInput(
                f"write each parameter as name = value ({line.strip()[:60]!r})", code="parameters_invalid"
            )
        out[name.strip()] = parse_value(value.strip())
    return out


@bp.route("/batches/new", methods=["GET", "POST"])
def start_batch_page():
    require("batch.start")
    form = {"recipe": "", "batch_id": "", "parameters": ""}
    error = None
    if request.method == "POST":
        form = {k: (request.form.get(k) or "") for k in form}
        try:
            parameters = parse_parameters(form["parameters"])
            started = batches.start_batch(
                runtime(), form["recipe"], form["batch_id"].strip(), user=g.person.username, parameters=parameters
            )
        except BatchlineError as exc:
            error = sentence(exc.message)
        else:
            recipe = started.get("recipe") or {}
            flash(f"Batch {started['batch_id']} started on {recipe.get('recipe')} v{recipe.get('version')}.", "success")
            return redirect(url_for("ui.batch_page", batch_id=started["batch_id"]))
    return render_template("ui/start_batch.html", recipes=startable(), form=form, error=error), (422 if error else 200)
