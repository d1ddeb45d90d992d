"""Corrections of recorded values (21 CFR 11.10(e), Annex 11 §9): choose a recorded
value, type the new one and the reason, sign. The original value and its signature stay
in the record; from then on the corrected value is the current one. QA's review of the
batch closes the record to corrections.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for

from engine import batches
from engine.errors import BatchlineError
from engine.vocabulary import StepKind

from ..runtime import runtime
from . import entry
from . import session as login
from .attachments import store_upload
from .pages import bp, require, sentence
from .record_rows import add_rows, correcting_roles, form_fields, may_correct_step
from .signature import SIGNING_CODES, signer

#: the corrected value is posted under this name, so no form key collides with the page's own
CORRECTION_INPUT = "value"
CORRECTION_MEANING = "Corrected"
CLOSED = (
    "This batch record has been reviewed: corrections are closed. Nothing was changed. "
    "Ask QA how to proceed (a deviation, for example)."
)


def _correction_context(batch_id: str, seq: int) -> tuple[dict, dict, list[dict[str, Any]], dict[str, dict]]:
    """The batch, the step (with its record rows) and the correctable fields."""
    batch = batches.get_batch(runtime(), batch_id)
    step = next((s for s in batches.steps(runtime(), batch_id) if s["seq"] == seq), None)
    if step is None:
        abort(404, description=f"Batch {batch_id} has no step {seq}.")
    if step.get("kind") != StepKind.USER_TASK:
        abort(
            409,
            description="Only values entered by an operator can be corrected; this step was recorded by the system.",
        )
    if not may_correct_step(g.person, step):
        roles = " or ".join(sorted(correcting_roles(step))) or "nobody"
        abort(403, description=f"You may not correct this step (this needs the role: {roles}).")
    fields = form_fields(batch).get(step.get("form") or "", {})
    add_rows(step, {step.get("form") or "": fields})
    rows = [r for r in step["rows"] if r["correctable"]]
    return batch, step, rows, fields


def _correction_field(fields: dict[str, dict], key: str) -> dict[str, Any]:
    """The form field as an input named CORRECTION_INPUT (same type, unit, limits, options)."""
    field = fields.get(key) or {
        "item": "field",
        "key": key,
        "label": key,
        "type": "textfield",
        "options": [],
        "limits": {},
        "input": {},
    }
    return {
        **field,
        "key": CORRECTION_INPUT,
        "label": f"New value for {field.get('label') or key}",
        "required": True,
        "default": None,
    }


def _render_correction(
    batch_id: str,
    seq: int,
    field_key: str | None,
    *,
    typed=None,
    reason="",
    field_errors=None,
    error=None,
    sign_error=None,
    idempotency_key=None,
    status=200,
):
    batch, step, rows, fields = _correction_context(batch_id, seq)
    row = next((r for r in rows if r["key"] == field_key), None)
    field = _correction_field(fields, row["key"]) if row else None
    if typed is None and row is not None:
        current = (step.get("current_values") or {}).get(row["key"])
        typed = {CORRECTION_INPUT: entry.typed_from_value(field, current)}
    errors = dict(field_errors or {})
    return render_template(
        "ui/correct.html",
        batch=batch,
        step=step,
        rows=rows,
        row=row,
        field=field,
        typed=typed or {},
        reason=reason,
        field_errors=errors,
        error=error,
        sign_error=sign_error,
        reviewed_at=batch["reviewed_at"],
        signing={"meaning": CORRECTION_MEANING, "witness_required": False, "witness_role": None},
        needs_user_id=login.signing_needs_user_id(),
        idempotency_key=idempotency_key or str(uuid.uuid4()),
        max_request_bytes=runtime().settings.max_request_bytes,
    ), status


@bp.route("/batches/<batch_id>/steps/<id:seq>/correct", methods=["GET"])
def correct_page(batch_id: str, seq: int):
    """Choose a recorded value, type the new one and the reason, sign."""
    require("step.correct")
    return _render_correction(batch_id, seq, request.args.get("field") or None)


@bp.route("/batches/<batch_id>/steps/<id:seq>/correct", methods=["POST"])
def submit_correction(batch_id: str, seq: int):
    require("step.correct")
    key = (request.form.get("idempotency_key") or "").strip()[:100]
    done = login.done_submissions()
    if key and key in done:  # a repeated submission (reload, back + resend): show the first result
        return redirect(done[key])
    if not key:
        key = str(uuid.uuid4())
    field_key = request.form.get("field") or ""
    reason = (request.form.get("reason") or "").strip()
    batch, step, rows, fields = _correction_context(batch_id, seq)
    row = next((r for r in rows if r["key"] == field_key), None)
    if row is None:
        flash("Choose the value to correct.", "error")
        return redirect(url_for("ui.correct_page", batch_id=batch_id, seq=seq))
    field = _correction_field(fields, row["key"])
    items = [field]
    typed = entry.typed_from_post(items, request.form)

    def again(**kwargs):
        return _render_correction(batch_id, seq, row["key"], typed=typed, reason=reason, idempotency_key=key, **kwargs)

    if batch["reviewed_at"] is not None:
        return again(error=CLOSED, status=409)
    if not reason:
        return again(
            field_errors={"reason": ["Give the reason for the correction: it is kept with the old and the new value."]},
            error="A correction needs a reason; nothing was changed.",
            status=422,
        )
    signed_by, refused = signer()
    if refused:
        return again(sign_error=refused[0], status=refused[1])
    if field.get("type") == "attachment":
        stored, problems = store_upload(field, CORRECTION_INPUT)
        if problems:
            return again(
                field_errors={CORRECTION_INPUT: problems},
                error="The file could not be attached; nothing was changed.",
                status=422,
            )
        value = stored or entry.kept_attachment(request.form, CORRECTION_INPUT)
        typed[CORRECTION_INPUT] = value
    else:
        value = entry.values_from_post(items, request.form)[CORRECTION_INPUT]
    try:
        batches.correct_step(runtime(), batch_id, seq, row["key"], value, reason=reason, signer=signed_by)
    except BatchlineError as exc:
        return _refused(exc, again, batch_id, seq, row, reason, key, done)
    return _corrected(batch_id, seq, key, done, row["label"])


def _refused(exc: BatchlineError, again, batch_id: str, seq: int, row: dict[str, Any], reason: str, key: str, done):
    """The page for a correction the engine refused, with the refusal where it belongs."""
    details = exc.details or {}
    fields_err = details.get("fields") or details.get("field_errors")
    if exc.code == "form_invalid" and isinstance(fields_err, dict):
        mine = fields_err.get(row["key"])
        others = [m for k, ms in fields_err.items() if k != row["key"] for m in (ms or [])]
        return again(
            field_errors={CORRECTION_INPUT: mine} if mine else {},
            error=sentence(exc.message) + (" " + " ".join(others) if others else ""),
            status=422,
        )
    if exc.code == "batch_reviewed":
        return again(error=CLOSED, status=409)
    if exc.code == "reason_required":
        return again(field_errors={"reason": [sentence(exc.message)]}, error=sentence(exc.message), status=422)
    if exc.code == "correction_unchanged" and _same_correction(batch_id, seq, row["key"], reason):
        return _corrected(batch_id, seq, key, done, row["label"])  # sent twice at once: done once
    if exc.code == "correction_unchanged":
        return again(
            field_errors={CORRECTION_INPUT: ["The new value is the same as the current one."]},
            error="Nothing to correct: the new value is the same as the current one.",
            status=422,
        )
    if exc.code in SIGNING_CODES:
        return again(sign_error=sentence(exc.message), status=int(getattr(exc, "status", 403)))
    return again(error=sentence(exc.message), status=int(getattr(exc, "status", 422)))


def _same_correction(batch_id: str, seq: int, field: str, reason: str) -> bool:
    """The last correction of this value is this person's, with this reason: a repeat of it."""
    step = next((s for s in batches.steps(runtime(), batch_id) if s["seq"] == seq), None)
    last = [c for c in (step or {}).get("corrections") or [] if c["field"] == field][-1:]
    return bool(last) and last[0]["username"] == g.person.username and last[0]["reason"] == reason


def _corrected(batch_id: str, seq: int, key: str, done: dict, label: str):
    target = url_for("ui.batch_page", batch_id=batch_id, _anchor=f"step-{seq}")
    login.remember_submission(done, key, target)
    flash(
        f"Step {seq}: {label} corrected and signed. The original value and the earlier signature stay in the record.",
        "success",
    )
    return redirect(target)
