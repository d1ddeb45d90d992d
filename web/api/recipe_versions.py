"""Across recipe versions over HTTP: the diff of two versions, where an operation template
is used, replacing a template version in the recipes that call it (new drafts), and
moving a running batch to a newer version of its recipe (a supervisor requests, QA
approves with an e-signature). Every write takes an ``Idempotency-Key`` (a repeat
answers with the first result); the approval's signature carries both components."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import fields, validate

from engine import batches, recipe_versions

from ..auth import current_person, own_signature, requires
from . import runtime
from .fields import BoundedInt
from .schemas import IdempotencyKey
from .schemas.quality import SignedCredentials

blp = Blueprint(
    "recipe_versions",
    __name__,
    url_prefix="/api",
    description="Across recipe versions: diff, template where-used and replace, running-batch migration",
)

REPLAYED = "Idempotent-Replayed"


def _answer(outcome):
    headers = {REPLAYED: "true"} if outcome.replayed else {}
    return outcome.body, outcome.status, headers


class DiffQuery(ma.Schema):
    against = BoundedInt(
        minimum=1, strict=False, required=True, metadata={"description": "the recipe version id to compare with"}
    )


class DiffOut(ma.Schema):
    recipe = fields.Dict(metadata={"description": "the version compared (id, recipe, version, content_hash)"})
    against = fields.Dict(metadata={"description": "the base version"})
    elements = fields.Dict(
        metadata={"description": "BPMN elements by id: added, removed, changed (each change with old and new)"}
    )
    forms = fields.Dict(
        metadata={"description": "forms added, removed, and changed by field key (label, unit, limits, critical...)"}
    )
    identical = fields.Boolean()


class WhereUsedOut(ma.Schema):
    template = fields.String()
    versions = fields.List(fields.Dict(), metadata={"description": "the template's versions (id, version, status)"})
    used_by = fields.List(
        fields.Dict(),
        metadata={
            "description": "recipe versions calling the template: call activities and which template version "
            "they embed (null: a locally changed copy)"
        },
    )


class ReplaceIn(ma.Schema):
    with_version = BoundedInt(minimum=1, required=True, metadata={"description": "the template version to put in"})
    recipes = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        validate=validate.Length(max=200),
        metadata={"description": "recipe keys (default: every recipe that calls the template)"},
    )


class ReplaceOut(ma.Schema):
    template = fields.String()
    with_version = fields.Integer()
    recipes = fields.List(
        fields.Dict(), metadata={"description": "each recipe: from (id, version), the new draft, the outcome"}
    )


class MigrationIn(ma.Schema):
    to_version = BoundedInt(minimum=1, required=True, metadata={"description": "the newer version of the recipe"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class MigrationApproveIn(ma.Schema):
    signature = fields.Nested(SignedCredentials, required=True)


class MigrationOut(ma.Schema):
    id = fields.Integer()
    batch_id = fields.String()
    recipe = fields.String()
    from_version = fields.Integer()
    from_version_id = fields.Integer()
    to_version = fields.Integer()
    to_version_id = fields.Integer()
    reason = fields.String()
    status = fields.String(metadata={"description": "requested -> approved | refused"})
    requested_by = fields.String()
    requested_at = fields.String()
    decided_by = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)
    position = fields.List(fields.Dict(), metadata={"description": "where the batch stands, mapped onto the version"})
    problems = fields.List(fields.Dict(), metadata={"description": "why it was refused: each unmapped element"})
    signature = fields.Dict(allow_none=True)


class MigrationApproved(ma.Schema):
    migration = fields.Nested(MigrationOut)


@blp.route("/recipes/<id:recipe_id>/diff", methods=["GET"])
@requires("recipe.read")
@blp.arguments(DiffQuery, location="query")
@blp.response(200, DiffOut)
def recipe_diff(query, recipe_id: int):
    """What changed from version `against` to this one: BPMN elements and form fields."""
    return recipe_versions.diff_versions(runtime(), recipe_id, query["against"])


@blp.route("/templates/<name>/where-used", methods=["GET"])
@requires("recipe.read")
@blp.response(200, WhereUsedOut)
def template_where_used(name: str):
    """The recipes whose call activities call this operation template (its process id)."""
    return recipe_versions.where_used(runtime(), name)


@blp.route("/templates/<name>/replace", methods=["POST"])
@requires("template.replace")
@blp.arguments(ReplaceIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(200, ReplaceOut)
def template_replace(body, headers, name: str):
    """Put an approved template version into the recipes that call it: one new draft each (audited)."""
    return _answer(
        recipe_versions.replace_template(
            runtime(),
            name,
            with_version=body["with_version"],
            recipes=body.get("recipes"),
            actor=current_person(),
            idempotency_key=headers.get("idempotency_key"),
        )
    )


@blp.route("/batches/<batch_id>/migrations", methods=["GET"])
@requires("batch.read")
@blp.response(200, MigrationOut(many=True))
def batch_migrations(batch_id: str):
    """The batch's migration requests and what became of them."""
    return recipe_versions.list_migrations(runtime(), batch_id)


@blp.route("/batches/<batch_id>/migrations", methods=["POST"])
@requires("batch.migrate")
@blp.arguments(MigrationIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(201, MigrationOut)
@blp.alt_response(409, description="`migration_unmapped`: `details.unmapped` names the elements that do not map")
def request_migration(body, headers, batch_id: str):
    """A supervisor asks to move the running batch to a newer version (QA approves)."""
    return _answer(
        recipe_versions.request_migration(
            runtime(),
            batch_id,
            to_version=body["to_version"],
            reason=body["reason"],
            requester=current_person(),
            idempotency_key=headers.get("idempotency_key"),
        )
    )


@blp.route("/batches/<batch_id>/migrations/<id:migration_id>/approve", methods=["POST"])
@requires("batch.migration.approve")
@blp.arguments(MigrationApproveIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(200, MigrationApproved)
@blp.alt_response(409, description="`migration_unmapped`: the position no longer maps; the request is refused")
def approve_migration(body, headers, batch_id: str, migration_id: int):
    """QA approves with an e-signature (*Approved*): the batch moves now, or is refused with why."""
    signature = body["signature"]
    meaning = signature.get("meaning", recipe_versions.migration.MEANING)
    if meaning != recipe_versions.migration.MEANING:
        from engine.errors import InvalidInput

        raise InvalidInput(f"this signature means {recipe_versions.migration.MEANING!r}", code="meaning_invalid")
    key = headers.get("idempotency_key")
    if not batches.answered(runtime(), batch_id, current_person().username, key):
        # refused before the password is checked (it would count toward a lockout)
        recipe_versions.migration.check_approver(runtime(), batch_id, migration_id, current_person())
    signer = own_signature(signature)
    return _answer(
        recipe_versions.approve_migration(
            runtime(), batch_id, migration_id, signer=signer, idempotency_key=headers.get("idempotency_key")
        )
    )
