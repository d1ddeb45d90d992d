"""QA's e-signed decision on a training run: a model is a GMP record (21 CFR 11.10(k),
11.50, 11.70) - it decides which batches land on a reviewer's desk, so it scores only
after a QA person has read its evaluation report and approved it.

* ``approve``: meaning *Approved*, by a QA person other than the one who trained
  (segregation of duties); only the newest run of a recipe that is still undecided; its
  models replace the versions in force (``catalogue.activate``) in the same transaction,
  audited with the signature (printed name, meaning, UTC time, the report's SHA-256).
* ``reject``: meaning *Rejected*, with the reason; the run's models never score.

One decision per run (``trend_training_decision`` is append-only, unique per run): a
replayed or concurrent second decision is refused (409). The caller re-authenticated the
signer (web API: user id + password in the body; browser: the sign form; CLI: password).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import TrendModel, TrendTraining, TrendTrainingDecision, utcnow
from engine.permissions import Forbidden, allowed
from engine.runtime import Runtime
from engine.users import Person

from .catalogue import APPROVED, activate, describe_model

REJECTED = "rejected"
PENDING = "pending"
APPROVED_MEANING = "Approved"
REJECTED_MEANING = "Rejected"
MAX_REASON = 2000
MAX_ID = 2**31 - 1


def _status(decision: TrendTrainingDecision | None) -> str:
    return decision.decision if decision is not None else PENDING


def describe(
    run: TrendTraining, decision: TrendTrainingDecision | None, *, with_report: bool = False
) -> dict[str, Any]:
    """A training run as the API and the pages show it (the report only on request)."""
    summary = run.report.get("summary", {})
    out: dict[str, Any] = {
        "id": run.id,
        "recipe": run.recipe,
        "recipe_version": run.report.get("recipe_version"),
        "trained_by": run.trained_by,
        "trained_at": run.trained_at.isoformat(),
        "released_only": run.released_only,
        "batches": len(run.report.get("batches", [])),
        "models": len(run.report.get("models", [])),
        "not_enough_history": len(run.report.get("not_enough_history", [])),
        "worst_false_alarm_rate": summary.get("worst_false_alarm_rate"),
        "report_hash": run.report_hash,
        "status": _status(decision),
        "decision": None,
    }
    if decision is not None:
        out["decision"] = {
            "decision": decision.decision,
            "username": decision.username,
            "printed_name": decision.printed_name,
            "meaning": decision.meaning,
            "reason": decision.reason,
            "signed_at": decision.signed_at.isoformat(),
            "report_hash": decision.report_hash,
        }
    if with_report:
        out["report"] = run.report
    return out


def _decision(s: Session, training_id: int) -> TrendTrainingDecision | None:
    return s.scalars(select(TrendTrainingDecision).where(TrendTrainingDecision.training_id == training_id)).first()


def _run(s: Session, training_id: Any) -> TrendTraining:
    if isinstance(training_id, bool) or not isinstance(training_id, int) or not 0 < training_id <= MAX_ID:
        raise NotFound(f"training run {training_id!r} not found", code="training_not_found")
    run = s.get(TrendTraining, training_id)
    if run is None:
        raise NotFound(f"training run {training_id} not found", code="training_not_found")
    return run


def list_trainings(rt: Runtime, recipe: str | None = None, *, limit: int = 200) -> list[dict[str, Any]]:
    """Training runs, newest first, with their decision."""
    with rt.transaction() as s:
        stmt = (
            select(TrendTraining, TrendTrainingDecision)
            .outerjoin(TrendTrainingDecision, TrendTrainingDecision.training_id == TrendTraining.id)
            .order_by(TrendTraining.id.desc())
            .limit(limit)
        )
        if recipe:
            stmt = stmt.where(TrendTraining.recipe == recipe)
        return [describe(run, decision) for run, decision in s.execute(stmt)]


def get_training(rt: Runtime, training_id: int) -> dict[str, Any]:
    """One run with its evaluation report, and which of its models are in force now."""
    with rt.transaction() as s:
        run = _run(s, training_id)
        out = describe(run, _decision(s, run.id), with_report=True)
        active = {m.id: m.active for m in s.scalars(select(TrendModel).where(TrendModel.training_id == run.id))}
        for m in out["report"]["models"]:
            m["active"] = bool(active.get(m["model_id"]))
        out["active_models"] = sum(active.values())
        return out


def newest_pending(rt: Runtime, recipe: str) -> int | None:
    """The newest run of ``recipe`` if no decision was made on it yet."""
    runs = list_trainings(rt, recipe, limit=1)
    return runs[0]["id"] if runs and runs[0]["status"] == PENDING else None


def model_training(s: Session, model_id: int) -> dict[str, Any] | None:
    """The training run and decision behind a model version (for a finding's
    ``model_id``): who trained it on what, who approved it, when."""
    model = s.get(TrendModel, model_id)
    if model is None or model.training_id is None:
        return None
    run = s.get(TrendTraining, model.training_id)
    return describe(run, _decision(s, run.id)) if run is not None else None


def get_model(rt: Runtime, model_id: int) -> dict[str, Any]:
    """One model version with its card and the training run behind it (who trained it on
    what, who approved it): what a finding's ``model_id`` / ``model_version`` lead to."""
    with rt.transaction() as s:
        m = s.get(TrendModel, model_id)
        if m is None:
            raise NotFound(f"model {model_id} not found", code="model_not_found")
        return {**describe_model(m, with_card=True), "training": model_training(s, model_id)}


