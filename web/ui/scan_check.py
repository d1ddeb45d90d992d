"""The task page's scan check: as an operator leaves a lot or equipment field, the page
asks here (session + CSRF, like every form of the UI) and shows the answer next to the
field, before anyone types a password. JSON in, JSON out; the checks are the step's own
(``engine.batches.scan_check``) and the step checks again when it is signed."""

from __future__ import annotations

from flask import g, jsonify, request

from engine.batches.scan_check import check_scan
from engine.errors import BatchlineError

from ..api.scans import allow
from ..runtime import runtime
from .pages import bp, sentence


@bp.route("/batches/<batch_id>/tasks/<task_id>/scan-check", methods=["POST"])
def scan_check(batch_id: str, task_id: str):
    """``field`` and ``value`` (form fields, with ``csrf_token``) -> {ok, field, message}."""
    try:
        allow(g.person)
        answer = check_scan(
            runtime(), batch_id, task_id, request.form.get("field"), request.form.get("value"), g.person
        )
    except BatchlineError as exc:
        status = int(getattr(exc, "status", 422))
        response = jsonify({"ok": False, "error": exc.code, "message": sentence(exc.message)})
        response.headers.update(getattr(exc, "headers", None) or {})
        return response, status
    return jsonify(answer.to_dict())
