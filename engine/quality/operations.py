"""The built-in service operations a quality process's BPMN uses to act on its subject:
``batch.release``, ``batch.reject``, ``exception.disposition``, ``qms.open_deviation``,
``recipe.approve``, ``recipe.reject``.

They are connectors the engine registers itself (``register``, called by the runtime
after the installed connectors, so no plug-in can take their names), run by the job
executor like any service task. A flow can *ask*, never override: each operation calls
the same functions as the API (``release.release_batch``, ``dispositions.disposition``…)
so every release rule applies whatever the BPMN says — what blocks a release, executor ≠
releaser, QA only. The person who decides is the one who signed the flow's preceding user
task with the matching meaning (a *Released* signature for a release): the operation
never signs for anyone who did not sign.

A refusal by the rules is a BPMN error (``release_blocked``, ``reject_refused``,
``disposition_refused``) an error boundary event on the task can catch; uncaught, the
job fails with the real reason and ends as an incident.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..connectors import Completed, ConnectorError, ServiceCall
from ..errors import BatchlineError
from ..models import Batch, BatchException, Signature, User
from ..runtime import Runtime
from ..users import Person
from ..vocabulary import Decision, ExceptionStatus
from . import processes

MAX_REASON = 1000


class Refused(ConnectorError):
    """The engine's rules refuse what the flow asked: a BPMN error, never retried."""

    def __init__(self, message: str, code: str):
        super().__init__(message[:MAX_REASON], retry=False, bpmn_error=code)


def _reason(exc: BatchlineError) -> str:
    items = exc.details.get("blocking") if isinstance(exc.details, dict) else None
    text = f"{exc.code}: {exc.message}"
    if items:
        text += " — " + "; ".join(str(i.get("message", i.get("kind"))) for i in items)
    return text


def _signer(s: Session, process: Batch, meanings: tuple[str, ...], refusal: str) -> Person:
    """Who signed the flow's most recent user task with one of ``meanings``."""
    sig = s.scalars(
        select(Signature)
        .where(Signature.batch_id == process.id, Signature.role == "performer", Signature.meaning.in_(meanings))
        .order_by(Signature.id.desc())
    ).first()
    if sig is None:
        raise Refused(
            f"{process.batch_id}: no user task of the flow was signed as {' or '.join(meanings)}; "
            "nobody decided, so nothing is done",
            refusal,
        )
    account = s.scalars(select(User).where(User.username == sig.username)).first()
    if account is None or not account.active:
        raise Refused(f"{sig.username}, who signed, is no longer an active user", refusal)
    return Person(account.username, account.printed_name, tuple(account.roles or ()), account.kind)


def _subject(s: Session, call: ServiceCall, subject_type: str, refusal: str) -> Batch:
    try:
        process = processes.process_of(s, call.batch_id)
    except BatchlineError as exc:
        raise Refused(_reason(exc), refusal) from exc
    if process.subject_type != subject_type:
        raise Refused(
            f"{call.operator} acts on a {subject_type}; {process.batch_id} is about a {process.subject_type}", refusal
        )
    asked = call.params.get(subject_type)
    if asked is not None and str(asked) != str(process.subject_id):
        raise Refused(
            f"{process.batch_id} is about {subject_type} {process.subject_id}: it cannot act on {asked!r}", refusal
        )
    return process


def _text(value: Any, limit: int = 2000) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _key(call: ServiceCall) -> str:
    """The idempotency key of one service task: a job retried after the decision was
    stored gets the stored answer, never a second decision."""
    return f"qp-{call.task_id}"


def _decide(rt: Runtime, call: ServiceCall, meaning: str, refusal: str, fn: Callable[..., Any]) -> Completed:
    with rt.transaction() as s:
        process = _subject(s, call, "batch", refusal)
        subject, process_id = str(process.subject_id), process.batch_id
        signer = _signer(s, process, (meaning,), refusal)
    comment = _text(call.params.get("comment"))
    what = "released" if meaning == "Released" else "rejected"
    note = f"{what} through quality process {process_id}" + (f": {comment}" if comment else "")
    try:
        with processes.acting(process_id):
            outcome = fn(rt, subject, signer=signer, comment=note, idempotency_key=_key(call))
    except BatchlineError as exc:
        raise Refused(_reason(exc), refusal) from exc
    return Completed({"batch_state": outcome.body["state"], "decided_by": signer.username})


