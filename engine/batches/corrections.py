"""Correcting a recorded value (GMP: the original stays, the correction is added with its
reason and the corrector's signature). How a corrected value is *read* lives in
``engine.record`` — the one home of "values as corrected"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, duties, lot_corrections, outbox
from ..bpmn.contents import all_specs
from ..errors import Conflict, InvalidInput, NotFound
from ..models import Batch, Correction, RecipeVersion, Signature, Step, utcnow
from ..quality import exceptions as quality_exceptions
from ..record import correction_text, current_values
from ..runtime import Runtime
from ..step_values import check_values
from ..users import Person
from ..vocabulary import ExceptionCategory, StepKind
from ..workflow_store import canonical, sha256
from .descriptions import describe_signature
from .inputs import require_reason
from .tasks import recorded_task_role
from .unit_of_work import lock_batch


def correct_step(
    rt: Runtime, batch_id: str, seq: int, field: str, value: Any, *, reason: str, signer: Person
) -> dict[str, Any]:
    """Correct one recorded value until the batch is reviewed. The original stays
    visible; the audit trail holds old value, new value and reason; the step's earlier
    signatures show as superseded and the corrector signs the corrected content."""
    require_reason(reason, "a correction")
    with rt.transaction() as s:
        batch = lock_batch(s, batch_id)
        if batch.reviewed_at is not None:
            raise Conflict("the batch record has been reviewed; it can no longer be corrected", code="batch_reviewed")
        step = s.scalars(select(Step).where(Step.batch_id == batch.id, Step.seq == seq)).first()
        if step is None:
            raise NotFound(f"step {seq} not found in batch {batch_id}", code="step_not_found")
        if step.kind != StepKind.USER_TASK:
            raise Conflict("only operator entries can be corrected", code="step_not_correctable")
        check_corrector(rt, s, batch, step, signer)
        current = current_values(s, step)
        if not isinstance(field, str) or field not in current:
            raise InvalidInput(f"step {seq} has no field {field!r}", code="field_unknown")
        rv = s.get(RecipeVersion, batch.recipe_version_id)
        form = rv.forms.get(step.form_id) if rv is not None and step.form_id else None
        movement = lot_corrections.quantity_target(form, _task_spec(rt, s, rv, step), field)
        proposed = {k: v for k, v in current.items() if v is not None}
        proposed[field] = value
        # the corrected entry must pass the same form checks; calculated fields are
        # recomputed by the form, never taken from the record
        calculated = _calculated_fields(form) if form is not None else set()
        proposed = {k: v for k, v in proposed.items() if k not in calculated}
        recorded = frozenset(v for v in current.values() if isinstance(v, str))
        checked = check_values(s, batch.batch_id, form, proposed, recorded=recorded).values
        new_value = checked.get(field)
        old_value = current.get(field)
        if new_value == old_value:
            raise InvalidInput("the corrected value equals the recorded one", code="correction_unchanged")
        corr = Correction(
            batch_id=batch.id,
            step_seq=seq,
            field=field,
            old=correction_text(old_value),
            new=correction_text(new_value),
            reason=reason,
            username=signer.username,
            corrected_at=utcnow(),
        )
        s.add(corr)
        if movement is not None:  # a lot quantity: a reversing and a corrected movement, never an edit
            lot_corrections.correct_quantity(
                s, batch, step, movement, field, new_value, user=signer.username, at=corr.corrected_at, reason=reason
            )
        # calculated fields that depend on the corrected value are corrected with it, so
        # the record never holds a stale derived value
        for key in sorted(calculated):
            if key != field and checked.get(key) != current.get(key):
                derived = Correction(
                    batch_id=batch.id,
                    step_seq=seq,
                    field=key,
                    old=correction_text(current.get(key)),
                    new=correction_text(checked.get(key)),
                    reason=f"recalculated after correcting {field}: {reason}",
                    username=signer.username,
                    corrected_at=corr.corrected_at,
                )
                s.add(derived)
                audit.record(
                    s,
                    user=signer.username,
                    action="step.correct",
                    object_type="batch",
                    object_id=batch_id,
                    field=f"step {seq}.{key}",
                    old=current.get(key),
                    new=checked.get(key),
                    reason=f"recalculated after correcting {field}",
                    binds=[derived],
                )
        s.flush()
        content = corrected_content(batch_id, corr.id, seq, field, old_value, new_value, reason)
        sig = Signature(
            batch_id=batch.id,
            step_seq=seq,
            role="corrector",
            username=signer.username,
            printed_name=signer.printed_name,
            meaning=duties.CORRECTION_MEANING,
            signed_at=corr.corrected_at,
            content_hash=content,
            correction_id=corr.id,
        )
        s.add(sig)
        audit.record(
            s,
            user=signer.username,
            action="step.correct",
            object_type="batch",
            object_id=batch_id,
            field=f"step {seq}.{field}",
            old=old_value,
            new=new_value,
            reason=reason,
            binds=[corr, sig],
        )
        _raise_for_review(rt, s, batch, step, corr, form, old_value, new_value, signer)
        outbox.emit(
            s,
            rt.settings,
            "batch.step.corrected",
            batch_id,
            {"batch_id": batch_id, "seq": seq, "field": field, "user": signer.username},
        )
        return {
            "seq": seq,
            "field": field,
            "old": old_value,
            "new": new_value,
            "reason": reason,
            "signature": describe_signature(sig, superseded=False),
        }


def _raise_for_review(
    rt: Runtime,
    s: Session,
    batch: Batch,
    step: Step,
    corr: Correction,
    form: dict[str, Any] | None,
    old: Any,
    new: Any,
    signer: Person,
) -> None:
    """A correction of the record is reviewed by QA before release: it raises
    ``correction.after_signing`` for its step (``engine.quality.release`` treats the
    correction as unreviewed until an exception of this category for the same step is
    resolved), whether or not the step carried a performer's signature (said in details)."""
    signed = (
        s.scalars(
            select(Signature.id).where(
                Signature.batch_id == batch.id,
                Signature.step_seq == step.seq,
                Signature.role == "performer",
                Signature.correction_id.is_(None),
            )
        ).first()
        is not None
    )
    critical = form is not None and corr.field in _critical_fields(form)
    quality_exceptions.raise_in(
        rt,
        s,
        batch,
        category=ExceptionCategory.CORRECTION_AFTER_SIGNING,
        message=f"step {step.seq} ({step.task_name}): {corr.field} corrected from {corr.old} to {corr.new}",
        raised_by=signer.username,
        step_seq=step.seq,
        parameter=corr.field,
        value={"old": old, "new": new},
        details={
            "correction": corr.id,
            "reason": corr.reason,
            "corrector": signer.username,
            "printed_name": signer.printed_name,
            "signed": signed,
        },
        critical=critical,
    )


