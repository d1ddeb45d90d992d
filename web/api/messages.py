"""Messages from other systems (a LIMS result, an ERP order change) delivered to the
batches waiting for them, matched by the message name and its correlation keys."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from engine import batches

from ..auth import current_user, requires
from . import runtime


class MessageDelivery(ma.Schema):
    payload = ma.fields.Dict(
        keys=ma.fields.String(),
        required=True,
        metadata={"description": "message content, including its correlation keys"},
    )


class DeliveredTo(ma.Schema):
    batch_id = ma.fields.String()
    seq = ma.fields.Integer(metadata={"description": "the step recorded for the message"})


class MessageOutcome(ma.Schema):
    delivered = ma.fields.List(ma.fields.Nested(DeliveredTo))


blp = Blueprint("messages", __name__, url_prefix="/api", description="Messages to waiting batches")


@blp.route("/messages/<name>", methods=["POST"])
@requires("message.deliver")
@blp.arguments(MessageDelivery)
@blp.response(200, MessageOutcome)
def deliver_message(body, name: str):
    """Deliver a message; 404 `message_not_correlated` when no batch waits for it."""
    return {"delivered": batches.deliver_message(runtime(), name, body["payload"], user=current_user())}