def release(rt: Runtime, call: ServiceCall) -> Completed:
    """``batch.release``: release the subject batch, signed by the flow's *Released* signer."""
    from .release import release_batch

    return _decide(rt, call, "Released", "release_blocked", release_batch)


def reject(rt: Runtime, call: ServiceCall) -> Completed:
    """``batch.reject`` (parameter ``comment``: the reason), by the *Rejected* signer."""
    from .release import reject_batch

    return _decide(rt, call, "Rejected", "reject_refused", reject_batch)


def disposition(rt: Runtime, call: ServiceCall) -> Completed:
    """``exception.disposition`` on the subject exception. Parameters ``decision``
    (accept | escalate | close), ``justification`` and for close ``reference`` (CAPA).
    accept / escalate are QA's e-signed dispositions (one or two signatures, per the
    rules); close ends an *escalated* exception whose deviation the flow closed."""
    from . import dispositions

    refusal = "disposition_refused"
    decision = call.params.get("decision")
    justification = _text(call.params.get("justification"))
    with rt.transaction() as s:
        process = _subject(s, call, "exception", refusal)
        exc = s.get(BatchException, int(str(process.subject_id)))
        if exc is None:
            raise Refused(f"exception {process.subject_id} no longer exists", refusal)
        batch = s.get(Batch, exc.batch_id)
        assert batch is not None
        signer = _signer(s, process, dispositions.MEANINGS, refusal)
        if decision == Decision.CLOSE:
            if "qa" not in signer.roles:
                raise Refused(f"{signer.username} is not QA: only QA closes a deviation", refusal)
            if exc.status == ExceptionStatus.CLOSED:  # the QMS closed it first: nothing left to do
                return Completed({"exception_status": exc.status, "decided_by": signer.username})
            if exc.status != ExceptionStatus.ESCALATED:
                raise Refused(f"exception {exc.id} is {exc.status}: a flow closes an escalated exception only", refusal)
            dispositions.close(
                rt,
                s,
                exc,
                user=signer.username,
                reason=justification or f"deviation closed by quality process {process.batch_id}",
                reference=_text(call.params.get("reference"), 200) or None,
            )
            return Completed({"exception_status": exc.status, "decided_by": signer.username})
        batch_id, meaning = batch.batch_id, _meaning_of(s, process, signer.username)
    try:
        outcome = dispositions.disposition(
            rt,
            batch_id,
            int(str(process.subject_id)),
            str(decision),
            justification,
            signer=signer,
            meaning=meaning,
            idempotency_key=_key(call),
        )
    except BatchlineError as exc_:
        raise Refused(_reason(exc_), refusal) from exc_
    return Completed({"exception_status": outcome.body["status"], "decided_by": signer.username})


def _meaning_of(s: Session, process: Batch, username: str) -> str:
    sig = s.scalars(
        select(Signature.meaning)
        .where(Signature.batch_id == process.id, Signature.username == username, Signature.role == "performer")
        .order_by(Signature.id.desc())
    ).first()
    return sig or "Reviewed"


def open_deviation(rt: Runtime, call: ServiceCall) -> Completed:
    """``qms.open_deviation``: ask the QMS for a deviation about the subject exception,
    once (an escalation or the rule set may have asked already)."""
    from . import exceptions as qx

    with rt.transaction() as s:
        process = _subject(s, call, "exception", "deviation_refused")
        exc = s.get(BatchException, int(str(process.subject_id)))
        if exc is None:
            raise Refused(f"exception {process.subject_id} no longer exists", "deviation_refused")
        if exc.opens_deviation:
            return Completed({"deviation_requested": False})
        batch = s.get(Batch, exc.batch_id)
        assert batch is not None
        exc.opens_deviation = True
        qx.request_deviation(rt, s, batch, exc)
        audit.record(
            s,
            user="system",
            action="exception.deviation_requested",
            object_type="batch",
            object_id=batch.batch_id,
            field=f"exception {exc.id}",
            new={"by": process.batch_id},
        )
        return Completed({"deviation_requested": True})


