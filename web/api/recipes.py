"""Recipes over HTTP: import BPMN (+ forms) as versions, check them, submit them for
QA's approval flow, approve (e-signed, while no approval flow is effective), retire.

A recipe upload comes either as multipart (files straight from a designer's disk) or
as JSON (from scripts and the browser modeler), so this blueprint reads its body itself
instead of through one webargs location; both shapes are in the OpenAPI document.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from flask import request
from flask_smorest import Blueprint

from engine import recipe_lifecycle, recipes
from engine.bpmn import validate_recipe
from engine.errors import InvalidInput

from ..auth import current_user, own_signature, requires
from ..errors import ApiError
from ..input_limits import strict_json_loads
from . import runtime
from .schemas import (
    IdempotencyKey,
    Recipe,
    RecipeCheck,
    RecipeCheckResult,
    RecipeDetail,
    RecipeImport,
    RecipeUpload,
    RecipeUploadCheck,
    RecipeUploadOptions,
)
from .schemas.recipes import RecipeApprove, RecipeSignedDecision, RecipeSubmit, RecipeSubmitted

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
    repeated safely. Approval is a separate step by other people
    (`POST /api/recipes/{id}/submit` starts QA's approval flow): the author never approves
    their own version.
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


@blp.route("/recipes/<id:recipe_id>/submit", methods=["POST"])
@requires("recipe.import")
@blp.arguments(RecipeSubmit)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(200, RecipeSubmitted)
def submit_recipe(body, headers, recipe_id: int):
    """Submit a draft for review: it becomes `in_review` and QA's effective approval flow
    (`qa_recipe_approval`) starts about it as a quality process (`approval_process`; its
    tasks appear in QA's task list). `approval_process` is null when no approval flow is
    effective: then a QA person approves it with `POST /api/recipes/{id}/approve`."""
    return recipe_lifecycle.submit(
        runtime(),
        recipe_id,
        user=current_user(),
        comment=body["comment"],
        idempotency_key=headers.get("idempotency_key"),
    )


def _signer(body, meaning: str):
    signature = body["signature"]
    if signature.get("meaning", meaning) != meaning:
        raise InvalidInput(f"this signature means {meaning!r}", code="meaning_invalid")
    return own_signature(signature)


@blp.route("/recipes/<id:recipe_id>/approve", methods=["POST"])
@requires("recipe.approve")
@blp.arguments(RecipeApprove)
@blp.response(200, Recipe)
def approve_recipe(body, recipe_id: int):
    """Approve a version with an e-signature (*Approved*, re-authenticated; not by its
    author): the bootstrap path while no approval flow is effective (409
    `approval_flow_required` otherwise). It is effective from `effective_from` (default
    now); the version effective until then becomes superseded."""
    signer = _signer(body, recipe_lifecycle.APPROVED_MEANING)
    rv = recipe_lifecycle.approve(
        runtime(), recipe_id, signer=signer, reason=body["reason"], effective_from=body.get("effective_from")
    )
    return recipes.describe(rv)


@blp.route("/recipes/<id:recipe_id>/retire", methods=["POST"])
@requires("recipe.approve")
@blp.arguments(RecipeSignedDecision)
@blp.response(200, Recipe)
def retire_recipe(body, recipe_id: int):
    """Retire a version with an e-signature: no new batch starts on it; running batches go on."""
    signer = _signer(body, recipe_lifecycle.RETIRED_MEANING)
    return recipes.describe(recipe_lifecycle.retire(runtime(), recipe_id, signer=signer, reason=body["reason"]))
