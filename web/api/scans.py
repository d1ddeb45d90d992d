"""Checking one scanned lot or equipment id before signing (``POST /api/scans/check``),
for the task page and for any client that fills a task's form field by field.

The checks are the step transaction's own (``engine.batches.scan_check``); the answer is
advice, and the step is checked again when it is recorded. Bounded and rate-limited: a
caller may ask ``MAX_CHECKS`` times per ``WINDOW_SECONDS`` (per person, per server
process), so the endpoint cannot be used to sweep the lot register; an unknown id says
"not found" and nothing more.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine.batches.scan_check import MAX_KEY_LENGTH, MAX_SCAN_LENGTH, check_scan
from engine.users import Person

from ..auth import current_person, requires
from ..errors import ApiError
from . import runtime

blp = Blueprint("scans", __name__, url_prefix="/api", description="Scanned lots and equipment, checked before signing")

#: checks per person within the window (a tablet scans a handful of ids per task)
MAX_CHECKS = 60
WINDOW_SECONDS = 60.0
_recent: dict[str, deque[float]] = {}
_lock = threading.Lock()


def allow(person: Person) -> None:
    """Refuse (429) the person's check beyond ``MAX_CHECKS`` per ``WINDOW_SECONDS``."""
    now = time.monotonic()
    with _lock:
        seen = _recent.setdefault(person.username, deque())
        while seen and seen[0] <= now - WINDOW_SECONDS:
            seen.popleft()
        if len(seen) >= MAX_CHECKS:
            wait = max(1, int(seen[0] + WINDOW_SECONDS - now) + 1)
            raise ApiError(
                429,
                "too_many_checks",
                f"at most {MAX_CHECKS} scan checks a minute; the value is still checked when you sign",
                headers={"Retry-After": str(wait)},
            )
        seen.append(now)
        if len(_recent) > 10_000:  # people who stopped scanning long ago
            for name in [n for n, q in _recent.items() if not q or q[-1] <= now - WINDOW_SECONDS]:
                del _recent[name]


class ScanCheckIn(Schema):
    batch_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    task_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    field = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_KEY_LENGTH),
        metadata={"description": "the key of a materialLot or equipment field of the task's form"},
    )
    value = fields.String(
        required=True,
        validate=validate.Length(max=MAX_SCAN_LENGTH),
        metadata={"description": "the scanned id, as scanned (surrounding spaces and a newline are ignored)"},
    )


class ScanCheckOut(Schema):
    ok = fields.Boolean(required=True, metadata={"description": "the id can be used in this field now"})
    field = fields.String(required=True)
    message = fields.String(required=True, metadata={"description": "why not (or 'Can be used here.'), in words"})


@blp.route("/scans/check", methods=["POST"])
@requires("task.complete")
@blp.arguments(ScanCheckIn)
@blp.response(200, ScanCheckOut)
@blp.alt_response(403, description="the caller may not complete this task (role, assignment, qualification)")
@blp.alt_response(404, description="no such batch, or no such task in it")
@blp.alt_response(409, description="the batch is not running, or the task is not waiting")
@blp.alt_response(429, description="more than 60 checks a minute: try again after Retry-After seconds")
def check(body):
    """Can this lot or equipment be scanned into this field of this task now? 200 with
    ``ok`` and the reason in words; 403/404/409 when the caller could not complete the task
    (as a submission would be refused); 422 for a field that is not a scanned field; 429
    beyond 60 checks a minute. Nothing is recorded or reserved: the step checks again."""
    person = current_person()
    allow(person)
    return check_scan(runtime(), body["batch_id"], body["task_id"], body["field"], body["value"], person).to_dict()


__all__ = ["allow", "blp"]
