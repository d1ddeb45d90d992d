"""A supervisor's approval before a write to equipment: the task names the user task
whose e-signature must be in the batch record (``signed_by``), and the write is made only
when that step's signature has the meaning asked for (``Approved`` unless the task says
otherwise), was given by someone holding the supervisor role, still binds what it signed
(21 CFR 11.70: its hash is recomputed) and was not superseded by a correction.

A write refused here is not retried: signing later is a person's decision, so the task
becomes an incident that the supervisor resolves after signing (retry the incident)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.batches.signatures import signed_content
from engine.connectors import ConnectorError, ServiceCall
from engine.models import Batch, Correction, Signature, Step, User

DEFAULT_MEANING = "Approved"
DEFAULT_ROLE = "supervisor"


def required_approval(rt, call: ServiceCall, what: str) -> dict[str, Any] | None:
    """None when the task asks for no signature; else who approved (username, printed
    name, meaning, time, step) or ConnectorError(retry=False) saying what is missing."""
    signed_by = call.params.get("signed_by")
    if signed_by in (None, ""):
        return None
    meaning = call.params.get("signature_meaning") or DEFAULT_MEANING
    role = call.params.get("signer_role") or DEFAULT_ROLE
    if not isinstance(signed_by, str) or not isinstance(meaning, str) or not isinstance(role, str):
        raise ConnectorError("signed_by, signature_meaning and signer_role must be text", retry=False)
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == call.batch_id)).one()
        step = s.scalars(
            select(Step).where(Step.batch_id == batch.id, Step.bpmn_id == signed_by).order_by(Step.seq.desc())
        ).first()
        if step is None:
            raise ConnectorError(
                f"{what} needs the {meaning.lower()} signature of task {signed_by!r}, which is not in the batch record",
                retry=False,
            )
        corrected = s.scalars(
            select(Correction.corrected_at).where(Correction.batch_id == batch.id, Correction.step_seq == step.seq)
        ).all()
        for sig in s.scalars(
            select(Signature)
            .where(Signature.batch_id == batch.id, Signature.step_seq == step.seq)
            .order_by(Signature.id)
        ):
            if sig.meaning != meaning or sig.correction_id is not None:
                continue
            if any(at >= sig.signed_at for at in corrected):
                continue  # superseded by a later correction of the step
            if sig.content_hash != signed_content(batch.batch_id, step, meaning):
                continue  # no longer binds what it signed
            user = s.scalars(select(User).where(User.username == sig.username)).first()
            if user is None or role not in (user.roles or []):
                continue
            return {
                "username": sig.username,
                "printed_name": sig.printed_name,
                "meaning": sig.meaning,
                "signed_at": sig.signed_at.isoformat(),
                "step": step.seq,
                "task": signed_by,
            }
    raise ConnectorError(
        f"{what} needs the {meaning.lower()} signature of a {role} on task {signed_by!r} "
        f"(step {step.seq} has none that is valid)",
        retry=False,
    )


def approval_fields(approval: dict[str, Any] | None) -> dict[str, Any]:
    """The approval as flat fields of the record entry (what the batch record page shows)."""
    if not approval:
        return {}
    return {
        "approved_by": approval["username"],
        "approved_by_name": approval["printed_name"],
        "approval_meaning": approval["meaning"],
        "approval_signed_at": approval["signed_at"],
        "approval_step": approval["step"],
    }
