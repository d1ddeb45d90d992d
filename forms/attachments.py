"""Attachment fields: the metadata of a file the operator has already uploaded.

The step records {filename, content_type, sha256, size}, not the file: files are
uploaded first (POST /api/attachments), and the engine checks that a stored file has
exactly this hash and size. Here the metadata is checked against the field's settings:
a plain file name, an accepted media type, a size within the field's cap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from forms.coercion import CONTROL_CHARS, FormField
from forms.display import short_repr

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+\-]*/[a-z0-9][a-z0-9!#$&^_.+\-]*")
ATTACHMENT_KEYS = ("filename", "content_type", "sha256", "size")


class AttachmentField(FormField):
    """Metadata of an already uploaded file: {filename, content_type, sha256, size}."""

    def _deserialize(self, value, attr, data, **kwargs) -> dict[str, Any]:
        spec = self.spec
        label = spec.label
        if not isinstance(value, Mapping):
            raise self.fail(f"{label} must be an object with {', '.join(ATTACHMENT_KEYS)}.")
        problems = []
        unknown = sorted(str(k) for k in value if k not in ATTACHMENT_KEYS)
        if unknown:
            problems.append(f"{label}: unknown attachment field(s) {', '.join(map(short_repr, unknown))}.")
        missing = [k for k in ATTACHMENT_KEYS if k not in value]
        if missing:
            problems.append(f"{label}: missing {', '.join(missing)}.")
        filename = value.get("filename")
        if "filename" in value and (
            not isinstance(filename, str)
            or not filename.strip()
            or len(filename) > 255
            or any(c in filename for c in "/\\")
            or filename in (".", "..")
            or CONTROL_CHARS.search(filename)
            or "\n" in filename
            or "\r" in filename
        ):
            problems.append(f"{label}: filename must be a plain file name (no folders), at most 255 characters.")
        content_type = value.get("content_type")
        if "content_type" in value:
            if not isinstance(content_type, str) or not _MIME.fullmatch(content_type.lower()):
                problems.append(f"{label}: content_type must be a media type such as application/pdf.")
            else:
                content_type = content_type.lower()
                if spec.content_types and not any(
                    allowed == content_type or (allowed.endswith("/*") and content_type.startswith(allowed[:-1]))
                    for allowed in spec.content_types
                ):
                    problems.append(
                        f"{label}: files of type {content_type} are not accepted here "
                        f"(accepted: {', '.join(spec.content_types)})."
                    )
        sha256 = value.get("sha256")
        if "sha256" in value and (not isinstance(sha256, str) or not _SHA256.fullmatch(sha256)):
            problems.append(f"{label}: sha256 must be 64 hexadecimal characters.")
        size = value.get("size")
        if "size" in value:
            if isinstance(size, bool) or not isinstance(size, int):
                problems.append(f"{label}: size must be a whole number of bytes.")
            elif size < 1:
                problems.append(f"{label}: the file is empty.")
            elif spec.max_size is not None and size > spec.max_size:
                problems.append(f"{label}: the file is too large ({size:,} bytes; at most {spec.max_size:,}).")
        if problems:
            raise ValidationError(problems)
        return {"filename": filename, "content_type": content_type, "sha256": value["sha256"].lower(), "size": size}
