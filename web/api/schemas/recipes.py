"""Recipe versions over HTTP: uploads, checks, the version as stored, approval reasons."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from .quality import SignedCredentials


class RecipeImport(ma.Schema):
    bpmn = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "file name -> BPMN XML text"},
    )
    forms = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(),
        load_default=dict,
        metadata={"description": "form id -> form-js JSON"},
    )
    recipe = fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": "recipe key; default: the BPMN process id"}
    )
    process_id = fields.String(metadata={"description": "the top process, when the files hold several"})


class RecipeUploadOptions(ma.Schema):
    """The plain form fields of a multipart recipe upload (the files come separately)."""

    recipe = fields.String(validate=validate.Length(min=1, max=200))
    process_id = fields.String()


class RecipeUpload(RecipeUploadOptions):
    """Documentation only: the multipart form of a recipe upload."""

    bpmn = fields.List(
        fields.Raw(metadata={"type": "string", "format": "binary"}),
        required=True,
        metadata={"description": "one or more .bpmn files"},
    )
    forms = fields.List(
        fields.Raw(metadata={"type": "string", "format": "binary"}),
        metadata={"description": "form-js .json files, keyed by their `id` (or file name)"},
    )


class RecipeCheck(ma.Schema):
    bpmn = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "file name -> BPMN XML text"},
    )
    process_id = fields.String()


class RecipeUploadCheck(ma.Schema):
    """Documentation only: the multipart form of a recipe check."""

    bpmn = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}), required=True)
    process_id = fields.String()


class Problem(ma.Schema):
    code = fields.String()
    message = fields.String()
    element_id = fields.String(allow_none=True)
    file = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)


class RecipeCheckResult(ma.Schema):
    ok = fields.Boolean()
    problems = fields.List(fields.Nested(Problem))


class Recipe(ma.Schema):
    id = fields.Integer(metadata={"description": "recipe version id"})
    recipe = fields.String()
    version = fields.Integer()
    name = fields.String()
    process_id = fields.String()
    status = fields.String(metadata={"description": "draft, in_review, approved, effective, superseded or retired"})
    content_hash = fields.String()
    created_at = fields.String()
    created_by = fields.String()
    effective_from = fields.String(
        allow_none=True, metadata={"description": "from when new batches take this version (UTC)"}
    )
    approved_by = fields.List(fields.String(), metadata={"description": "who signed the approval, reviewer first"})
    approved_at = fields.String(allow_none=True)
    tasks = fields.List(fields.Dict())


class RecipeDetail(Recipe):
    bpmn = fields.Dict(keys=fields.String(), values=fields.String())
    forms = fields.Dict()


class Reason(ma.Schema):
    """Approving, retiring, holding, resuming and aborting each need a reason."""

    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "why; recorded in the audit trail"},
    )


class RecipeSubmit(ma.Schema):
    comment = fields.String(
        load_default="",
        validate=validate.Length(max=2000),
        metadata={"description": "what changed and why (change control reference)"},
    )


class RecipeSubmitted(Recipe):
    approval_process = fields.String(
        allow_none=True,
        metadata={"description": "the quality process approving it (QP-RA-...); null: no approval flow is effective"},
    )


class RecipeSignedDecision(ma.Schema):
    """An e-signed approval or retirement: both components, the meaning, a reason."""

    signature = fields.Nested(SignedCredentials, required=True)
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "why; recorded in the audit trail"},
    )


class RecipeApprove(RecipeSignedDecision):
    effective_from = fields.String(
        validate=validate.Length(min=1, max=40),
        metadata={"description": "ISO 8601 date or date-time (UTC) from when it is effective; default: now"},
    )
