"""QA designs recipes in the browser: the recipe list, a read-only recipe page (diagram,
forms, history), and the editor (bpmn-js Modeler + properties panel + form-js editor).

Everyone reads recipes; only QA (``recipe.import``) opens the editor or saves. Saving
never edits a version: it imports the diagram and forms as a new *draft* version
(``engine.recipes.import_recipe``; identical content returns the version it already
is), after ``recipe_checks`` has answered element by element. Submitting for review
goes to the API's ``POST /api/recipes/{id}/submit`` as the logged-in person; the page
posts to this blueprint with its CSRF token because the API takes no cookie-only writes.
"""

from __future__ import annotations

import re
from typing import Any

from flask import g, jsonify, render_template, request, url_for
from sqlalchemy import select

from engine import recipes
from engine.errors import BatchlineError, Problem
from engine.models import AuditEvent, RecipeVersion

from ..input_limits import strict_json_loads
from ..runtime import runtime
from .diagram import diagram_view
from .pages import bp, require, sentence
from .recipe_checks import recipe_problems, shape_problems
from .recipe_templates import compose, defined_processes, template_choices

NEW_FILE = "recipe.bpmn"
_CALLED = re.compile(r"""calledElement=["']([^"']+)["']""")


def _json_error(status: int, code: str, message: str, problems: list[Problem] | None = None):
    details = {"problems": [p.to_dict() for p in problems]} if problems else {}
    return jsonify({"code": code, "message": sentence(message), "details": details}), status


def _version(recipe_id: int):
    return recipes.get_version(runtime(), recipe_id)


def _where_used(versions) -> dict[str, list[str]]:
    """process id -> recipes (newest version of each) whose diagrams call it."""
    newest: dict[str, Any] = {}
    for rv in versions:
        newest[rv.recipe] = rv
    used: dict[str, set[str]] = {}
    for key, rv in newest.items():
        for xml in (rv.bpmn or {}).values():
            for target in _CALLED.findall(xml):
                if target != rv.process_id:
                    used.setdefault(target, set()).add(key)
    return {target: sorted(keys) for target, keys in used.items()}


@bp.route("/recipes/")
def recipe_list():
    versions = recipes.list_versions(runtime())
    used = _where_used(versions)
    rows = []
    for rv in sorted(versions, key=lambda v: (v.recipe, -v.version)):
        rows.append(
            {
                "id": rv.id,
                "recipe": rv.recipe,
                "name": rv.name,
                "version": rv.version,
                "status": rv.status,
                "effective_from": getattr(rv, "effective_from", None),
                "created_by": rv.created_by,
                "created_at": rv.created_at,
                # a recipe's own sub-processes are not "use" by others
                "used_by": [k for k in used.get(rv.process_id, []) if k != rv.recipe],
            }
        )
    return render_template("ui/recipes/list.html", rows=rows)


@bp.route("/recipes/<id:recipe_id>")
def recipe_page(recipe_id: int):
    from forms import render_data

    rv = _version(recipe_id)
    forms_view = []
    for task in rv.tasks or []:
        if task.get("kind") != "user":
            continue
        definition = (rv.forms or {}).get(task.get("form") or "")
        try:
            items = render_data(definition) if definition else []
            problem = None if definition else "no form"
        except Exception as exc:  # an old version whose form no longer loads: say so, show the rest
            items, problem = [], str(exc)
        forms_view.append({"task": task, "items": items, "problem": problem})
    with runtime().transaction() as s:
        others = list(
            s.execute(
                select(RecipeVersion.id, RecipeVersion.version, RecipeVersion.status)
                .where(RecipeVersion.recipe == rv.recipe, RecipeVersion.id != rv.id)
                .order_by(RecipeVersion.version.desc())
            )
        )
        history = list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.object_type == "recipe_version", AuditEvent.object_id == f"{rv.recipe}:{rv.version}")
                .order_by(AuditEvent.id)
            )
        )
    return render_template(
        "ui/recipes/view.html",
        rv=rv,
        forms_view=forms_view,
        services=[t for t in rv.tasks or [] if t.get("kind") == "service"],
        history=history,
        effective_from=getattr(rv, "effective_from", None),
        others=[{"id": i, "version": v, "status": st} for i, v, st in others],
    )


