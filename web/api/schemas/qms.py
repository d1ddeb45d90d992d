"""The QMS link over HTTP: event subscribers (administrators) and the QMS's signed
messages. Subscriber fields are checked again by ``engine.qms.subscribers`` (one rule
for API and CLI); the bounds here document them in OpenAPI."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ..fields import BoundedInt

NAME = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
EVENT_TYPE = fields.String(validate=[validate.Length(min=1, max=200), validate.Regexp(r"^[A-Za-z0-9_.*-]+$")])
SECRET = fields.String(
    load_only=True,
    validate=validate.Length(min=30, max=120),
    metadata={"description": "whsec_ + base64 of 24..64 bytes; omit to have one generated. Never returned again."},
)


URL = fields.String(
    validate=validate.Length(min=1, max=2000),
    metadata={
        "description": "webhook, qms: the http(s) URL events are POSTed to; mqtt: the broker, "
        "mqtt://host:port or mqtts://host:port (no user or password in it)"
    },
)
TOPIC_PREFIX = fields.String(
    validate=validate.Length(min=1, max=200),
    metadata={
        "description": "mqtt only: topic levels events are published under, e.g. plant1/batchline "
        "(an event step.completed goes to plant1/batchline/step/completed); no + # $ or empty levels"
    },
)
USERNAME = fields.String(
    validate=validate.Length(min=1, max=200), metadata={"description": "mqtt only: broker account"}
)
PASSWORD = fields.String(
    load_only=True,
    validate=validate.Length(min=1, max=500),
    metadata={
        "description": "mqtt only: the broker account's password (needs username). Stored encrypted, "
        "never returned, logged or audited."
    },
)


class SubscriberIn(ma.Schema):
    name = fields.String(required=True, validate=NAME)
    url = fields.String(required=True, validate=URL.validate, metadata=URL.metadata)
    event_types = fields.List(EVENT_TYPE, required=True, validate=validate.Length(min=1, max=50))
    kind = fields.String(load_default="webhook", validate=validate.OneOf(["webhook", "qms", "mqtt"]))
    secret = SECRET
    topic_prefix = TOPIC_PREFIX
    username = USERNAME
    password = PASSWORD


class SubscriberChange(ma.Schema):
    url = URL
    topic_prefix = TOPIC_PREFIX
    username = USERNAME
    password = PASSWORD
    event_types = fields.List(EVENT_TYPE, validate=validate.Length(min=1, max=50))
    enabled = fields.Boolean(truthy={True}, falsy={False})
    secret = SECRET
    new_secret = fields.Boolean(
        truthy={True}, falsy={False}, load_default=False, metadata={"description": "generate a new secret (shown once)"}
    )


class SubscriberOut(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    url = fields.String()
    event_types = fields.List(fields.String())
    kind = fields.String()
    enabled = fields.Boolean(truthy={True}, falsy={False})
    secret_set = fields.Boolean()
    topic_prefix = fields.String(allow_none=True)
    username = fields.String(allow_none=True)
    password_set = fields.Boolean(metadata={"description": "mqtt: a broker password is stored (never shown)"})
    secret = fields.String(
        allow_none=True, metadata={"description": "only in the answer that set it (creation, new secret)"}
    )
    created_by = fields.String()
    created_at = fields.String()
    updated_at = fields.String()


class ExceptionRef(ma.Schema):
    batch_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    id = BoundedInt(required=True, minimum=1)


class DeviationData(ma.Schema):
    exception = fields.Nested(ExceptionRef, required=True)
    deviation = fields.String(required=True, validate=validate.Length(min=1, max=100))
    status = fields.String(validate=validate.Length(min=1, max=50))
    capa = fields.String(validate=validate.Length(min=1, max=100))


class QmsMessage(ma.Schema):
    """A Standard Webhooks payload: ``{type, timestamp, data}``."""

    type = fields.String(
        required=True, validate=validate.OneOf(["deviation.opened", "deviation.status_changed", "deviation.closed"])
    )
    timestamp = fields.String(validate=validate.Length(max=64))
    data = fields.Nested(DeviationData, required=True)

    @ma.validates_schema
    def _needs(self, message, **kwargs):
        data = message.get("data") or {}
        if message.get("type") == "deviation.status_changed" and "status" not in data:
            raise ma.ValidationError({"data": {"status": ["needed for deviation.status_changed"]}})
        if message.get("type") == "deviation.closed" and "capa" not in data:
            raise ma.ValidationError({"data": {"capa": ["needed for deviation.closed"]}})


class QmsOutcome(ma.Schema):
    webhook_id = fields.String()
    type = fields.String()
    replayed = fields.Boolean(metadata={"description": "true: this webhook-id was received before; nothing changed"})
    batch_id = fields.String()
    exception = fields.Integer()
    changed = fields.Boolean()
    deviation = fields.Dict()
