"""QA's review by exception: the batches waiting for review, and one batch's review page
showing only what needs a person — its open exceptions (critical first, with the value
against its limits, the step, who and when, the trend chart of an out-of-trend finding),
its corrections and incidents — with the e-signed disposition of an exception, the
release (saying what still blocks it) and the rejection.

The engine decides (``engine.quality``): these pages only ask it and show its answer in
the reviewer's words. Signatures follow the task page's rule (``signature.signer``: user
id + password at the first signing of a session, then the password only). Everyone who
may read exceptions sees the pages; only QA gets the decision controls, and the engine
refuses anyone else anyway.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

from engine import batches, permissions
from engine.errors import BatchlineError
from engine.quality import dispositions, release
from engine.vocabulary import BatchState, Decision, ExceptionStatus

from ..runtime import runtime
from . import session as login
from .pages import bp, require, sentence
from .review_context import CATEGORY_NAMES, exception_context, limits_text, trend_charts
from .signature import SIGNING_CODES, signer

SEVERITIES = ("critical", "major", "minor")
RANK = {s: i for i, s in enumerate(SEVERITIES)}
#: statuses that still need a person (escalated: waits for its deviation to close)
UNRESOLVED = (ExceptionStatus.OPEN, ExceptionStatus.ESCALATED)


def _auto_closed(exc: dict[str, Any]) -> bool:
    return any(d["decision"] == Decision.AUTO_CLOSE for d in exc.get("dispositions") or [])


def _counts(exceptions: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for exc in exceptions:
        if exc["status"] in UNRESOLVED:
            counts[exc["severity"]] = counts.get(exc["severity"], 0) + 1
    return counts


@bp.route("/review/")
def review_list():
    """Complete batches waiting for QA's release, with their open exceptions by severity."""
    require("exception.read")
    rows = []
    for b in batches.list_batches(runtime(), state=BatchState.COMPLETE):
        exceptions = batches.exceptions(runtime(), b["batch_id"])
        counts = _counts(exceptions)
        rows.append({**b, "counts": counts, "open": sum(counts.values())})
    return render_template("ui/review/list.html", batches=rows, severities=SEVERITIES)


def _review_data(batch_id: str) -> dict[str, Any]:
    rt = runtime()
    batch = batches.get_batch(rt, batch_id)
    steps = batches.steps(rt, batch_id)
    exceptions = batches.exceptions(rt, batch_id)
    by_seq = {s["seq"]: s for s in steps}
    for exc in exceptions:
        exception_context(exc, by_seq)
    human = [e for e in exceptions if not _auto_closed(e)]
    needs = sorted((e for e in exceptions if e["status"] in UNRESOLVED), key=lambda e: (RANK[e["severity"]], e["id"]))
    corrections = [
        {
            **c,
            "seq": s["seq"],
            "task_name": s["task_name"],
            "label": (s.get("labels") or {}).get(c["field"], c["field"]),
        }
        for s in steps
        for c in s.get("corrections") or []
    ]
    check = release.blocking(rt, batch_id)
    with rt.transaction() as s:
        from engine.batches.unit_of_work import find_batch

        performed = g.person.username in release.performers(s, find_batch(s, batch_id))
    return {
        "batch": batch,
        "needs": needs,
        "counts": _counts(exceptions),
        "human": human,
        "decided": [e for e in human if e["status"] not in UNRESOLVED],
        "auto_closed": [e for e in exceptions if _auto_closed(e)],
        "entries": len(steps),
        "corrections": corrections,
        "blocking": check["blocking"],
        "performed": performed,
        "charts": trend_charts(batch, needs),
        "limits_text": limits_text,
        "category_names": CATEGORY_NAMES,
    }


def _render(batch_id: str, *, dialog: dict[str, Any] | None = None, status: int = 200):
    data = _review_data(batch_id)
    keys = {e["id"]: str(uuid.uuid4()) for e in data["needs"]}
    return render_template(
        "ui/review/batch.html",
        **data,
        dialog=dialog or {},
        keys=keys,
        release_key=(dialog or {}).get("release_key") or str(uuid.uuid4()),
        needs_user_id=login.signing_needs_user_id(),
        may_decide=permissions.allowed(g.person.roles, "exception.disposition"),
        may_release=permissions.allowed(g.person.roles, "batch.release"),
    ), status


@bp.route("/review/<batch_id>")
def review_page(batch_id: str):
    require("exception.read")
    return _render(batch_id)


def _done(key: str) -> str | None:
    return login.done_submissions().get(key) if key else None


