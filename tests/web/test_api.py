"""Every API endpoint's ordinary use, end to end on a real (SQLite) database."""

from __future__ import annotations

import io
import json

from engine import jobs
from engine.connectors import Pending
from tests.support import approval, make_runtime
from tests.web.through_api import EXCHANGE_BPMN, LOOP_BPMN, import_recipe, start_batch


def test_recipe_import_json_then_list_show_approve_retire(client):
    created = client.post("/api/recipes", json={"bpmn": {"loop.bpmn": LOOP_BPMN}}, headers=client.auth["alice"])
    assert created.status_code == 201
    rv = created.json
    assert {k: rv[k] for k in ("recipe", "version", "status")} == {
        "recipe": "sampling_loop",
        "version": 1,
        "status": "draft",
    }
    assert len(rv["content_hash"]) == 64

    again = client.post("/api/recipes", json={"bpmn": {"loop.bpmn": LOOP_BPMN}}, headers=client.auth["alice"])
    assert again.json["id"] == rv["id"]  # same content, same version

    listed = client.get("/api/recipes")
    assert [r["id"] for r in listed.json] == [rv["id"]]

    shown = client.get(f"/api/recipes/{rv['id']}")
    assert shown.status_code == 200
    assert shown.json["bpmn"] == {"loop.bpmn": LOOP_BPMN}
    assert shown.json["forms"] == {}

    own = client.post(
        f"/api/recipes/{rv['id']}/approve", json=approval("alice", "reviewed"), headers=client.auth["alice"]
    )
    assert own.status_code == 403 and own.json["code"] == "author_cannot_approve"
    approved = client.post(
        f"/api/recipes/{rv['id']}/approve", json=approval("quentin", "reviewed"), headers=client.auth["quentin"]
    )
    assert approved.status_code == 200 and approved.json["status"] == "effective"
    assert approved.json["approved_by"] == ["quentin"] and approved.json["effective_from"]
    unsigned = client.post(f"/api/recipes/{rv['id']}/retire", json={"reason": "x"}, headers=client.auth["alice"])
    assert unsigned.status_code == 422
    retired = client.post(
        f"/api/recipes/{rv['id']}/retire", json=approval("alice", "superseded"), headers=client.auth["alice"]
    )
    assert retired.status_code == 200 and retired.json["status"] == "retired"


def test_recipe_import_multipart_with_forms_and_key(client):
    form = {
        "id": "sample_form",
        "type": "default",
        "components": [{"id": "Field_reading", "type": "number", "key": "reading", "label": "Reading"}],
    }
    r = client.post(
        "/api/recipes",
        headers=client.auth["alice"],
        content_type="multipart/form-data",
        data={
            "bpmn": [(io.BytesIO(LOOP_BPMN.encode()), "loop.bpmn")],
            "forms": [(io.BytesIO(json.dumps(form).encode()), "sample.json")],
            "recipe": "sampling",
        },
    )
    assert r.status_code == 201, r.json
    assert r.json["recipe"] == "sampling" and r.json["status"] == "draft"
    assert client.get(f"/api/recipes/{r.json['id']}").json["forms"] == {"sample_form": form}


def test_recipe_validate(client):
    ok = client.post("/api/recipes/validate", json={"bpmn": {"loop.bpmn": LOOP_BPMN}})
    assert ok.status_code == 200 and ok.json == {"ok": True, "problems": []}

    broken = LOOP_BPMN.replace('targetRef="end"', 'targetRef="nowhere"')
    bad = client.post(
        "/api/recipes/validate",
        content_type="multipart/form-data",
        data={"bpmn": [(io.BytesIO(broken.encode()), "loop.bpmn")]},
    )
    assert bad.status_code == 200
    assert bad.json["ok"] is False and bad.json["problems"]
    assert set(bad.json["problems"][0]) == {"code", "message", "element_id", "file", "line"}


