"""The training runs of the out-of-trend models as QA sees them: the list, one run's
evaluation report (per model the features, limits, training batches and false alarms on
held-out released batches; what had not enough history) and, for QA, the e-signed
approval or rejection (``analytics.model_review``: only approved models score).

Server-rendered like the other trend pages (``trends/base.html``); the form follows the
review pages' signing rule (``web.ui.signature.signer``: user id + password at the first
signature of a session, then the password only), carries the session's CSRF token and an
idempotency key (a form sent twice shows the first result; the engine refuses a second
decision anyway)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, flash, g, get_flashed_messages, redirect, render_template, request, url_for

from analytics import model_review
from engine import permissions
from engine.errors import BatchlineError, NotFound

from ..runtime import runtime
from ..ui import session as login
from ..ui.pages import _context as page_context
from ..ui.signature import signer

bp = Blueprint("model_reviews", __name__, url_prefix="/trends/trainings", template_folder="templates")
# the layout's navigation, name, roles and log-out button (``ui/base.html``) need what every UI page gets
bp.context_processor(page_context)

DECISIONS = {"approve": model_review.approve, "reject": model_review.reject}


@bp.before_request
def _logged_in():
    person, _why = login.load_person()
    if person is None:
        target = request.full_path.rstrip("?") if request.method == "GET" else request.path
        return redirect("/login?next=" + quote(target, safe="/"))
    if not permissions.allowed(person.roles, "analytics.read"):
        abort(403)
    g.person = person
    if request.method == "POST":
        login.check_csrf()
    return None


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return render_template("trends/message.html", title="Not found", message=exc.message, person=g.get("person")), 404


@bp.route("/")
def trainings():
    recipe = (request.args.get("recipe") or "")[:200] or None
    runs = model_review.list_trainings(runtime(), recipe)
    return render_template("trends/trainings.html", runs=runs, recipe=recipe, person=g.person)


def _render(training_id: int, *, form: dict[str, Any] | None = None, status: int = 200):
    run = model_review.get_training(runtime(), training_id)
    may_decide = permissions.allowed(g.person.roles, "analytics.approve")
    return render_template(
        "trends/training.html",
        run=run,
        person=g.person,
        form=form or {},
        key=(form or {}).get("key") or str(uuid.uuid4()),
        may_decide=may_decide,
        is_trainer=run["trained_by"] == g.person.username,
        needs_user_id=login.signing_needs_user_id(),
        messages=get_flashed_messages(with_categories=True),
    ), status


@bp.route("/<id:training_id>")
def training(training_id: int):
    return _render(training_id)


@bp.route("/<id:training_id>/decide", methods=["POST"])
def decide(training_id: int):
    """QA's e-signed approval or rejection of the run."""
    if not permissions.allowed(g.person.roles, "analytics.approve"):
        abort(403)
    key = (request.form.get("idempotency_key") or "").strip()[:100]
    done = login.done_submissions().get(key) if key else None
    if done:  # sent twice (reload, double click): the first result
        return redirect(done)
    decision = request.form.get("decision") or ""
    reason = (request.form.get("reason") or "").strip()
    form = {"decision": decision, "reason": reason, "key": key}

    def again(error: str, status: int):
        return _render(training_id, form={**form, "error": error}, status=status)

    if decision not in DECISIONS:
        return again("Choose approve or reject.", 422)
    if not reason or len(reason) > model_review.MAX_REASON:
        return again(f"Give the reason of your decision (at most {model_review.MAX_REASON} characters).", 422)
    signed_by, refused = signer()
    if refused:
        return again(refused[0], refused[1])
    try:
        decided = DECISIONS[decision](runtime(), training_id, signer=signed_by, reason=reason)
    except BatchlineError as exc:
        return again(_why(exc), int(getattr(exc, "status", 422)))
    if decided["status"] == model_review.APPROVED_MEANING.lower():
        flash(f"Training run {training_id} approved and signed: its models score from now on.", "success")
    else:
        flash(f"Training run {training_id} rejected and signed: its models never score.", "success")
    target = url_for("model_reviews.training", training_id=training_id)
    if key:
        login.remember_submission(login.done_submissions(), key, target)
    return redirect(target)


def _why(exc: BatchlineError) -> str:
    if exc.code == "trainer_cannot_approve":
        return (
            "You trained these models: another QA person must decide on them (segregation of duties). "
            "Nothing was signed."
        )
    if exc.code == "training_decided":
        return "This training run was already decided. Nothing was signed."
    if exc.code == "training_superseded":
        return f"{exc.message}. Nothing was signed."
    return exc.message[:1].upper() + exc.message[1:] + ("" if exc.message.endswith(".") else ".")
