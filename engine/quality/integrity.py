"""An exception row cannot be waved through behind Batchline's back.

``batch_exception`` is the one quality table that changes (its status moves on), so it is
not append-only. What decides a release must still be tamper-evident: when an exception is
raised, the audit entry that records it (sealed in the keyed chain) carries a fingerprint
of everything that never changes afterwards — category, severity, what it needs, value,
limits, message; and its status is only ever what its append-only, chain-bound
dispositions say. Someone with database access who sets ``blocks_release`` to false,
lowers ``signatures_required`` or writes ``status = 'accepted'`` is caught twice: the
release check lists a ``data_integrity`` item (no release) and ``batchline audit verify``
reports the row.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditEvent, Batch, BatchException, ExceptionDisposition
from ..vocabulary import Decision, ExceptionStatus
from ..workflow_store import canonical, sha256

FIXED = (
    "id",
    "batch_id",
    "step_seq",
    "category",
    "severity",
    "parameter",
    "message",
    "value",
    "limits",
    "raised_by",
    "rule_set_version",
    "signatures_required",
    "blocks_release",
)


def fingerprint(exc: BatchException) -> str:
    """SHA-256 of what never changes once an exception is raised (``opens_deviation`` is
    left out: an escalation turns it on)."""
    return sha256(canonical({k: getattr(exc, k) for k in FIXED}))


def expected_status(exc: BatchException, dispositions: list[ExceptionDisposition]) -> str:
    """The status the append-only dispositions give the exception."""
    decisions = [d.decision for d in dispositions]
    if Decision.CLOSE in decisions or Decision.AUTO_CLOSE in decisions:
        return ExceptionStatus.CLOSED
    if Decision.ESCALATE in decisions:
        return ExceptionStatus.ESCALATED
    accepted = {d.username for d in dispositions if d.decision == Decision.ACCEPT}
    return ExceptionStatus.ACCEPTED if len(accepted) >= exc.signatures_required else ExceptionStatus.OPEN


def problems(s: Session, batch: Batch | None = None) -> list[dict[str, Any]]:
    """Exceptions whose row no longer matches the entry that raised it, or whose status is
    not what their dispositions say."""
    stmt = select(BatchException)
    if batch is not None:
        stmt = stmt.where(BatchException.batch_id == batch.id)
    rows = list(s.scalars(stmt.order_by(BatchException.id)))
    if not rows:
        return []
    raised: dict[int, str] = {}
    entries = select(AuditEvent.new).where(AuditEvent.action == "exception.raised")
    if batch is not None:
        entries = entries.where(AuditEvent.object_id == batch.batch_id)
    for (new,) in s.execute(entries):
        try:
            data = json.loads(new) if new else {}
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("exception"), int) and "fingerprint" in data:
            raised[data["exception"]] = data["fingerprint"]
    by_exc: dict[int, list[ExceptionDisposition]] = {}
    ids = [e.id for e in rows]
    for d in s.scalars(select(ExceptionDisposition).where(ExceptionDisposition.exception_id.in_(ids))):
        by_exc.setdefault(d.exception_id, []).append(d)
    # exceptions raised before fingerprints existed (an upgraded database) have none
    first = min(raised) if raised else None
    out = []
    for exc in rows:
        mine = sorted(by_exc.get(exc.id, []), key=lambda d: d.id)
        recorded = raised.get(exc.id)
        if recorded is None:
            if first is not None and exc.id > first:
                out.append(_problem(exc, "raised by no audit entry (inserted outside Batchline)"))
            continue
        if recorded != fingerprint(exc):
            out.append(_problem(exc, "changed since it was raised (does not match its audit entry)"))
        elif exc.status != expected_status(exc, mine):
            out.append(_problem(exc, f"status {exc.status} is not what its dispositions say"))
    return out


def _problem(exc: BatchException, what: str) -> dict[str, Any]:
    return {"kind": "data_integrity", "id": exc.id, "message": f"exception {exc.id}: {what}"}


def rule_set_intact(row: Any) -> bool:
    """The stored rules still hash to the content hash they were imported (and approved) with."""
    return sha256(canonical(row.rules)) == row.content_hash


def rule_set_problems(s: Session) -> list[str]:
    """Approved rule sets whose rules or hash differ from what the approval sealed in the trail."""
    from ..models import QualityRuleSet

    sealed: dict[str, str] = {}
    for object_id, new in s.execute(
        select(AuditEvent.object_id, AuditEvent.new).where(AuditEvent.action == "rules.approved")
    ):
        try:
            sealed[object_id] = json.loads(new).get("content_hash")
        except (ValueError, AttributeError):
            continue
    out = []
    for row in s.scalars(select(QualityRuleSet).where(QualityRuleSet.status.in_(("approved", "superseded")))):
        if not rule_set_intact(row) or sealed.get(str(row.version)) != row.content_hash:
            out.append(f"rule set {row.version}: does not match what its approval sealed (changed in the database)")
    return out


def disposition_problems(s: Session) -> list[str]:
    """Batches said to be released or rejected without the signed decision that says so."""
    from ..models import BatchDisposition
    from ..vocabulary import BatchState

    decided = {
        (batch_pk, decision)
        for batch_pk, decision in s.execute(select(BatchDisposition.batch_id, BatchDisposition.decision))
    }
    stmt = select(Batch.id, Batch.batch_id, Batch.state).where(
        Batch.state.in_((BatchState.RELEASED, BatchState.REJECTED))
    )
    return [
        f"batch {batch_id}: state {state} without a signed {state} decision (changed in the database)"
        for pk, batch_id, state in s.execute(stmt)
        if (pk, state) not in decided
    ]