@bp.route("/recipes/<id:recipe_id>/diagram")
def recipe_diagram(recipe_id: int):
    rv = _version(recipe_id)
    return jsonify(diagram_view({"bpmn": rv.bpmn, "process_id": rv.process_id}))


def _editor(rv) -> Any:
    connectors = sorted(runtime().connectors.names())
    versions = recipes.list_versions(runtime())
    files = dict(rv.bpmn) if rv is not None else {}
    main = next((n for n, xml in files.items() if f'id="{rv.process_id}"' in xml), None) if rv else None
    data = {
        "mode": "edit" if rv is not None else "new",
        "recipe": None
        if rv is None
        else {"id": rv.id, "key": rv.recipe, "version": rv.version, "status": rv.status, "name": rv.name},
        "files": files,
        "main_file": main or (sorted(files)[0] if files else NEW_FILE),
        "forms": dict(rv.forms or {}) if rv is not None else {},
        "connectors": connectors,
        "templates": template_choices(versions, _where_used(versions)),
        "save_url": url_for("ui.recipe_save"),
        "suggestions_url": url_for("ui.recipe_suggestions"),
        "submit_url": url_for("ui.recipe_submit", recipe_id=2_000_000_000).replace("2000000000", "{id}"),
        "view_url": url_for("ui.recipe_page", recipe_id=2_000_000_000).replace("2000000000", "{id}"),
        "edit_url": url_for("ui.recipe_edit", recipe_id=2_000_000_000).replace("2000000000", "{id}"),
    }
    return render_template("ui/recipes/edit.html", rv=rv, data=data)


@bp.route("/recipes/new")
def recipe_new():
    require("recipe.import")
    return _editor(None)


@bp.route("/recipes/<id:recipe_id>/edit")
def recipe_edit(recipe_id: int):
    require("recipe.import")
    return _editor(_version(recipe_id))


@bp.route("/recipes/save", methods=["POST"])
def recipe_save():
    """Save the editor's diagram and forms as a new draft version (JSON in, JSON out)."""
    require("recipe.import")
    upload = request.files.get("recipe")
    raw = upload.read() if upload is not None else request.form.get("recipe", "").encode("utf-8")
    try:
        body = strict_json_loads(raw, where="the recipe")
    except BatchlineError as exc:
        return _json_error(400, exc.code, exc.message)
    except Exception as exc:  # ApiError from the input limits
        return _json_error(400, getattr(exc, "code", "json_invalid"), getattr(exc, "message", str(exc)))
    files, forms, problems = shape_problems(body)
    if problems:
        return _json_error(422, problems[0].code, problems[0].message, problems)
    base = body.get("base_id")
    base_rv = None
    if base is not None:
        if not isinstance(base, int) or isinstance(base, bool):
            return _json_error(422, "validation_error", "base_id must be a recipe version id")
        base_rv = _version(base)
    versions = recipes.list_versions(runtime())
    files, forms, used, problems = compose(files, forms, versions, template_choices(versions, _where_used(versions)))
    if problems:
        return _json_error(422, problems[0].code, sentence(problems[0].message), problems)
    problems = recipe_problems(files, forms, sorted(runtime().connectors.names()))
    if problems:
        n = len(problems)
        return _json_error(
            422,
            "recipe_invalid",
            f"not saved: {n} problem{'s' if n != 1 else ''} to fix (marked in the diagram)",
            problems,
        )
    key = base_rv.recipe if base_rv is not None else None
    if base_rv is None:
        process_id = recipes.parse_recipe(files).process_id
        if any(rv.recipe == process_id for rv in versions):
            return _json_error(
                409,
                "recipe_exists",
                f"a recipe with the id {process_id!r} exists already: open it and edit it to make a new "
                "version, or give this process another id",
                [Problem("recipe_exists", f"the process id {process_id!r} is taken", process_id)],
            )
    before = {rv.id for rv in versions}
    try:
        rv = recipes.import_recipe(runtime(), files, forms=forms, user=g.person.username, recipe=key)
    except BatchlineError as exc:
        found = list((exc.details or {}).get("problems") or []) if isinstance(exc.details, dict) else []
        return jsonify({"code": exc.code, "message": sentence(exc.message), "details": {"problems": found}}), int(
            getattr(exc, "status", 422)
        )
    return jsonify(
        {
            "id": rv.id,
            "recipe": rv.recipe,
            "version": rv.version,
            "status": rv.status,
            "created": rv.id not in before,
            "templates": used,
            "view_url": url_for("ui.recipe_page", recipe_id=rv.id),
            "edit_url": url_for("ui.recipe_edit", recipe_id=rv.id),
        }
    ), (201 if rv.id not in before else 200)


