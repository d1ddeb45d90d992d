"""Separation of duties on the step path, at the engine (SQLite and PostgreSQL): every
role and the combinations that matter, against every task role and signature meaning of a
real recipe, with and without a form, and every witness role. The intended rules are the
literal tables of ``duty_tables``; a refusal has its stable code and stores nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine import batches, users
from engine.models import Signature, Step
from engine.permissions import Forbidden
from tests.support import PASSWORD, approved_recipe, person

from .duty_tables import COMPLETE, COMPLETERS, EVERY_HOLDING, WITNESS, holder, may, recipe_files, values_for


def start(rt, batch_id: str) -> dict[str, str]:
    """The duties recipe imported and approved, a batch started: task id by BPMN id."""
    files, forms = recipe_files()
    approved_recipe(rt, files, forms=forms, user="qa.author")
    batches.start_batch(rt, "duties", batch_id, user="sup.start")
    return {t["bpmn_id"]: t["id"] for t in batches.ready_tasks(rt, batch_id)}


def counts(rt) -> tuple[int, int]:
    with rt.transaction() as s:
        return s.scalar(select(func.count()).select_from(Step)), s.scalar(select(func.count()).select_from(Signature))


def test_the_recipe_has_every_cell_of_the_table(rt):
    tasks = start(rt, "D-ALL")
    assert set(tasks) == set(COMPLETE) | set(WITNESS)
    roles = {t["bpmn_id"]: t["role"] for t in batches.ready_tasks(rt, "D-ALL")}
    assert {k: roles[k] for k in COMPLETE} == {k: v[0] for k, v in COMPLETE.items()}


@pytest.mark.parametrize("roles", EVERY_HOLDING, ids="+".join)
def test_every_role_against_every_task_role_and_meaning(rt, roles):
    tasks = start(rt, "D-1")
    who = holder(roles)
    done = 0
    for bpmn_id, (task_role, meaning, allowed) in COMPLETE.items():
        before = counts(rt)
        call = dict(user=who.username, actor=who, signer=who if meaning else None)
        if may(roles, allowed):
            out = batches.complete_task(rt, "D-1", tasks[bpmn_id], values_for(meaning), **call)
            done += 1
            signed = out.body["step"]["signatures"]
            assert [(s["role"], s["meaning"], s["username"]) for s in signed] == (
                [("performer", meaning, who.username)] if meaning else []
            ), bpmn_id
        else:
            with pytest.raises(Forbidden) as refused:
                batches.complete_task(rt, "D-1", tasks[bpmn_id], values_for(meaning), **call)
            # not even the task's role: task_role; the role but not the meaning: meaning_role
            expected = "meaning_role" if may(roles, COMPLETERS[task_role]) else "task_role"
            assert refused.value.code == expected, (bpmn_id, refused.value.message)
            assert counts(rt) == before, f"{bpmn_id}: a refusal stored something"
    assert len(batches.steps(rt, "D-1")) == done


def test_literal_examples_of_the_rules(rt):
    """The issue's cases, spelled out."""
    tasks = start(rt, "D-2")
    supervisor, operator, qa = person("sup.s"), person("op.o"), person("qa.q")
    # a supervisor never signs for QA: not "Released", not a QA task at all
    for bpmn_id in ("qa_released", "lane_qa_released", "qa_performed"):
        with pytest.raises(Forbidden) as refused:
            batches.complete_task(rt, "D-2", tasks[bpmn_id], {"reading": "1.0"}, user="sup.s", signer=supervisor)
        assert refused.value.code == "task_role"
    # an operator completes no QA task, with or without a form (nothing signed to check)
    for bpmn_id in ("qa_noform", "lane_qa_noform"):
        with pytest.raises(Forbidden) as refused:
            batches.complete_task(rt, "D-2", tasks[bpmn_id], {}, user="op.o", actor=operator)
        assert refused.value.code == "task_role"
    # QA completes QA tasks and releases
    batches.complete_task(rt, "D-2", tasks["qa_noform"], {}, user="qa.q", actor=qa)
    out = batches.complete_task(rt, "D-2", tasks["qa_released"], {"reading": "2.0"}, user="qa.q", signer=qa)
    assert out.body["step"]["signatures"][0]["meaning"] == "Released"
    # supervisors stand in for operators on the floor
    batches.complete_task(rt, "D-2", tasks["operator_performed"], {"reading": "3.0"}, user="sup.s", signer=supervisor)
    # and a person with both operator and qa does not sign "Released" on an operator task
    both = holder(("operator", "qa"))
    with pytest.raises(Forbidden) as refused:
        batches.complete_task(
            rt, "D-2", tasks["operator_released"], {"reading": "1.0"}, user=both.username, signer=both
        )
    assert refused.value.code == "meaning_role"


