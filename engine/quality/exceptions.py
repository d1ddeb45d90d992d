"""Exceptions for review by exception: one model and one way in for every source.

Whatever raises an exception — a limit breach on the step path, an out-of-trend finding
scored after commit, a step that ran late, an operator's recorded event, a supervisor's
override, a correction after signing, an incident, an equipment alarm — calls
``raise_in`` inside its own transaction. The rule set in force then (``rules.in_force``)
fixes the severity, the signatures a disposition needs, whether the exception blocks
release, whether the QMS is asked for a deviation and whether the system closes it by
itself; the exception keeps that rule set's version. Everything is audited and evented in
the same transaction, so an exception is never raised without its trail, nor lost.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, outbox
from ..db import insert_once
from ..errors import InvalidInput
from ..models import Batch, BatchException, ExceptionDisposition, RecipeVersion, Step, utcnow
from ..runtime import Runtime
from ..vocabulary import Decision, ExceptionCategory, ExceptionSource, ExceptionStatus, Severity, exception_title
from ..workflow_store import canonical, sha256
from . import integrity, rules

SYSTEM = "system"
#: what the system's auto-closure means (it is not a person's signature)
AUTO_MEANING = "Closed by rule"


def raise_in(
    rt: Runtime,
    s: Session,
    batch: Batch,
    *,
    category: str,
    message: str,
    raised_by: str = SYSTEM,
    source: str | None = None,
    step_seq: int | None = None,
    parameter: str | None = None,
    value: Any = None,
    limits: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    critical: bool = False,
    finding_key: str | None = None,
) -> BatchException:
    """Raise one exception in the caller's transaction, under the rule set in force.

    With ``finding_key`` (out-of-trend findings: what makes a finding the same one) the
    database decides whether it is new: ``INSERT … ON CONFLICT DO NOTHING`` on the unique
    key, so a second scoring job, even one running at the same moment in another worker,
    raises nothing - it gets the exception already raised back, with no new trail."""
    try:
        cat = ExceptionCategory(category)
    except ValueError:
        raise InvalidInput(f"unknown exception category {str(category)[:60]!r}", code="category_invalid") from None
    ruleset = rules.in_force(s)
    outcome = ruleset.rule(cat).outcome(critical)
    fields = {
        "batch_id": batch.id,
        "step_seq": step_seq,
        "source": source or _source_of(cat),
        "category": cat.value,
        "severity": outcome["severity"],
        "parameter": parameter,
        "message": message,
        "details": {**(details or {}), "critical": bool(critical)},
        "value": value,
        "limits": limits,
        "raised_by": raised_by,
        "status": ExceptionStatus.OPEN,
        "rule_set_version": ruleset.version,
        "signatures_required": outcome["signatures_required"],
        "blocks_release": outcome["blocks_release"],
        "opens_deviation": outcome["opens_deviation"],
        "created_at": utcnow(),
    }
    if finding_key is not None:
        fields["details"]["finding_key"] = finding_key
        key = sha256(finding_key)
        new_id = insert_once(s, BatchException, {**fields, "finding_key": key}, ["finding_key"])
        if new_id is None:  # raised already: a no-op
            return s.scalars(select(BatchException).where(BatchException.finding_key == key)).one()
        exc = s.get(BatchException, new_id)
        assert exc is not None
    else:
        exc = BatchException(**fields)
        s.add(exc)
        s.flush()
    audit.record(
        s,
        user=raised_by,
        action="exception.raised",
        object_type="batch",
        object_id=batch.batch_id,
        field=parameter or f"exception {exc.id}",
        new={
            "exception": exc.id,
            "category": exc.category,
            "severity": exc.severity,
            "message": message,
            "rule_set_version": ruleset.version,
            # what never changes afterwards, sealed in the chain (engine.quality.integrity)
            "fingerprint": integrity.fingerprint(exc),
        },
    )
    outbox.emit(
        s,
        rt.settings,
        "batch.exception.raised",
        batch.batch_id,
        {
            "batch_id": batch.batch_id,
            "exception": exc.id,
            "category": exc.category,
            "source": exc.source,
            "severity": exc.severity,
            "parameter": parameter,
            "message": message,
            "critical": bool(critical),
        },
    )
    if exc.opens_deviation:
        request_deviation(rt, s, batch, exc)
    if outcome["auto_close"]:
        _auto_close(s, batch, exc)
    return exc


def _source_of(category: ExceptionCategory) -> str:
    prefix = category.value.split(".", 1)[0]
    return {
        "limit": ExceptionSource.LIMIT,
        "oot": ExceptionSource.TREND,
        "step": ExceptionSource.TIMER,
        "event": ExceptionSource.OPERATOR,
        "override": ExceptionSource.SUPERVISOR,
        "correction": ExceptionSource.CORRECTION,
        "incident": ExceptionSource.INCIDENT,
        "equipment": ExceptionSource.EQUIPMENT,
    }.get(prefix, SYSTEM)


def _auto_close(s: Session, batch: Batch, exc: BatchException) -> None:
    """The rule says this exception needs no person: closed at once, by ``system``, under
    the rule set version — visible in the record and the trail like any disposition."""
    justification = f"closed by rule: category {exc.category} ({exc.severity}) is auto-closable under " + (
        f"rule set version {exc.rule_set_version}" if exc.rule_set_version else "the built-in rules"
    )
    row = ExceptionDisposition(
        exception_id=exc.id,
        decision=Decision.AUTO_CLOSE,
        justification=justification,
        username=SYSTEM,
        printed_name="Batchline (rule)",
        meaning=AUTO_MEANING,
        signed_at=utcnow(),
        content_hash=disposition_hash(batch, exc, Decision.AUTO_CLOSE, justification, AUTO_MEANING),
        rule_set_version=exc.rule_set_version,
    )
    s.add(row)
    exc.status = ExceptionStatus.CLOSED
    exc.closed_at = row.signed_at
    audit.record(
        s,
        user=SYSTEM,
        action="exception.auto_closed",
        object_type="batch",
        object_id=batch.batch_id,
        field=f"exception {exc.id}",
        old=ExceptionStatus.OPEN,
        new={"status": ExceptionStatus.CLOSED, "rule_set_version": exc.rule_set_version},
        reason=justification,
        binds=[row],
    )


def disposition_hash(batch: Batch, exc: BatchException, decision: str, justification: str, meaning: str) -> str:
    """SHA-256 of exactly what a disposition signs: the exception as raised and the decision."""
    return sha256(
        canonical(
            {
                "batch": batch.batch_id,
                "exception": exc.id,
                "category": exc.category,
                "severity": exc.severity,
                "message": exc.message,
                "value": exc.value,
                "limits": exc.limits,
                "decision": decision,
                "justification": justification,
                "meaning": meaning,
            }
        )
    )


def request_deviation(rt: Runtime, s: Session, batch: Batch, exc: BatchException) -> None:
    """Ask the QMS to open a deviation for this exception (``qms.deviation.requested``,
    delivered by the outbox to the subscribed QMS; its answer comes to /api/qms/events)."""
    rv = s.get(RecipeVersion, batch.recipe_version_id)
    step = None
    if exc.step_seq is not None:
        row = s.scalars(select(Step).where(Step.batch_id == batch.id, Step.seq == exc.step_seq)).first()
        if row is not None:
            step = {"seq": row.seq, "bpmn_id": row.bpmn_id, "name": row.task_name}
    outbox.emit(
        s,
        rt.settings,
        "qms.deviation.requested",
        batch.batch_id,
        {
            "batch_id": batch.batch_id,
            "product": rv.name if rv else None,
            "recipe": {"key": rv.recipe, "version": rv.version, "content_hash": rv.content_hash} if rv else None,
            "step": step,
            "exception": {
                "id": exc.id,
                "category": exc.category,
                "severity": exc.severity,
                "message": exc.message,
                "parameter": exc.parameter,
                "status": exc.status,
            },
            "value": exc.value,
            "limits": exc.limits,
            "severity": exc.severity,
            "links": {"batch": f"/batches/{batch.batch_id}", "exception": f"/api/batches/{batch.batch_id}/exceptions"},
        },
    )


def raise_exception(rt: Runtime, batch_id: str, **fields: Any) -> dict[str, Any]:
    """``raise_in`` in a transaction of its own (jobs, analytics scoring, the API)."""
    from ..batches.unit_of_work import find_batch

    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        exc = raise_in(rt, s, batch, **fields)
        return describe(exc, list(dispositions_of(s, [exc.id]).get(exc.id, [])), None)


# --- reading ---------------------------------------------------------------------------


def dispositions_of(s: Session, ids: list[int]) -> dict[int, list[ExceptionDisposition]]:
    out: dict[int, list[ExceptionDisposition]] = {}
    if ids:
        stmt = select(ExceptionDisposition).where(ExceptionDisposition.exception_id.in_(ids))
        for d in s.scalars(stmt.order_by(ExceptionDisposition.id)):
            out.setdefault(d.exception_id, []).append(d)
    return out


def deviations_of(s: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The QMS's deviation per exception (number, status, CAPA), where the QMS answered."""
    try:
        from ..qms import deviations
    except ImportError:  # an install without the QMS link
        return {}
    return deviations.for_exceptions(s, ids)


