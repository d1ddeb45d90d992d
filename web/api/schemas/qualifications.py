"""People's qualifications over HTTP: the grant and revocation bodies (each e-signed)
and what a person's training record looks like."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from engine.qualifications import MAX_REASON, NAME

from .quality import SignedCredentials

QUAL = fields.String(
    required=True,
    validate=[validate.Length(min=1, max=64), validate.Regexp(NAME)],
    metadata={"description": "lower-case letters, digits, - . _ (e.g. aseptic-gowning)"},
)


class QualificationGrant(ma.Schema):
    qualification = QUAL
    valid_until = fields.Date(required=True, metadata={"description": "the last day it is current (UTC)"})
    reason = fields.String(
        load_default="", validate=validate.Length(max=MAX_REASON), metadata={"description": "e.g. the training record"}
    )
    signature = fields.Nested(
        SignedCredentials, required=True, metadata={"description": "QA's or a trainer's signature (Qualified)"}
    )


class QualificationRevoke(ma.Schema):
    qualification = QUAL
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON))
    signature = fields.Nested(SignedCredentials, required=True, metadata={"description": "meaning Revoked"})


class QualificationEntry(ma.Schema):
    """One signed row of the history: a grant or a revocation."""

    id = fields.Integer()
    username = fields.String()
    qualification = fields.String()
    action = fields.String(metadata={"description": "granted or revoked"})
    valid_until = fields.String(allow_none=True)
    revoked_at = fields.String(allow_none=True)
    reason = fields.String()
    granted_by = fields.String(metadata={"description": "who signed it"})
    printed_name = fields.String()
    meaning = fields.String(metadata={"description": "Qualified or Revoked"})
    signed_at = fields.String()
    content_hash = fields.String()


class QualificationNow(ma.Schema):
    qualification = fields.String()
    status = fields.String(metadata={"description": "current, expired or revoked"})
    current = fields.Boolean()
    valid_until = fields.String(allow_none=True)
    granted_by = fields.String()
    signed_at = fields.String()


class QualificationRecord(ma.Schema):
    username = fields.String()
    printed_name = fields.String()
    on = fields.String(metadata={"description": "the date (UTC) `status` is computed for"})
    qualifications = fields.List(fields.Nested(QualificationNow))
    history = fields.List(fields.Nested(QualificationEntry))