def test_batch_loop_through_the_api(client, batch):
    assert batch["state"] == "running" and batch["recipe"]["recipe"] == "sampling_loop"
    assert [b["batch_id"] for b in client.get("/api/batches").json] == ["B-001"]
    assert [b["batch_id"] for b in client.get("/api/batches?state=running").json] == ["B-001"]
    assert client.get("/api/batches?state=complete").json == []

    tasks = client.get("/api/batches/B-001/tasks").json
    assert [(t["bpmn_id"], t["instructions"]) for t in tasks] == [
        ("take_sample", "Take a sample and record the reading.")
    ]

    first = client.post(
        f"/api/batches/B-001/tasks/{tasks[0]['id']}/complete",
        json={"data": {"reading": 7.1, "done": False}},
        headers=client.auth["alice"],
    )
    assert first.status_code == 200, first.json
    assert first.json["step"]["seq"] == 1 and first.json["batch"]["state"] == "running"
    next_id = first.json["next_tasks"][0]["id"]

    last = client.post(
        f"/api/batches/B-001/tasks/{next_id}/complete",
        json={"data": {"reading": 7.3, "done": True}},
        headers=client.auth["alice"],
    )
    assert last.status_code == 200
    assert last.json["batch"]["state"] == "complete" and last.json["next_tasks"] == []

    steps = client.get("/api/batches/B-001/steps").json
    assert [(s["seq"], s["user"], s["values"]["reading"]) for s in steps] == [(1, "alice", 7.1), (2, "alice", 7.3)]
    shown = client.get("/api/batches/B-001").json
    assert shown["state"] == "complete" and shown["steps"] == 2 and shown["incidents"] == []
    assert client.get("/api/batches/B-001/tasks").json == []


def test_start_batch_by_version_id_and_version(client):
    rv = import_recipe(client)
    by_id = client.post("/api/batches", json={"recipe": rv["id"], "batch_id": "B-1"}, headers=client.auth["alice"])
    assert by_id.status_code == 201 and by_id.json["recipe"]["id"] == rv["id"]
    by_version = client.post(
        "/api/batches",
        json={
            "recipe": "sampling_loop",
            "batch_id": "B-2",
            "version": 1,
            "parameters": {"volume_l": 200.0, "line": "A"},
        },
        headers=client.auth["alice"],
    )
    assert by_version.status_code == 201
    assert by_version.json["parameters"] == {"volume_l": 200.0, "line": "A"}


def test_hold_resume_abort(client, batch):
    held = client.post("/api/batches/B-001/hold", json={"reason": "pH probe check"}, headers=client.auth["alice"])
    assert held.status_code == 200 and held.json["state"] == "held"
    resumed = client.post("/api/batches/B-001/resume", json={"reason": "probe ok"}, headers=client.auth["alice"])
    assert resumed.status_code == 200 and resumed.json["state"] == "running"
    aborted = client.post("/api/batches/B-001/abort", json={"reason": "contamination"}, headers=client.auth["alice"])
    assert aborted.status_code == 200 and aborted.json["state"] == "aborted"


def test_async_service_task_callback_then_message(client, runtime):
    calls = []
    runtime.connectors.register("lims", lambda call: (calls.append(call), Pending())[1])
    import_recipe(client, EXCHANGE_BPMN, name="exchange.bpmn")
    start_batch(client, "lims_exchange", "B-7", {"batch_id": "B-7"})
    assert jobs.run_due(runtime) == 1 and calls[0].params == {"batch": "B-7", "test": "sterility"}

    r = client.post(
        f"/api/batches/B-7/tasks/{calls[0].task_id}/callback",
        json={"result": {"sample": "S-1"}},
        headers={**client.auth["alice"], "Idempotency-Key": "lims-cb-1"},
    )
    assert r.status_code == 200, r.json
    assert r.json["step"]["kind"] == "service_task" and r.json["step"]["values"] == {"sample": "S-1"}

    delivered = client.post(
        "/api/messages/lims_result", json={"payload": {"batch_id": "B-7", "passed": True}}, headers=client.auth["alice"]
    )
    assert delivered.status_code == 200, delivered.json
    assert delivered.json == {"delivered": [{"batch_id": "B-7", "seq": 2}]}
    assert client.get("/api/batches/B-7").json["state"] == "complete"


def test_incidents_list_and_retry(client, runtime):
    import_recipe(client, EXCHANGE_BPMN, name="exchange.bpmn")
    start_batch(client, "lims_exchange", "B-8", {"batch_id": "B-8"})
    jobs.run_due(runtime)  # no LIMS connector installed: the job fails for good

    incidents = client.get("/api/incidents").json
    assert len(incidents) == 1 and "no connector" in incidents[0]["message"]
    retried = client.post(f"/api/incidents/{incidents[0]['id']}/retry", headers=client.auth["alice"])
    assert retried.status_code == 200 and retried.json["state"] == "pending"
    assert client.get("/api/incidents").json == []
    assert len(client.get("/api/incidents?all=true").json) == 1