def _task_spec(rt: Runtime, s: Session, rv: RecipeVersion | None, step: Step) -> Any:
    """The task spec that recorded ``step`` (its ``produces`` property), or None."""
    if rv is None:
        return None
    spec, subprocess_specs = rt.store.specs(s, rv.spec_hash)
    return next(
        (ts for _p, ts in all_specs(spec, subprocess_specs) if getattr(ts, "bpmn_id", None) == step.bpmn_id), None
    )


def check_corrector(rt: Runtime, s: Session, batch: Batch, step: Step, signer: Person) -> None:
    """The corrector may correct this step: a role that may complete its task and give
    every meaning its performer signed (``engine.duties``). A QA step is corrected by QA,
    a supervisor's decision by a supervisor."""
    meanings = s.scalars(
        select(Signature.meaning).where(
            Signature.batch_id == batch.id,
            Signature.step_seq == step.seq,
            Signature.role == "performer",
            Signature.correction_id.is_(None),
        )
    ).all()
    duties.check_correct(signer, recorded_task_role(rt, s, batch, step.bpmn_id), meanings)


def corrected_content(batch_id: str, correction_id: int, seq: int, field: str, old: Any, new: Any, reason: str) -> str:
    """SHA-256 of exactly what a corrector signs (21 CFR 11.70): the correction itself."""
    return sha256(
        canonical(
            {
                "batch": batch_id,
                "seq": seq,
                "correction": correction_id,
                "field": field,
                "old": old,
                "new": new,
                "reason": reason,
            }
        )
    )


def _critical_fields(form: dict[str, Any]) -> set[str]:
    from forms import load_form

    return {f.key for f in load_form(form).fields if f.critical}


def _calculated_fields(form: dict[str, Any]) -> set[str]:
    from forms import load_form

    return {f.key for f in load_form(form).fields if f.is_calculated}