@pytest.mark.parametrize("witness_roles", EVERY_HOLDING, ids="+".join)
def test_every_witness_role(rt, witness_roles):
    tasks = start(rt, "D-W")
    witness = holder(witness_roles, ".w")
    for bpmn_id, (performer_role, _witness_role, allowed) in WITNESS.items():
        performer = holder((performer_role,), ".p")
        before = counts(rt)
        call = dict(user=performer.username, signer=performer, witness=witness)
        if may(witness_roles, allowed):
            out = batches.complete_task(rt, "D-W", tasks[bpmn_id], {"reading": "1.0"}, **call)
            assert [(s["role"], s["meaning"]) for s in out.body["step"]["signatures"]] == [
                ("performer", "Performed"),
                ("witness", "Verified"),
            ]
        else:
            with pytest.raises(Forbidden) as refused:
                batches.complete_task(rt, "D-W", tasks[bpmn_id], {"reading": "1.0"}, **call)
            assert refused.value.code == "witness_role", bpmn_id
            assert counts(rt) == before


def test_who_acts_is_checked_without_a_form_too(rt):
    """Without an authenticated ``actor`` or signer the engine reads the user's account;
    an unknown or deactivated user completes nothing, and an actor is always the user."""
    tasks = start(rt, "D-A")
    users.create_user(rt, "op.db", "Op Db", ["operator"], by="test", password=PASSWORD)
    users.create_user(rt, "qa.gone", "Qa Gone", ["qa"], by="test", password=PASSWORD)
    users.set_active(rt, "qa.gone", False, by="test", reason="left")
    with pytest.raises(Forbidden) as refused:
        batches.complete_task(rt, "D-A", tasks["qa_noform"], {}, user="op.db")
    assert refused.value.code == "task_role"
    for ghost in ("nobody", "qa.gone"):
        with pytest.raises(Forbidden) as refused:
            batches.complete_task(rt, "D-A", tasks["qa_noform"], {}, user=ghost)
        assert refused.value.code == "actor_unknown"
    with pytest.raises(Forbidden) as refused:  # a QA person's roles lent to an operator's user id
        batches.complete_task(rt, "D-A", tasks["qa_noform"], {}, user="op.db", actor=person("qa.q"))
    assert refused.value.code == "sign_for_other"
    assert counts(rt) == (0, 0)
    batches.complete_task(rt, "D-A", tasks["operator_noform"], {}, user="op.db")
    assert [s["user"] for s in batches.steps(rt, "D-A")] == ["op.db"]


def test_my_tasks_lists_what_the_person_may_complete(rt):
    start(rt, "D-M")

    def mine(roles):
        return {t["bpmn_id"] for t in batches.my_tasks(rt, holder(roles))}

    for roles in EVERY_HOLDING:
        expected = {k for k, (role, _m, _a) in COMPLETE.items() if may(roles, COMPLETERS[role])}
        expected |= {k for k, (role, _w, _a) in WITNESS.items() if may(roles, COMPLETERS[role])}
        assert mine(roles) == expected, roles
