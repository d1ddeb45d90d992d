"""Review by exception and release over HTTP: a batch's exceptions, QA's e-signed
disposition of one, what still blocks a release, the release or rejection itself, and the
exception rule sets QA imports and approves. Every write takes an ``Idempotency-Key``
(a repeat answers with the first result) and every signature both components."""

from __future__ import annotations

from flask_smorest import Blueprint

from engine.errors import InvalidInput
from engine.quality import dispositions, release, rules

from ..auth import current_user, own_signature, requires
from . import runtime
from .schemas import (
    DispositionIn,
    ExceptionFilter,
    IdempotencyKey,
    QualityExceptionOut,
    ReleaseCheck,
    ReleaseIn,
    ReleaseOut,
    RuleApprove,
    RuleSetIn,
    RuleSetOut,
)

blp = Blueprint("quality", __name__, url_prefix="/api", description="Review by exception, release, exception rules")

REPLAYED = "Idempotent-Replayed"


def _answer(outcome):
    headers = {REPLAYED: "true"} if outcome.replayed else {}
    return outcome.body, outcome.status, headers


@blp.route("/batches/<batch_id>/exceptions", methods=["GET"])
@requires("exception.read")
@blp.arguments(ExceptionFilter, location="query")
@blp.response(200, QualityExceptionOut(many=True))
def batch_exceptions(query, batch_id: str):
    """The batch's exceptions with their dispositions and QMS deviation; filter by status or severity."""
    from engine import batches

    return batches.exceptions(runtime(), batch_id, status=query.get("status"), severity=query.get("severity"))


@blp.route("/batches/<batch_id>/exceptions/<id:exception_id>/disposition", methods=["POST"])
@requires("exception.disposition")
@blp.arguments(DispositionIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(200, QualityExceptionOut)
def disposition(body, headers, batch_id: str, exception_id: int):
    """QA accepts an exception (one or two signatures, as its rule says) or escalates it to a deviation."""
    signature = body["signature"]
    signer = own_signature(signature)
    return _answer(
        dispositions.disposition(
            runtime(),
            batch_id,
            exception_id,
            body["decision"],
            body["justification"],
            signer=signer,
            meaning=signature.get("meaning", "Reviewed"),
            idempotency_key=headers.get("idempotency_key"),
        )
    )


@blp.route("/batches/<batch_id>/release", methods=["GET"])
@requires("batch.read")
@blp.response(200, ReleaseCheck)
def release_check(batch_id: str):
    """What still blocks the batch's release (empty `blocking`: it may be released)."""
    return release.blocking(runtime(), batch_id)


def _decide(body, headers, batch_id: str, meaning: str, decide):
    signature = body["signature"]
    if signature.get("meaning", meaning) != meaning:
        raise InvalidInput(f"this signature means {meaning!r}", code="meaning_invalid")
    signer = own_signature(signature)
    return _answer(
        decide(
            runtime(), batch_id, signer=signer, comment=body["comment"], idempotency_key=headers.get("idempotency_key")
        )
    )


@blp.route("/batches/<batch_id>/release", methods=["POST"])
@requires("batch.release")
@blp.arguments(ReleaseIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(200, ReleaseOut)
@blp.alt_response(409, description="`release_blocked`: `details.blocking` lists each open item")
def release_batch(body, headers, batch_id: str):
    """Release the batch (*Released*): refused while anything blocks it, and for anyone who performed or
    witnessed a step of it (403 `segregation_of_duties`)."""
    return _decide(body, headers, batch_id, release.RELEASED_MEANING, release.release_batch)


@blp.route("/batches/<batch_id>/reject", methods=["POST"])
@requires("batch.release")
@blp.arguments(ReleaseIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(200, ReleaseOut)
def reject_batch(body, headers, batch_id: str):
    """Reject the batch (*Rejected*, the comment says why)."""
    return _decide(body, headers, batch_id, release.REJECTED_MEANING, release.reject_batch)


@blp.route("/rules", methods=["GET"])
@requires("rules.read")
@blp.response(200, RuleSetOut(many=True))
def list_rules():
    """The exception rule sets, newest first; the newest approved one is in force."""
    return rules.list_rule_sets(runtime())


@blp.route("/rules", methods=["POST"])
@requires("rules.manage")
@blp.arguments(RuleSetIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(201, RuleSetOut)
def import_rules(body, headers):
    """Import a rule set as a new draft version (another QA person approves it)."""
    return rules.import_rules(runtime(), body, user=current_user(), idempotency_key=headers.get("idempotency_key"))


@blp.route("/rules/<id:version>/approve", methods=["POST"])
@requires("rules.manage")
@blp.arguments(RuleApprove)
@blp.response(200, RuleSetOut)
def approve_rules(body, version: int):
    """Approve a draft rule set (*Approved*, not by its author); it is in force from now on."""
    signature = body["signature"]
    if signature.get("meaning", "Approved") != "Approved":
        raise InvalidInput("approving rules means 'Approved'", code="meaning_invalid")
    return rules.approve(runtime(), version, signer=own_signature(signature))
