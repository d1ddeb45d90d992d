"""Attachments: files operators add to a step, stored once by SHA-256.

Upload first (``POST /api/attachments``), then name the file in the form's attachment
field as ``{filename, content_type, sha256, size}``; the step path checks that a stored
file with exactly that hash and size exists, so a record can never point at nothing.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from . import audit
from .errors import InvalidInput
from .models import Attachment
from .runtime import Runtime

_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def describe(a: Attachment) -> dict[str, Any]:
    return {
        "sha256": a.sha256,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "uploaded_by": a.uploaded_by,
        "uploaded_at": a.uploaded_at.isoformat(),
    }


def store(rt: Runtime, content: bytes, filename: str, content_type: str, *, user: str) -> dict[str, Any]:
    if not content:
        raise InvalidInput("the file is empty", code="attachment_empty")
    if (
        not isinstance(filename, str)
        or not filename.strip()
        or len(filename) > 255
        or any(c in filename for c in "/\\\0")
    ):
        raise InvalidInput("a plain file name (no folders) of at most 255 characters", code="attachment_invalid")
    content_type = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if not _MIME.match(content_type):
        raise InvalidInput("content type must be a media type such as application/pdf", code="attachment_invalid")
    digest = hashlib.sha256(content).hexdigest()
    with rt.transaction() as s:
        existing = s.get(Attachment, digest)
        if existing is not None:
            return describe(existing)
        a = Attachment(
            sha256=digest,
            filename=filename.strip(),
            content_type=content_type,
            size=len(content),
            content=content,
            uploaded_by=user,
        )
        s.add(a)
        s.flush()
        audit.record(
            s,
            user=user,
            action="attachment.upload",
            object_type="attachment",
            object_id=digest,
            new={"filename": a.filename, "size": a.size, "content_type": content_type},
        )
        return describe(a)


def get(rt: Runtime, digest: str) -> tuple[dict[str, Any], bytes]:
    from .errors import NotFound

    with rt.transaction() as s:
        a = s.get(Attachment, digest) if isinstance(digest, str) and len(digest) == 64 else None
        if a is None:
            raise NotFound("no attachment with that SHA-256", code="attachment_not_found")
        return describe(a), bytes(a.content)
