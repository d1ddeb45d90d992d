"""What is checked before anyone's password is: the batch exists and runs, the task
waits for completion, the caller may complete it (role, and today the qualifications the
task needs), and the signature claims only what
the caller may claim (their own id as performer, another person with the witness role
as witness, and a witness only where the form asks for one).

Why first: a password check counts toward the signer's lockout. Checked in the other
order, a ``signature`` naming someone else on any ``…/complete`` URL — a batch that does
not exist, a task that is not waiting, a task the caller may not do — counted a failure
against that person: any operator could lock out the administrator. Now such a request
is refused before any password is read, and nothing is counted.

The step path checks all of it again under the batch lock (``step_path.complete_task``),
so a task completed meanwhile is still refused; this is the cheap look before the
expensive and consequential one, not a replacement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from forms import load_form

from .. import duties
from ..errors import Conflict, NotFound
from ..models import Step, User
from ..permissions import Forbidden
from ..quality.participants import check_participant
from ..runtime import Runtime
from ..users import Person
from ..vocabulary import BatchState, StepKind
from .inputs import task_uuid
from .tasks import check_assignment, describe_task, ready_user_task, recipe_content, task_role
from .unit_of_work import find_batch, live_workflow


@dataclass(frozen=True)
class SigningPlan:
    """The ready task the caller may complete, and what its form asks of a witness."""

    task: dict[str, Any]
    witness_required: bool
    witness_roles: tuple[str, ...]
    #: the qualifications the task needs of its performer and witness (``qual``)
    quals: tuple[str, ...] = ()


def may_complete(rt: Runtime, batch_id: str, task_id: str, person: Person) -> SigningPlan:
    """The batch runs, ``task_id`` waits, ``person`` may complete it (assignment, role)."""
    task_uuid(task_id)
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        if batch.state != BatchState.RUNNING:
            raise Conflict(
                f"batch {batch_id} is {batch.state}", code=f"batch_{batch.state}", details={"state": batch.state}
            )
        rv = recipe_content(rt, s, batch.recipe_version_id)
        with live_workflow(rt, s, batch) as entry:
            task = ready_user_task(entry.workflow, task_id, batch_id)
            check_assignment(s, batch, entry, task, person.username)
            needed = task_role(task)
            described = describe_task(task, rv)
        # the rules the step path applies again under the lock (engine.duties)
        duties.check_complete(person, needed, username=person.username)
        check_participant(s, batch, person, needed)  # a quality process: author / executor take no part
        quals = tuple(described.get("qual") or ())
        duties.check_qualified(s, person.username, quals)
    definition = described.get("form_definition")
    if not definition:
        return SigningPlan(described, False, (), quals)
    form = load_form(definition)
    witnesses = tuple(sorted(duties.witness_roles(form.witness_role, needed)))
    return SigningPlan(described, bool(form.witness_required), witnesses, quals)


def check_own_signature(claimed: Any, person: Person) -> None:
    """A signature names the caller, never someone else (21 CFR 11.200(a)(2)): refused
    before the password is checked, so it counts toward nobody's lockout."""
    if claimed != person.username:
        raise Forbidden("a signature can only be given by the person completing the step", code="sign_for_other")


def witness_wanted(rt: Runtime, plan: SigningPlan, claimed: Any, performer: Person) -> bool:
    """Whether a witness named ``claimed`` is to be authenticated: not when the form asks
    for none (the witness is ignored, their password never checked); refused before any
    password when it is the performer, an account without the witness role, or one
    without a qualification the task needs."""
    if not plan.witness_required:
        return False
    if claimed == performer.username:
        raise Forbidden("the witness must be another person than the performer", code="self_witness")
    if isinstance(claimed, str) and 0 < len(claimed) <= 100:
        with rt.transaction() as s:
            roles = s.scalar(select(User.roles).where(User.username == claimed))
        if roles is not None and not set(roles or ()) & set(plan.witness_roles):
            raise Forbidden(
                f"the witness needs the role {' or '.join(plan.witness_roles)}",
                code="witness_role",
                details={"roles": list(plan.witness_roles)},
            )
        if roles is not None and plan.quals:
            with rt.transaction() as s:
                duties.check_qualified(s, claimed, plan.quals, as_witness=True)
    return True


def may_correct(rt: Runtime, batch_id: str, seq: int) -> None:
    """The batch exists and is not reviewed, and its step ``seq`` holds operator values."""
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        if batch.reviewed_at is not None:
            raise Conflict("the batch record has been reviewed; it can no longer be corrected", code="batch_reviewed")
        kind = s.scalar(select(Step.kind).where(Step.batch_id == batch.id, Step.seq == seq))
        if kind is None:
            raise NotFound(f"step {seq} not found in batch {batch_id}", code="step_not_found")
        if kind != StepKind.USER_TASK:
            raise Conflict("only operator entries can be corrected", code="step_not_correctable")
