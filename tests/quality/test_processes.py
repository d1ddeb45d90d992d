"""Quality processes (engine.quality.processes / operations): QA's release and deviation
flows from workflows/qa/ run about a subject, on the same step path as a batch. A batch
completing starts its release flow; escalating an exception starts a deviation flow; the
flows act on their subject through the engine's operations, which apply the release
rules whatever the BPMN says. Through the API with real tokens and re-authenticated
signatures, the job executor run as a worker runs it, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

import workflows
from engine import audit, batches, jobs, users
from engine.models import AuditEvent, Batch, RecipeVersion
from engine.quality import release
from tests.support import PASSWORD, approved_recipe

FORMS = Path(__file__).resolve().parents[1] / "recipes" / "signed_forms"

WEIGH_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
  targetNamespace="https://batchline.example/tests" id="defs_weigh">
  <bpmn:process id="weigh_only" name="Weigh glucose" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="weigh" name="Weigh glucose">
      <bpmn:extensionElements>
        <spiffworkflow:properties><spiffworkflow:property name="formKey" value="weigh_form"/></spiffworkflow:properties>
        <spiffworkflow:instructionsForEndUser>Weigh 100 g of glucose.</spiffworkflow:instructionsForEndUser>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="weigh"/>
    <bpmn:sequenceFlow id="f2" sourceRef="weigh" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def weigh_form() -> dict:
    """The signed weighing form, not a critical parameter: 125 g is a *major* action-limit
    breach (two QA signatures to accept, blocks release, no automatic deviation)."""
    form = json.loads((FORMS / "weigh_form.json").read_text())
    for c in form["components"]:
        c.get("properties", {}).pop("critical", None)
    return form


def import_flow(rt, key: str, *, documentation: str | None = None) -> RecipeVersion:
    entry = workflows.get(key)
    files = dict(entry.files)
    if documentation:  # a changed flow: a new version
        name = next(iter(files))
        files[name] = files[name].replace(b"<bpmn:documentation>", f"<bpmn:documentation>{documentation} ".encode(), 1)
    return approved_recipe(rt, files, forms=entry.forms, user="qa.lead")


@pytest.fixture
def qa_api(client, runtime):
    """The QA flows and a one-step production recipe approved; tokens for op, qa, qa2, alice."""
    import_flow(runtime, "qa_batch_release")
    import_flow(runtime, "qa_deviation")
    approved_recipe(runtime, {"weigh_only.bpmn": WEIGH_BPMN}, forms={"weigh_form": weigh_form()}, user="qa.lead")
    client.tokens = {
        name: {"Authorization": "Bearer " + users.create_token(runtime, name, "processes", by="test")}
        for name in ("op", "qa", "qa2", "alice", "quentin")
    }
    client.rt = runtime
    return client


def signed(who: str, meaning: str | None = None) -> dict:
    sig = {"username": who, "password": PASSWORD}
    if meaning:
        sig["meaning"] = meaning
    return sig


def my_tasks(client, who: str) -> list[dict]:
    r = client.get("/api/tasks", headers=client.tokens[who])
    assert r.status_code == 200, r.json
    return r.json


def complete(client, who: str, batch_id: str, bpmn_id: str, data: dict):
    (task,) = [t for t in client.get(f"/api/batches/{batch_id}/tasks").json if t["bpmn_id"] == bpmn_id]
    return client.post(
        f"/api/batches/{batch_id}/tasks/{task['id']}/complete",
        json={"data": data, "signature": signed(who)},
        headers=client.tokens[who],
    )


def make_batch(client, batch_id: str, mass: str, performer: str = "op") -> None:
    """A production batch whose one step ``performer`` signs; it completes."""
    batches.start_batch(client.rt, "weigh_only", batch_id, user=performer)
    r = complete(client, performer, batch_id, "weigh", {"mass_g": mass})
    assert r.status_code == 200, r.json
    assert r.json["batch"]["state"] == "complete"


def work(rt) -> None:
    """Run the job executor until nothing is due (as a worker would)."""
    while jobs.run_due(rt):
        pass


def process(rt, process_id: str) -> Batch | None:
    with rt.transaction() as s:
        row = s.scalars(select(Batch).where(Batch.batch_id == process_id)).first()
        if row is not None:
            s.expunge(row)
        return row


def audit_actions(rt, object_id: str) -> list[str]:
    with rt.transaction() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.object_id == object_id)))


def last_step(client, batch_id: str) -> dict:
    return client.get(f"/api/batches/{batch_id}/steps").json[-1]


def review_and_release(client, who: str, process_id: str) -> None:
    r = complete(client, who, process_id, "br_exception_review", {"disposition": "release", "lims_conform": True})
    assert r.status_code == 200, r.json
    r = complete(client, who, process_id, "br_release", {"release_statement": True})
    assert r.status_code == 200, r.json
    assert r.json["step"]["signatures"][0]["meaning"] == "Released"


# --- release flow ------------------------------------------------------------------------


def test_completing_a_batch_starts_its_release_flow_for_qa(qa_api):
    rt = qa_api.rt
    make_batch(qa_api, "B-1", "100.0")
    assert process(rt, "QP-REL-B-1") is None  # started by the job executor, off the step
    work(rt)
    qp = process(rt, "QP-REL-B-1")
    assert (qp.kind, qp.subject_type, qp.subject_id, qp.state) == ("quality", "batch", "B-1", "running")
    # QA sees the review task, with what it is about; the operator does not
    mine = [t for t in my_tasks(qa_api, "qa") if t["batch_id"] == "QP-REL-B-1"]
    assert [t["bpmn_id"] for t in mine] == ["br_exception_review"]
    assert [t for t in my_tasks(qa_api, "op") if t["batch_id"].startswith("QP-")] == []
    assert batches.my_tasks(rt, users.person(rt, "qa"))[0]["subject"] == {"type": "batch", "id": "B-1"}
    # production lists leave the quality process out
    assert [b["batch_id"] for b in qa_api.get("/api/batches").json] == ["B-1"]
    assert [b["batch_id"] for b in batches.list_batches(rt, kind="quality")] == ["QP-REL-B-1"]
    # a second run of the same job (lost completion) starts nothing new
    from engine.quality.processes import start_scheduled

    start_scheduled(rt, "B-1", None, {"flow": "release"})
    assert len(batches.list_batches(rt, kind="quality")) == 1


def test_the_release_flow_releases_a_clean_batch_with_its_signer(qa_api):
    rt = qa_api.rt
    make_batch(qa_api, "B-2", "100.0")
    work(rt)
    # the operator cannot do QA's task
    r = complete(qa_api, "op", "QP-REL-B-2", "br_exception_review", {"disposition": "release"})
    assert r.status_code == 403, r.json
    review_and_release(qa_api, "qa", "QP-REL-B-2")
    assert batches.get_batch(rt, "B-2")["state"] == "complete"  # the service task runs in the executor
    work(rt)
    batch = batches.get_batch(rt, "B-2")
    assert batch["state"] == "released"
    assert (batch["release"]["username"], batch["release"]["meaning"]) == ("qa", "Released")
    assert "QP-REL-B-2" in batch["release"]["comment"]
    assert process(rt, "QP-REL-B-2").state == "complete"
    step = last_step(qa_api, "QP-REL-B-2")
    assert (step["bpmn_id"], step["values"]["batch_state"], step["values"]["decided_by"]) == (
        "br_release_batch",
        "released",
        "qa",
    )
    assert jobs.incidents(rt) == []
    assert "batch.released" in audit_actions(rt, "B-2")


def test_the_flow_cannot_release_what_the_rules_block(qa_api):
    """An open action-limit exception: the BPMN asks, the engine refuses (BPMN error caught
    by the flow), the batch stays complete and the reason is in the process's record."""
    rt = qa_api.rt
    make_batch(qa_api, "B-3", "125.0")
    (exc,) = batches.exceptions(rt, "B-3")
    assert exc["status"] == "open" and exc["blocks_release"]
    work(rt)
    review_and_release(qa_api, "qa", "QP-REL-B-3")
    work(rt)
    assert batches.get_batch(rt, "B-3")["state"] == "complete"
    step = last_step(qa_api, "QP-REL-B-3")
    assert step["values"]["error_code"] == "release_blocked"
    assert "release_blocked" in step["values"]["error"] and exc["message"] in step["values"]["error"]
    assert [t["bpmn_id"] for t in qa_api.get("/api/batches/QP-REL-B-3/tasks").json] == ["br_refused"]
    assert jobs.incidents(rt) == []


