"""Running Batchline over HTTP: incidents, the event feed, the audit check, health."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from ...input_limits import MAX_INT
from ..fields import BoundedInt


class IncidentFilter(ma.Schema):
    all = fields.Boolean(load_default=False, metadata={"description": "include resolved incidents"})


class Incident(ma.Schema):
    id = fields.Integer()
    job_id = fields.Integer()
    batch_id = fields.String(
        allow_none=True, metadata={"description": "the batch's id, if the job belonged to a batch"}
    )
    kind = fields.String()
    message = fields.String()
    created_at = fields.String()
    resolved_at = fields.String(allow_none=True)


class IncidentRetried(ma.Schema):
    id = fields.Integer()
    job_id = fields.Integer()
    state = fields.String()


class EventPage(ma.Schema):
    after = BoundedInt(
        strict=False,
        maximum=MAX_INT,
        load_default=0,
        metadata={"description": "return events with a sequence number above this"},
    )
    limit = BoundedInt(strict=False, minimum=1, maximum=1000, load_default=100)


class Events(ma.Schema):
    events = fields.List(fields.Dict(), metadata={"description": "CloudEvents 1.0 envelopes, oldest first"})
    next_after = fields.Integer(metadata={"description": "pass as `after` to get the next page"})


class AuditAnchors(ma.Schema):
    file = fields.String(metadata={"description": "the anchor file outside the database"})
    anchors = fields.Integer(metadata={"description": "anchor lines read"})
    newest = fields.Integer(allow_none=True, metadata={"description": "the newest anchored entry id"})
    problems = fields.List(fields.String())


class AuditSignatures(ma.Schema):
    checked = fields.Integer()
    mismatches = fields.Integer()
    problems = fields.List(fields.String())


class AuditVerifyQuery(ma.Schema):
    anchors = fields.Boolean(
        load_default=True, metadata={"description": "check every anchored head is still in the trail"}
    )
    signatures = fields.Boolean(
        load_default=False, metadata={"description": "recompute every signature's content hash from the record"}
    )


class AuditCheck(ma.Schema):
    ok = fields.Boolean()
    entries = fields.Integer()
    problems = fields.List(fields.String())
    legacy_entries = fields.Integer(metadata={"description": "entries from before the audit key (plain SHA-256)"})
    record_rows = fields.Integer(metadata={"description": "step, signature and correction rows checked"})
    legacy_rows = fields.Integer(metadata={"description": "record rows older than the audit key"})
    key = fields.String(metadata={"description": "fingerprint of the audit key (not the key)"})
    anchors = fields.Nested(AuditAnchors)
    signatures = fields.Nested(AuditSignatures)


class Health(ma.Schema):
    status = fields.String(metadata={"description": "ok: the process answers (liveness; the database is not asked)"})
    version = fields.String()


class ReadyChecks(ma.Schema):
    database = fields.String(metadata={"description": "ok or unreachable"})
    schema = fields.String(metadata={"description": "ok, outdated or unknown"})
    worker = fields.String(metadata={"description": "ok, stale, none, not_required or unknown"})


class Ready(ma.Schema):
    status = fields.String(metadata={"description": "ok, or not_ready (HTTP 503)"})
    not_ready = fields.List(fields.String(), metadata={"description": "the checks that failed"})
    checks = fields.Nested(ReadyChecks)
    schema_revision = fields.String(allow_none=True)
    schema_head = fields.String(allow_none=True)
    worker_heartbeat_age_seconds = fields.Float(
        allow_none=True, metadata={"description": "seconds since the newest running worker's heartbeat"}
    )
    version = fields.String()