@bp.route("/recipes/<id:recipe_id>/submit", methods=["POST"])
def recipe_submit(recipe_id: int):
    """Submit a draft for review as the logged-in person (the CSRF token was checked
    before this runs): it goes to ``in_review`` and QA's approval flow starts about it
    (``engine.recipe_lifecycle.submit``, the same call as ``POST /api/recipes/{id}/submit``)."""
    from engine import recipe_lifecycle

    require("recipe.import")
    comment = (request.form.get("comment") or "").strip()[:2000]
    try:
        answer = recipe_lifecycle.submit(runtime(), recipe_id, user=g.person.username, comment=comment)
    except BatchlineError as exc:
        return _json_error(exc.status, exc.code, exc.message)
    return jsonify(answer)


#: most suggestions the editor's panel lists
SUGGESTIONS_SHOWN = 5


@bp.route("/recipes/suggestions", methods=["POST"])
def recipe_suggestions():
    """Library templates similar to the draft open in the editor (``analytics.suggestions``,
    as ``POST /api/recipes/suggestions``), each with the effective version QA can call
    here (``installed``) — so the panel offers "insert as a call activity" only where the
    saved recipe can carry it. Form field ``draft``: ``{"bpmn": {name: xml}, "forms": {...}}``."""
    from analytics import suggestions as similar

    require("recipe.import")
    try:
        body = strict_json_loads(request.form.get("draft", "").encode("utf-8"), where="the draft")
    except BatchlineError as exc:
        return _json_error(400, exc.code, exc.message)
    except Exception as exc:  # ApiError from the input limits
        return _json_error(400, getattr(exc, "code", "json_invalid"), getattr(exc, "message", str(exc)))
    files, forms, problems = shape_problems(
        {"files": body.get("bpmn"), "forms": body.get("forms", {})} if isinstance(body, dict) else body
    )
    if problems:
        return _json_error(422, problems[0].code, problems[0].message, problems)
    try:
        found = similar.suggest(files, forms, limit=SUGGESTIONS_SHOWN + 1)
        own = defined_processes(files)
    except BatchlineError as exc:
        found_problems = list(getattr(exc, "problems", []) or [])
        return _json_error(422, exc.code, exc.message, found_problems)
    versions = recipes.list_versions(runtime())
    installed = {c["process_id"]: c for c in template_choices(versions, _where_used(versions))}
    out = []
    for s in found:
        if s.key in own:
            continue  # QA is editing that template itself
        choice = installed.get(s.key)
        out.append(
            {
                **s.to_dict(),
                "installed": None
                if choice is None
                else {"recipe": choice["recipe"], "version": choice["version"], "id": choice["id"]},
            }
        )
    return jsonify({"threshold": similar.THRESHOLD, "suggestions": out[:SUGGESTIONS_SHOWN]})