def _check(signer: Person, reason: Any, what: str) -> str:
    if not isinstance(signer, Person) or not allowed(signer.roles, "analytics.approve"):
        raise Forbidden(f"only QA {what} a training run of out-of-trend models", code="forbidden")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidInput(f"a decision needs a reason (at most {MAX_REASON} characters)", code="reason_invalid")
    return reason.strip()


def approve(rt: Runtime, training_id: int, *, signer: Person, reason: str) -> dict[str, Any]:
    """Approve a run (e-signed, *Approved*): its models score from now on, replacing the
    versions in force. Refused to the person who trained it, for a run already decided,
    and for a run a newer (not rejected) run of the same recipe has overtaken."""
    reason = _check(signer, reason, "approves")
    return _decide(rt, training_id, signer, reason, APPROVED, APPROVED_MEANING)


def reject(rt: Runtime, training_id: int, *, signer: Person, reason: str) -> dict[str, Any]:
    """Reject a run (e-signed, *Rejected*, with the reason): its models never score; the
    versions in force go on scoring."""
    reason = _check(signer, reason, "rejects")
    return _decide(rt, training_id, signer, reason, REJECTED, REJECTED_MEANING)


def _decide(rt: Runtime, training_id: int, signer: Person, reason: str, decision: str, meaning: str) -> dict[str, Any]:
    try:
        with rt.transaction() as s:
            run = _run(s, training_id)
            done = _decision(s, run.id)
            if done is not None:
                raise Conflict(
                    f"training run {run.id} was already {done.decision} by {done.username}",
                    code="training_decided",
                    details={"status": done.decision},
                )
            if run.trained_by == signer.username:
                raise Forbidden(
                    f"{signer.username} trained run {run.id}: another QA person must decide on it "
                    "(segregation of duties)",
                    code="trainer_cannot_approve",
                )
            newer = s.scalar(
                select(TrendTraining.id)
                .where(
                    TrendTraining.recipe == run.recipe,
                    TrendTraining.id > run.id,
                    TrendTraining.id.not_in(
                        select(TrendTrainingDecision.training_id).where(TrendTrainingDecision.decision == REJECTED)
                    ),
                )
                .order_by(TrendTraining.id.desc())
                .limit(1)
            )
            if decision == APPROVED and newer is not None:
                raise Conflict(
                    f"training run {newer} of {run.recipe} is newer: approve that one (or reject this one)",
                    code="training_superseded",
                    details={"newer": newer},
                )
            row = TrendTrainingDecision(
                training_id=run.id,
                decision=decision,
                username=signer.username,
                printed_name=signer.printed_name,
                meaning=meaning,
                reason=reason,
                signed_at=utcnow(),
                report_hash=run.report_hash,
            )
            s.add(row)
            s.flush()  # the unique decision per run: a concurrent second one fails here
            models = activate(s, run.id) if decision == APPROVED else []
            audit.record(
                s,
                user=signer.username,
                action=f"analytics.training.{decision}",
                object_type="trend_training",
                object_id=str(run.id),
                field="status",
                old=PENDING,
                new={
                    "status": decision,
                    "recipe": run.recipe,
                    "signature": {"username": signer.username, "printed_name": signer.printed_name, "meaning": meaning},
                    "report_hash": run.report_hash,
                    "models": sorted(m.id for m in models),
                },
                reason=reason,
            )
            return describe(run, row)
    except IntegrityError as exc:  # the other request decided first
        raise Conflict(f"training run {training_id} was already decided", code="training_decided") from exc