def describe_disposition(d: ExceptionDisposition) -> dict[str, Any]:
    return {
        "decision": d.decision,
        "justification": d.justification,
        "username": d.username,
        "printed_name": d.printed_name,
        "meaning": d.meaning,
        "signed_at": d.signed_at.isoformat(),
        "content_hash": d.content_hash,
        "rule_set_version": d.rule_set_version,
    }


def describe(
    exc: BatchException, dispositions: list[ExceptionDisposition], deviation: dict[str, Any] | None, batch_id: str = ""
) -> dict[str, Any]:
    accepts = {d.username for d in dispositions if d.decision == Decision.ACCEPT}
    return {
        "id": exc.id,
        "batch_id": batch_id,
        "category": exc.category,
        "title": exception_title(exc.category, exc.details),
        "source": exc.source,
        "severity": exc.severity,
        "status": exc.status,
        "step_seq": exc.step_seq,
        "parameter": exc.parameter,
        "message": exc.message,
        "value": exc.value,
        "limits": exc.limits,
        "details": exc.details,
        "raised_by": exc.raised_by,
        "created_at": exc.created_at.isoformat(),
        "closed_at": exc.closed_at.isoformat() if exc.closed_at else None,
        "rule_set_version": exc.rule_set_version,
        "signatures_required": exc.signatures_required,
        "signatures_given": len(accepts),
        "blocks_release": exc.blocks_release,
        "opens_deviation": exc.opens_deviation,
        "dispositions": [describe_disposition(d) for d in dispositions],
        "deviation": deviation,
    }


SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.MAJOR: 1, Severity.MINOR: 2}


def list_in(
    s: Session, batch: Batch, *, status: str | None = None, severity: str | None = None
) -> list[dict[str, Any]]:
    stmt = select(BatchException).where(BatchException.batch_id == batch.id)
    if status:
        stmt = stmt.where(BatchException.status == status)
    if severity:
        stmt = stmt.where(BatchException.severity == severity)
    rows = list(s.scalars(stmt.order_by(BatchException.id)))
    ids = [e.id for e in rows]
    disp, devs = dispositions_of(s, ids), deviations_of(s, ids)
    return [describe(e, disp.get(e.id, []), devs.get(e.id), batch.batch_id) for e in rows]


def list_for_batch(
    rt: Runtime, batch_id: str, *, status: str | None = None, severity: str | None = None
) -> list[dict[str, Any]]:
    """A batch's exceptions, oldest first, with dispositions and deviation."""
    from ..batches.unit_of_work import find_batch

    if status is not None and status not in tuple(ExceptionStatus):
        raise InvalidInput("status is one of open, accepted, escalated, closed", code="status_invalid")
    if severity is not None and severity not in tuple(Severity):
        raise InvalidInput("severity is one of minor, major, critical", code="severity_invalid")
    with rt.transaction() as s:
        return list_in(s, find_batch(s, batch_id), status=status, severity=severity)


def close_by_qms(s: Session, rt: Runtime, exc: BatchException, reference: str | None, **kw: Any) -> None:
    """The QMS closed the deviation of this exception (``dispositions.close_by_qms``)."""
    from .dispositions import close_by_qms as close

    close(s, rt, exc, reference, **kw)
