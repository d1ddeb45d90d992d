"""The qualifications page: who is trained for what, until when, and — for QA and
trainers — the e-signed grant, renewal and revocation (the same engine rules as the API
and ``batchline qual``: never one's own record, a date not in the past)."""

from __future__ import annotations

import uuid
from datetime import date

from flask import flash, g, redirect, render_template, request, url_for

from engine import permissions, qualifications
from engine.errors import BatchlineError

from ..runtime import runtime
from .pages import bp, require, sentence
from .signature import signer


def _render(error: str | None = None, status: int = 200, form: dict | None = None):
    return render_template(
        "ui/qualifications.html",
        people=qualifications.people_holding(runtime()),
        may_record=permissions.allowed(g.person.roles, "qualification.record"),
        error=error,
        form=form or {},
        idempotency_key=str(uuid.uuid4()),
        today=qualifications.today().isoformat(),
    ), status


@bp.route("/qualifications/")
def qualification_list():
    require("qualification.read")
    return _render()


@bp.route("/qualifications/<any(grant, revoke):action>", methods=["POST"])
def record_qualification(action: str):
    """Grant or revoke, signed by the logged-in QA person or trainer (their password)."""
    require("qualification.record")
    form = {k: (request.form.get(k) or "").strip() for k in ("username", "qualification", "valid_until", "reason")}
    key = (request.form.get("idempotency_key") or "").strip()[:100] or None
    try:
        # who records, and about whom, before the password is checked (it counts toward a lockout)
        qualifications.check_recordable(runtime(), form["username"], g.person)
        if action == "grant":
            try:
                until = date.fromisoformat(form["valid_until"])
            except ValueError:
                return _render("Valid until must be a date (YYYY-MM-DD).", 422, form)
        signed_by, refused = signer()
        if refused:
            return _render(refused[0], refused[1], form)
        if action == "grant":
            qualifications.grant(
                runtime(),
                form["username"],
                form["qualification"],
                until,
                signer=signed_by,
                reason=form["reason"],
                idempotency_key=key,
            )
            flash(
                f"{form['username']} holds {form['qualification']} until {until.day} {until:%b %Y} (signed).", "success"
            )
        else:
            qualifications.revoke(
                runtime(),
                form["username"],
                form["qualification"],
                signer=signed_by,
                reason=form["reason"],
                idempotency_key=key,
            )
            flash(f"{form['username']}'s {form['qualification']} is revoked (signed).", "success")
    except BatchlineError as exc:
        return _render(sentence(exc.message), int(getattr(exc, "status", 422)), form)
    return redirect(url_for("ui.qualification_list"))
