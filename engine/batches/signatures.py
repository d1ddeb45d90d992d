"""Electronic signatures on the step path (21 CFR 11.50/11.70): who must sign a step,
who may witness it, and what exactly a signature covers."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.task import Task
from sqlalchemy.orm import Session

from .. import audit, duties
from ..errors import InvalidInput
from ..models import Batch, Signature, Step, utcnow
from ..permissions import Forbidden
from ..step_values import CheckedValues
from ..users import Person
from ..workflow_store import canonical, sha256
from .descriptions import describe_signature
from .tasks import task_role


def check_performer(task: Task, performer: Person) -> None:
    """The person completing the task may complete it: its role decides, with or without
    a form (``engine.duties``)."""
    duties.check_complete(performer, task_role(task), username=performer.username)


def check_signers(
    task: Task, checked: CheckedValues, performer: Person, signer: Person | None, witness: Person | None
) -> None:
    """The performer signs for themself, in a role that may give the form's meaning on
    this task; a witness, where the form asks for one, is another person holding the
    witness role. The rules are ``engine.duties``'."""
    role = task_role(task)
    if checked.validated is None:
        return
    if signer is None:
        raise InvalidInput("this step must be signed: give your password", code="signature_required")
    if signer.username != performer.username:
        raise Forbidden("a signature can only be given by the person completing the step", code="sign_for_other")
    duties.check_complete(signer, role, username=signer.username)
    duties.check_sign(signer, checked.validated.signature_meaning, role)
    if checked.validated.witness_required:
        if witness is None:
            raise InvalidInput("this step needs a witness signature", code="witness_required")
        if witness.username == signer.username:
            raise Forbidden("the witness must be another person than the performer", code="self_witness")
        duties.check_witness(witness, checked.validated.witness_role, role)


def signed_content(batch_id: str, step: Step, meaning: str) -> str:
    """SHA-256 of exactly what a signature covers (21 CFR 11.70)."""
    return sha256(
        canonical(
            {
                "batch": batch_id,
                "seq": step.seq,
                "task_id": step.task_id,
                "bpmn_id": step.bpmn_id,
                "form_hash": step.form_hash,
                "values": step.values,
                "units": step.units,
                "meaning": meaning,
            }
        )
    )


def sign(
    s: Session, batch: Batch, step: Step, checked: CheckedValues, signer: Person | None, witness: Person | None
) -> list[dict[str, Any]]:
    """The performer's (and witness's) signatures of a step, in the step's transaction."""
    out: list[dict[str, Any]] = []
    if checked.validated is None or signer is None:
        return out
    parties = [("performer", signer, checked.validated.signature_meaning)]
    if checked.validated.witness_required and witness is not None:
        parties.append(("witness", witness, duties.WITNESS_MEANING))
    for role, who, meaning in parties:
        sig = Signature(
            batch_id=batch.id,
            step_seq=step.seq,
            role=role,
            username=who.username,
            printed_name=who.printed_name,
            meaning=meaning,
            signed_at=utcnow(),
            content_hash=signed_content(batch.batch_id, step, meaning),
        )
        s.add(sig)
        audit.record(
            s,
            user=who.username,
            action="signature",
            object_type="batch",
            object_id=batch.batch_id,
            field=f"step {step.seq}",
            new={"meaning": meaning, "role": role, "hash": sig.content_hash},
            binds=[sig],
        )
        out.append(describe_signature(sig, superseded=False))
    return out
