"""Files attached to a step or a correction: the upload is checked against the field's
own size and type rules first (so a refused file is never stored), then stored by the
engine (SHA-256, the same bytes once) and recorded as the field's value."""

from __future__ import annotations

from typing import Any

from flask import g, request

from engine import attachments
from engine.errors import BatchlineError

from ..runtime import runtime
from . import entry
from .pages import sentence


def _accepts(field: dict[str, Any], content_type: str) -> bool:
    allowed = field.get("content_types") or []
    return not allowed or any(
        a == content_type or (a.endswith("/*") and content_type.startswith(a[:-1])) for a in allowed
    )


def store_upload(field: dict[str, Any], name: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The file posted under ``name`` for an attachment field: stored by the engine
    (SHA-256), answered as the field's value. (None, []) when no file was chosen; the
    field's own size and type rules are checked first so a refused file is not stored."""
    upload = request.files.get(name)
    if upload is None or not upload.filename:
        return None, []
    label = field.get("label") or field["key"]
    filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    content_type = (upload.mimetype or "application/octet-stream").lower()
    content = upload.read()
    if not content:
        return None, [f"{label}: the file {filename} is empty."]
    if field.get("max_size") and len(content) > field["max_size"]:
        return None, [
            f"{label}: the file is too large ({entry.file_size(len(content))}; "
            f"at most {entry.file_size(field['max_size'])})."
        ]
    if not _accepts(field, content_type):
        return None, [
            f"{label}: files of type {content_type} are not accepted here "
            f"(accepted: {', '.join(field['content_types'])})."
        ]
    try:
        stored = attachments.store(runtime(), content, filename, content_type, user=g.person.username)
    except BatchlineError as exc:
        return None, [f"{label}: {sentence(exc.message)}"]
    # the same bytes are stored once; the record names the file as this person attached it
    return {**entry.attachment_ref(stored), "filename": filename}, []


def attachment_values(
    items: list[dict[str, Any]], typed: dict[str, Any], values: dict[str, Any]
) -> dict[str, list[str]]:
    """Store the files of the form's attachment fields and put them into ``values`` (and
    into ``typed``, so a refused form keeps them). Answers field errors."""
    errors: dict[str, list[str]] = {}
    for field in entry.attachment_fields(items):
        key = field["key"]
        stored, problems = store_upload(field, key)
        if problems:
            errors[key] = problems
        ref = stored or entry.kept_attachment(request.form, key)
        values[key] = typed[key] = ref
    return errors
