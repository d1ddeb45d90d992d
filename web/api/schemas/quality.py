"""Review by exception over HTTP: exceptions with their dispositions, QA's e-signed
disposition, release and rejection with what blocks them, and the exception rule sets."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from engine.vocabulary import ExceptionCategory, ExceptionStatus, Severity

from .batches import Credentials

SEVERITIES = tuple(s.value for s in Severity)
STATUSES = tuple(s.value for s in ExceptionStatus)


class SignedCredentials(Credentials):
    """A QA signature: the two components and the signature's meaning."""

    meaning = fields.String(
        validate=validate.Length(min=1, max=50),
        metadata={"description": "the meaning of the signature (dispositions: Reviewed or Approved)"},
    )


class ExceptionFilter(ma.Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    severity = fields.String(validate=validate.OneOf(SEVERITIES))


class DispositionOut(ma.Schema):
    decision = fields.String(metadata={"description": "accept, escalate, auto_close or close"})
    justification = fields.String()
    username = fields.String()
    printed_name = fields.String()
    meaning = fields.String()
    signed_at = fields.String()
    content_hash = fields.String(metadata={"description": "SHA-256 of what the signature covers"})
    rule_set_version = fields.Integer(allow_none=True)


class ReviewedException(ma.Schema):
    """An exception with its dispositions and deviation: what QA reviews."""

    id = fields.Integer()
    batch_id = fields.String()
    category = fields.String(metadata={"description": ", ".join(c.value for c in ExceptionCategory)})
    source = fields.String()
    severity = fields.String(metadata={"description": ", ".join(SEVERITIES)})
    status = fields.String(metadata={"description": "open -> accepted | escalated -> closed"})
    step_seq = fields.Integer(allow_none=True)
    parameter = fields.String(allow_none=True)
    message = fields.String()
    value = fields.Raw(allow_none=True)
    limits = fields.Dict(allow_none=True)
    details = fields.Dict()
    raised_by = fields.String()
    created_at = fields.String()
    closed_at = fields.String(allow_none=True)
    rule_set_version = fields.Integer(allow_none=True, metadata={"description": "None: the built-in rules"})
    signatures_required = fields.Integer()
    signatures_given = fields.Integer()
    blocks_release = fields.Boolean()
    opens_deviation = fields.Boolean()
    dispositions = fields.List(fields.Nested(DispositionOut))
    deviation = fields.Dict(allow_none=True, metadata={"description": "the QMS deviation: number, status, capa"})


class DispositionIn(ma.Schema):
    decision = fields.String(required=True, validate=validate.OneOf(("accept", "escalate")))
    justification = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    signature = fields.Nested(SignedCredentials, required=True)


class ReleaseIn(ma.Schema):
    signature = fields.Nested(SignedCredentials, required=True)
    comment = fields.String(
        load_default="", validate=validate.Length(max=2000), metadata={"description": "required to reject"}
    )


class BatchDispositionOut(ma.Schema):
    decision = fields.String(metadata={"description": "released or rejected"})
    comment = fields.String()
    username = fields.String()
    printed_name = fields.String()
    meaning = fields.String()
    signed_at = fields.String()
    content_hash = fields.String()


class ReleaseOut(ma.Schema):
    batch_id = fields.String()
    state = fields.String()
    disposition = fields.Nested(BatchDispositionOut)


class ReleaseCheck(ma.Schema):
    batch_id = fields.String()
    state = fields.String()
    releasable = fields.Boolean()
    blocking = fields.List(
        fields.Dict(),
        metadata={
            "description": "each open item: kind (exception, correction, signature, incident, "
            "quality_process, state), its id and a message"
        },
    )


class RuleSetIn(ma.Schema):
    comment = fields.String(load_default="", validate=validate.Length(max=2000))
    categories = fields.Dict(
        required=True,
        keys=fields.String(validate=validate.Length(max=60)),
        values=fields.Dict(),
        metadata={
            "description": "category -> {severity, critical_severity, signatures, blocks_release, "
            "deviation, auto_close}; every category needs a rule"
        },
    )


class RuleSetOut(ma.Schema):
    version = fields.Integer()
    status = fields.String(metadata={"description": "draft, approved (in force: the newest) or superseded"})
    content_hash = fields.String()
    comment = fields.String()
    created_by = fields.String()
    created_at = fields.String()
    approved_by = fields.String(allow_none=True)
    approved_at = fields.String(allow_none=True)
    categories = fields.Dict()


class RuleApprove(ma.Schema):
    signature = fields.Nested(SignedCredentials, required=True)
