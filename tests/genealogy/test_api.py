"""``GET /api/lots/{lot}/genealogy`` and the ``/lots/<lot>/genealogy`` page: the graph's
shape, a cycle in the records ends the walk, bad parameters get 400, an unknown lot 404,
and anyone who may read batch records may read it (``web.api.genealogy``, ``web.ui.genealogy``)."""

from __future__ import annotations

import pytest

from engine import batches, genealogy
from engine.models import Batch, LotMovement, MaterialLot, utcnow
from tests.engine.test_library_runs import imported
from tests.support import browser_login


def cycle(rt) -> None:
    """Rework recorded as a cycle: batch CYC-A consumed L1 and produced L2, batch CYC-B
    consumed L2 and produced L1 (plus CYC-A also took a received buffer)."""
    imported(rt, "mab_downstream")
    for b in ("CYC-A", "CYC-B"):
        batches.start_batch(rt, "mab_downstream", b, user="sup.carl", parameters={"batch_id": b})
    with rt.transaction() as s:
        pk = {b.batch_id: b.id for b in s.query(Batch)}
        for lot_id in ("L1", "L2"):
            s.add(MaterialLot(lot_id=lot_id, material="MAB-01-HCCF", status="released", quantity=10, unit="L"))
        rows = [
            ("consumed", "L1", "CYC-A", 5.0),
            ("consumed", "BUF-1", "CYC-A", 2.5),
            ("produced", "L2", "CYC-A", 5.0),
            ("consumed", "L2", "CYC-B", 5.0),
            ("produced", "L1", "CYC-B", 4.0),
        ]
        for kind, lot_id, batch, quantity in rows:
            s.add(
                LotMovement(
                    kind=kind,
                    lot_id=lot_id,
                    material="BUF-DF-HIS" if lot_id == "BUF-1" else "MAB-01-HCCF",
                    batch_id=pk[batch],
                    step_seq=1,
                    quantity=quantity,
                    unit="L",
                    recorded_by="op.anna",
                    recorded_at=utcnow(),
                )
            )


def test_a_cycle_in_the_records_ends_the_walk(rt):
    cycle(rt)
    for direction in genealogy.DIRECTIONS:
        trace = genealogy.trace(rt, "L1", direction, genealogy.MAX_DEPTH)
        nodes = {n["id"] for n in trace["nodes"]}
        assert {"lot:L1", "lot:L2", "batch:CYC-A", "batch:CYC-B"} <= nodes
        assert len(trace["nodes"]) == len(nodes)  # each node once
        assert trace["truncated"] is False and trace["levels"] <= 3
    back = genealogy.trace(rt, "L1", "backward", 5)
    assert {(e["from"], e["to"], e["quantity"]) for e in back["edges"]} == {
        ("batch:CYC-B", "lot:L1", 4.0),
        ("lot:L2", "batch:CYC-B", 5.0),
        ("batch:CYC-A", "lot:L2", 5.0),
        ("lot:L1", "batch:CYC-A", 5.0),
        ("lot:BUF-1", "batch:CYC-A", 2.5),
    }
    unregistered = next(n for n in back["nodes"] if n["id"] == "lot:BUF-1")
    assert (unregistered["material"], unregistered["status"]) == ("BUF-DF-HIS", None)  # known by its movement only


def test_the_api_answers_the_graph(client, runtime):
    cycle(runtime)
    r = client.get("/api/lots/L2/genealogy?direction=forward&depth=2", headers=client.auth["op"])
    assert r.status_code == 200, r.json
    body = r.json
    assert (body["lot_id"], body["direction"], body["depth"], body["truncated"]) == ("L2", "forward", 2, False)
    assert body["root"]["id"] == "lot:L2" and body["root"]["unit"] == "L"
    edge = next(e for e in body["edges"] if e["to"] == "batch:CYC-B")
    assert edge == {**edge, "from": "lot:L2", "kind": "consumed", "quantity": 5.0, "unit": "L", "batch_id": "CYC-B"}
    batch = next(n for n in body["nodes"] if n["type"] == "batch")
    assert batch["recipe"] == "mab_downstream" and batch["state"] == "running"
    assert client.get("/api/lots/L2/genealogy").json["direction"] == "backward"  # the default


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("direction=sideways", "direction_invalid"),
        ("direction=", "direction_invalid"),
        ("direction=BACKWARD", "direction_invalid"),
        ("depth=-1", "depth_invalid"),
        ("depth=0", "depth_invalid"),
        ("depth=51", "depth_invalid"),
        ("depth=99999999999999999999", "depth_invalid"),
        ("depth=1.5", "depth_invalid"),
        ("depth=abc", "depth_invalid"),
        ("depth=", "depth_invalid"),
    ],
)
def test_bad_parameters_get_400(client, runtime, query, code):
    cycle(runtime)
    r = client.get(f"/api/lots/L1/genealogy?{query}")
    assert r.status_code == 400 and r.json["code"] == code, r.json


@pytest.mark.parametrize("lot_id", ["NOPE", "x" * 300, "%E2%9C%93", "L1'%20OR%201=1"])
def test_an_unknown_lot_gets_404(client, lot_id):
    r = client.get(f"/api/lots/{lot_id}/genealogy")
    assert r.status_code == 404 and r.json["code"] == "lot_not_found", r.json
    assert client.get("/api/lots/%00/genealogy").status_code == 422  # the app refuses NUL in any path


def test_reading_needs_a_signed_in_person(anon, client):
    assert anon.get("/api/lots/L1/genealogy").status_code == 401
    for who in ("op", "sv", "qa"):  # every role that reads batch records
        assert client.get("/api/lots/NOPE/genealogy", headers=client.auth[who]).status_code == 404


def test_the_page_shows_both_directions(client, runtime):
    cycle(runtime)
    browser_login(client, "op")
    r = client.get("/lots/L2/genealogy")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "Genealogy of lot L2" in page and "What went into it" in page and "Where it went" in page
    assert 'href="/batches/CYC-A"' in page and 'href="/batches/CYC-B"' in page
    assert 'href="/lots/L1/genealogy"' in page and "consumed 5 L" in page and "(shown above)" in page
    assert client.get("/lots/NOPE/genealogy").status_code == 404
    assert client.get("/lots/L2/genealogy?depth=0").status_code == 400
    assert client.get("/lots/L2/genealogy?depth=999").status_code == 400
