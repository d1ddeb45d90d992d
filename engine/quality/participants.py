"""Who may take part in a quality process, whatever its BPMN says: checked before any
password is asked (``engine.batches.before_signing``) and again on the step path.

- A recipe version's author takes no part in its approval flow: not as reviewer, not as
  approver (author ≠ reviewer ≠ approver; the engine operation ``recipe.approve`` checks
  the signers again at the end).
- Nobody who performed or witnessed a step of a batch does QA's tasks about it (its
  release and deviation flows): executor ≠ reviewer ≠ releaser. The deviation flow's
  operator task (reporting what happened) stays theirs.

Checked at the task, the refusal comes before anyone signs anything, instead of after a
reviewer and an approver have both signed and the final operation refuses the lot.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Batch, BatchException, RecipeVersion
from ..permissions import Forbidden
from ..users import Person


def check_participant(s: Session, process: Batch, person: Person, task_role: str) -> None:
    """Refuse ``person`` on a task of quality process ``process`` when the rules above say so."""
    if getattr(process, "kind", "production") != "quality" or not process.subject_type:
        return
    if process.subject_type == "recipe_version":
        ref = str(process.subject_id or "")
        rv = s.get(RecipeVersion, int(ref)) if ref.isdigit() else None
        if rv is not None and rv.created_by == person.username:
            raise Forbidden(
                f"{person.username} is the author of {rv.recipe} v{rv.version}: the author takes no part in "
                "its review or approval",
                code="author_cannot_approve",
                details={"recipe": rv.recipe, "version": rv.version},
            )
        return
    if task_role != "qa":
        return
    subject = _subject_batch(s, process)
    if subject is None:
        return
    from .release import performers

    if person.username in performers(s, subject):
        raise Forbidden(
            f"{person.username} performed or witnessed steps of batch {subject.batch_id}: another QA person "
            "does QA's tasks about it",
            code="segregation_of_duties",
            details={"batch": subject.batch_id},
        )


def _subject_batch(s: Session, process: Batch) -> Batch | None:
    if process.subject_type == "batch":
        return s.scalars(select(Batch).where(Batch.batch_id == process.subject_id)).first()
    ref = str(process.subject_id or "")
    if process.subject_type == "exception" and ref.isdigit():
        exc = s.get(BatchException, int(ref))
        return s.get(Batch, exc.batch_id) if exc is not None else None
    return None