def _remember(key: str, target: str) -> None:
    if key:
        login.remember_submission(login.done_submissions(), key, target)


@bp.route("/review/<batch_id>/exceptions/<id:exception_id>", methods=["POST"])
def dispose(batch_id: str, exception_id: int):
    """QA's e-signed accept or escalate of one exception."""
    require("exception.disposition")
    key = (request.form.get("idempotency_key") or "").strip()[:100]
    if _done(key):  # sent twice (reload, double tap): the first result
        return redirect(_done(key))
    decision = request.form.get("decision") or ""
    justification = (request.form.get("justification") or "").strip()
    dialog = {"kind": "exception", "exception_id": exception_id, "decision": decision, "justification": justification}

    def again(error: str, status: int):
        return _render(batch_id, dialog={**dialog, "error": error, "key": key}, status=status)

    if decision not in (Decision.ACCEPT, Decision.ESCALATE):
        return again("Choose accept or escalate.", 422)
    if not justification:
        return again("Give the justification of your decision: it is signed and kept with the exception.", 422)
    signed_by, refused = signer()
    if refused:
        return again(refused[0], refused[1])
    try:
        outcome = dispositions.disposition(
            runtime(), batch_id, exception_id, decision, justification, signer=signed_by, idempotency_key=key or None
        )
    except BatchlineError as exc:
        return again(_why(exc), int(getattr(exc, "status", 422)))
    flash(_disposed_message(exception_id, outcome.body), "success")
    target = url_for("ui.review_page", batch_id=batch_id, _anchor="exceptions")
    _remember(key, target)
    return redirect(target)


def _disposed_message(exception_id: int, body: dict[str, Any]) -> str:
    if body["status"] == ExceptionStatus.ESCALATED:
        return (
            f"Exception {exception_id} escalated: the QMS is asked to open a deviation; "
            "it blocks release until the deviation is closed."
        )
    if body["status"] == ExceptionStatus.OPEN:
        given, needed = body.get("signatures_given", 1), body["signatures_required"]
        return (
            f"Exception {exception_id}: your signature is recorded ({given} of {needed}). "
            "A second QA person must sign it too (in their own session)."
        )
    return f"Exception {exception_id} accepted and signed."


def _why(exc: BatchlineError) -> str:
    """The engine's refusal, said for the reviewer."""
    if exc.code == "segregation_of_duties":
        return sentence(exc.message) + " Another QA person must decide this."
    if exc.code == "second_signature_same_person":
        return (
            "You already signed this exception. The second signature must come from another QA person, "
            "in their own session."
        )
    if exc.code in SIGNING_CODES:
        return sentence(exc.message)
    return sentence(exc.message)


@bp.route("/review/<batch_id>/<any(release, reject):decision>", methods=["POST"])
def decide(batch_id: str, decision: str):
    """The e-signed release (refused while anything blocks it) or rejection of the batch."""
    require("batch.release")
    key = (request.form.get("idempotency_key") or "").strip()[:100]
    if _done(key):
        return redirect(_done(key))
    comment = (request.form.get("comment") or "").strip()
    dialog = {"kind": decision, "comment": comment, "release_key": key}

    def again(error: str, status: int, blocking: list | None = None):
        return _render(batch_id, dialog={**dialog, "error": error, "blocking": blocking}, status=status)

    if decision == "reject" and not comment:
        return again("A rejection needs its reason: write it in the comment.", 422)
    signed_by, refused = signer()
    if refused:
        return again(refused[0], refused[1])
    act = release.release_batch if decision == "release" else release.reject_batch
    try:
        act(runtime(), batch_id, signer=signed_by, comment=comment, idempotency_key=key or None)
    except BatchlineError as exc:
        if exc.code == "release_blocked":
            items = (exc.details or {}).get("blocking") or []
            return again(
                f"Not released: {len(items)} item{'s' if len(items) != 1 else ''} still block the release "
                "(listed below). Nothing was signed.",
                409,
                items,
            )
        if exc.code == "segregation_of_duties":
            return again(
                f"Not {decision}d: you performed or witnessed steps of batch {batch_id}, so you cannot decide its "
                "release (executor ≠ releaser). Another QA person must do it. Nothing was signed.",
                403,
            )
        return again(_why(exc), int(getattr(exc, "status", 422)))
    flash(f"Batch {batch_id} {decision}d and signed.", "success")
    target = url_for("ui.review_page", batch_id=batch_id)
    _remember(key, target)
    return redirect(target)
