"""An equipment's logbook over HTTP (read only): the entries the SOP tasks wrote on the
step path (``engine.equipment_logbook``), newest first. Writing is the step path's job:
there is no way to add or change an entry here."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import fields

from engine import equipment_logbook

from ..auth import requires
from . import runtime

blp = Blueprint(
    "equipment_logbook", __name__, url_prefix="/api", description="Equipment logbooks, written by the SOP tasks"
)


class LogbookEntry(ma.Schema):
    id = fields.Integer()
    equipment_id = fields.String()
    kind = fields.String(metadata={"description": "calibration | daily_check | cip | sip | line_clearance | use"})
    batch_id = fields.String(metadata={"description": "the batch whose step wrote it"})
    step_seq = fields.Integer()
    values = fields.Dict(metadata={"description": "the step's values"})
    recorded_by = fields.String()
    recorded_at = fields.DateTime()


class Logbook(ma.Schema):
    equipment_id = fields.String()
    entries = fields.List(fields.Nested(LogbookEntry))


@blp.route("/equipment/<equipment_id>/logbook", methods=["GET"])
@requires("batch.read")
@blp.response(200, Logbook)
def get_logbook(equipment_id: str):
    """The equipment's logbook, newest first (at most 500 entries); 404
    `equipment_not_found` for an equipment neither the registry nor the logbook knows."""
    return {"equipment_id": equipment_id, "entries": equipment_logbook.logbook(runtime(), equipment_id)}