def test_the_flow_cannot_release_through_someone_who_performed_a_step(qa_api):
    """alice holds operator and QA: she weighed, so QA's tasks about the batch are not hers
    — refused at the task, before any password, whatever the BPMN says; the engine
    operation batch.release checks the releaser again (tests/quality/test_release_api.py)."""
    from engine.models import AuthFailure

    rt = qa_api.rt
    make_batch(qa_api, "B-4", "100.0", performer="alice")
    work(rt)
    r = complete(qa_api, "alice", "QP-REL-B-4", "br_exception_review", {"disposition": "release", "lims_conform": True})
    assert r.status_code == 403 and r.json["code"] == "segregation_of_duties", r.json
    assert "B-4" in r.json["message"]
    with rt.transaction() as s:
        assert s.query(AuthFailure).count() == 0  # refused before the password was read
    assert batches.get_batch(rt, "B-4")["state"] == "complete"
    assert batches.steps(rt, "QP-REL-B-4") == []
    review_and_release(qa_api, "qa", "QP-REL-B-4")  # another QA person may
    work(rt)
    assert batches.get_batch(rt, "B-4")["state"] == "released"


def test_the_reject_path_rejects_with_the_rejected_signer(qa_api):
    rt = qa_api.rt
    make_batch(qa_api, "B-5", "125.0")
    work(rt)
    r = complete(qa_api, "qa", "QP-REL-B-5", "br_exception_review", {"disposition": "reject"})
    assert r.status_code == 200, r.json
    r = complete(qa_api, "qa", "QP-REL-B-5", "br_reject", {"reject_reason": "Mass far out of limits."})
    assert r.status_code == 200, r.json
    assert r.json["step"]["signatures"][0]["meaning"] == "Rejected"
    work(rt)
    batch = batches.get_batch(rt, "B-5")
    assert batch["state"] == "rejected"
    assert batch["release"]["meaning"] == "Rejected" and "Mass far out of limits." in batch["release"]["comment"]
    assert process(rt, "QP-REL-B-5").state == "complete"


