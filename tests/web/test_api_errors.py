"""What the API answers to bad, repeated, conflicting and hostile requests: always JSON
``{code, message, details}`` with a 4xx status and a stable code, never a 500."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from tests.support import approval
from tests.web.through_api import LOOP_BPMN, first_task, import_recipe, start_batch

TESTS_BPMN = Path(__file__).resolve().parent.parent / "bpmn"


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json
    assert response.is_json
    body = response.json
    assert set(body) == {"code", "message", "details"} and body["code"] == code, body
    assert body["message"]
    return body


# --- body shape ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/batches", "/api/recipes", "/api/recipes/validate", "/api/batches/B-001/hold", "/api/messages/anything"],
)
def test_malformed_json_is_400_json_invalid(client, batch, path):
    r = client.post(path, data='{"recipe": "x",', content_type="application/json", headers=client.auth["alice"])
    error(r, 400, "json_invalid")


def test_wrong_types_name_each_field(client, batch):
    r = client.post(
        "/api/batches",
        json={"recipe": ["x"], "batch_id": 5, "parameters": "p", "version": "1"},
        headers=client.auth["alice"],
    )
    fields = error(r, 422, "validation_error")["details"]["fields"]
    assert set(fields) == {"recipe", "batch_id", "parameters", "version"}
    assert fields["batch_id"] == ["Not a valid string."]

    task = first_task(client)
    r = client.post(
        f"/api/batches/B-001/tasks/{task}/complete",
        json={"data": ["not", "an", "object"]},
        headers=client.auth["alice"],
    )
    assert error(r, 422, "validation_error")["details"]["fields"] == {"data": ["Not a valid mapping type."]}


def test_missing_and_unknown_fields_are_refused(client, batch):
    missing = error(
        client.post("/api/batches", json={"recipe": "sampling_loop"}, headers=client.auth["alice"]),
        422,
        "validation_error",
    )
    assert missing["details"]["fields"] == {"batch_id": ["Missing data for required field."]}

    task = first_task(client)
    unknown = client.post(
        f"/api/batches/B-001/tasks/{task}/complete", json={"data": {}, "dta": {"x": 1}}, headers=client.auth["alice"]
    )
    assert error(unknown, 422, "validation_error")["details"]["fields"] == {"dta": ["Unknown field."]}

    no_reason = client.post("/api/batches/B-001/hold", json={}, headers=client.auth["alice"])
    assert "reason" in error(no_reason, 422, "validation_error")["details"]["fields"]
    empty_reason = client.post("/api/batches/B-001/hold", json={"reason": ""}, headers=client.auth["alice"])
    error(empty_reason, 422, "validation_error")
    a_list = client.post("/api/batches/B-001/hold", json=["reason"], headers=client.auth["alice"])
    error(a_list, 422, "validation_error")
    not_json = client.post(
        "/api/batches/B-001/hold",
        data="reason=x",
        headers=client.auth["alice"],
        content_type="application/x-www-form-urlencoded",
    )
    error(not_json, 422, "validation_error")


def test_query_parameters_are_checked(client):
    assert error(client.get("/api/events?limit=0"), 422, "validation_error")["details"]["fields"] == {
        "limit": ["Must be greater than or equal to 1 and less than or equal to 1000."]
    }
    error(client.get("/api/events?after=abc"), 422, "validation_error")
    error(client.get("/api/batches?state=paused"), 422, "validation_error")


def test_oversize_body_is_413(client, batch):
    task = first_task(client)
    big = {"data": {"notes": "x" * 300_000}}  # the fixture allows 200,000 bytes
    r = client.post(f"/api/batches/B-001/tasks/{task}/complete", json=big, headers=client.auth["alice"])
    assert error(r, 413, "request_too_large")["details"] == {"max_bytes": 200_000}
    upload = client.post(
        "/api/recipes",
        headers=client.auth["alice"],
        content_type="multipart/form-data",
        data={"bpmn": [(io.BytesIO(b"<x/>" * 60_000), "big.bpmn")]},
    )
    error(upload, 413, "request_too_large")
    assert client.get("/api/batches/B-001/steps").json == []


def test_recipe_upload_shape_errors(client):
    error(
        client.post("/api/recipes", data="<xml/>", content_type="text/xml", headers=client.auth["alice"]),
        415,
        "unsupported_media_type",
    )
    no_file = client.post(
        "/api/recipes", headers=client.auth["alice"], content_type="multipart/form-data", data={"recipe": "x"}
    )
    assert error(no_file, 422, "validation_error")["details"]["fields"] == {
        "bpmn": ["Missing data for required field."]
    }
    stray = client.post(
        "/api/recipes",
        headers=client.auth["alice"],
        content_type="multipart/form-data",
        data={"bpmn": [(io.BytesIO(LOOP_BPMN.encode()), "loop.bpmn")], "bpmm": [(io.BytesIO(b"x"), "x.bpmn")]},
    )
    assert error(stray, 422, "validation_error")["details"]["fields"] == {"bpmm": ["Unknown field."]}
    bad_option = client.post(
        "/api/recipes",
        headers=client.auth["alice"],
        content_type="multipart/form-data",
        data={"bpmn": [(io.BytesIO(LOOP_BPMN.encode()), "loop.bpmn")], "aprove": "true"},
    )
    assert error(bad_option, 422, "validation_error")["details"]["fields"] == {"aprove": ["Unknown field."]}
    bad_form = client.post(
        "/api/recipes",
        headers=client.auth["alice"],
        content_type="multipart/form-data",
        data={"bpmn": [(io.BytesIO(LOOP_BPMN.encode()), "loop.bpmn")], "forms": [(io.BytesIO(b"{nope"), "f.json")]},
    )
    error(bad_form, 400, "json_invalid")
    error(client.post("/api/recipes", json={"bpmn": {}}, headers=client.auth["alice"]), 422, "validation_error")


def test_invalid_recipes_are_422_with_located_problems(client):
    broken = LOOP_BPMN.replace('targetRef="end"', 'targetRef="nowhere"')
    r = error(
        client.post("/api/recipes", json={"bpmn": {"loop.bpmn": broken}}, headers=client.auth["alice"]),
        422,
        "recipe_invalid",
    )
    assert r["details"]["problems"] and r["details"]["problems"][0]["file"] == "loop.bpmn"
    xxe = (TESTS_BPMN / "xxe.bpmn").read_text()
    error(
        client.post("/api/recipes", json={"bpmn": {"xxe.bpmn": xxe}}, headers=client.auth["alice"]), 422, "xml_refused"
    )
    checked = client.post("/api/recipes/validate", json={"bpmn": {"xxe.bpmn": xxe}})
    assert checked.status_code == 200 and checked.json["ok"] is False


# --- who -----------------------------------------------------------------------------


def test_every_request_needs_a_user_before_anything_else(client, anon, batch):
    task = first_task(client)
    for path, body in [
        ("/api/recipes", {}),
        ("/api/batches", {}),
        ("/api/batches/B-001/hold", {}),
        (f"/api/batches/B-001/tasks/{task}/complete", {"data": {}}),
        ("/api/messages/m", {"payload": {}}),
        ("/api/recipes/1/approve", {"reason": "x"}),
        ("/api/incidents/1/retry", None),
    ]:
        error(anon.post(path, json=body), 401, "auth_required")
    error(anon.get("/api/batches/B-001"), 401, "auth_required")  # reading needs a user too
    for bad in ("Bearer " + "x" * 201, "Bearer bl_not-a-token", "Bearer "):
        error(
            anon.post("/api/batches/B-001/hold", json={"reason": "x"}, headers={"Authorization": bad}),
            401,
            "token_invalid",
        )
    assert anon.get("/api/health").status_code == 200  # the health check is public


# --- not found -----------------------------------------------------------------------


def test_unknown_things_are_404(client, batch):
    error(client.get("/api/batches/NOPE"), 404, "batch_not_found")
    error(client.get("/api/batches/NOPE/tasks"), 404, "batch_not_found")
    error(client.get("/api/batches/NOPE/steps"), 404, "batch_not_found")
    error(
        client.post("/api/batches/NOPE/hold", json={"reason": "x"}, headers=client.auth["alice"]),
        404,
        "batch_not_found",
    )
    for task in (str(uuid.uuid4()), "not-a-uuid"):
        error(
            client.post(f"/api/batches/B-001/tasks/{task}/complete", json={"data": {}}, headers=client.auth["alice"]),
            404,
            "task_not_found",
        )
        error(
            client.post(f"/api/batches/B-001/tasks/{task}/callback", json={"result": {}}, headers=client.auth["alice"]),
            404,
            "task_not_found",
        )
    error(client.get("/api/recipes/999"), 404, "recipe_not_found")
    error(
        client.post("/api/recipes/999/approve", json=approval("alice", "x"), headers=client.auth["alice"]),
        404,
        "recipe_not_found",
    )
    error(
        client.post("/api/messages/nobody_waits", json={"payload": {}}, headers=client.auth["alice"]),
        404,
        "message_not_correlated",
    )
    error(client.post("/api/incidents/999/retry", headers=client.auth["alice"]), 404, "incident_not_found")
    error(client.get("/api/no/such/thing"), 404, "not_found")
    error(client.delete("/api/batches/B-001"), 405, "method_not_allowed")


# --- conflicts -----------------------------------------------------------------------


def test_batch_start_conflicts(client):
    import_recipe(client, approve=False)
    error(
        client.post("/api/batches", json={"recipe": "sampling_loop", "batch_id": "B-1"}, headers=client.auth["alice"]),
        404,
        "recipe_not_found",
    )  # no approved version yet
    error(
        client.post(
            "/api/batches",
            json={"recipe": "sampling_loop", "batch_id": "B-1", "version": 1},
            headers=client.auth["alice"],
        ),
        409,
        "recipe_not_approved",
    )
    client.post("/api/recipes/1/approve", json=approval("quentin", "ok"), headers=client.auth["quentin"])
    start_batch(client, batch_id="B-1")
    error(
        client.post("/api/batches", json={"recipe": "sampling_loop", "batch_id": "B-1"}, headers=client.auth["alice"]),
        409,
        "batch_exists",
    )
    error(
        client.post(
            "/api/batches",
            json={"recipe": "sampling_loop", "batch_id": "B-2", "parameters": {"nested": {"a": 1}}},
            headers=client.auth["alice"],
        ),
        422,
        "parameters_invalid",
    )
    error(
        client.post(
            "/api/batches", json={"recipe": "sampling_loop", "batch_id": "bad\nid"}, headers=client.auth["alice"]
        ),
        422,
        "batch_id_invalid",
    )


def test_completing_a_task_twice_is_409(client, batch):
    task = first_task(client)
    first = client.post(
        f"/api/batches/B-001/tasks/{task}/complete", json={"data": {"done": False}}, headers=client.auth["alice"]
    )
    assert first.status_code == 200
    again = client.post(
        f"/api/batches/B-001/tasks/{task}/complete", json={"data": {"done": False}}, headers=client.auth["alice"]
    )
    error(again, 409, "task_not_ready")
    assert len(client.get("/api/batches/B-001/steps").json) == 1


def test_idempotent_replay_returns_the_first_answer_and_stores_one_step(client, batch):
    task = first_task(client)
    key = {**client.auth["alice"], "Idempotency-Key": "tablet-7-0001"}
    first = client.post(f"/api/batches/B-001/tasks/{task}/complete", json={"data": {"done": False}}, headers=key)
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    replay = client.post(f"/api/batches/B-001/tasks/{task}/complete", json={"data": {"done": False}}, headers=key)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == first.json
    assert len(client.get("/api/batches/B-001/steps").json) == 1

    other = client.post(f"/api/batches/B-001/tasks/{task}/complete", json={"data": {"done": True}}, headers=key)
    error(other, 422, "idempotency_key_reused")
    assert len(client.get("/api/batches/B-001/steps").json) == 1


def test_held_batch_refuses_steps_until_resumed(client, batch):
    task = first_task(client)
    client.post("/api/batches/B-001/hold", json={"reason": "deviation DV-12"}, headers=client.auth["alice"])
    refused = client.post(
        f"/api/batches/B-001/tasks/{task}/complete", json={"data": {"done": True}}, headers=client.auth["alice"]
    )
    assert error(refused, 409, "batch_held")["details"] == {"state": "held"}
    error(
        client.post("/api/batches/B-001/hold", json={"reason": "again"}, headers=client.auth["alice"]),
        409,
        "batch_held",
    )
    client.post("/api/batches/B-001/resume", json={"reason": "closed"}, headers=client.auth["alice"])
    done = client.post(
        f"/api/batches/B-001/tasks/{task}/complete", json={"data": {"done": True}}, headers=client.auth["alice"]
    )
    assert done.status_code == 200 and done.json["batch"]["state"] == "complete"
    error(
        client.post("/api/batches/B-001/abort", json={"reason": "late"}, headers=client.auth["alice"]),
        409,
        "batch_complete",
    )


def test_only_a_draft_can_be_approved(client):
    rv = import_recipe(client)  # approved by quentin
    again = client.post(
        f"/api/recipes/{rv['id']}/approve", json=approval("quentin", "again"), headers=client.auth["quentin"]
    )
    assert "already effective" in error(again, 409, "recipe_not_draft")["message"]
    client.post(f"/api/recipes/{rv['id']}/retire", json=approval("alice", "old"), headers=client.auth["alice"])
    back = client.post(
        f"/api/recipes/{rv['id']}/approve", json=approval("quentin", "back"), headers=client.auth["quentin"]
    )
    assert "is retired" in error(back, 409, "recipe_not_draft")["message"]


# --- hostile input -------------------------------------------------------------------


def test_html_in_values_is_stored_and_returned_verbatim(client, batch):
    task = first_task(client)
    hostile = {
        "comment": "<script>alert('x')</script><img src=x onerror=alert(1)>",
        "done": True,
        "unicode": "µg/mL ☢ \u202e",
    }
    r = client.post(f"/api/batches/B-001/tasks/{task}/complete", json={"data": hostile})
    assert r.status_code == 200 and r.mimetype == "application/json"
    step = client.get("/api/batches/B-001/steps").json[0]
    assert step["values"] == hostile and step["user"] == "alice"
    assert client.get("/api/audit/verify").json["ok"] is True
