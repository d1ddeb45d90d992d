"""Connector instances and LIMS results over HTTP. Fields are checked again by
``engine.connector_config`` / ``engine.lims`` (one rule for API, CLI and file); the
bounds here document them in OpenAPI and refuse wrong JSON types early."""

from __future__ import annotations

import math

import marshmallow as ma
from marshmallow import fields, validate

NAME = validate.Regexp(r"^[A-Za-z][A-Za-z0-9_-]{0,99}$", error="letters, digits, '_' or '-', starting with a letter")
SECRET = fields.String(
    load_only=True,
    validate=validate.Length(min=1, max=4096),
    metadata={"description": "the credential, stored encrypted; never returned"},
)
SECRET_REF = fields.String(
    validate=validate.Length(min=5, max=300),
    metadata={"description": "env:NAME or file:/absolute/path, resolved when the connector is built"},
)


class StrictBool(fields.Boolean):
    truthy = {True}
    falsy = {False}


class FiniteFloat(fields.Float):
    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ma.ValidationError("a number")
        out = super()._deserialize(value, attr, data, **kwargs)
        if not math.isfinite(out):
            raise ma.ValidationError("a finite number")
        return out


class ConnectorIn(ma.Schema):
    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.Length(min=1, max=50))
    endpoint = fields.String(required=True, validate=validate.Length(min=1, max=500))
    settings = fields.Dict(keys=fields.String(validate=validate.Length(max=100)))
    timeout_seconds = FiniteFloat(validate=validate.Range(min=0.1, max=300))
    enabled = StrictBool()
    secret = SECRET
    secret_ref = SECRET_REF


class ConnectorChange(ma.Schema):
    type = fields.String(validate=validate.Length(min=1, max=50))
    endpoint = fields.String(validate=validate.Length(min=1, max=500))
    settings = fields.Dict(keys=fields.String(validate=validate.Length(max=100)))
    timeout_seconds = FiniteFloat(validate=validate.Range(min=0.1, max=300))
    enabled = StrictBool()
    secret = SECRET
    secret_ref = SECRET_REF
    clear_secret = StrictBool(load_default=False, metadata={"description": "remove the secret or its reference"})


class ConnectorOut(ma.Schema):
    name = fields.String()
    type = fields.String()
    endpoint = fields.String()
    settings = fields.Dict()
    timeout_seconds = fields.Float()
    enabled = fields.Boolean()
    secret_set = fields.Boolean(metadata={"description": "a secret or a secret reference is configured"})
    secret_ref = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    updated_by = fields.String()


class ConnectionCheck(ma.Schema):
    name = fields.String()
    ok = fields.Boolean(allow_none=True, metadata={"description": "null: the type offers no check"})
    message = fields.String()


class LimsValue(fields.Raw):
    """A result value: a finite number or a short text ("negative", "< 0.1")."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or value is None:
            raise ma.ValidationError("a number or a text")
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise ma.ValidationError("a finite number")
            return value
        if isinstance(value, str) and 0 < len(value) <= 200:
            return value
        raise ma.ValidationError("a number or a text of at most 200 characters")


class LimsTestResult(ma.Schema):
    test = fields.String(
        required=True, validate=[validate.Length(min=1, max=100), validate.Regexp(r"^[A-Za-z0-9_.-]+$")]
    )
    value = LimsValue(required=True, metadata={"oneOf": [{"type": "number"}, {"type": "string"}]})
    unit = fields.String(validate=validate.Length(max=30))
    low = FiniteFloat()
    high = FiniteFloat()


class LimsResultIn(ma.Schema):
    result_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    sample_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    status = fields.String(validate=validate.OneOf(["complete", "final"]))
    results = fields.List(fields.Nested(LimsTestResult), required=True, validate=validate.Length(min=1, max=100))


class LimsResultOut(ma.Schema):
    result_id = fields.String()
    sample_id = fields.String()
    replayed = fields.Boolean(metadata={"description": "true: this result_id was delivered before; nothing changed"})
    delivered_to = fields.List(fields.Dict())
    exceptions = fields.List(fields.Integer(), metadata={"description": "exceptions raised (out of specification)"})