def test_releasing_through_the_api_ends_the_release_flow(qa_api):
    rt = qa_api.rt
    make_batch(qa_api, "B-6", "100.0")
    work(rt)
    assert any(t["batch_id"] == "QP-REL-B-6" for t in my_tasks(qa_api, "qa"))
    r = qa_api.post(
        "/api/batches/B-6/release",
        json={"signature": signed("quentin", "Released"), "comment": "reviewed on the review page"},
        headers={**qa_api.tokens["quentin"], "Idempotency-Key": "rel-b6"},
    )
    assert r.status_code == 200, r.json
    qp = process(rt, "QP-REL-B-6")
    assert qp.state == "complete"
    assert not any(t["batch_id"] == "QP-REL-B-6" for t in my_tasks(qa_api, "qa"))
    assert qa_api.get("/api/batches/QP-REL-B-6/tasks").json == []
    assert "quality_process.cancelled" in audit_actions(rt, "QP-REL-B-6")
    work(rt)
    assert jobs.incidents(rt) == []


# --- deviation flow ------------------------------------------------------------------------


def escalate(client, batch_id: str, exc_id: int, who: str = "qa"):
    return client.post(
        f"/api/batches/{batch_id}/exceptions/{exc_id}/disposition",
        json={"decision": "escalate", "justification": "Needs a deviation.", "signature": signed(who, "Reviewed")},
        headers=client.tokens[who],
    )


