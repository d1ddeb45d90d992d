"""QA's decision on an exception, e-signed: accept it, or escalate it to a deviation.

* **accept**: a QA person signs (*Reviewed* or *Approved*) with a justification. Where the
  rule set asks for two signatures, the exception stays open after the first and the
  second must come from another QA person; then it is ``accepted``.
* **escalate**: one QA signature; the exception becomes ``escalated``, the QMS is asked
  for a deviation (if it was not already) and it blocks release until the deviation is
  closed (``close_by_qms``) or a quality process closes it (``close``).

Nobody dispositions an exception they raised themselves, and nobody signs it twice. The
exception row is locked while deciding, so two QA people signing at once are counted
one after the other, never both as "the first". Every disposition is an append-only row
bound into the audit trail.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, outbox
from ..db import row_locks
from ..errors import Conflict, InvalidInput, NotFound
from ..idempotency import Outcome, remember, replay
from ..models import Batch, BatchException, ExceptionDisposition, utcnow
from ..permissions import Forbidden
from ..runtime import Runtime
from ..users import Person
from ..vocabulary import Decision, ExceptionStatus
from . import exceptions as qx

#: the meanings a QA disposition signature may carry (21 CFR 11.50)
MEANINGS = ("Reviewed", "Approved")
MAX_JUSTIFICATION = 2000


def _justification(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a disposition needs its justification", code="justification_required")
    if len(text) > MAX_JUSTIFICATION:
        raise InvalidInput(f"justification is longer than {MAX_JUSTIFICATION} characters", code="justification_invalid")
    return text.strip()


def _locked_exception(s: Session, batch: Batch, exception_id: int) -> BatchException:
    stmt = select(BatchException).where(BatchException.id == exception_id, BatchException.batch_id == batch.id)
    if row_locks(s):
        stmt = stmt.with_for_update()
    exc = s.scalars(stmt).first()
    if exc is None:
        raise NotFound(f"exception {exception_id} not found in batch {batch.batch_id}", code="exception_not_found")
    return exc


def disposition(
    rt: Runtime,
    batch_id: str,
    exception_id: int,
    decision: str,
    justification: Any,
    *,
    signer: Person,
    meaning: str = "Reviewed",
    idempotency_key: str | None = None,
) -> Outcome:
    """Record one QA disposition signature (see the module docstring for the rules)."""
    from ..batches.unit_of_work import find_batch

    if decision not in (Decision.ACCEPT, Decision.ESCALATE):
        raise InvalidInput("decision is accept or escalate", code="decision_invalid")
    if meaning not in MEANINGS:
        raise InvalidInput(f"a disposition is signed as one of: {', '.join(MEANINGS)}", code="meaning_invalid")
    text = _justification(justification)
    if "qa" not in signer.roles:
        raise Forbidden("only QA dispositions exceptions", code="forbidden", details={"roles": ["qa"]})
    request = {"exception": exception_id, "decision": decision, "justification": text, "meaning": meaning}
    scope = f"exception:{exception_id}|user:{signer.username}"
    with rt.transaction() as s:
        if idempotency_key:
            stored = replay(s, scope, idempotency_key, request)
            if stored is not None:
                return stored
        batch = find_batch(s, batch_id)
        exc = _locked_exception(s, batch, exception_id)
        earlier = qx.dispositions_of(s, [exc.id]).get(exc.id, [])
        _check(exc, earlier, signer)
        row = _sign(s, batch, exc, decision, text, signer, meaning)
        old = exc.status
        if decision == Decision.ESCALATE:
            exc.status = ExceptionStatus.ESCALATED
        elif len({d.username for d in earlier if d.decision == Decision.ACCEPT}) + 1 >= exc.signatures_required:
            exc.status = ExceptionStatus.ACCEPTED
            exc.closed_at = row.signed_at
        audit.record(
            s,
            user=signer.username,
            action=f"exception.{decision}",
            object_type="batch",
            object_id=batch.batch_id,
            field=f"exception {exc.id}",
            old=old,
            new={"status": exc.status, "printed_name": signer.printed_name, "meaning": meaning},
            reason=text,
            binds=[row],
        )
        outbox.emit(
            s,
            rt.settings,
            f"batch.exception.{'escalated' if decision == Decision.ESCALATE else 'dispositioned'}",
            batch.batch_id,
            {"batch_id": batch.batch_id, "exception": exc.id, "decision": decision, "status": exc.status},
        )
        if decision == Decision.ESCALATE and not exc.opens_deviation:
            exc.opens_deviation = True  # an escalation is a deviation, whatever the rule said
            qx.request_deviation(rt, s, batch, exc)
        if decision == Decision.ESCALATE:  # QA's deviation flow starts off this transaction
            from .processes import schedule_deviation_flow

            schedule_deviation_flow(rt, s, batch, exc)
        body = qx.describe(exc, [*earlier, row], qx.deviations_of(s, [exc.id]).get(exc.id), batch.batch_id)
        outcome = Outcome(200, body)
        if idempotency_key:
            remember(s, scope, idempotency_key, request, outcome)
        return outcome


def _check(exc: BatchException, earlier: list[ExceptionDisposition], signer: Person) -> None:
    if exc.status != ExceptionStatus.OPEN:
        raise Conflict(
            f"exception {exc.id} is {exc.status}; only an open exception takes a disposition",
            code="exception_not_open",
            details={"status": exc.status},
        )
    if exc.raised_by == signer.username:
        raise Forbidden("nobody dispositions an exception they raised", code="segregation_of_duties")
    if any(d.username == signer.username for d in earlier):
        raise Forbidden(
            "you already signed this exception; the second signature must come from another QA person",
            code="second_signature_same_person",
        )


def _sign(
    s: Session, batch: Batch, exc: BatchException, decision: str, text: str, signer: Person, meaning: str
) -> ExceptionDisposition:
    row = ExceptionDisposition(
        exception_id=exc.id,
        decision=decision,
        justification=text,
        username=signer.username,
        printed_name=signer.printed_name,
        meaning=meaning,
        signed_at=utcnow(),
        content_hash=qx.disposition_hash(batch, exc, decision, text, meaning),
        rule_set_version=exc.rule_set_version,
    )
    s.add(row)
    return row


def close(
    rt: Runtime, s: Session, exc: BatchException, *, user: str, reason: str, reference: str | None = None
) -> None:
    """Close an escalated exception: its deviation was closed (by the QMS, or by QA's own
    deviation process). Audited with the reference (deviation number, CAPA)."""
    if exc.status == ExceptionStatus.CLOSED:
        return
    batch = s.get(Batch, exc.batch_id)
    assert batch is not None
    text = reason + (f" ({reference})" if reference else "")
    row = ExceptionDisposition(
        exception_id=exc.id,
        decision=Decision.CLOSE,
        justification=text,
        username=user,
        printed_name=user,
        meaning="Closed",
        signed_at=utcnow(),
        content_hash=qx.disposition_hash(batch, exc, Decision.CLOSE, text, "Closed"),
        rule_set_version=exc.rule_set_version,
    )
    s.add(row)
    old = exc.status
    exc.status = ExceptionStatus.CLOSED
    exc.closed_at = row.signed_at
    audit.record(
        s,
        user=user,
        action="exception.closed",
        object_type="batch",
        object_id=batch.batch_id,
        field=f"exception {exc.id}",
        old=old,
        new={"status": ExceptionStatus.CLOSED, "reference": reference},
        reason=reason,
        binds=[row],
    )
    outbox.emit(
        s,
        rt.settings,
        "batch.exception.closed",
        batch.batch_id,
        {"batch_id": batch.batch_id, "exception": exc.id, "reference": reference},
    )


def close_by_qms(s: Session, rt: Runtime, exc: BatchException, reference: str | None, *, qms: str = "qms") -> None:
    """The QMS closed the deviation of this exception (its CAPA reference kept)."""
    close(rt, s, exc, user=f"qms:{qms}", reason="the QMS closed the deviation", reference=reference)
