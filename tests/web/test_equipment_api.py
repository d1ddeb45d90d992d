"""``POST/GET /api/batches/{batch_id}/equipment-samples``: equipment time series of a
running batch, validated, stored with one scoring job, read back."""

from __future__ import annotations

from sqlalchemy import select

from engine import users
from engine.models import EquipmentSample, Job
from tests.support import PASSWORD

URL = "/api/batches/B-001/equipment-samples"


def _body(samples=None, **over):
    body = {
        "unit_procedure": "up_production",
        "source": "BIOREACTOR-01",
        "samples": samples
        if samples is not None
        else [{"t_hours": 0.0, "values": {"do": 40.5, "ph": 7}}, {"t_hours": 1.0, "values": {"do": 41.0, "ph": 7.01}}],
    }
    body.update(over)
    return body


def _token(runtime, role):
    users.create_user(runtime, f"eq-{role}", role.title(), [role], by="test", password=PASSWORD)
    return {"Authorization": "Bearer " + users.create_token(runtime, f"eq-{role}", "eq", by="test")}


def test_samples_are_stored_with_one_scoring_job(client, runtime, batch):
    r = client.post(URL, json=_body())
    assert r.status_code == 202, r.json
    assert r.json["received"] == 2 and r.json["batch_id"] == "B-001"
    with runtime.transaction() as s:
        assert len(s.scalars(select(EquipmentSample)).all()) == 2
        jobs = s.scalars(select(Job).where(Job.kind == "score_samples")).all()
        assert [j.payload for j in jobs] == [{"unit_procedure": "up_production"}]
    got = client.get(URL + "?unit_procedure=up_production")
    assert got.status_code == 200, got.json
    (up,) = got.json["unit_procedures"]
    assert up["unit_procedure"] == "up_production" and up["model"] is None and up["scores"] == []
    assert [x["values"]["do"] for x in up["samples"]] == [40.5, 41.0]
    assert client.get(URL + "?unit_procedure=other").json["unit_procedures"] == []


def test_bad_samples_are_refused(client, runtime, batch):
    cases = [
        _body([{"t_hours": "1", "values": {"do": 1}}]),  # a string is no number
        _body([{"t_hours": 1, "values": {"do": "40"}}]),
        _body([{"t_hours": 1, "values": {"do": True}}]),
        _body([{"t_hours": -1, "values": {"do": 1}}]),
        _body([{"t_hours": 1, "values": {"bad name": 1}}]),
        _body([{"t_hours": 1, "values": {}}]),
        _body([{"t_hours": 1}]),
        _body([{"t_hours": 1, "values": {"do": 1}}] * 1001),
        _body([]),
        _body(unit_procedure="no spaces allowed"),
        _body(source=""),
    ]
    for body in cases:
        r = client.post(URL, json=body)
        assert r.status_code == 422, (body if len(str(body)) < 300 else "1001 samples", r.json)
    for raw in (
        '{"unit_procedure": "up", "source": "X", "samples": [{"t_hours": NaN, "values": {"do": 1}}]}',
        '{"unit_procedure": "up", "source": "X", "samples": [{"t_hours": 1, "values": {"do": Infinity}}]}',
    ):
        r = client.post(URL, data=raw, content_type="application/json")
        assert r.status_code in (400, 422), r.json
    with runtime.transaction() as s:
        assert s.scalars(select(EquipmentSample)).all() == []
        assert s.scalars(select(Job).where(Job.kind == "score_samples")).all() == []


def test_unknown_or_stopped_batch_and_permissions(client, runtime, batch):
    r = client.post("/api/batches/B-404/equipment-samples", json=_body())
    assert r.status_code == 404 and r.json["code"] == "batch_not_found"
    assert client.get("/api/batches/B-404/equipment-samples").status_code == 404
    operator = _token(runtime, "operator")
    r = client.post(URL, json=_body(), headers=operator)
    assert r.status_code == 403 and r.json["code"] == "forbidden"
    assert client.get(URL, headers=operator).status_code == 200  # operators may read
    assert client.post(URL, json=_body(), headers=_token(runtime, "service")).status_code == 202
    held = client.post("/api/batches/B-001/hold", json={"reason": "check"})
    assert held.status_code == 200, held.json
    r = client.post(URL, json=_body())
    assert r.status_code == 409 and r.json["code"] == "batch_not_running"