def test_escalating_starts_a_deviation_flow_that_blocks_release_until_it_closes(qa_api):
    rt = qa_api.rt
    make_batch(qa_api, "B-7", "125.0")
    (exc,) = batches.exceptions(rt, "B-7")
    r = escalate(qa_api, "B-7", exc["id"])
    assert r.status_code == 200 and r.json["status"] == "escalated", r.json
    work(rt)
    pid = f"QP-DEV-B-7-{exc['id']}"
    qp = process(rt, pid)
    assert (qp.kind, qp.subject_type, qp.subject_id, qp.state) == ("quality", "exception", str(exc["id"]), "running")
    # the deviation flow stands between the batch and its release; the release flow does not
    kinds = {(i["kind"], i.get("id")) for i in release.blocking(rt, "B-7")["blocking"]}
    assert ("quality_process", pid) in kinds
    assert ("quality_process", "QP-REL-B-7") not in kinds
    r = qa_api.post(
        "/api/batches/B-7/release",
        json={"signature": signed("quentin", "Released"), "comment": ""},
        headers=qa_api.tokens["quentin"],
    )
    assert r.status_code == 409 and r.json["code"] == "release_blocked", r.json
    assert any(i["kind"] == "quality_process" for i in r.json["details"]["blocking"])
    # the flow runs: the operator reports, QA triages (minor) and closes
    assert [t["bpmn_id"] for t in my_tasks(qa_api, "op") if t["batch_id"] == pid] == ["dv_report"]
    r = complete(
        qa_api,
        "op",
        pid,
        "dv_report",
        {"occurred_at": "2025-03-01T08:00:00+00:00", "dv_description": "Overweighed.", "immediate_action": "None."},
    )
    assert r.status_code == 200, r.json
    r = complete(qa_api, "qa", pid, "dv_triage", {"classification": "minor", "triage_rationale": "No impact."})
    assert r.status_code == 200, r.json
    r = complete(
        qa_api,
        "qa",
        pid,
        "dv_closure",
        {"record_complete": True, "batch_disposition_impact": "none", "closure_summary": "Closed, no impact."},
    )
    assert r.status_code == 200, r.json
    work(rt)
    assert process(rt, pid).state == "complete"
    (exc,) = batches.exceptions(rt, "B-7")
    assert exc["status"] == "closed"
    assert exc["dispositions"][-1]["decision"] == "close" and exc["dispositions"][-1]["username"] == "qa"
    assert release.blocking(rt, "B-7")["blocking"] == []
    # now the release flow releases it
    review_and_release(qa_api, "qa2", "QP-REL-B-7")
    work(rt)
    assert batches.get_batch(rt, "B-7")["state"] == "released"
    assert jobs.incidents(rt) == []
    with rt.transaction() as s:  # both flows' records and decisions are bound into the trail
        result = audit.verify(s, settings=rt.settings, signatures=True)
    assert result.ok, result.problems


# --- versions ------------------------------------------------------------------------------


def test_a_running_process_keeps_its_version_and_a_new_one_starts_on_the_newest(qa_api):
    rt = qa_api.rt
    make_batch(qa_api, "B-8", "100.0")
    work(rt)
    first = process(rt, "QP-REL-B-8").recipe_version_id
    v2 = import_flow(rt, "qa_batch_release", documentation="Site change 2.")
    assert v2.id != first
    assert process(rt, "QP-REL-B-8").recipe_version_id == first
    make_batch(qa_api, "B-9", "100.0")
    work(rt)
    assert process(rt, "QP-REL-B-9").recipe_version_id == v2.id
    # the old version still runs to its end
    review_and_release(qa_api, "qa", "QP-REL-B-8")
    work(rt)
    assert batches.get_batch(rt, "B-8")["state"] == "released"


def test_without_an_approved_release_flow_no_process_starts_and_the_api_releases(client, runtime):
    approved_recipe(runtime, {"weigh_only.bpmn": WEIGH_BPMN}, forms={"weigh_form": weigh_form()}, user="qa.lead")
    client.tokens = {
        n: {"Authorization": "Bearer " + users.create_token(runtime, n, "t", by="test")} for n in ("op", "quentin")
    }
    client.rt = runtime
    make_batch(client, "B-10", "100.0")
    work(runtime)
    assert batches.list_batches(runtime, kind="quality") == []
    assert "quality_process.not_started" in audit_actions(runtime, "B-10")
    assert jobs.incidents(runtime) == []
    r = client.post(
        "/api/batches/B-10/release",
        json={"signature": signed("quentin", "Released"), "comment": ""},
        headers=client.tokens["quentin"],
    )
    assert r.status_code == 200, r.json
