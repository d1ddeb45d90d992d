"""Separation of duties after the step, at the engine (SQLite and PostgreSQL): who may
correct a recorded step (its task's role and the meaning its performer signed; a QA step
is corrected by QA only) and to whom a task may be assigned (only to someone who may
complete it). The intended rules are the literal tables of ``duty_tables``."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import func, select

from engine import batches, users
from engine.errors import InvalidInput
from engine.models import Correction, Signature
from engine.permissions import Forbidden
from tests.support import PASSWORD, approved_recipe

from .duty_tables import COMPLETE, COMPLETERS, CORRECT, EVERY_HOLDING, WITNESS, holder, may, recipe_files


def start(rt, batch_id: str) -> dict[str, str]:
    files, forms = recipe_files()
    approved_recipe(rt, files, forms=forms, user="qa.author")
    batches.start_batch(rt, "duties", batch_id, user="sup.start")
    return {t["bpmn_id"]: t["id"] for t in batches.ready_tasks(rt, batch_id)}


def record_every_signed_step(rt, batch_id: str) -> dict[str, int]:
    """Each step of ``CORRECT`` completed by a person of the first role allowed: seq by task."""
    tasks = start(rt, batch_id)
    seqs = {}
    for bpmn_id in CORRECT:
        if bpmn_id in WITNESS:
            performer, witness = holder(("operator",), ".p"), holder(("supervisor",), ".w")
        else:
            performer, witness = holder((sorted(COMPLETE[bpmn_id][2])[0],), ".p"), None
        out = batches.complete_task(
            rt, batch_id, tasks[bpmn_id], {"reading": "1.0"}, user=performer.username, signer=performer, witness=witness
        )
        seqs[bpmn_id] = out.body["step"]["seq"]
    return seqs


def n_corrections(rt) -> tuple[int, int]:
    with rt.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(Correction)),
            s.scalar(select(func.count()).select_from(Signature).where(Signature.correction_id.is_not(None))),
        )


def test_every_role_against_every_recorded_step(rt):
    seqs = record_every_signed_step(rt, "DC-1")
    readings = (f"{n}.0" for n in itertools.count(2))
    made = 0
    for roles in EVERY_HOLDING:
        corrector = holder(roles)
        for bpmn_id, allowed in CORRECT.items():
            before = n_corrections(rt)
            call = dict(reason="typing error", signer=corrector)
            if may(roles, allowed):
                out = batches.correct_step(rt, "DC-1", seqs[bpmn_id], "reading", next(readings), **call)
                assert out["signature"]["meaning"] == "Corrected" and out["signature"]["username"] == corrector.username
                made += 1
            else:
                with pytest.raises(Forbidden) as refused:
                    batches.correct_step(rt, "DC-1", seqs[bpmn_id], "reading", next(readings), **call)
                assert refused.value.code == "correction_role", (roles, bpmn_id)
                assert n_corrections(rt) == before, "a refused correction stored something"
    assert n_corrections(rt) == (made, made)


def test_an_operator_cannot_correct_a_supervisor_signed_qa_step(rt):
    """The issue's case: a QA step stays QA's, whoever else signed around it."""
    tasks = start(rt, "DC-2")
    qa, operator, supervisor = holder(("qa",)), holder(("operator",)), holder(("supervisor",))
    out = batches.complete_task(rt, "DC-2", tasks["qa_reviewed"], {"reading": "5.0"}, user=qa.username, signer=qa)
    seq = out.body["step"]["seq"]
    for who in (operator, supervisor, holder(("operator", "supervisor", "admin"))):
        with pytest.raises(Forbidden) as refused:
            batches.correct_step(rt, "DC-2", seq, "reading", "6.0", reason="typing error", signer=who)
        assert refused.value.code == "correction_role"
        assert refused.value.details["roles"] == ["qa"]
    batches.correct_step(rt, "DC-2", seq, "reading", "6.0", reason="typing error", signer=qa)
    assert batches.steps(rt, "DC-2")[-1]["current_values"]["reading"] == "6.0"


@pytest.mark.parametrize("reason", ["", " ", "   \t\n  ", "\u2003", None])
def test_a_blank_correction_reason_is_refused_by_the_engine(rt, reason):
    """Below the API (whose schema refuses a missing reason first): the engine itself
    refuses an empty or whitespace-only reason, and nothing is stored."""
    seqs = record_every_signed_step(rt, "DC-R")
    with pytest.raises(InvalidInput) as refused:
        batches.correct_step(
            rt, "DC-R", seqs["operator_performed"], "reading", "9.0", reason=reason, signer=holder(("operator",))
        )
    assert refused.value.code == "reason_required"
    assert n_corrections(rt) == (0, 0)
    assert batches.steps(rt, "DC-R")[seqs["operator_performed"] - 1]["current_values"]["reading"] == "1.0"


def test_a_task_is_only_assigned_to_someone_who_may_complete_it(rt):
    tasks = start(rt, "DC-A")
    people = {}
    for roles in EVERY_HOLDING:
        name = "-".join(roles)
        users.create_user(rt, name, name.title(), list(roles), by="test", password=PASSWORD)
        people[name] = roles
    assigned: dict[str, str | None] = {bpmn_id: None for bpmn_id in COMPLETE}
    for bpmn_id, (task_role, _meaning, _allowed) in COMPLETE.items():
        for name, roles in people.items():
            if may(roles, COMPLETERS[task_role]):
                out = batches.reassign(rt, "DC-A", tasks[bpmn_id], name, by="sup.boss", reason="shift change")
                assert out["assigned_to"] == name
                assigned[bpmn_id] = name
            else:
                with pytest.raises(Forbidden) as refused:
                    batches.reassign(rt, "DC-A", tasks[bpmn_id], name, by="sup.boss", reason="shift change")
                assert refused.value.code == "task_role", (bpmn_id, name)
    # a refused reassignment changed nothing: the last allowed assignee holds each task
    stored = {t["bpmn_id"]: t["assigned_to"] for t in batches.ready_tasks(rt, "DC-A") if t["bpmn_id"] in COMPLETE}
    assert stored == assigned
    # the assignee, and only they, completes it: QA's task assigned to a QA person
    batches.reassign(rt, "DC-A", tasks["qa_noform"], "qa", by="sup.boss", reason="QA on shift")
    with pytest.raises(Forbidden) as refused:
        batches.complete_task(rt, "DC-A", tasks["qa_noform"], {}, user="supervisor-qa")
    assert refused.value.code == "task_assigned_elsewhere"
    batches.complete_task(rt, "DC-A", tasks["qa_noform"], {}, user="qa")
