"""The API's one error format: ``{"code", "message", "details"}`` with a stable code.

Why one place: the engine's errors (``BatchlineError``), Werkzeug's HTTP errors and
marshmallow's validation messages all reach a client the same way, so a script can
branch on ``code`` without parsing text, and bad input never becomes a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import current_app
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from engine.errors import BatchlineError

#: HTTP errors raised by Flask/Werkzeug before our code runs, by status
HTTP_CODES = {
    400: "bad_request",
    401: "auth_required",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
}
#: seconds a client should wait before repeating a request the database was too busy for
RETRY_AFTER_SECONDS = 2

log = logging.getLogger("batchline.web")


class ApiError(BatchlineError):
    """An error found by the web layer itself (headers, body shape), with its status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message, code=code, details=details)
        self.status = status
        self.headers = headers or {}


class ErrorSchema(ma.Schema):
    """Every error response (documented in OpenAPI as the default error)."""

    code = ma.fields.String(metadata={"description": "stable, machine-readable error code"})
    message = ma.fields.String(metadata={"description": "what went wrong and what to do, for a person"})
    details = ma.fields.Dict(metadata={"description": "machine-readable specifics (field messages, problems)"})


def status_of(error: BatchlineError) -> int:
    """Engine errors without an HTTP status (invalid recipe, refused script) are the
    client's input that cannot be processed: 422."""
    return int(getattr(error, "status", 422))


def retry_headers(error: BatchlineError) -> dict[str, str]:
    """``Retry-After`` for an error that says when to try again (429 ``too_many_attempts``)."""
    retry_after = getattr(error, "retry_after", None)
    return {"Retry-After": str(int(retry_after))} if retry_after else {}


def batchline_error_response(error: BatchlineError):
    return error.to_dict(), status_of(error), {**retry_headers(error), **getattr(error, "headers", {})}


def race_response(error: IntegrityError):
    """Two requests created the same thing at the same moment (a user id, a recipe's
    content, an attachment): the engine checked before inserting, so the loser of the race
    meets the database's unique key. Nothing of it was stored; repeating the request gets
    the ordinary answer (``user_exists``, the existing version, ...). A 409, not a 500."""
    log.warning("a unique key refused a concurrent insert: %s", getattr(error, "orig", error))
    return batchline_error_response(
        ApiError(409, "concurrent_change", "another request changed the same thing at the same time; repeat it")
    )


def database_error_response(error: OperationalError):
    """The database could not answer now (SQLite's write lock held past its busy timeout,
    a lost connection): nothing was stored, so the client may repeat the request later.
    A 503 with ``Retry-After``, not a 500."""
    text = str(getattr(error, "orig", error)).lower()
    if "locked" in text or "busy" in text:
        code, message = "database_busy", "the database is busy with other writes; repeat the request shortly"
    else:
        log.exception("database unavailable")
        code, message = "database_unavailable", "the database cannot be reached now; repeat the request shortly"
    return batchline_error_response(
        ApiError(503, code, message, {"retry_after": RETRY_AFTER_SECONDS}, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    )


def http_error_response(error: HTTPException):
    """Werkzeug/webargs errors into our format; webargs puts field messages in ``data``."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    details: dict[str, Any] = {}
    code = HTTP_CODES.get(status, "http_error")
    message = error.description or error.name
    if status == 400 and messages == {"json": ["Invalid JSON body."]}:
        code, message = "json_invalid", "the request body is not valid JSON"
    elif status == 422 and messages:
        code = "validation_error"
        fields = {}
        for location_messages in messages.values():
            if isinstance(location_messages, dict):
                fields.update(location_messages)
        details = {"fields": fields}
        message = "the request has invalid fields: " + ", ".join(sorted(fields)) if fields else "invalid request"
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        message = f"the request body is larger than {limit} bytes"
        details = {"max_bytes": limit}
    elif status == 500:
        message = "internal error; the server log has the details"
    headers = error_headers(error)
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:  # RFC 9110 15.5.6: a 405 names the methods the path has
        headers["Allow"] = ", ".join(sorted(valid_methods))
        details = {"allowed": sorted(valid_methods)}
    return {"code": code, "message": message, "details": details}, status, headers


def error_headers(error: HTTPException) -> dict[str, str]:
    """The headers an HTTP error owes its client whatever the body: ``Allow`` on a 405
    (RFC 9110), ``WWW-Authenticate``, ``Retry-After``; and those webargs adds. The body's
    own ``Content-Type`` is ours, not Werkzeug's HTML one."""
    found = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    data = getattr(error, "data", None) or {}
    found.update(data.get("headers") or {})
    return found


def validation_error_response(error: ma.ValidationError):
    """A body validated by hand (multipart recipe upload) failed its schema."""
    fields = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    return {
        "code": "validation_error",
        "message": "the request has invalid fields: " + ", ".join(sorted(fields)),
        "details": {"fields": fields},
    }, 422
