"""Request and response bodies of the master-data API (materials, lots, equipment). The
engine (``engine.master_data``) re-checks every value; these schemas refuse wrong types
and unknown fields first and write the OpenAPI document."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from engine.master_data import MAX_REASON, UNITS
from engine.master_data import equipment as equipment_md
from engine.master_data import lots as lots_md
from engine.master_data import materials as materials_md

_ID = dict(validate=validate.Length(min=1, max=100))
_TEXT = dict(validate=validate.Length(max=200))
_REASON = fields.String(validate=validate.Length(min=1, max=MAX_REASON), metadata={"description": "why (audited)"})
_VERSION = fields.Integer(
    strict=True, metadata={"description": "the version read; a change made meanwhile gives 409 stale_version"}
)


class MaterialIn(ma.Schema):
    material_id = fields.String(required=True, **_ID)
    name = fields.String(required=True, **_TEXT)
    unit = fields.String(required=True, validate=validate.OneOf(UNITS))
    kind = fields.String(validate=validate.OneOf(materials_md.KINDS))
    description = fields.String(validate=validate.Length(max=2000))


class MaterialChange(ma.Schema):
    name = fields.String(**_TEXT)
    unit = fields.String(validate=validate.OneOf(UNITS))
    kind = fields.String(validate=validate.OneOf(materials_md.KINDS))
    description = fields.String(validate=validate.Length(max=2000))
    active = fields.Boolean(
        truthy={True}, falsy={False}, metadata={"description": "false retires the material (never deleted)"}
    )
    version = _VERSION
    reason = _REASON


class MaterialOut(ma.Schema):
    material_id = fields.String()
    name = fields.String()
    unit = fields.String()
    kind = fields.String()
    description = fields.String()
    active = fields.Boolean()
    version = fields.Integer()
    created_at = fields.String()
    updated_at = fields.String()


class MaterialFilter(ma.Schema):
    active = fields.Boolean()
    kind = fields.String(validate=validate.OneOf(materials_md.KINDS))


class LotIn(ma.Schema):
    lot_id = fields.String(required=True, **_ID)
    material = fields.String(required=True, **_ID)
    quantity = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=0))
    unit = fields.String(validate=validate.OneOf(UNITS), metadata={"description": "default: the material's unit"})
    expires_at = fields.String(
        allow_none=True, validate=validate.Length(max=40), metadata={"description": "YYYY-MM-DD or ISO date-time"}
    )


class LotChange(ma.Schema):
    quantity = fields.Float(allow_nan=False, validate=validate.Range(min=0))
    unit = fields.String(validate=validate.OneOf(UNITS))
    expires_at = fields.String(allow_none=True, validate=validate.Length(max=40))
    version = _VERSION
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON))


class StatusChange(ma.Schema):
    status = fields.String(required=True, validate=validate.Length(min=1, max=30))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON))
    version = _VERSION


class LotOut(ma.Schema):
    lot_id = fields.String()
    material = fields.String()
    status = fields.String(metadata={"description": " | ".join(lots_md.STATUSES)})
    status_reason = fields.String(allow_none=True)
    quantity = fields.Float(allow_none=True)
    unit = fields.String(allow_none=True)
    expires_at = fields.String(allow_none=True)
    produced_by = fields.String(allow_none=True, metadata={"description": "the batch that produced it"})
    version = fields.Integer()
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    genealogy = fields.String(metadata={"description": "where its genealogy is"})


class LotFilter(ma.Schema):
    status = fields.String(validate=validate.OneOf(lots_md.STATUSES))
    material = fields.String(**_ID)


class EquipmentIn(ma.Schema):
    equipment_id = fields.String(required=True, **_ID)
    equipment_class = fields.String(required=True, **_ID)
    name = fields.String(allow_none=True, **_TEXT)
    location = fields.String(allow_none=True, **_TEXT)
    connector = fields.String(allow_none=True, **_ID)
    calibration_interval_days = fields.Integer(strict=True, allow_none=True)
    calibrated_until = fields.String(allow_none=True, validate=validate.Length(max=40))
    status = fields.String(validate=validate.OneOf(("clean", "dirty")), metadata={"description": "default dirty"})
    reason = _REASON


class EquipmentChange(ma.Schema):
    equipment_class = fields.String(**_ID)
    name = fields.String(allow_none=True, **_TEXT)
    location = fields.String(allow_none=True, **_TEXT)
    connector = fields.String(allow_none=True, **_ID)
    calibration_interval_days = fields.Integer(strict=True, allow_none=True)
    calibrated_until = fields.String(allow_none=True, validate=validate.Length(max=40))
    version = _VERSION
    reason = fields.String(required=True, validate=validate.Length(min=1, max=MAX_REASON))


class EquipmentOut(ma.Schema):
    equipment_id = fields.String()
    equipment_class = fields.String()
    name = fields.String(allow_none=True)
    location = fields.String(allow_none=True)
    connector = fields.String(allow_none=True)
    status = fields.String(metadata={"description": " | ".join(equipment_md.STATUSES)})
    status_reason = fields.String(allow_none=True)
    in_use_by = fields.String(allow_none=True, metadata={"description": "the batch holding it"})
    calibrated_until = fields.String(allow_none=True)
    calibration_overdue = fields.Boolean()
    calibration_interval_days = fields.Integer(allow_none=True)
    version = fields.Integer()
    updated_at = fields.String(allow_none=True)
    logbook = fields.String(metadata={"description": "its logbook (GET /api/equipment/{id}/logbook)"})


class EquipmentFilter(ma.Schema):
    status = fields.String(validate=validate.OneOf(equipment_md.STATUSES))
    equipment_class = fields.String(**_ID)
