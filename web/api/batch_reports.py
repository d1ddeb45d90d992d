"""What people and equipment report on a batch outside the step path, over HTTP: an
operator's recorded event (``POST /api/batches/{batch_id}/events``) and an equipment
alarm (``POST /api/batches/{batch_id}/equipment/alarms``). Each raises one exception for
review by exception; an ``Idempotency-Key`` makes a repeat answer with the first result."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from engine.batches import events

from ..auth import current_person, current_user, requires
from . import runtime
from .schemas import IdempotencyKey

blp = Blueprint(
    "batch_reports",
    __name__,
    url_prefix="/api",
    description="Events recorded by operators and equipment alarms, raised as exceptions for review",
)

REPLAYED = "Idempotent-Replayed"


class StrictNumber(ma.fields.Float):
    """A JSON number: not a string, not a boolean, finite."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ma.ValidationError("must be a number")
        return super()._deserialize(value, attr, data, **kwargs)


class EventIn(ma.Schema):
    kind = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(events.EVENT_KINDS),
        metadata={"description": "documentation, process, equipment, material or safety"},
    )
    description = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=events.MAX_DESCRIPTION),
        metadata={"description": "what happened (required, at most 2000 characters)"},
    )
    step_seq = ma.fields.Integer(
        strict=True, allow_none=True, metadata={"description": "the recorded step it concerns, if any"}
    )
    task_id = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(min=1, max=100),
        metadata={"description": "the task page it was recorded from, if any"},
    )


class AlarmIn(ma.Schema):
    source = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=events.MAX_TEXT), metadata={"description": "equipment id"}
    )
    tag = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=events.MAX_TEXT),
        metadata={"description": "the alarm's tag or variable (e.g. TIC-101.PV)"},
    )
    message = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=events.MAX_DESCRIPTION))
    value = ma.fields.Raw(allow_none=True, metadata={"description": "the value that alarmed (number or short text)"})
    limits = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=40)),
        values=StrictNumber(allow_nan=False, allow_none=True),
        allow_none=True,
        validate=ma.validate.Length(max=10),
        metadata={"description": 'the limits it broke, e.g. {"upper": 37.5}'},
    )
    severity = ma.fields.String(
        allow_none=True,
        validate=ma.validate.OneOf(events.SEVERITY_HINTS),
        metadata={"description": "the equipment's severity hint; `critical` marks the exception critical"},
    )


class RaisedOut(ma.Schema):
    batch_id = ma.fields.String()
    exception = ma.fields.Dict(metadata={"description": "the exception raised (category, severity, status, ...)"})


def _answer(outcome):
    headers = {REPLAYED: "true"} if outcome.replayed else {}
    return outcome.body, outcome.status, headers


@blp.route("/batches/<batch_id>/events", methods=["POST"])
@requires("event.record")
@blp.arguments(EventIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(201, RaisedOut)
def record_event(body, headers, batch_id: str):
    """Record an event on the batch (from any task page): raised as an `event.<kind>` exception."""
    return _answer(
        events.record_event(
            runtime(),
            batch_id,
            kind=body["kind"],
            description=body["description"],
            step_seq=body.get("step_seq"),
            task_id=body.get("task_id"),
            person=current_person(),
            idempotency_key=headers.get("idempotency_key"),
        )
    )


@blp.route("/batches/<batch_id>/equipment/alarms", methods=["POST"])
@requires("equipment.write")
@blp.arguments(AlarmIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(201, RaisedOut)
def equipment_alarm(body, headers, batch_id: str):
    """Equipment reports an alarm on the batch: raised as an `equipment.alarm` exception."""
    return _answer(
        events.record_alarm(
            runtime(),
            batch_id,
            source=body["source"],
            tag=body.get("tag"),
            message=body["message"],
            value=body.get("value"),
            limits=body.get("limits"),
            severity=body.get("severity"),
            reporter=current_user(),
            idempotency_key=headers.get("idempotency_key"),
        )
    )
