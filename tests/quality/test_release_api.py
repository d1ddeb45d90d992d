"""Review by exception and release over the API (SQLite and PostgreSQL): exceptions carry
the rule set's severity and needs, QA dispositions them with e-signatures (one or two
different people), release is refused while anything blocks it and for anyone who took
part in the batch, and the release itself is signed, audited and final."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine import audit
from engine.models import BatchDisposition, ExceptionDisposition, OutboxEvent
from engine.quality import rules
from tests.support import PASSWORD, approval

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def sig(user: str, meaning: str | None = None) -> dict:
    out = {"username": user, "password": PASSWORD}
    if meaning:
        out["meaning"] = meaning
    return out


@pytest.fixture
def approved_rules(client):
    r = client.post("/api/rules", json=rules.default_content(), headers=client.auth["quentin"])
    assert r.status_code == 201, r.json
    a = client.post(f"/api/rules/{r.json['version']}/approve", json={"signature": sig("qa")}, headers=client.auth["qa"])
    assert a.status_code == 200, a.json
    return a.json


@pytest.fixture
def batch(client, approved_rules):
    """S-1 of the signed recipe, run by op (weigh: mass_g, a critical parameter) and
    witnessed by sv; returns a function completing it with a given mass."""
    forms = {p.stem: json.loads(p.read_text()) for p in (RECIPES / "signed_forms").glob("*.json")}
    r = client.post(
        "/api/recipes", json={"bpmn": {"signed.bpmn": (RECIPES / "signed.bpmn").read_text()}, "forms": forms}
    )
    assert r.status_code == 201, r.json
    ok = client.post(
        f"/api/recipes/{r.json['id']}/approve", json=approval("quentin", "ok"), headers=client.auth["quentin"]
    )
    assert ok.status_code == 200
    assert client.post("/api/batches", json={"recipe": "signed_steps", "batch_id": "S-1"}).status_code == 201

    def run(mass: float, performer: str = "op") -> list[dict]:
        raised = []
        for bpmn_id, data, witness in (
            ("weigh", {"mass_g": mass}, None),
            ("transfer", {"transferred": True}, sig("sv")),
        ):
            tasks = {t["bpmn_id"]: t["id"] for t in client.get("/api/batches/S-1/tasks").json}
            body = {"data": data, "signature": sig(performer)}
            if witness:
                body["witness"] = witness
            done = client.post(
                f"/api/batches/S-1/tasks/{tasks[bpmn_id]}/complete", json=body, headers=client.auth[performer]
            )
            assert done.status_code == 200, done.json
            raised += done.json["exceptions"]
        assert client.get("/api/batches/S-1").json["state"] == "complete"
        return raised

    return run


def dispose(client, exc_id, user, decision="accept", key=None, meaning="Reviewed"):
    headers = dict(client.auth[user])
    if key:
        headers["Idempotency-Key"] = key
    return client.post(
        f"/api/batches/S-1/exceptions/{exc_id}/disposition",
        json={
            "decision": decision,
            "justification": "within validated range of the process",
            "signature": sig(user, meaning),
        },
        headers=headers,
    )


def release(client, user, comment="record reviewed by exception"):
    return client.post(
        "/api/batches/S-1/release",
        json={"signature": sig(user, "Released"), "comment": comment},
        headers=client.auth[user],
    )


def test_a_critical_action_breach_needs_two_qa_signatures_then_the_batch_releases(client, runtime, batch):
    (raised,) = batch(125)
    assert (raised["category"], raised["severity"], raised["signatures_required"]) == ("limit.action", "critical", 2)
    (exc,) = client.get("/api/batches/S-1/exceptions").json
    assert exc["value"] == "125" and exc["limits"]["actionHigh"] == "120" and exc["limits"]["unit"] == "g"
    assert exc["raised_by"] == "op" and exc["rule_set_version"] == 1 and exc["opens_deviation"] is True
    with runtime.transaction() as s:  # a critical breach asks the QMS for a deviation, in the step's transaction
        requested = s.scalars(
            select(OutboxEvent).where(OutboxEvent.type == "org.batchline.qms.deviation.requested")
        ).all()
        assert [e.data["exception"]["id"] for e in requested] == [exc["id"]]
        assert (
            requested[0].data["limits"]["actionHigh"] == "120" and requested[0].data["recipe"]["key"] == "signed_steps"
        )

    blocked = release(client, "qa2")
    assert blocked.status_code == 409 and blocked.json["code"] == "release_blocked"
    assert [(b["kind"], b["id"]) for b in blocked.json["details"]["blocking"]] == [("exception", exc["id"])]
    assert client.get("/api/batches/S-1/release").json["releasable"] is False

    first = dispose(client, exc["id"], "quentin")
    assert first.status_code == 200, first.json
    assert (first.json["status"], first.json["signatures_given"]) == ("open", 1)
    again = dispose(client, exc["id"], "quentin")
    assert again.status_code == 403 and again.json["code"] == "second_signature_same_person"
    second = dispose(client, exc["id"], "qa", meaning="Approved")
    assert second.status_code == 200 and second.json["status"] == "accepted"
    assert [d["printed_name"] for d in second.json["dispositions"]] == ["Quentin", "Qa"]
    assert all(len(d["content_hash"]) == 64 for d in second.json["dispositions"])

    done = release(client, "qa2")
    assert done.status_code == 200, done.json
    assert done.json["state"] == "released" and done.json["disposition"]["meaning"] == "Released"
    shown = client.get("/api/batches/S-1").json
    assert shown["state"] == "released" and shown["release"]["username"] == "qa2"
    twice = release(client, "qa2")
    assert twice.status_code == 409 and twice.json["code"] == "batch_released"
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(BatchDisposition)) == 1
        assert audit.verify(s, settings=runtime.settings).ok  # dispositions and the release are bound into the trail


def test_who_took_part_in_a_batch_cannot_release_it(client, batch):
    batch(100, performer="alice")  # alice holds QA too, and performed the steps
    refused = release(client, "alice")
    assert refused.status_code == 403 and refused.json["code"] == "segregation_of_duties"
    assert client.get("/api/batches/S-1").json["state"] == "complete"
    witness = release(client, "sv")  # the witness is no QA: the permission matrix refuses first
    assert witness.status_code == 403 and witness.json["code"] == "forbidden"


def test_nobody_releases_a_running_batch_and_operators_cannot_release_at_all(client, batch):
    blocked = release(client, "qa2")  # S-1 is still running
    assert blocked.json["code"] == "release_blocked" and blocked.json["details"]["blocking"][0]["kind"] == "state"
    r = client.post("/api/batches/S-1/release", json={"signature": sig("op", "Released")}, headers=client.auth["op"])
    assert r.status_code == 403 and r.json["code"] == "forbidden"


def test_an_alert_breach_on_a_critical_parameter_is_not_closed_by_the_system(client, batch):
    (raised,) = batch(112)
    assert (raised["category"], raised["severity"], raised["status"]) == ("limit.alert", "major", "open")


def test_escalation_asks_for_a_deviation_and_blocks_release(client, runtime, batch):
    (raised,) = batch(125)
    r = dispose(client, raised["id"], "quentin", decision="escalate")
    assert r.status_code == 200 and r.json["status"] == "escalated"
    assert release(client, "qa2").json["details"]["blocking"][0]["status"] == "escalated"
    assert dispose(client, raised["id"], "qa").json["code"] == "exception_not_open"


def test_disposition_replay_wrong_input_and_wrong_people(client, runtime, batch):
    (raised,) = batch(125)
    url = f"/api/batches/S-1/exceptions/{raised['id']}/disposition"
    first = dispose(client, raised["id"], "quentin", key="k-1")
    replay = dispose(client, raised["id"], "quentin", key="k-1")
    assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json == first.json
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ExceptionDisposition)) == 1
    h = client.auth["qa"]
    cases = [
        ({"decision": "accept", "signature": sig("qa")}, 422),  # no justification
        ({"decision": "waive", "justification": "x", "signature": sig("qa")}, 422),
        ({"decision": "accept", "justification": 5, "signature": sig("qa")}, 422),
        ({"decision": "accept", "justification": "x" * 2001, "signature": sig("qa")}, 422),
        ({"decision": "accept", "justification": "x"}, 422),  # unsigned
        ({"decision": "accept", "justification": "x", "signature": {"username": "qa", "password": "wrong!"}}, 401),
        ({"decision": "accept", "justification": "x", "signature": sig("quentin")}, 403),  # signing for another
        ({"decision": "accept", "justification": "x", "signature": sig("qa", "Performed")}, 422),
    ]
    for body, status in cases:
        r = client.post(url, json=body, headers=h)
        assert r.status_code == status, (body, r.json)
        assert set(r.json) >= {"code", "message"}
    op = client.post(
        url, json={"decision": "accept", "justification": "x", "signature": sig("op")}, headers=client.auth["op"]
    )
    assert op.status_code == 403
    missing = client.post(
        "/api/batches/S-1/exceptions/999999/disposition",
        json={"decision": "accept", "justification": "x", "signature": sig("qa")},
        headers=h,
    )
    assert missing.status_code == 404 and missing.json["code"] == "exception_not_found"
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(ExceptionDisposition)) == 1  # nothing more stored


def test_reject_needs_a_reason_and_is_final(client, batch):
    batch(125)
    r = client.post("/api/batches/S-1/reject", json={"signature": sig("qa2", "Rejected")}, headers=client.auth["qa2"])
    assert r.status_code == 422 and r.json["code"] == "comment_required"
    r = client.post(
        "/api/batches/S-1/reject",
        json={"signature": sig("qa2", "Rejected"), "comment": "action limit"},
        headers=client.auth["qa2"],
    )
    assert r.status_code == 200 and r.json["state"] == "rejected"
    assert release(client, "qa").json["code"] == "batch_rejected"


def test_exceptions_filter_by_status_and_severity(client, batch):
    batch(125)
    assert len(client.get("/api/batches/S-1/exceptions?status=open&severity=critical").json) == 1
    assert client.get("/api/batches/S-1/exceptions?status=accepted").json == []
    assert client.get("/api/batches/S-1/exceptions?severity=huge").status_code == 422


def test_the_released_record_prints_and_exports_its_dispositions_and_release(client, batch):
    import io

    from lxml import etree
    from pypdf import PdfReader

    (raised,) = batch(125)
    dispose(client, raised["id"], "quentin")
    dispose(client, raised["id"], "qa", meaning="Approved")
    assert release(client, "qa2").status_code == 200
    pdf = client.get("/api/batches/S-1/record.pdf")
    assert pdf.status_code == 200
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    flat = " ".join(text.split())
    for expected in ("S-1", "Quentin", "Qa", "Qa2", "Approved", "Reviewed", "Released", "limit check", "accepted"):
        assert expected in flat, expected
    record = client.get("/api/batches/S-1/record.json").json
    (exc,) = record["exceptions"]
    assert [d["username"] for d in exc["dispositions"]] == ["quentin", "qa"]
    xml = client.get("/api/batches/S-1/record.xml")
    assert xml.status_code == 200 and b"Released" in xml.data
    etree.fromstring(xml.data)  # well-formed; the server validated it against BatchML before serving


def test_an_exception_waved_through_in_the_database_blocks_release_and_fails_verification(client, runtime, batch):
    from sqlalchemy import text

    (raised,) = batch(125)
    with runtime.transaction() as s:  # someone with database access, not through Batchline
        s.execute(
            text("UPDATE batch_exception SET blocks_release = :f, status = 'accepted', signatures_required = 1"),
            {"f": False},
        )
    check = client.get("/api/batches/S-1/release").json
    assert check["releasable"] is False
    assert [(b["kind"], b["id"]) for b in check["blocking"]] == [("data_integrity", raised["id"])]
    assert release(client, "qa2").json["code"] == "release_blocked"
    with runtime.transaction() as s:
        result = audit.verify(s, settings=runtime.settings)
    assert not result.ok and any("changed since it was raised" in p for p in result.problems)


def test_importing_rules_replays_with_its_idempotency_key_and_refuses_bad_rules(client, runtime):
    headers = {**client.auth["quentin"], "Idempotency-Key": "rules-1"}
    first = client.post("/api/rules", json=rules.default_content(), headers=headers)
    again = client.post("/api/rules", json=rules.default_content(), headers=headers)
    assert first.status_code == again.status_code == 201 and first.json == again.json
    assert [r["version"] for r in client.get("/api/rules", headers=client.auth["quentin"]).json] == [1]
    bad = rules.default_content()
    bad["categories"]["limit.alert"] = {**bad["categories"]["limit.alert"], "signatures": 3}
    r = client.post("/api/rules", json=bad, headers=client.auth["quentin"])
    assert r.status_code == 422 and "limit.alert" in str(r.json["details"])
    other = client.post("/api/rules", json={"categories": {"made.up": {}}}, headers=client.auth["quentin"])
    assert other.status_code == 422
    own = client.post("/api/rules/1/approve", json={"signature": sig("quentin")}, headers=client.auth["quentin"])
    assert own.status_code == 403 and own.json["code"] == "author_cannot_approve"
    op = client.post("/api/rules", json=rules.default_content(), headers=client.auth["op"])
    assert op.status_code == 403
