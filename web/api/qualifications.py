"""People's qualifications (training records) over HTTP: read a person's, and grant or
revoke one with QA's or a trainer's e-signature. Every write takes an ``Idempotency-Key``
(a repeat answers with the first result). What is refused without a password being
read: the caller's own qualification, an unknown person, a bad name or date."""

from __future__ import annotations

from flask_smorest import Blueprint

from engine import qualifications
from engine.errors import InvalidInput

from ..auth import current_person, own_signature, requires
from . import runtime
from .quality import REPLAYED
from .schemas import IdempotencyKey
from .schemas.qualifications import QualificationEntry, QualificationGrant, QualificationRecord, QualificationRevoke

blp = Blueprint(
    "qualifications", __name__, url_prefix="/api", description="People's qualifications (training, 21 CFR 11.10(i))"
)


def _answer(outcome):
    headers = {REPLAYED: "true"} if outcome.replayed else {}
    return outcome.body, outcome.status, headers


def _signer(body, username: str, meaning: str):
    signature = body["signature"]
    if signature.get("meaning", meaning) != meaning:
        raise InvalidInput(f"this signature means {meaning!r}", code="meaning_invalid")
    # who records, and about whom, before the password is checked (it counts toward a lockout)
    qualifications.check_recordable(runtime(), username, current_person())
    return own_signature(signature)


@blp.route("/people/<username>/qualifications", methods=["GET"])
@requires("qualification.read")
@blp.response(200, QualificationRecord)
def person_qualifications(username: str):
    """A person's qualifications today (current, expired or revoked) and the signed history."""
    return qualifications.list_for(runtime(), username)


@blp.route("/people/<username>/qualifications", methods=["POST"])
@requires("qualification.record")
@blp.arguments(QualificationGrant)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(201, QualificationEntry)
def grant_qualification(body, headers, username: str):
    """Grant (or renew) a qualification until `valid_until`, signed *Qualified* by QA or a trainer
    other than the person (403 `self_qualification`)."""
    signer = _signer(body, username, qualifications.GRANTED_MEANING)
    return _answer(
        qualifications.grant(
            runtime(),
            username,
            body["qualification"],
            body["valid_until"],
            signer=signer,
            reason=body["reason"],
            idempotency_key=headers.get("idempotency_key"),
        )
    )


@blp.route("/people/<username>/qualifications/revoke", methods=["POST"])
@requires("qualification.record")
@blp.arguments(QualificationRevoke)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(200, QualificationEntry)
def revoke_qualification(body, headers, username: str):
    """Revoke a qualification now, signed *Revoked*, with the reason (409 `qualification_not_held`)."""
    signer = _signer(body, username, qualifications.REVOKED_MEANING)
    return _answer(
        qualifications.revoke(
            runtime(),
            username,
            body["qualification"],
            signer=signer,
            reason=body["reason"],
            idempotency_key=headers.get("idempotency_key"),
        )
    )
