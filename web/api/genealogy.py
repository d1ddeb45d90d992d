"""A lot's genealogy over HTTP (read only): ``GET /api/lots/{lot}/genealogy`` traces what
went into a lot (``direction=backward``) or where it went (``forward``) through every
intermediate lot and batch (``engine.genealogy``). Anyone who may read batch records may
read it: a genealogy is the batch records' lot movements, seen from the lot."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask_smorest import Blueprint
from marshmallow import fields

from engine import genealogy

from ..auth import requires
from ..errors import ApiError
from . import runtime

blp = Blueprint("genealogy", __name__, url_prefix="/api", description="Lot genealogy: lots and batches, traced")


class Node(ma.Schema):
    id = fields.String(metadata={"description": "lot:<lot id> or batch:<batch id>"})
    type = fields.String(metadata={"description": "lot | batch"})
    level = fields.Integer(metadata={"description": "generations from the traced lot (0: the lot itself)"})
    lot_id = fields.String()
    material = fields.String(allow_none=True)
    material_name = fields.String(allow_none=True)
    status = fields.String(allow_none=True, metadata={"description": "a lot's status, or a batch's state"})
    quantity = fields.Float(allow_none=True, metadata={"description": "a lot's quantity on hand now"})
    unit = fields.String(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    produced_by = fields.String(allow_none=True)
    batch_id = fields.String()
    recipe = fields.String()
    recipe_version = fields.Integer()
    state = fields.String()
    started_at = fields.DateTime()


class Edge(ma.Schema):
    source = fields.String(attribute="from", data_key="from", metadata={"description": "node id material flowed from"})
    to = fields.String(metadata={"description": "node id material flowed to"})
    kind = fields.String(metadata={"description": "consumed (lot -> batch) | produced (batch -> lot)"})
    lot_id = fields.String()
    batch_id = fields.String()
    quantity = fields.Float(allow_none=True, metadata={"description": "None: the lot was used, not counted"})
    unit = fields.String(allow_none=True)
    step_seq = fields.Integer(allow_none=True)
    step_name = fields.String(allow_none=True)
    recorded_by = fields.String()
    recorded_at = fields.DateTime()


class Genealogy(ma.Schema):
    lot_id = fields.String()
    direction = fields.String()
    depth = fields.Integer()
    levels = fields.Integer(metadata={"description": "levels of batches actually reached"})
    truncated = fields.Boolean(metadata={"description": "more lies beyond the depth or the node cap"})
    root = fields.Nested(Node)
    nodes = fields.List(fields.Nested(Node))
    edges = fields.List(fields.Nested(Edge))


def query_args() -> tuple[str, int]:
    """``direction`` and ``depth`` from the query string; 400 naming what is wrong."""
    direction = request.args.get("direction", "backward")
    raw = request.args.get("depth", str(genealogy.DEFAULT_DEPTH))
    if direction not in genealogy.DIRECTIONS:
        raise ApiError(400, "direction_invalid", "direction is backward or forward", {"direction": direction[:40]})
    if not raw.isdigit() or len(raw) > 3 or not 1 <= int(raw) <= genealogy.MAX_DEPTH:
        raise ApiError(
            400, "depth_invalid", f"depth is a whole number from 1 to {genealogy.MAX_DEPTH}", {"depth": raw[:40]}
        )
    return direction, int(raw)


@blp.route("/lots/<lot_id>/genealogy", methods=["GET"])
@requires("batch.read")
@blp.doc(params={"direction": {"in": "query", "schema": {"type": "string", "enum": ["backward", "forward"]}}})
@blp.doc(params={"depth": {"in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": genealogy.MAX_DEPTH}}})
@blp.response(200, Genealogy)
def get_genealogy(lot_id: str) -> dict[str, Any]:
    """The lot's genealogy: backward (what went into it: the batch that produced it, the
    lots that batch consumed, and so on) or forward (the batches that consumed it, the lots
    they produced, and so on), as nodes and edges; each edge is one recorded movement with
    its quantity, unit and step. 400 `direction_invalid` / `depth_invalid`, 404
    `lot_not_found` for a lot neither the registry nor any batch record knows."""
    direction, depth = query_args()
    return genealogy.trace(runtime(), lot_id, direction, depth)
