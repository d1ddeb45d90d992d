"""The diff of two recipe versions as a page QA can read before approving a change:
``/recipes/{id}/diff?against={other_id}`` — BPMN elements added, removed and changed
(each change with its old and new value), then form fields (limits marked as limits).
The same data as ``GET /api/recipes/{id}/diff`` (``engine.recipe_versions.diff``)."""

from __future__ import annotations

from flask import abort, render_template, request

from engine import recipe_versions
from engine.errors import BatchlineError

from ..runtime import runtime
from .pages import bp, require


@bp.route("/recipes/<id:recipe_id>/diff")
def recipe_diff(recipe_id: int):
    require("recipe.read")
    against = request.args.get("against", "")
    if not against.isdigit() or not 0 < int(against) < 2**31:
        abort(400, description="Say which version to compare with: ?against= a recipe version id.")
    try:
        diff = recipe_versions.diff_versions(runtime(), recipe_id, int(against))
    except BatchlineError as exc:
        abort(404 if exc.code == "recipe_not_found" else 400, description=exc.message)
    return render_template("ui/recipe_diff.html", diff=diff)
