"""The electronic batch record over the API (SQLite and PostgreSQL): signed steps with
re-authentication, limits (hard → 422 and nothing stored; alert/action → stored and an
exception raised), witness rules, lockout, corrections with reasons and superseded
signatures, and reassignment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from engine import users
from engine.batches import signed_content
from engine.models import Step
from tests.support import PASSWORD, approval

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
ME = {"username": "alice", "password": PASSWORD}
SV = {"username": "sv", "password": PASSWORD}
OP = {"username": "op", "password": PASSWORD}


@pytest.fixture
def signed(client):
    forms = {p.stem: json.loads(p.read_text()) for p in (RECIPES / "signed_forms").glob("*.json")}
    r = client.post(
        "/api/recipes", json={"bpmn": {"signed.bpmn": (RECIPES / "signed.bpmn").read_text()}, "forms": forms}
    )
    assert r.status_code == 201, r.json
    assert (
        client.post(
            f"/api/recipes/{r.json['id']}/approve", json=approval("quentin", "ok"), headers=client.auth["quentin"]
        ).status_code
        == 200
    )
    assert client.post("/api/batches", json={"recipe": "signed_steps", "batch_id": "S-1"}).status_code == 201
    return client


def task(client, bpmn_id="weigh"):
    tasks = {t["bpmn_id"]: t for t in client.get("/api/batches/S-1/tasks").json}
    return tasks[bpmn_id]["id"]


def complete(client, data, signature=ME, witness=None, bpmn_id="weigh", headers=None):
    body = {"data": data}
    if signature is not None:
        body["signature"] = signature
    if witness is not None:
        body["witness"] = witness
    return client.post(f"/api/batches/S-1/tasks/{task(client, bpmn_id)}/complete", json=body, headers=headers)


def steps(client):
    return client.get("/api/batches/S-1/steps").json


def test_signed_step_records_name_time_meaning_and_hash(signed, runtime):
    r = complete(signed, {"mass_g": 100.2, "comment": "ok"})
    assert r.status_code == 200, r.json
    (sig,) = r.json["step"]["signatures"]
    assert sig["printed_name"] == "Alice" and sig["meaning"] == "Performed" and sig["role"] == "performer"
    assert sig["signed_at"].endswith("+00:00")
    record = steps(signed)[0]
    assert record["signatures"] == [sig] and record["values"]["mass_g"] == "100.2" and record["units"]["mass_g"] == "g"
    with runtime.transaction() as s:  # the hash covers exactly what was recorded
        step = s.query(Step).one()
        assert sig["content_hash"] == signed_content("S-1", step, "Performed")


def test_unsigned_or_wrongly_signed_steps_store_nothing(signed):
    r = complete(signed, {"mass_g": 100.0}, signature=None)
    assert r.status_code == 422 and r.json["code"] == "signature_required"
    r = complete(signed, {"mass_g": 100.0}, signature={"username": "alice", "password": "wrong password!"})
    assert r.status_code == 401 and r.json["code"] == "auth_failed"
    r = complete(signed, {"mass_g": 100.0}, signature=OP)  # op's credentials on alice's request
    assert r.status_code == 403 and r.json["code"] == "sign_for_other"
    r = complete(signed, {"mass_g": 100.0}, signature={"username": "alice"})
    assert r.status_code == 422 and r.json["code"] == "validation_error"
    assert steps(signed) == []


def test_hard_limit_refused_alert_and_action_raise_exceptions(signed):
    r = complete(signed, {"mass_g": 1200})
    assert r.status_code == 422 and r.json["code"] == "form_invalid"
    assert "mass_g" in r.json["details"]["fields"]
    r = complete(signed, {"mass_g": "heavy"})
    assert r.status_code == 422 and "mass_g" in r.json["details"]["fields"]
    r = complete(signed, {"mass_g": 100, "unexpected": 1})
    assert r.status_code == 422 and "unexpected" in r.json["details"]["fields"]
    assert steps(signed) == []
    r = complete(signed, {"mass_g": 115})  # outside the alert limits, inside action
    assert r.status_code == 200
    (exc,) = r.json["exceptions"]
    # an alert breach of a critical parameter: major under the built-in rules, and open
    assert (exc["category"], exc["severity"], exc["parameter"]) == ("limit.alert", "major", "mass_g")
    (listed,) = signed.get("/api/batches/S-1/exceptions").json
    assert {k: listed[k] for k in exc} == exc and listed["dispositions"] == [] and listed["status"] == "open"


def test_witness_rules(signed):
    assert complete(signed, {"mass_g": 100}).status_code == 200
    r = complete(signed, {"transferred": True}, bpmn_id="transfer")
    assert r.status_code == 422 and r.json["code"] == "witness_required"
    r = complete(signed, {"transferred": True}, witness=ME, bpmn_id="transfer")
    assert r.status_code == 403 and r.json["code"] == "self_witness"
    r = complete(signed, {"transferred": True}, witness=OP, bpmn_id="transfer")  # op is no supervisor
    assert r.status_code == 403 and r.json["code"] == "witness_role"
    r = complete(
        signed, {"transferred": True}, witness={"username": "sv", "password": "not it at all"}, bpmn_id="transfer"
    )
    assert r.status_code == 401
    r = complete(signed, {"transferred": True}, witness=SV, bpmn_id="transfer")
    assert r.status_code == 200, r.json
    roles = [(s["role"], s["username"], s["meaning"]) for s in r.json["step"]["signatures"]]
    assert roles == [("performer", "alice", "Performed"), ("witness", "sv", "Verified")]
    assert signed.get("/api/batches/S-1").json["state"] == "complete"


def test_lockout_after_repeated_failures_is_audited(signed, runtime):
    bad = {"username": "alice", "password": "not the password"}
    for _ in range(runtime.settings.lockout_attempts - 1):
        assert complete(signed, {"mass_g": 100}, signature=bad).json["code"] == "auth_failed"
    r = complete(signed, {"mass_g": 100}, signature=bad)
    assert r.status_code == 401 and r.json["code"] == "account_locked"
    locked = signed.get("/api/batches/S-1/tasks")  # a locked account's tokens stop working too
    assert locked.status_code == 401 and locked.json["code"] == "token_invalid"
    with runtime.transaction() as s:
        actions = [a for (a,) in s.execute(text("SELECT action FROM audit_event WHERE object_id = 'alice'"))]
        events = [t for (t,) in s.execute(text("SELECT type FROM outbox_event"))]
    assert "user.locked" in actions and actions.count("auth.signature_failed") >= runtime.settings.lockout_attempts
    assert "org.batchline.security.user_locked" in events
    users.unlock(runtime, "alice", by="admin", reason="identity confirmed")
    assert complete(signed, {"mass_g": 100}).status_code == 200


def test_correction_keeps_the_original_and_supersedes_signatures(signed, runtime):
    assert complete(signed, {"mass_g": 101, "comment": "first"}).status_code == 200
    url = "/api/batches/S-1/steps/1/corrections"
    r = signed.post(url, json={"field": "mass_g", "value": 100.5, "signature": ME})
    assert r.status_code == 422  # the reason is mandatory
    r = signed.post(url, json={"field": "mass_g", "value": 5000, "reason": "typo", "signature": ME})
    assert r.status_code == 422 and r.json["code"] == "form_invalid"  # corrections pass the same checks
    r = signed.post(
        url, json={"field": "mass_g", "value": 100.5, "reason": "typo: read 101 for 100.5", "signature": ME}
    )
    assert r.status_code == 201, r.json
    record = steps(signed)[0]
    assert record["values"]["mass_g"] == "101" and record["current_values"]["mass_g"] == "100.5"
    assert record["corrections"][0]["old"] == "101" and record["corrections"][0]["reason"].startswith("typo")
    performer, corrector = record["signatures"]
    assert performer["superseded"] is True and corrector["role"] == "corrector" and not corrector["superseded"]
    # the calculated field follows the corrected value (recomputed by the form, recorded as a correction)
    assert record["values"]["mass_kg"] == "0.1010" and record["current_values"]["mass_kg"] == "0.1005"
    assert record["corrections"][1]["field"] == "mass_kg"
    assert record["corrections"][1]["reason"].startswith("recalculated after correcting mass_g")
    with runtime.transaction() as s:
        row = s.execute(
            text("SELECT old, new, reason FROM audit_event WHERE action = 'step.correct' AND field = 'step 1.mass_g'")
        ).one()
    assert row == ("101", "100.5", "typo: read 101 for 100.5")
    with runtime.transaction() as s:
        s.execute(text("UPDATE batch SET reviewed_at = CURRENT_TIMESTAMP"))
    r = signed.post(url, json={"field": "mass_g", "value": 100.7, "reason": "again", "signature": ME})
    assert r.status_code == 409 and r.json["code"] == "batch_reviewed"


def test_reassigned_task_only_for_the_assignee(signed, runtime):
    weigh = task(signed)
    r = signed.post(f"/api/batches/S-1/tasks/{weigh}/assign", json={"username": "op", "reason": "shift change"})
    assert r.status_code == 200 and r.json["assigned_to"] == "op"
    r = complete(signed, {"mass_g": 100})
    assert r.status_code == 403 and r.json["code"] == "task_assigned_elsewhere"
    op_token = users.create_token(runtime, "op", "t", by="test")
    op = {"Authorization": f"Bearer {op_token}"}
    mine = signed.get("/api/tasks", headers=op).json
    assert [(t["batch_id"], t["bpmn_id"]) for t in mine] == [("S-1", "weigh")]
    r = complete(signed, {"mass_g": 100}, signature=OP, headers=op)
    assert r.status_code == 200, r.json
    assert steps(signed)[0]["user"] == "op"


def test_replayed_signed_submit_stores_one_step(signed):
    weigh = task(signed)
    body = {"data": {"mass_g": 100}, "signature": ME}
    first = signed.post(f"/api/batches/S-1/tasks/{weigh}/complete", json=body, headers={"Idempotency-Key": "t-1"})
    again = signed.post(f"/api/batches/S-1/tasks/{weigh}/complete", json=body, headers={"Idempotency-Key": "t-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json == first.json
    assert len(steps(signed)) == 1


def test_diagram_marks_done_and_current(signed):
    complete(signed, {"mass_g": 100})
    d = signed.get("/api/batches/S-1/diagram").json
    assert "weigh" in d["done"] and d["current"] == ["transfer"] and "signed.bpmn" in d["bpmn"]


def test_attachment_uploaded_once_and_referenced_by_hash(signed):
    import hashlib
    import io

    content = b"%PDF-1.4 balance printout 100.2 g"
    r = signed.post(
        "/api/attachments",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(content), "printout.pdf", "application/pdf")},
    )
    assert r.status_code == 201, r.json
    ref = {k: r.json[k] for k in ("filename", "content_type", "sha256", "size")}
    assert ref["sha256"] == hashlib.sha256(content).hexdigest() and ref["size"] == len(content)
    again = signed.post(
        "/api/attachments",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(content), "printout.pdf", "application/pdf")},
    )
    assert again.json["sha256"] == ref["sha256"]  # stored once
    fake = {**ref, "sha256": "0" * 64}
    r = complete(signed, {"mass_g": 100, "printout": fake})
    assert r.status_code == 422 and "printout" in r.json["details"]["fields"]
    r = complete(signed, {"mass_g": 100, "printout": {**ref, "size": ref["size"] + 1}})
    assert r.status_code == 422
    r = complete(signed, {"mass_g": 100, "printout": ref})
    assert r.status_code == 200, r.json
    assert steps(signed)[0]["values"]["printout"]["sha256"] == ref["sha256"]
    got = signed.get(f"/api/attachments/{ref['sha256']}")
    assert got.status_code == 200 and got.data == content
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert signed.get("/api/attachments/" + "f" * 64).status_code == 404
    empty = signed.post(
        "/api/attachments",
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b""), "x.pdf", "application/pdf")},
    )
    assert empty.status_code == 422 and empty.json["code"] == "attachment_empty"


def test_hold_and_reassignment_say_who_why_and_when(signed, runtime):
    """The batch itself says who holds it, since when and why (not only the audit trail);
    resuming clears it. A reassignment keeps the supervisor's reason with the task."""
    r = signed.post("/api/batches/S-1/hold", json={"reason": "pH probe recalibration"})
    assert r.status_code == 200, r.json
    hold = signed.get("/api/batches/S-1").json["hold"]
    assert hold["by"] == "alice" and hold["reason"] == "pH probe recalibration" and hold["at"]
    assert signed.post("/api/batches/S-1/resume", json={"reason": "probe ok"}).status_code == 200
    assert signed.get("/api/batches/S-1").json["hold"] is None
    weigh = task(signed)
    r = signed.post(f"/api/batches/S-1/tasks/{weigh}/assign", json={"username": "op", "reason": "shift change"})
    assert r.status_code == 200
    with runtime.transaction() as s:
        assert s.execute(text("SELECT reason FROM task_assignment")).scalar_one() == "shift change"
