"""Releasing or rejecting a batch: QA's e-signed disposition of the whole record.

The engine decides whether a batch may be released, whatever a quality process's BPMN
says (21 CFR 11.10(f): no release with open items). ``blocking`` lists every reason not
to: the batch is not complete; an exception that blocks release is not resolved (open,
still waiting for a second signature, or escalated to a deviation not yet closed); a
signed step lacks its signature; a correction was not reviewed (its
``correction.after_signing`` exception is not resolved); an incident is open; a quality
process about the batch is still running. A release then needs a QA signature
(*Released*) from someone who neither performed nor witnessed any step of the batch
(executor ≠ releaser). A rejection (*Rejected*) takes the same signature rule but no
clean record — an unfit record is the reason to reject.

The decision is an append-only ``batch_disposition`` row bound into the audit trail; the
batch state becomes ``released`` or ``rejected`` and analytics trains only on released
batches.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .. import audit, outbox
from ..errors import Conflict, InvalidInput
from ..idempotency import Outcome, remember, replay
from ..models import Batch, BatchDisposition, BatchException, Correction, Incident, Signature, Step, utcnow
from ..permissions import Forbidden
from ..runtime import Runtime
from ..users import Person
from ..vocabulary import BatchState, ExceptionCategory, ExceptionStatus, StepKind
from ..workflow_store import canonical, sha256
from . import integrity

MAX_COMMENT = 2000
RELEASED_MEANING = "Released"
REJECTED_MEANING = "Rejected"


def blocking_in(s: Session, batch: Batch) -> list[dict[str, Any]]:
    """Everything that stands between this batch and its release (empty: it may go)."""
    out: list[dict[str, Any]] = []
    if batch.state != BatchState.COMPLETE:
        out.append({"kind": "state", "state": batch.state, "message": f"the batch is {batch.state}, not complete"})
    exceptions = list(s.scalars(select(BatchException).where(BatchException.batch_id == batch.id)))
    for exc in exceptions:
        if exc.blocks_release and not ExceptionStatus(exc.status).resolved:
            out.append(
                {
                    "kind": "exception",
                    "id": exc.id,
                    "category": exc.category,
                    "severity": exc.severity,
                    "status": exc.status,
                    "step_seq": exc.step_seq,
                    "message": exc.message,
                }
            )
    out += _unsigned_steps(s, batch)
    reviewed = {
        e.step_seq
        for e in exceptions
        if e.category == ExceptionCategory.CORRECTION_AFTER_SIGNING and ExceptionStatus(e.status).resolved
    }
    for c in s.scalars(select(Correction).where(Correction.batch_id == batch.id).order_by(Correction.id)):
        if c.step_seq not in reviewed:
            out.append(
                {
                    "kind": "correction",
                    "id": c.id,
                    "step_seq": c.step_seq,
                    "field": c.field,
                    "message": f"correction of {c.field} in step {c.step_seq} is not reviewed",
                }
            )
    for inc in s.scalars(select(Incident).where(Incident.batch_id == batch.id, Incident.resolved_at.is_(None))):
        out.append({"kind": "incident", "id": inc.id, "message": inc.message[:500]})
    out += _running_processes(s, batch)
    out += integrity.problems(s, batch)
    return out


def _unsigned_steps(s: Session, batch: Batch) -> list[dict[str, Any]]:
    """Operator steps with a form are signed when recorded; one without its performer's
    signature was written around the step path."""
    signed = set(
        s.scalars(select(Signature.step_seq).where(Signature.batch_id == batch.id, Signature.role == "performer"))
    )
    stmt = select(Step).where(Step.batch_id == batch.id, Step.kind == StepKind.USER_TASK, Step.form_id.is_not(None))
    return [
        {"kind": "signature", "step_seq": st.seq, "bpmn_id": st.bpmn_id, "message": f"step {st.seq} is not signed"}
        for st in s.scalars(stmt.order_by(Step.seq))
        if st.seq not in signed
    ]


def _running_processes(s: Session, batch: Batch) -> list[dict[str, Any]]:
    """Quality processes about this batch still running (other than its release flow)."""
    from . import processes

    return processes.running_about(s, batch)


def blocking(rt: Runtime, batch_id: str) -> dict[str, Any]:
    from ..batches.unit_of_work import find_batch

    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        items = blocking_in(s, batch)
        return {"batch_id": batch.batch_id, "state": batch.state, "releasable": not items, "blocking": items}


def performers(s: Session, batch: Batch) -> set[str]:
    """Everyone who performed or witnessed a step of the batch."""
    people = set(s.scalars(select(Step.user).where(Step.batch_id == batch.id)))
    people |= set(
        s.scalars(
            select(Signature.username).where(
                Signature.batch_id == batch.id, or_(Signature.role == "performer", Signature.role == "witness")
            )
        )
    )
    return people


def _comment(text: Any, *, required: bool) -> str:
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InvalidInput("comment is a text", code="comment_invalid")
    if required and not text.strip():
        raise InvalidInput("a rejection needs its reason in the comment", code="comment_required")
    if len(text) > MAX_COMMENT:
        raise InvalidInput(f"comment is longer than {MAX_COMMENT} characters", code="comment_invalid")
    return text.strip()


def release_batch(
    rt: Runtime, batch_id: str, *, signer: Person, comment: Any = "", idempotency_key: str | None = None
) -> Outcome:
    return _decide(rt, batch_id, BatchState.RELEASED, signer, _comment(comment, required=False), idempotency_key)


def reject_batch(
    rt: Runtime, batch_id: str, *, signer: Person, comment: Any = "", idempotency_key: str | None = None
) -> Outcome:
    return _decide(rt, batch_id, BatchState.REJECTED, signer, _comment(comment, required=True), idempotency_key)


def _decide(rt: Runtime, batch_id: str, decision: BatchState, signer: Person, comment: str, key: str | None) -> Outcome:
    from ..batches.unit_of_work import find_batch

    if "qa" not in signer.roles:
        raise Forbidden("only QA releases or rejects a batch", code="forbidden", details={"roles": ["qa"]})
    meaning = RELEASED_MEANING if decision == BatchState.RELEASED else REJECTED_MEANING
    request = {"batch": batch_id, "decision": decision.value, "comment": comment}
    scope = f"release:{batch_id}|user:{signer.username}"
    with rt.transaction() as s:
        if key:
            stored = replay(s, scope, key, request)
            if stored is not None:
                return stored
        batch = find_batch(s, batch_id, lock=True)
        if batch.state in (BatchState.RELEASED, BatchState.REJECTED):
            raise Conflict(
                f"batch {batch_id} is already {batch.state}",
                code=f"batch_{batch.state}",
                details={"state": batch.state},
            )
        done = performers(s, batch)
        if signer.username in done:
            raise Forbidden(
                f"{signer.username} performed or witnessed steps of {batch_id}: someone else must decide its release",
                code="segregation_of_duties",
            )
        if decision == BatchState.RELEASED:
            items = blocking_in(s, batch)
            if items:
                raise Conflict(
                    f"batch {batch_id} cannot be released: {len(items)} item(s) open",
                    code="release_blocked",
                    details={"blocking": items},
                )
        elif batch.state not in (BatchState.COMPLETE, BatchState.ABORTED):
            raise Conflict(
                f"batch {batch_id} is {batch.state}: only a complete or aborted batch is rejected",
                code=f"batch_{batch.state}",
                details={"state": batch.state},
            )
        row = _record(rt, s, batch, decision, comment, signer, meaning)
        from . import processes

        processes.finish_release_flows(rt, s, batch, user=signer.username)
        body = {"batch_id": batch.batch_id, "state": batch.state, "disposition": describe(row)}
        outcome = Outcome(200, body)
        if key:
            remember(s, scope, key, request, outcome)
        return outcome


def _record(
    rt: Runtime, s: Session, batch: Batch, decision: BatchState, comment: str, signer: Person, meaning: str
) -> BatchDisposition:
    values = list(s.scalars(select(Step.values_hash).where(Step.batch_id == batch.id).order_by(Step.seq)))
    signed = {
        "batch": batch.batch_id,
        "recipe_hash": batch.recipe_hash,
        "record": sha256(canonical(values)),
        "steps": len(values),
        "decision": decision.value,
        "comment": comment,
        "meaning": meaning,
    }
    row = BatchDisposition(
        batch_id=batch.id,
        decision=decision.value,
        comment=comment,
        username=signer.username,
        printed_name=signer.printed_name,
        meaning=meaning,
        signed_at=utcnow(),
        content_hash=sha256(canonical(signed)),
    )
    s.add(row)
    old = batch.state
    batch.state = decision.value
    batch.reviewed_at = row.signed_at
    audit.record(
        s,
        user=signer.username,
        action=f"batch.{decision.value}",
        object_type="batch",
        object_id=batch.batch_id,
        field="state",
        old=old,
        new={"state": decision.value, "printed_name": signer.printed_name, "meaning": meaning},
        reason=comment or None,
        binds=[row],
    )
    outbox.emit(
        s,
        rt.settings,
        f"batch.{decision.value}",
        batch.batch_id,
        {"batch_id": batch.batch_id, "state": decision.value, "by": signer.username, "comment": comment},
    )
    return row


def describe(row: BatchDisposition) -> dict[str, Any]:
    return {
        "decision": row.decision,
        "comment": row.comment,
        "username": row.username,
        "printed_name": row.printed_name,
        "meaning": row.meaning,
        "signed_at": row.signed_at.isoformat(),
        "content_hash": row.content_hash,
    }


def disposition_of(s: Session, batch: Batch) -> dict[str, Any] | None:
    row = s.scalars(
        select(BatchDisposition).where(BatchDisposition.batch_id == batch.id).order_by(BatchDisposition.id.desc())
    ).first()
    return describe(row) if row else None


def record_imported_release(s: Session, batch: Batch, *, by: str, at: Any) -> BatchDisposition:
    """The release of a batch record imported from before Batchline (the demo's earlier
    batches): recorded as such — meaning *Released*, comment saying it was imported, the
    importing user — never as a fresh QA signature, and only for a complete batch."""
    if batch.state != BatchState.COMPLETE:
        raise Conflict(f"batch {batch.batch_id} is {batch.state}, not complete", code=f"batch_{batch.state}")
    comment = "released before import: the release came with the imported record"
    s.flush()
    values = list(s.scalars(select(Step.values_hash).where(Step.batch_id == batch.id).order_by(Step.seq)))
    row = BatchDisposition(
        batch_id=batch.id,
        decision=BatchState.RELEASED.value,
        comment=comment,
        username=by,
        printed_name=f"{by} (import)",
        meaning=RELEASED_MEANING,
        signed_at=at,
        content_hash=sha256(
            canonical(
                {
                    "batch": batch.batch_id,
                    "record": sha256(canonical(values)),
                    "decision": "released",
                    "comment": comment,
                }
            )
        ),
    )
    s.add(row)
    batch.state = BatchState.RELEASED.value
    batch.reviewed_at = at
    audit.record(
        s,
        user=by,
        action="batch.released",
        object_type="batch",
        object_id=batch.batch_id,
        field="state",
        old=BatchState.COMPLETE,
        new={"state": "released", "imported": True},
        reason=comment,
        binds=[row],
    )
    return row
