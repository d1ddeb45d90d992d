"""Record an event from any task page (or the batch page): an operator reports a
documentation, process, equipment, material or safety event, and it becomes an
exception for QA's review by exception (``engine.batches.events.record_event``).

The form carries an idempotency key made when the page is drawn, so a double tap or a
resend records one exception and shows its number again. A refused report (no or too
long a description, an unknown kind, a batch that takes nothing more) is shown on the
page it came from with what was typed, and nothing is recorded.
"""

from __future__ import annotations

import uuid

from flask import flash, g, redirect, request, url_for

from engine.batches import events
from engine.errors import BatchlineError

from ..runtime import runtime
from . import batch_pages, task_form
from .pages import bp, require, sentence


@bp.route("/batches/<batch_id>/events", methods=["POST"])
def record_event(batch_id: str):
    require("event.record")
    kind = request.form.get("kind") or ""
    description = request.form.get("description") or ""
    task_id = (request.form.get("task_id") or "").strip() or None
    key = (request.form.get("event_key") or "").strip()[:100] or None
    try:
        outcome = events.record_event(
            runtime(),
            batch_id,
            kind=kind,
            description=description,
            person=g.person,
            task_id=task_id,
            idempotency_key=key,
        )
    except BatchlineError as exc:
        typed = {"key": key or str(uuid.uuid4()), "kind": kind, "description": description[: events.MAX_DESCRIPTION]}
        typed["error"] = sentence(exc.message) + " Nothing was recorded."
        status = int(getattr(exc, "status", 422))
        task = task_form.waiting_task(batch_id, task_id) if task_id else None
        if task is not None:
            return task_form.render_task(batch_id, task, event=typed, status=status)
        return batch_pages.render_batch(batch_id, event=typed, status=status)
    number = outcome.body["exception"]["id"]
    flash(f"Event recorded — it goes to QA's review (exception {number}).", "success")
    if task_id and task_form.waiting_task(batch_id, task_id) is not None:
        return redirect(url_for("ui.task_page", batch_id=batch_id, task_id=task_id))
    return redirect(url_for("ui.batch_page", batch_id=batch_id, _anchor="exceptions"))
