"""``POST /api/batches/{batch_id}/events`` (an operator records an event) and
``POST /api/batches/{batch_id}/equipment/alarms`` (equipment reports an alarm): each raises
one exception that GET /api/batches/{id}/exceptions shows; wrong types, missing fields,
oversize text, unknown batch, wrong role, replay and concurrent submits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from engine import users
from tests.web.through_api import import_recipe, start_batch

EVENTS = "/api/batches/B-001/events"
ALARMS = "/api/batches/B-001/equipment/alarms"


def _auth(runtime, name):
    return {"Authorization": "Bearer " + users.create_token(runtime, name, "tests", by="test")}


@pytest.fixture
def batch(client):
    import_recipe(client)
    return start_batch(client)


def _exceptions(client, category=None):
    r = client.get("/api/batches/B-001/exceptions")
    assert r.status_code == 200, r.json
    return [e for e in r.json if category is None or e["category"] == category]


def test_an_operator_records_an_event_and_qa_sees_it(client, runtime, batch):
    op = _auth(runtime, "op")
    r = client.post(EVENTS, json={"kind": "material", "description": "bag punctured"}, headers=op)
    assert r.status_code == 201, r.json
    assert r.json["exception"]["category"] == "event.material"
    (exc,) = _exceptions(client, "event.material")
    assert exc["raised_by"] == "op" and exc["source"] == "operator" and exc["severity"] == "major"
    assert exc["details"]["description"] == "bag punctured"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kind": "process"},
        {"description": "x"},
        {"kind": "gossip", "description": "x"},
        {"kind": ["process"], "description": "x"},
        {"kind": "process", "description": 42},
        {"kind": "process", "description": ""},
        {"kind": "process", "description": "x" * 2001},
        {"kind": "process", "description": "x", "step_seq": "1"},
        {"kind": "process", "description": "x", "step_seq": 1.5},
        {"kind": "process", "description": "x", "step_seq": 7},
        {"kind": "process", "description": "x", "task_id": "t" * 101},
        {"kind": "process", "description": "x", "extra": 1},
        {"kind": "process", "description": "nul \x00 byte"},
    ],
)
def test_a_bad_event_is_4xx_with_an_error_and_raises_nothing(client, batch, body):
    r = client.post(EVENTS, json=body)
    assert r.status_code in (400, 422), r.json
    assert {"code", "message"} <= set(r.json)
    assert _exceptions(client) == []


def test_events_need_a_known_batch_and_a_role_that_records(client, runtime, batch):
    r = client.post("/api/batches/NOPE/events", json={"kind": "process", "description": "x"})
    assert r.status_code == 404 and r.json["code"] == "batch_not_found"
    users.create_user(runtime, "ad", "Admin", ["admin"], by="test", password="correct horse battery staple")
    r = client.post(EVENTS, json={"kind": "process", "description": "x"}, headers=_auth(runtime, "ad"))
    assert r.status_code == 403
    r = client.application.test_client().post(EVENTS, json={"kind": "process", "description": "x"})
    assert r.status_code == 401
    assert _exceptions(client) == []


def test_an_event_replayed_with_its_key_gives_one_exception(client, batch):
    body = {"kind": "documentation", "description": "entry made late"}
    first = client.post(EVENTS, json=body, headers={"Idempotency-Key": "ev-1"})
    again = client.post(EVENTS, json=body, headers={"Idempotency-Key": "ev-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json == first.json
    assert len(_exceptions(client)) == 1
    other = client.post(EVENTS, json={**body, "description": "else"}, headers={"Idempotency-Key": "ev-1"})
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"


def test_concurrent_submits_of_one_key_give_one_exception(app, client, batch):
    body = {"kind": "process", "description": "pump stopped"}

    def post(_):
        c = app.test_client()
        return c.post(EVENTS, json=body, headers={**client.auth["alice"], "Idempotency-Key": "same"})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(post, range(6)))
    assert {r.status_code for r in answers} == {201}, [r.json for r in answers]
    assert len({r.json["exception"]["id"] for r in answers}) == 1
    assert len(_exceptions(client)) == 1


def test_concurrent_events_without_a_key_are_each_raised(app, client, batch):
    def post(i):
        c = app.test_client()
        return c.post(EVENTS, json={"kind": "process", "description": f"e{i}"}, headers=client.auth["alice"])

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(post, range(5)))
    assert [r.status_code for r in answers] == [201] * 5
    assert len(_exceptions(client)) == 5


# --- equipment alarms -------------------------------------------------------------------


def _alarm(**over):
    body = {
        "source": "BR-01",
        "tag": "TIC-101.PV",
        "message": "temperature high",
        "value": 38.2,
        "limits": {"upper": 37.5},
        "severity": "high",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not ...}


def test_equipment_reports_an_alarm(client, batch):
    r = client.post(ALARMS, json=_alarm(), headers={"Idempotency-Key": "a1"})
    assert r.status_code == 201, r.json
    (exc,) = _exceptions(client, "equipment.alarm")
    assert exc["value"] == 38.2 and exc["limits"] == {"upper": 37.5} and exc["severity"] == "major"
    again = client.post(ALARMS, json=_alarm(), headers={"Idempotency-Key": "a1"})
    assert again.headers.get("Idempotent-Replayed") == "true" and len(_exceptions(client)) == 1


@pytest.mark.parametrize(
    "body",
    [
        _alarm(source=...),
        _alarm(message=...),
        _alarm(source=""),
        _alarm(source=7),
        _alarm(message="m" * 2001),
        _alarm(value=True),
        _alarm(value={"a": 1}),
        _alarm(value=[1]),
        _alarm(limits={"upper": "37"}),
        _alarm(limits={"upper": True}),
        _alarm(limits=[37.5]),
        _alarm(limits={f"l{i}": i for i in range(11)}),
        _alarm(severity="apocalyptic"),
        _alarm(tag="t" * 201),
    ],
)
def test_a_bad_alarm_is_4xx_and_raises_nothing(client, batch, body):
    r = client.post(ALARMS, json=body)
    assert r.status_code in (400, 422), r.json
    assert _exceptions(client) == []


def test_alarms_need_equipment_write(client, runtime, batch):
    assert client.post(ALARMS, json=_alarm(), headers=_auth(runtime, "op")).status_code == 403
    assert client.post(ALARMS, json=_alarm(), headers=_auth(runtime, "qa")).status_code == 403
    assert client.post("/api/batches/NOPE/equipment/alarms", json=_alarm()).status_code == 404
    assert _exceptions(client) == []


def test_the_new_paths_are_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").json["paths"]
    assert "post" in paths["/api/batches/{batch_id}/events"]
    assert "post" in paths["/api/batches/{batch_id}/equipment/alarms"]
