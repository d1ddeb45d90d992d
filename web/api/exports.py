"""The batch record leaving the system over HTTP: PDF, BatchML and JSON, at any time
during or after the batch (a running batch's PDF says "IN PROGRESS").

All three come from one record (``engine.exports.build``) and carry its content hash
(also in the ``X-Record-Content-Hash`` header); the XML is validated against the
BatchML schema before it is served. Each export is audited (``record.exported``: who,
format, content hash) — handing out a GMP record is an event the trail keeps.
"""

from __future__ import annotations

import json

from flask import Response
from flask_smorest import Blueprint

from engine import exports
from engine.exports import batchml

from ..auth import current_user, requires
from . import runtime

blp = Blueprint("exports", __name__, url_prefix="/api", description="The batch record as PDF, BatchML and JSON")

HASH_HEADER = "X-Record-Content-Hash"
ERRORS = {
    "404": {"description": "no batch with this id (`batch_not_found`)"},
    "422": {"description": "the id is not a batch id (`batch_id_invalid`)"},
    "500": {
        "description": "an archived batch's archive file is missing or changed (`archive_missing`, `archive_changed`)"
    },
}


def _doc(media: str, what: str):
    schema = {"type": "string", "format": "binary"} if media != "application/json" else {"type": "object"}
    return blp.doc(responses={"200": {"description": what, "content": {media: {"schema": schema}}}, **ERRORS})


def _record(batch_id: str):
    """The record: an archived batch's from its archive file, verified against the hash
    the audit trail sealed (engine.archive), so it is the record as it was archived."""
    from engine import archive

    rt = runtime()
    batch_id = exports.export_batch_id(rt, batch_id)
    record = archive.archived_record(rt, batch_id) or exports.build(rt, batch_id)
    return rt, record


def _send(rt, record, fmt: str, body: bytes, mimetype: str) -> Response:
    exports.audit_export(rt, record, fmt, current_user())
    name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in record["batch"]["batch_id"])
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'inline; filename="{name}-record.{fmt}"',
            HASH_HEADER: record["content_hash"],
            "X-Content-Type-Options": "nosniff",
        },
    )


@blp.route("/batches/<batch_id>/record.pdf", methods=["GET"])
@requires("batch.read")
@_doc("application/pdf", "the batch record as PDF (page numbers and the content hash on every page)")
def record_pdf(batch_id: str):
    """The printable batch record: header, every step with values, units, limits, who and
    when (UTC), signatures, corrections, exceptions with dispositions, audit summary."""
    from ..exports import pdf

    rt, record = _record(batch_id)
    return _send(rt, record, "pdf", pdf.render(record, printed_by=current_user()), "application/pdf")


@blp.route("/batches/<batch_id>/record.xml", methods=["GET"])
@requires("batch.read")
@_doc("application/xml", "the batch record as BatchML BatchProductionRecord (B2MML V0700), schema-validated")
def record_xml(batch_id: str):
    """The batch record as BatchML, validated against BatchML-BatchProductionRecord.xsd
    before it is served. The Business To Manufacturing Markup Language (B2MML) is used
    courtesy of MESA International."""
    rt, record = _record(batch_id)
    return _send(rt, record, "xml", batchml.build(record), "application/xml")


@blp.route("/batches/<batch_id>/record.json", methods=["GET"])
@requires("batch.read")
@_doc("application/json", "the complete batch record as JSON (the same content as the PDF and XML)")
def record_json(batch_id: str):
    """The complete batch record as JSON, with its `content_hash` (SHA-256 of the canonical
    JSON of everything but `content_hash` and `generated_at`)."""
    rt, record = _record(batch_id)
    try:
        text = json.dumps(record, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except ValueError:  # a non-finite number stored before input was checked: as text
        from ..app import _finite

        text = json.dumps(_finite(record), ensure_ascii=False, sort_keys=True, allow_nan=False)
    body = text.encode("utf-8")
    return _send(rt, record, "json", body, "application/json")
