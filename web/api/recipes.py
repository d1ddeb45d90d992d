"""Recipes over HTTP: import BPMN (+ forms) as versions, check them, approve, retire.

A recipe upload comes either as multipart (files straight from a designer's disk) or
as JSON (from scripts and the browser modeler), so this blueprint reads its body itself
instead of through one webargs location; both shapes are in the OpenAPI document.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from flask import request
from flask_smorest import Blueprint

from engine import recipes
from engine.bpmn import validate_recipe
from engine.vocabulary import RecipeStatus

from ..auth import current_user, requires
from ..errors import ApiError
from ..input_limits import strict_json_loads
from . import runtime
from .schemas import (
    Reason,
    Recipe,
    RecipeCheck,
    RecipeCheckResult,
    RecipeDetail,
    RecipeImport,
    RecipeUpload,
    RecipeUploadCheck,
    RecipeUploadOptions,
)

blp = Blueprint("recipes", __name__, url_prefix="/api", description="Recipe versions: BPMN and forms")

MULTIPART = "multipart/form-data"


def _body_doc(json_schema, multipart_schema) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": json_schema}, MULTIPART: {"schema": multipart_schema}},
        }
    }


def json_body() -> Any:
    """The request's JSON body, parsed within the input limits (``web.input_limits``)."""
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send application/json or {MULTIPART}, not {request.mimetype or 'an empty body'}",
        )
    return strict_json_loads(request.get_data())


def _uploaded(field: str, *, required: bool) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for n, upload in enumerate(request.files.getlist(field), start=1):
        name = PurePath(upload.filename or f"{field}{n}").name
        if name in files:
            raise ApiError(
                422,
                "validation_error",
                f"two {field} files are called {name}",
                {"fields": {field: [f"Duplicate file name {name}."]}},
            )
        files[name] = upload.read()
    if required and not files:
        raise ApiError(
            422,
            "validation_error",
            f"upload at least one {field} file",
            {"fields": {field: ["Missing data for required field."]}},
        )
    return files


def _refuse_unknown_files(*known: str) -> None:
    unknown = sorted(set(request.files) - set(known))
    if unknown:
        raise ApiError(
            422,
            "validation_error",
            "the request has invalid fields: " + ", ".join(unknown),
            {"fields": {name: ["Unknown field."] for name in unknown}},
        )


def _forms_from_files(uploads: dict[str, bytes]) -> dict[str, Any]:
    forms: dict[str, Any] = {}
    for name, data in uploads.items():
        definition = strict_json_loads(data, where=f"form file {name}")
        if not isinstance(definition, dict):
            raise ApiError(422, "form_invalid", f"form file {name} must hold one form-js JSON object", {"file": name})
        forms[str(definition.get("id") or PurePath(name).stem)] = definition
    return forms


def _recipe_upload() -> tuple[dict[str, bytes], dict[str, Any], dict[str, Any]]:
    """(BPMN files, forms, options) from either body shape."""
    if request.mimetype == MULTIPART:
        _refuse_unknown_files("bpmn", "forms")
        files = _uploaded("bpmn", required=True)
        forms = _forms_from_files(_uploaded("forms", required=False))
        options = RecipeUploadOptions().load(request.form.to_dict())
        return files, forms, options
    body = RecipeImport().load(json_body())
    files = {name: text.encode("utf-8") for name, text in body.pop("bpmn").items()}
    return files, body.pop("forms"), body


@blp.route("/recipes", methods=["GET"])
@requires("recipe.read")
@blp.response(200, Recipe(many=True))
def list_recipes():
    """Every recipe version, by recipe key and version."""
    return [recipes.describe(rv) for rv in recipes.list_versions(runtime())]


@blp.route("/recipes", methods=["POST"])
@requires("recipe.import")
@blp.doc(**_body_doc(RecipeImport, RecipeUpload))
@blp.response(201, Recipe)
def import_recipe():
    """Import BPMN files (and forms) as a new draft version.

    Importing identical content again returns the existing version: imports can be
    repeated safely. Approval is a separate step by another person
    (`POST /api/recipes/{id}/approve`): the author never approves their own version.
    """
    files, forms, options = _recipe_upload()
    rv = recipes.import_recipe(
        runtime(),
        files,
        forms=forms,
        user=current_user(),
        recipe=options.get("recipe"),
        process_id=options.get("process_id"),
    )
    return recipes.describe(rv)


@blp.route("/recipes/validate", methods=["POST"])
@requires("recipe.read")
@blp.doc(**_body_doc(RecipeCheck, RecipeUploadCheck))
@blp.response(200, RecipeCheckResult)
def check_recipe():
    """Check BPMN files without storing them: every problem, located by element and file."""
    if request.mimetype == MULTIPART:
        _refuse_unknown_files("bpmn")
        files = _uploaded("bpmn", required=True)
        process_id = RecipeUploadOptions(only=("process_id",)).load(request.form.to_dict()).get("process_id")
    else:
        body = RecipeCheck().load(json_body())
        files = {name: text.encode("utf-8") for name, text in body["bpmn"].items()}
        process_id = body.get("process_id")
    problems = validate_recipe(files, process_id)
    return {"ok": not problems, "problems": [p.to_dict() for p in problems]}


@blp.route("/recipes/<id:recipe_id>", methods=["GET"])
@requires("recipe.read")
@blp.response(200, RecipeDetail)
def show_recipe(recipe_id: int):
    """One recipe version with its BPMN files and forms."""
    return recipes.describe(recipes.get_version(runtime(), recipe_id), full=True)


@blp.route("/recipes/<id:recipe_id>/approve", methods=["POST"])
@requires("recipe.approve")
@blp.arguments(Reason)
@blp.response(200, Recipe)
def approve_recipe(body, recipe_id: int):
    """Approve a version: only approved versions start batches."""
    return recipes.describe(
        recipes.set_status(runtime(), recipe_id, RecipeStatus.APPROVED, current_user(), body["reason"])
    )


@blp.route("/recipes/<id:recipe_id>/retire", methods=["POST"])
@requires("recipe.approve")
@blp.arguments(Reason)
@blp.response(200, Recipe)
def retire_recipe(body, recipe_id: int):
    """Retire a version: no new batch starts on it; running batches go on."""
    return recipes.describe(
        recipes.set_status(runtime(), recipe_id, RecipeStatus.RETIRED, current_user(), body["reason"])
    )