def test_events_feed_pages_in_order(client, batch):
    page = client.get("/api/events?limit=1").json
    assert [e["type"] for e in page["events"]] == ["org.batchline.batch.started"]
    assert page["events"][0]["specversion"] == "1.0" and page["events"][0]["subject"] == "B-001"
    client.post("/api/batches/B-001/hold", json={"reason": "x"}, headers=client.auth["alice"])
    rest = client.get(f"/api/events?after={page['next_after']}").json
    assert [e["type"] for e in rest["events"]] == ["org.batchline.batch.held"]
    assert client.get(f"/api/events?after={rest['next_after']}").json == {
        "events": [],
        "next_after": rest["next_after"],
    }


def test_audit_verify_and_health(client, batch):
    audit = client.get("/api/audit/verify")
    assert audit.status_code == 200 and audit.json["ok"] is True and audit.json["entries"] >= 3
    health = client.get("/api/health")  # liveness; readiness (database, schema, worker): tests/server
    assert health.status_code == 200 and health.json["status"] == "ok"


def test_ready_reports_a_database_without_schema(tmp_path):
    from web.app import create_app

    rt = make_runtime(f"sqlite:///{tmp_path}/empty.db")
    try:
        r = create_app(runtime=rt).test_client().get("/api/ready")
        assert r.status_code == 503 and r.json["checks"]["schema"] == "outdated"
    finally:
        rt.close()


def test_ready_during_a_rolling_upgrade(runtime):
    """A newer release migrated the database (a revision this code does not know): this
    node stays ready, since migrations are expand-only for one release; a database that
    still needs ``db upgrade`` (a revision this code knows, below its head) is not ready."""
    from sqlalchemy import text

    from engine import migrate
    from web.app import create_app

    client = create_app(runtime=runtime).test_client()
    head = migrate.head()
    try:
        with runtime.db.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_a_newer_release'"))
        r = client.get("/api/ready")
        assert r.json["checks"]["schema"] == "ahead" and "schema" not in r.json["not_ready"]
        with runtime.db.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0015_floor'"))
        r = client.get("/api/ready")
        assert r.status_code == 503 and r.json["checks"]["schema"] == "outdated"
    finally:  # the PostgreSQL test database is shared by the session: leave it at the head
        with runtime.db.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})


def test_openapi_document_lists_the_resources(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    doc = json.loads(r.data)
    assert doc["openapi"].startswith("3.")
    for path in (
        "/api/recipes",
        "/api/recipes/validate",
        "/api/recipes/{recipe_id}",
        "/api/recipes/{recipe_id}/approve",
        "/api/recipes/{recipe_id}/retire",
        "/api/batches",
        "/api/batches/{batch_id}",
        "/api/batches/{batch_id}/tasks",
        "/api/batches/{batch_id}/steps",
        "/api/batches/{batch_id}/tasks/{task_id}/complete",
        "/api/batches/{batch_id}/tasks/{task_id}/callback",
        "/api/batches/{batch_id}/hold",
        "/api/batches/{batch_id}/resume",
        "/api/batches/{batch_id}/abort",
        "/api/messages/{name}",
        "/api/incidents",
        "/api/incidents/{incident_id}/retry",
        "/api/events",
        "/api/audit/verify",
        "/api/health",
        "/api/ready",
    ):
        assert path in doc["paths"], path
    upload = doc["paths"]["/api/recipes"]["post"]["requestBody"]["content"]
    assert set(upload) == {"application/json", "multipart/form-data"}
    complete = doc["paths"]["/api/batches/{batch_id}/tasks/{task_id}/complete"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in complete["parameters"] if p["in"] == "header"]
    assert complete["security"] == [{"token": []}] and doc["paths"]["/api/batches"]["get"]["security"] == [
        {"token": []}
    ]
    assert "security" not in doc["paths"]["/api/health"]["get"]
    assert doc["components"]["securitySchemes"]["token"] == {"type": "http", "scheme": "bearer"}


def test_swagger_ui_page(client, app, tmp_path, monkeypatch):
    vendored = client.get("/api/docs")
    assert vendored.status_code == 200
    monkeypatch.setattr(app, "static_folder", str(tmp_path))  # as on a machine without `npm ci`
    missing = client.get("/api/docs")
    assert missing.status_code == 200
    assert b"npm ci" in missing.data and b"/api/openapi.json" in missing.data
