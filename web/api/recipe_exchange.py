"""Recipes leaving and entering Batchline, and help while drafting them:

- ``GET /api/recipes/{id}/export.xml``: the version as BatchML (``BatchInformation`` with
  one ``MasterRecipe``, B2MML V0700), validated against the MESA schema before it is sent;
- ``POST /api/recipes/import.xml``: such a document back in, as a draft version with the
  same content hash (hostile, oversize or schema-invalid documents refused with why);
- ``GET /api/recipes/{id}/diagram.svg``: the BPMN diagram drawn on the server;
- ``POST /api/recipes/suggestions``: library templates similar to a draft operation.

The mapping is documented in ``engine/exports/recipe_batchml.py``.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import fields, validate

from engine import recipes
from engine.exports import diagram_svg, recipe_exchange

from ..auth import current_user, requires
from ..errors import ApiError
from ..input_limits import strict_json_loads
from . import runtime
from .schemas.batches import IdempotencyKey

blp = Blueprint(
    "recipe_exchange",
    __name__,
    url_prefix="/api",
    description="Recipe versions as BatchML and SVG; suggestions from the library",
)

XML_TYPES = ("application/xml", "text/xml")
HASH_HEADER = "X-Recipe-Content-Hash"
MAX_FILES = 50


class ImportOptions(ma.Schema):
    recipe = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "store under this recipe key (default: the document's MasterRecipe ID)"},
    )


class DiagramOptions(ma.Schema):
    file = fields.String(
        validate=validate.Length(min=1, max=255),
        metadata={"description": "which BPMN file of the recipe (default: the one holding the top process)"},
    )


class SuggestionRequest(ma.Schema):
    bpmn = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=255)),
        values=fields.String(),
        required=True,
        validate=validate.Length(min=1, max=MAX_FILES),
        metadata={"description": "the draft's BPMN files: file name -> XML text"},
    )
    forms = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=255)),
        values=fields.Dict(),
        load_default=dict,
        metadata={"description": "the draft's form-js forms: form id -> form"},
    )
    limit = fields.Integer(load_default=5, validate=validate.Range(min=1, max=50))


class SuggestionOut(ma.Schema):
    template = fields.String(required=True)
    title = fields.String(required=True)
    score = fields.Float(required=True, metadata={"description": "cosine similarity, 0 to 1"})
    description = fields.String(allow_none=True)


class SuggestionsOut(ma.Schema):
    threshold = fields.Float(required=True)
    suggestions = fields.List(fields.Nested(SuggestionOut), required=True)


class ImportedRecipe(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    id = fields.Integer(required=True)
    recipe = fields.String(required=True)
    version = fields.Integer(required=True)
    status = fields.String(required=True)
    content_hash = fields.String(required=True)
    created = fields.Boolean(required=True, metadata={"description": "false: the identical version was already here"})


def _safe_name(text: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in text)


def _binary(media: str, what: str) -> dict[str, Any]:
    return {"description": what, "content": {media: {"schema": {"type": "string", "format": "binary"}}}}


@blp.route("/recipes/<id:recipe_id>/export.xml", methods=["GET"])
@requires("recipe.read")
@blp.doc(
    responses={
        "200": _binary("application/xml", "the version as a validated BatchML BatchInformation/MasterRecipe"),
        "404": {"description": "no such recipe version (`recipe_not_found`)"},
    }
)
def export_xml(recipe_id: int):
    """The recipe version as BatchML (B2MML V0700 ``BatchInformation`` with a ``MasterRecipe``).

    Carries the BPMN files and forms byte for byte (base64 in ``OtherInformation``) and
    an ISA-88 view of the procedure; validated against `BatchML-BatchInformation.xsd`
    before it is sent. Importing it (`POST /api/recipes/import.xml`) gives the same
    content hash. The B2MML is used courtesy of MESA International."""
    body, rv = recipe_exchange.export_version(runtime(), recipe_id)
    name = _safe_name(rv["recipe"])
    return Response(
        body,
        mimetype="application/xml",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-v{rv["version"]}.batchml.xml"',
            HASH_HEADER: rv["content_hash"],
            "X-Content-Type-Options": "nosniff",
        },
    )


@blp.route("/recipes/import.xml", methods=["POST"])
@requires("recipe.import")
@blp.arguments(ImportOptions, location="query")
@blp.arguments(IdempotencyKey, location="headers")
@blp.doc(
    requestBody={
        "required": True,
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in XML_TYPES},
    }
)
@blp.response(201, ImportedRecipe)
def import_xml(options, headers):
    """Import a BatchML recipe export as a draft version (or get the identical version
    already here: 200, ``created`` false). Refused: DTDs and entities (422 `xml_refused`),
    documents larger than the request limit (413), a document the schema refuses or that
    holds no Batchline master recipe (422 `batchml_invalid`, the reasons in `details`),
    files that do not match the declared content hash (422 `content_hash_mismatch`)."""
    if request.mimetype not in XML_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the BatchML document as {' or '.join(XML_TYPES)}, not {request.mimetype or 'an empty body'}",
        )
    answer, created = recipe_exchange.import_document(
        runtime(),
        request.get_data(),
        user=current_user(),
        recipe=options.get("recipe"),
        idempotency_key=headers.get("idempotency_key"),
    )
    return {**answer, "created": created}, 201 if created else 200


@blp.route("/recipes/<id:recipe_id>/diagram.svg", methods=["GET"])
@requires("recipe.read")
@blp.arguments(DiagramOptions, location="query")
@blp.doc(
    responses={
        "200": _binary("image/svg+xml", "the diagram (no scripts: names are escaped text)"),
        "404": {"description": "no such recipe version (`recipe_not_found`)"},
        "422": {"description": "no such file (`diagram_file_unknown`) or no layout in it (`diagram_missing`)"},
    }
)
def diagram_svg_view(options, recipe_id: int):
    """The recipe's BPMN diagram as SVG, drawn from the file's layout (BPMN DI)."""
    rv = recipes.get_version(runtime(), recipe_id)
    name, svg = diagram_svg.render_recipe(rv.bpmn, rv.process_id, options.get("file"))
    return Response(
        svg,
        mimetype="image/svg+xml",
        headers={
            "Content-Disposition": f'inline; filename="{_safe_name(rv.recipe)}-v{rv.version}.svg"',
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
            "X-Diagram-File": _safe_name(name),
        },
    )


@blp.route("/recipes/suggestions", methods=["POST"])
@requires("recipe.read")
@blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": SuggestionRequest}}})
@blp.response(200, SuggestionsOut)
def suggestions():
    """Library operation templates similar to a draft (its structure, element names and
    form fields; TF-IDF and cosine similarity), best first; only those scoring at least
    `threshold`."""
    from analytics import suggestions as similar

    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", f"send application/json, not {request.mimetype or 'nothing'}")
    body = SuggestionRequest().load(strict_json_loads(request.get_data()))
    found = similar.suggest(body["bpmn"], body["forms"], limit=body["limit"])
    return {"threshold": similar.THRESHOLD, "suggestions": [s.to_dict() for s in found]}