def _people(s: Session, process: Batch, meaning: str, refusal: str) -> list[Person]:
    """Everyone who signed one of the flow's user tasks as ``meaning``, in signing order
    (one person signing twice is listed twice: the rules below refuse it)."""
    out = []
    for sig in s.scalars(
        select(Signature)
        .where(Signature.batch_id == process.id, Signature.role == "performer", Signature.meaning == meaning)
        .order_by(Signature.id)
    ):
        account = s.scalars(select(User).where(User.username == sig.username)).first()
        if account is None or not account.active:
            raise Refused(f"{sig.username}, who signed as {meaning}, is no longer an active user", refusal)
        out.append(Person(account.username, account.printed_name, tuple(account.roles or ()), account.kind))
    return out


def _count(value: Any, refusal: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise Refused(f"approvers must be a whole number of people, not {value!r}", refusal)
    n = int(str(value))
    if not 1 <= n <= 10:
        raise Refused(f"approvers must be between 1 and 10, not {n}", refusal)
    return n


def recipe_approve(rt: Runtime, call: ServiceCall) -> Completed:
    """``recipe.approve``: approve the subject recipe version with the flow's signatures —
    the *Reviewed* signer(s) and at least ``approvers`` (parameter, default 1) *Approved*
    signers; the engine refuses unless author ≠ reviewer ≠ approvers, all QA, each person
    once (``recipe_approval_refused``). Parameter ``effective_from``: an ISO date (default:
    now)."""
    from .. import recipe_lifecycle as lifecycle

    refusal = "recipe_approval_refused"
    with rt.transaction() as s:
        process = _subject(s, call, "recipe_version", refusal)
        rv = lifecycle.version_of_process(s, process)
        wanted = _count(call.params.get("approvers", 1), refusal)
        reviewers = _people(s, process, "Reviewed", refusal)
        approvers = _people(s, process, lifecycle.APPROVED_MEANING, refusal)
        try:
            if not reviewers:
                raise Refused(f"{process.batch_id}: nobody signed the review (Reviewed)", refusal)
            if len({p.username for p in approvers}) < wanted:
                raise Refused(
                    f"{process.batch_id}: {wanted} approver(s) must sign (Approved); "
                    f"{len({p.username for p in approvers})} different people did",
                    refusal,
                )
            signers = reviewers + approvers
            lifecycle.record_approval(
                s,
                rv,
                signers=signers,
                meanings=["Reviewed"] * len(reviewers) + [lifecycle.APPROVED_MEANING] * len(approvers),
                reason=_text(call.params.get("comment")) or f"approved through quality process {process.batch_id}",
                effective_from=call.params.get("effective_from"),
                via=process.batch_id,
            )
        except BatchlineError as exc:
            raise Refused(_reason(exc), refusal) from exc
        return Completed(
            {"recipe_status": rv.status, "approved_by": list(rv.approved_by or []), "content_hash": rv.content_hash}
        )


def recipe_reject(rt: Runtime, call: ServiceCall) -> Completed:
    """``recipe.reject`` (parameter ``comment``: what must change): the subject recipe
    version goes back to draft, in the name of the flow's *Rejected* signer."""
    from .. import recipe_lifecycle as lifecycle

    refusal = "recipe_reject_refused"
    with rt.transaction() as s:
        process = _subject(s, call, "recipe_version", refusal)
        rv = lifecycle.version_of_process(s, process)
        signer = _signer(s, process, ("Rejected",), refusal)
        comment = _text(call.params.get("comment")) or "rejected"
        try:
            lifecycle.reject(s, rv, signer=signer, reason=comment, via=process.batch_id)
        except BatchlineError as exc:
            raise Refused(_reason(exc), refusal) from exc
        return Completed({"recipe_status": rv.status, "decided_by": signer.username})


OPERATIONS: dict[str, Callable[[Runtime, ServiceCall], Completed]] = {
    "batch.release": release,
    "batch.reject": reject,
    "exception.disposition": disposition,
    "qms.open_deviation": open_deviation,
    "recipe.approve": recipe_approve,
    "recipe.reject": recipe_reject,
}


def register(rt: Runtime) -> None:
    """Register the operations on ``rt.connectors`` under their full names."""
    for name, fn in OPERATIONS.items():
        rt.connectors.register(name, _bound(rt, fn))


def _bound(rt: Runtime, fn: Callable[[Runtime, ServiceCall], Completed]) -> Callable[[ServiceCall], Completed]:
    def call(service_call: ServiceCall) -> Completed:
        return fn(rt, service_call)

    return call
