"""Accounts and API tokens over HTTP (administrators only)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from engine.users import ROLES


class UserIn(ma.Schema):
    username = fields.String(required=True, validate=validate.Length(min=2, max=64))
    printed_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True, validate=validate.Length(min=1))
    kind = fields.String(load_default="person", validate=validate.OneOf(["person", "service"]))
    password = fields.String(load_only=True, validate=validate.Length(max=200))


class UserOut(ma.Schema):
    username = fields.String()
    printed_name = fields.String()
    kind = fields.String()
    roles = fields.List(fields.String())
    active = fields.Boolean()
    locked = fields.Boolean()
    locked_until = fields.String(allow_none=True, metadata={"description": "when the lock ends by itself"})
    created_at = fields.String()
    password_changed_at = fields.String(allow_none=True)


class TokenIn(ma.Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))


class TokenOut(ma.Schema):
    token = fields.String(metadata={"description": "shown once; only its hash is stored"})
