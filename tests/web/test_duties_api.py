"""Separation of duties through the API, for a sample of the engine's table
(tests/engine/test_duties.py walks all of it): the endpoint admits operator, supervisor
and QA, and the task's role and its form's meaning decide, with stable codes. SQLite and
PostgreSQL, a real recipe, real tokens and re-authenticated signatures."""

from __future__ import annotations

import pytest

from engine import users
from tests.engine.duty_tables import recipe_files
from tests.support import PASSWORD, approval


@pytest.fixture
def duties(client, runtime):
    files, forms = recipe_files()
    r = client.post("/api/recipes", json={"bpmn": {k: v.decode() for k, v in files.items()}, "forms": forms})
    assert r.status_code == 201, r.json
    approve = client.post(
        f"/api/recipes/{r.json['id']}/approve", json=approval("quentin", "ok"), headers=client.auth["quentin"]
    )
    assert approve.status_code == 200, approve.json
    assert client.post("/api/batches", json={"recipe": "duties", "batch_id": "DA-1"}).status_code == 201
    users.create_user(runtime, "adm", "Adm", ["admin"], by="test", password=PASSWORD)
    users.create_user(runtime, "svc", "Svc", ["service"], by="test", kind="service")
    client.tokens = {
        name: {"Authorization": "Bearer " + users.create_token(runtime, name, "duties", by="test")}
        for name in ("op", "sv", "qa", "adm", "svc")
    }
    return client


def tasks(client) -> dict[str, str]:
    return {t["bpmn_id"]: t["id"] for t in client.get("/api/batches/DA-1/tasks").json}


def complete(client, who: str, bpmn_id: str, signed: bool):
    body = {"data": {"reading": 1.5} if signed else {}}
    if signed:
        body["signature"] = {"username": who, "password": PASSWORD}
    return client.post(
        f"/api/batches/DA-1/tasks/{tasks(client)[bpmn_id]}/complete", json=body, headers=client.tokens[who]
    )


#: (who, task, has a form, expected status, expected code) — in order, on one batch
COMPLETIONS = [
    ("op", "qa_noform", False, 403, "task_role"),  # the role is checked without a form too
    ("sv", "qa_noform", False, 403, "task_role"),
    ("adm", "operator_noform", False, 403, "forbidden"),  # the endpoint: admin completes nothing
    ("svc", "operator_noform", False, 403, "forbidden"),
    ("qa", "qa_noform", False, 200, None),  # QA completes QA tasks
    ("sv", "qa_released", True, 403, "task_role"),  # a supervisor never signs for QA
    ("sv", "lane_qa_released", True, 403, "task_role"),
    ("op", "operator_released", True, 403, "meaning_role"),
    ("sv", "operator_released", True, 403, "meaning_role"),
    ("op", "operator_approved", True, 403, "meaning_role"),
    ("op", "supervisor_approved", True, 403, "task_role"),
    ("sv", "operator_approved", True, 200, None),  # supervisors stand in on the floor
    ("qa", "qa_released", True, 200, None),
    ("op", "operator_performed", True, 200, None),
]


def test_completing_each_kind_of_task(duties):
    done = 0
    for who, bpmn_id, signed, status, code in COMPLETIONS:
        r = complete(duties, who, bpmn_id, signed)
        assert (r.status_code, (r.json or {}).get("code")) == (status, code), (who, bpmn_id, r.json)
        done += status == 200
        assert len(duties.get("/api/batches/DA-1/steps").json) == done
    steps = {s["bpmn_id"]: s for s in duties.get("/api/batches/DA-1/steps").json}
    assert {k: s["role"] for k, s in steps.items()} == {
        "qa_noform": "qa",
        "operator_approved": "operator",
        "qa_released": "qa",
        "operator_performed": "operator",
    }
    assert [(g["username"], g["meaning"]) for g in steps["qa_released"]["signatures"]] == [("qa", "Released")]


def test_correcting_needs_the_role_that_signed(duties):
    for who, bpmn_id in (("qa", "qa_released"), ("sv", "operator_approved"), ("op", "operator_performed")):
        assert complete(duties, who, bpmn_id, True).status_code == 200
    seq = {s["bpmn_id"]: s["seq"] for s in duties.get("/api/batches/DA-1/steps").json}

    def correct(who, bpmn_id, value):
        body = {
            "field": "reading",
            "value": value,
            "reason": "typo",
            "signature": {"username": who, "password": PASSWORD},
        }
        return duties.post(f"/api/batches/DA-1/steps/{seq[bpmn_id]}/corrections", json=body, headers=duties.tokens[who])

    for who, bpmn_id, status, code in [
        ("op", "qa_released", 403, "correction_role"),
        ("sv", "qa_released", 403, "correction_role"),
        ("adm", "qa_released", 403, "forbidden"),
        ("qa", "qa_released", 201, None),
        ("op", "operator_approved", 403, "correction_role"),  # a supervisor's "Approved"
        ("qa", "operator_approved", 403, "correction_role"),
        ("sv", "operator_approved", 201, None),
        ("qa", "operator_performed", 403, "correction_role"),
        ("op", "operator_performed", 201, None),
    ]:
        r = correct(who, bpmn_id, 2.5 if status == 201 else 9.5)
        assert (r.status_code, (r.json or {}).get("code")) == (status, code), (who, bpmn_id, r.json)
    current = {s["bpmn_id"]: s["current_values"]["reading"] for s in duties.get("/api/batches/DA-1/steps").json}
    assert current == {"qa_released": "2.5", "operator_approved": "2.5", "operator_performed": "2.5"}


def test_reassigning_and_my_tasks_follow_the_task_role(duties):
    ids = tasks(duties)

    def assign(bpmn_id, username):
        return duties.post(
            f"/api/batches/DA-1/tasks/{ids[bpmn_id]}/assign",
            json={"username": username, "reason": "shift"},
            headers=duties.tokens["sv"],
        )

    assert (assign("qa_performed", "op").status_code, assign("qa_performed", "op").json["code"]) == (403, "task_role")
    assert assign("qa_performed", "sv").json["code"] == "task_role"
    assert assign("qa_performed", "qa").status_code == 200
    assert assign("operator_performed", "sv").status_code == 200  # a supervisor may stand in

    def mine(who):
        r = duties.get("/api/tasks", headers=duties.tokens[who])
        return r.status_code, {t["bpmn_id"] for t in r.json} if r.status_code == 200 else r.json["code"]

    status, qa_tasks = mine("qa")
    assert status == 200 and "qa_performed" in qa_tasks and not any(t.startswith("operator_") for t in qa_tasks)
    status, op_tasks = mine("op")
    assert (
        status == 200
        and "operator_noform" in op_tasks
        and not op_tasks & {"qa_noform", "qa_performed", "lane_qa_released", "lane_qa_noform"}
    )
    assert "operator_performed" not in op_tasks  # assigned to sv now
    assert mine("adm") == (403, "forbidden")
