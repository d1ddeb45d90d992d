"""Attachments over HTTP: upload a file (stored once by SHA-256), fetch it back."""

from __future__ import annotations

import marshmallow as ma
from flask import Response, request
from flask_smorest import Blueprint

from engine import attachments

from ..auth import current_user, requires
from ..errors import ApiError
from . import runtime


class AttachmentOut(ma.Schema):
    sha256 = ma.fields.String()
    filename = ma.fields.String()
    content_type = ma.fields.String()
    size = ma.fields.Integer()
    uploaded_by = ma.fields.String()
    uploaded_at = ma.fields.String()


blp = Blueprint("attachments", __name__, url_prefix="/api", description="Files attached to steps")


@blp.route("/attachments", methods=["POST"])
@requires("attachment.upload")
@blp.doc(
    requestBody={
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        }
    }
)
@blp.response(201, AttachmentOut)
def upload_attachment():
    """Upload one file (multipart field `file`); answer its `{filename, content_type, sha256, size}`
    to put in the form's attachment field."""
    upload = request.files.get("file")
    if upload is None or len(request.files) != 1:
        raise ApiError(
            422,
            "validation_error",
            "send exactly one file in the multipart field 'file'",
            {"fields": {"file": ["Missing data for required field."]}},
        )
    return attachments.store(
        runtime(), upload.read(), upload.filename or "", upload.mimetype or "", user=current_user()
    )


@blp.route("/attachments/<sha256>", methods=["GET"])
@requires("batch.read")
@blp.doc(
    responses={
        "200": {
            "description": "the file as uploaded, as a download",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
)
def download_attachment(sha256: str):
    """The stored file, as uploaded (served as a download, never rendered inline)."""
    meta, content = attachments.get(runtime(), sha256)
    # ASCII only and no double quote, so the header stays one well-formed quoted string
    filename = meta["filename"].encode("ascii", "replace").decode().replace(chr(34), "")
    return Response(
        content,
        mimetype="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{meta["sha256"][:12]}-{filename}"',
            "X-Content-Type-Options": "nosniff",
            "X-Original-Content-Type": meta["content_type"],
        },
    )
