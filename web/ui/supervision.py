"""The supervisor's actions on the batch page: hold, resume or abort a batch, and
reassign a waiting task to another person — each with a reason for the audit trail."""

from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for

from engine import batches
from engine.errors import BatchlineError

from ..runtime import runtime
from .pages import bp, require, sentence


@bp.route("/batches/<batch_id>/state", methods=["POST"])
def batch_state(batch_id: str):
    require("batch.hold")
    action = request.form.get("action") or ""
    reason = (request.form.get("reason") or "").strip()
    if action not in ("hold", "resume", "abort"):
        abort(400, description="Choose hold, resume or abort.")
    if not reason:
        flash(f"To {action} the batch, give a reason.", "error")
        return redirect(url_for("ui.batch_page", batch_id=batch_id, _anchor="supervisor"))
    try:
        batches.change_state(runtime(), batch_id, action, user=g.person.username, reason=reason)
    except BatchlineError as exc:
        flash(sentence(exc.message), "error")
    else:
        flash({"hold": "Batch put on hold.", "resume": "Batch resumed.", "abort": "Batch aborted."}[action], "success")
    return redirect(url_for("ui.batch_page", batch_id=batch_id))


@bp.route("/batches/<batch_id>/tasks/<task_id>/reassign", methods=["POST"])
def reassign(batch_id: str, task_id: str):
    require("task.reassign")
    username = (request.form.get("username") or "").strip()
    reason = (request.form.get("reason") or "").strip()
    if not username or not reason:
        flash("To reassign a task, choose a person and give a reason.", "error")
        return redirect(url_for("ui.batch_page", batch_id=batch_id, _anchor="tasks"))
    try:
        batches.reassign(runtime(), batch_id, task_id, username, by=g.person.username, reason=reason)
    except BatchlineError as exc:
        flash(sentence(exc.message), "error")
    else:
        flash(f"Task reassigned to {username}.", "success")
    return redirect(url_for("ui.batch_page", batch_id=batch_id, _anchor="tasks"))
