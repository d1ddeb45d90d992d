"""Process orders from the ERP: ``POST /api/erp/process-orders`` takes a B2MML V0700
``OperationsSchedule`` (``application/xml``) or its JSON equivalent and starts one batch
per ``OperationsRequest`` (``engine.process_orders``; mapping in docs/erp.md). Only the
ERP's service account may post; ``GET`` lists the orders received.
"""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask_smorest import Blueprint
from marshmallow import fields

from engine import process_orders
from engine.exports import operations_b2mml

from ..auth import current_user, requires
from ..errors import ApiError
from ..input_limits import strict_json_loads
from . import runtime

blp = Blueprint("erp", __name__, url_prefix="/api/erp", description="Process orders from the ERP (B2MML)")

XML_TYPES = ("application/xml", "text/xml")
JSON_TYPE = "application/json"


class OrdersReceived(ma.Schema):
    batches = fields.List(
        fields.Dict(),
        required=True,
        metadata={
            "description": "one per order, in document order: the batch (as GET /api/batches/{id}), "
            "its `process_order` and `created` (false: a resend, the batch made before)"
        },
    )
    created = fields.Integer(required=True, metadata={"description": "how many batches this post started"})


class OrderOut(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    order = fields.String(required=True)
    batch_id = fields.String(required=True)
    state = fields.String(required=True)
    recipe = fields.String(required=True)
    material = fields.String(required=True)
    quantity = fields.Float(required=True)
    unit = fields.String(required=True)
    planned_lots = fields.List(fields.Dict())
    received_at = fields.String()
    received_by = fields.String()


@blp.route("/process-orders", methods=["POST"])
@requires("erp.orders")
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            **{t: {"schema": {"type": "string", "format": "binary"}} for t in XML_TYPES},
            JSON_TYPE: {
                "schema": {
                    "type": "object",
                    "required": ["orders"],
                    "properties": {
                        "orders": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "recipe", "material", "quantity", "unit"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "recipe": {"type": "string"},
                                    "material": {"type": "string"},
                                    "quantity": {"type": "number"},
                                    "unit": {"type": "string"},
                                    "lots": {"type": "array", "items": {"type": "object"}},
                                },
                            },
                        }
                    },
                }
            },
        },
    }
)
@blp.response(201, OrdersReceived)
@blp.alt_response(200, schema=OrdersReceived, description="every order was received before: nothing new started")
def post_orders():
    """Start a batch per process order (B2MML ``OperationsSchedule``, ``OperationsType``
    Production, or JSON ``{"orders": [...]}``). All orders or none: an unknown recipe or
    material, or an invalid document, is refused (422) with the element named
    (``OperationsRequest[2]/OperationsDefinitionID: no approved recipe 'X'``) and no batch
    starts. A resent order answers with its batch (200 when nothing is new); the same id
    with other content is 409 ``process_order_changed``. DOCTYPE and entities are
    refused (422 ``xml_doctype``/``xml_entities``), other media types 415."""
    if request.mimetype in XML_TYPES:
        orders = operations_b2mml.read_schedule(request.get_data())
    elif request.mimetype == JSON_TYPE:
        orders = operations_b2mml.read_json(strict_json_loads(request.get_data()))
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the OperationsSchedule as {' or '.join(XML_TYPES)}, or JSON as {JSON_TYPE}, "
            f"not {request.mimetype or 'an empty body'}",
        )
    received = process_orders.receive(runtime(), orders, user=current_user())
    return {"batches": received.batches, "created": received.created}, 201 if received.created else 200


@blp.route("/process-orders", methods=["GET"])
@requires("batch.read")
@blp.response(200, OrderOut(many=True))
def list_orders():
    """The newest process orders received, with their batches' states."""
    return process_orders.list_orders(runtime())
