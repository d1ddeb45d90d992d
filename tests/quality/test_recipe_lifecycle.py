"""The e-signed recipe lifecycle on QA's own BPMN (engine.recipe_lifecycle, the
``recipe.approve`` / ``recipe.reject`` operations, workflows/qa/recipe_approval.bpmn):
draft → in_review → approved → effective → superseded / retired. Through the API with
real tokens and re-authenticated signatures; the job executor runs the flows, SQLite and
PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest

import workflows
from engine import batches, recipes, users
from tests.quality.test_processes import WEIGH_BPMN, complete, weigh_form, work
from tests.support import PASSWORD


def sig(who: str, meaning: str = "Approved") -> dict:
    return {"username": who, "password": PASSWORD, "meaning": meaning}


@pytest.fixture
def qa(client, runtime):
    client.tokens = {
        name: {"Authorization": "Bearer " + users.create_token(runtime, name, "lifecycle", by="test")}
        for name in ("op", "qa", "qa2", "alice", "quentin")
    }
    client.rt = runtime
    return client


def upload(client, who: str, files: dict[str, bytes], forms: dict) -> dict:
    r = client.post(
        "/api/recipes",
        json={"bpmn": {n: d.decode() for n, d in files.items()}, "forms": forms},
        headers=client.tokens[who],
    )
    assert r.status_code == 201, r.json
    return r.json


def approval_flow(approvers: int) -> dict[str, bytes]:
    """QA's recipe approval flow, its ``approvers`` parameter changed in the BPMN."""
    entry = workflows.get("qa_recipe_approval")
    (name, data), *_ = entry.files.items()
    text = data.decode()
    assert "approvers = 1\n" in text
    return {name: text.replace("approvers = 1\n", f"approvers = {approvers}\n").encode()}


def submit(client, who: str, recipe_id: int, **headers) -> dict:
    r = client.post(
        f"/api/recipes/{recipe_id}/submit", json={"comment": "CC-1"}, headers={**client.tokens[who], **headers}
    )
    assert r.status_code == 200, r.json
    assert r.json["status"] == "in_review"
    return r.json


def status(client, recipe_id: int) -> str:
    return client.get(f"/api/recipes/{recipe_id}").json["status"]


def weigh(note: str = "") -> dict[str, bytes]:
    return {
        "weigh_only.bpmn": WEIGH_BPMN.replace(b"Weigh 100 g of glucose.", f"Weigh 100 g of glucose.{note}".encode())
    }


def review(client, who: str, pid: str, decision: str = "approve"):
    return complete(client, who, pid, "ra_review", {"qa_decision": decision, "review_items": ["flow", "limits"]})


def approve_task(client, who: str, pid: str):
    return complete(client, who, pid, "ra_approve", {"approval_confirmed": True})


def bootstrap(client) -> dict:
    """A fresh installation: QA imports the approval flow; another QA person approves it
    directly with an e-signature (no approval flow is effective yet)."""
    entry = workflows.get("qa_recipe_approval")
    flow = upload(client, "qa", dict(entry.files), entry.forms)
    own = client.post(
        f"/api/recipes/{flow['id']}/approve", json={"signature": sig("qa"), "reason": "IQ"}, headers=client.tokens["qa"]
    )
    assert own.status_code == 403 and own.json["code"] == "author_cannot_approve"
    ok = client.post(
        f"/api/recipes/{flow['id']}/approve",
        json={"signature": sig("quentin"), "reason": "installation qualification"},
        headers=client.tokens["quentin"],
    )
    assert ok.status_code == 200, ok.json
    assert ok.json["status"] == "effective" and ok.json["approved_by"] == ["quentin"]
    return ok.json


def test_a_recipe_goes_through_qa_flow_and_a_two_approver_flow_is_approved_under_the_old_one(qa):
    rt = qa.rt
    flow1 = bootstrap(qa)

    # a production recipe by alice: submitted, the effective flow starts about it
    v1 = upload(qa, "alice", weigh(), {"weigh_form": weigh_form()})
    direct = qa.post(
        f"/api/recipes/{v1['id']}/approve", json={"signature": sig("qa"), "reason": "x"}, headers=qa.tokens["qa"]
    )
    assert direct.status_code == 409 and direct.json["code"] == "approval_flow_required"
    sub = submit(qa, "alice", v1["id"])
    pid = sub["approval_process"]
    assert pid == "QP-RA-weigh_only-v1"
    work(rt)
    (task,) = [t for t in batches.my_tasks(rt, users.person(rt, "qa")) if t["batch_id"] == pid]
    assert task["subject"] == {"type": "recipe_version", "id": str(v1["id"])} and task["bpmn_id"] == "ra_review"

    # self-approval: alice (QA too) cannot even review her own version (refused at the task)
    own = review(qa, "alice", pid)
    assert own.status_code == 403 and own.json["code"] == "author_cannot_approve", own.json
    # one person as reviewer and approver: the engine operation refuses at the end
    assert review(qa, "qa", pid).status_code == 200
    assert approve_task(qa, "qa", pid).status_code == 200
    work(rt)
    refused = [t for t in qa.get(f"/api/batches/{pid}/tasks").json if t["bpmn_id"] == "ra_refused"]
    assert refused, qa.get(f"/api/batches/{pid}/tasks").json
    assert status(qa, v1["id"]) == "in_review"
    r = complete(qa, "qa2", pid, "ra_refused", {"rejection_reason": "one person reviewed and approved"})
    assert r.status_code == 200, r.json
    work(rt)
    assert status(qa, v1["id"]) == "draft"
    with pytest.raises(Exception, match="effective"):
        batches.start_batch(rt, "weigh_only", "B-NONE", user="op")

    # again, properly: reviewed by qa, approved by qa2
    pid = submit(qa, "alice", v1["id"])["approval_process"]
    assert pid == "QP-RA-weigh_only-v1-2"
    work(rt)
    assert review(qa, "qa", pid).status_code == 200
    assert approve_task(qa, "qa2", pid).status_code == 200
    work(rt)
    shown = qa.get(f"/api/recipes/{v1['id']}").json
    assert shown["status"] == "effective" and shown["approved_by"] == ["qa", "qa2"]
    batches.start_batch(rt, "weigh_only", "B-1", user="op")  # runs on v1, left running

    # QA changes the approval flow to need two approvers: approved under the old flow (one approver)
    flow2 = upload(qa, "qa", approval_flow(2), workflows.get("qa_recipe_approval").forms)
    pid = submit(qa, "qa", flow2["id"])["approval_process"]
    work(rt)
    assert review(qa, "qa2", pid).status_code == 200
    assert approve_task(qa, "quentin", pid).status_code == 200
    work(rt)
    assert status(qa, flow2["id"]) == "effective"
    assert status(qa, flow1["id"]) == "superseded"

    # the next recipe version needs two approvers, different people
    v2 = upload(qa, "alice", weigh(" Record the balance id."), {"weigh_form": weigh_form()})
    pid = submit(qa, "alice", v2["id"])["approval_process"]
    work(rt)
    with rt.transaction() as s:
        from engine.models import Batch, RecipeVersion

        process = s.query(Batch).filter_by(batch_id=pid).one()
        assert s.get(RecipeVersion, process.recipe_version_id).id == flow2["id"]
    assert review(qa, "qa", pid).status_code == 200
    assert approve_task(qa, "qa2", pid).status_code == 200
    work(rt)
    assert status(qa, v2["id"]) == "in_review"  # one approval is not enough now
    assert approve_task(qa, "quentin", pid).status_code == 200
    work(rt)
    shown = qa.get(f"/api/recipes/{v2['id']}").json
    assert shown["status"] == "effective" and shown["approved_by"] == ["qa", "qa2", "quentin"]
    assert status(qa, v1["id"]) == "superseded"

    # new batches take the effective version; the running batch keeps its own
    batches.start_batch(rt, "weigh_only", "B-2", user="op")
    assert qa.get("/api/batches/B-2").json["recipe_version_id"] == v2["id"]
    assert qa.get("/api/batches/B-1").json["recipe_version_id"] == v1["id"]
    r = complete(qa, "op", "B-1", "weigh", {"mass_g": "100"})
    assert r.status_code == 200 and r.json["batch"]["state"] == "complete"
    with rt.transaction() as s:
        assert recipes.effective_version(s, "weigh_only").id == v2["id"]


def test_reviewer_rejects_back_to_draft_and_retire_is_e_signed(qa):
    rt = qa.rt
    bootstrap(qa)
    v1 = upload(qa, "alice", weigh(), {"weigh_form": weigh_form()})
    key = {"Idempotency-Key": "submit-1"}
    first = submit(qa, "alice", v1["id"], **key)
    again = submit(qa, "alice", v1["id"], **key)
    assert again["approval_process"] == first["approval_process"]
    twice = qa.post(f"/api/recipes/{v1['id']}/submit", json={}, headers=qa.tokens["alice"])
    assert twice.status_code == 409 and twice.json["code"] == "recipe_not_draft"
    work(rt)
    pid = first["approval_process"]
    assert review(qa, "qa", pid, "reject").status_code == 200
    r = complete(qa, "qa", pid, "ra_reject", {"rejection_reason": "limits missing"})
    assert r.status_code == 200, r.json
    work(rt)
    assert status(qa, v1["id"]) == "draft"

    no_sig = qa.post(f"/api/recipes/{v1['id']}/retire", json={"reason": "x"}, headers=qa.tokens["qa"])
    assert no_sig.status_code == 422
    other = qa.post(
        f"/api/recipes/{v1['id']}/retire", json={"signature": sig("qa2"), "reason": "x"}, headers=qa.tokens["qa"]
    )
    assert other.status_code == 403
    wrong = qa.post(
        f"/api/recipes/{v1['id']}/retire",
        json={"signature": {**sig("qa"), "password": "nope"}, "reason": "replaced"},
        headers=qa.tokens["qa"],
    )
    assert wrong.status_code == 401
    ok = qa.post(
        f"/api/recipes/{v1['id']}/retire", json={"signature": sig("qa"), "reason": "replaced"}, headers=qa.tokens["qa"]
    )
    assert ok.status_code == 200 and ok.json["status"] == "retired"
    gone = qa.post(f"/api/recipes/{v1['id']}/submit", json={}, headers=qa.tokens["alice"])
    assert gone.status_code == 409


def test_submit_input_is_checked(qa):
    v1 = upload(qa, "alice", weigh(), {"weigh_form": weigh_form()})
    for body, code in (
        ({"comment": 5}, 422),
        ({"comment": "x" * 2001}, 422),
        ({"unknown": 1}, 422),
    ):
        r = qa.post(f"/api/recipes/{v1['id']}/submit", json=body, headers=qa.tokens["alice"])
        assert r.status_code == code, (body, r.json)
        assert set(r.json) >= {"code", "message"}
    assert qa.post("/api/recipes/999999/submit", json={}, headers=qa.tokens["alice"]).status_code == 404
    assert qa.post(f"/api/recipes/{v1['id']}/submit", json={}, headers=qa.tokens["op"]).status_code == 403
    # no approval flow is effective: no process; a QA person approves directly, later effective
    r = qa.post(f"/api/recipes/{v1['id']}/submit", json={}, headers=qa.tokens["alice"])
    assert r.status_code == 200 and r.json["approval_process"] is None
    later = qa.post(
        f"/api/recipes/{v1['id']}/approve",
        json={"signature": sig("qa"), "reason": "ok", "effective_from": "2999-01-01"},
        headers=qa.tokens["qa"],
    )
    assert later.status_code == 200 and later.json["status"] == "approved"
    assert later.json["effective_from"].startswith("2999-01-01")
    with pytest.raises(Exception, match="effective"):
        batches.start_batch(qa.rt, "weigh_only", "B-LATER", user="op")
    # an explicit approved version still starts
    assert batches.start_batch(qa.rt, "weigh_only", "B-EXPLICIT", user="op", version=1)


def test_concurrent_submits_one_wins(qa):
    v1 = upload(qa, "alice", weigh(), {"weigh_form": weigh_form()})
    code = (
        "import sys, json; from tests.support import make_runtime; from engine import recipe_lifecycle as l\n"
        "rt = make_runtime(sys.argv[1])\n"
        "try:\n    l.submit(rt, int(sys.argv[2]), user='alice'); print('ok')\n"
        "except Exception as e:\n    print(getattr(e, 'code', repr(e)))\n"
    )
    url = qa.rt.settings.database_url
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url, str(v1["id"])], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outs.count("ok") == 1, outs
    assert set(outs) - {"ok"} <= {"recipe_not_draft", "concurrent_change"}, outs
