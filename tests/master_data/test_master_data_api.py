"""The master-data API: materials, lots and equipment created, changed and read by the
roles that own them; bad input refused with the field named; operators get 403; every
change audited old → new; nothing deleted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.models import AuditEvent

MATERIAL = {"material_id": "MED-CD-CHO", "name": "CD CHO medium", "unit": "L", "kind": "media"}


def audit_rows(rt, object_type: str, object_id: str) -> list[AuditEvent]:
    with rt.transaction() as s:
        rows = list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id)
                .order_by(AuditEvent.id)
            )
        )
        s.expunge_all()
        return rows


def add_material(client, **extra):
    r = client.post("/api/materials", json={**MATERIAL, **extra}, headers=client.auth["qa"])
    assert r.status_code == 201, r.json
    return r.json


def add_lot(client, lot_id="LOT-A1", **extra):
    body = {"lot_id": lot_id, "material": MATERIAL["material_id"], "quantity": 200, "expires_at": "2099-12-31", **extra}
    r = client.post("/api/lots", json=body, headers=client.auth["sv"])
    assert r.status_code == 201, r.json
    return r.json


def test_a_material_is_added_changed_retired_and_audited(client, runtime):
    m = add_material(client)
    assert m["active"] and m["version"] == 0 and m["unit"] == "L"
    r = client.patch(
        f"/api/materials/{m['material_id']}",
        json={"name": "CD CHO medium, 1x", "active": False, "version": 0, "reason": "renamed; superseded"},
        headers=client.auth["qa"],
    )
    assert r.status_code == 200, r.json
    assert r.json["name"] == "CD CHO medium, 1x" and r.json["active"] is False and r.json["version"] == 1
    assert client.get("/api/materials?active=false", headers=client.auth["op"]).json[0]["material_id"] == "MED-CD-CHO"
    rows = audit_rows(runtime, "material", "MED-CD-CHO")
    assert [r.action for r in rows] == ["material.create", "material.update", "material.update"]
    changes = {r.field: (r.old, r.new) for r in rows[1:]}
    assert changes["name"][0] == "CD CHO medium" and "1x" in changes["name"][1]
    assert changes["active"] == ("true", "false") or changes["active"][1] in ("false", "False")
    # a retired material takes no new lot; its code stays taken
    r = client.post(
        "/api/lots", json={"lot_id": "L-9", "material": "MED-CD-CHO", "quantity": 1}, headers=client.auth["sv"]
    )
    assert r.status_code == 422 and r.json["code"] == "material_unknown"
    assert client.post("/api/materials", json=MATERIAL, headers=client.auth["qa"]).status_code == 409
    assert client.delete("/api/materials/MED-CD-CHO", headers=client.auth["qa"]).status_code == 405


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**MATERIAL, "material_id": 12}, "material_id"),
        ({**MATERIAL, "material_id": "has space"}, None),
        ({**MATERIAL, "material_id": "x" * 101}, "material_id"),
        ({**MATERIAL, "unit": "furlong"}, "unit"),
        ({k: v for k, v in MATERIAL.items() if k != "name"}, "name"),
        ({**MATERIAL, "name": "n" * 201}, "name"),
        ({**MATERIAL, "name": "<script>alert(1)</script>\x00"}, None),
        ({**MATERIAL, "kind": "plutonium"}, "kind"),
        ({**MATERIAL, "colour": "red"}, "colour"),
        ({**MATERIAL, "material_id": "'; DROP TABLE material; --"}, None),
    ],
)
def test_a_bad_material_is_refused_and_nothing_is_stored(client, runtime, body, field):
    r = client.post("/api/materials", json=body, headers=client.auth["qa"])
    assert r.status_code == 422, r.json
    if field:
        assert field in str(r.json)
    assert client.get("/api/materials", headers=client.auth["qa"]).json == []


def test_a_lot_is_received_in_quarantine_and_qa_releases_it_with_a_reason(client, runtime):
    add_material(client)
    lot = add_lot(client)
    assert (lot["status"], lot["quantity"], lot["unit"]) == ("quarantine", 200.0, "L")
    assert lot["genealogy"] == "/lots/LOT-A1/genealogy"
    # no reason: refused
    r = client.post("/api/lots/LOT-A1/status", json={"status": "released"}, headers=client.auth["qa"])
    assert r.status_code == 422
    r = client.post(
        "/api/lots/LOT-A1/status",
        json={"status": "released", "reason": "CoA reviewed, ID test passed"},
        headers=client.auth["qa"],
    )
    assert r.status_code == 200, r.json
    assert r.json["status"] == "released" and r.json["status_reason"] == "CoA reviewed, ID test passed"
    (row,) = [a for a in audit_rows(runtime, "lot", "LOT-A1") if a.action == "lot.status"]
    assert (row.user, row.old, row.new, row.reason) == ("qa", "quarantine", "released", "CoA reviewed, ID test passed")
    # filters
    assert [x["lot_id"] for x in client.get("/api/lots?status=released&material=MED-CD-CHO").json] == ["LOT-A1"]
    assert client.get("/api/lots?status=quarantine").json == []
    assert client.get("/api/lots?status=bogus").status_code == 422


def test_rejected_is_final_and_expired_is_not_set_by_hand(client):
    add_material(client)
    add_lot(client)
    qa = client.auth["qa"]
    r = client.post("/api/lots/LOT-A1/status", json={"status": "rejected", "reason": "OOS assay"}, headers=qa)
    assert r.status_code == 200
    for status in ("released", "quarantine"):
        r = client.post("/api/lots/LOT-A1/status", json={"status": status, "reason": "try"}, headers=qa)
        assert r.status_code == 409 and r.json["code"] == "lot_rejected"
    r = client.post("/api/lots/LOT-A1/status", json={"status": "expired", "reason": "x"}, headers=qa)
    assert r.status_code == 422


def test_a_released_lot_past_its_expiry_is_expired_on_read_and_refused_at_release(client, runtime):
    add_material(client)
    add_lot(client, "LOT-OLD", expires_at="2099-01-01")
    qa = client.auth["qa"]
    assert (
        client.post("/api/lots/LOT-OLD/status", json={"status": "released", "reason": "ok"}, headers=qa).status_code
        == 200
    )
    r = client.patch(
        "/api/lots/LOT-OLD", json={"expires_at": "2020-01-01", "reason": "supplier shortened shelf life"}, headers=qa
    )
    assert r.status_code == 200 and r.json["status"] == "expired"
    assert client.get("/api/lots/LOT-OLD").json["status"] == "expired"
    actions = [(a.action, a.user, a.new) for a in audit_rows(runtime, "lot", "LOT-OLD")]
    assert ("lot.status", "system", "expired") in actions
    add_lot(client, "LOT-Q", expires_at="2020-06-01")
    r = client.post("/api/lots/LOT-Q/status", json={"status": "released", "reason": "ok"}, headers=qa)
    assert r.status_code == 409 and r.json["code"] == "lot_expired"


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": -1, "reason": "r"},
        {"quantity": "lots", "reason": "r"},
        {"quantity": 1e300, "reason": "r"},
        {"quantity": 5},
        {"expires_at": "31/12/2030", "reason": "r"},
        {"expires_at": "2030-01-01T00:00:00", "reason": "r"},
        {"status": "released", "reason": "r"},
        {"reason": "r" * 501, "quantity": 1},
    ],
)
def test_a_bad_lot_change_is_refused(client, body):
    add_material(client)
    add_lot(client)
    r = client.patch("/api/lots/LOT-A1", json=body, headers=client.auth["qa"])
    assert r.status_code == 422, r.json
    assert client.get("/api/lots/LOT-A1").json["quantity"] == 200.0


def test_an_unknown_or_oversize_id_is_404(client):
    assert client.get("/api/lots/NOPE").status_code == 404
    assert client.get("/api/lots/" + "x" * 500).status_code == 404
    assert client.get("/api/equipment/NOPE").json["code"] == "equipment_not_found"
    assert client.get("/api/materials/NOPE").status_code == 404


def test_a_stale_version_is_refused(client):
    add_material(client)
    add_lot(client)
    qa = client.auth["qa"]
    assert (
        client.patch(
            "/api/lots/LOT-A1", json={"quantity": 150, "version": 0, "reason": "used 50 L"}, headers=qa
        ).status_code
        == 200
    )
    r = client.patch("/api/lots/LOT-A1", json={"quantity": 100, "version": 0, "reason": "used 100 L"}, headers=qa)
    assert r.status_code == 409 and r.json["code"] == "stale_version"
    assert client.get("/api/lots/LOT-A1").json["quantity"] == 150.0


EQUIPMENT = {"equipment_id": "BR-2000-01", "equipment_class": "bioreactor", "name": "2000 L SUB", "location": "Suite 3"}


def test_equipment_is_registered_and_maintenance_takes_it_out_with_a_reason(client, runtime, maint):
    r = client.post("/api/equipment", json=EQUIPMENT, headers=client.auth["sv"])
    assert r.status_code == 201, r.json
    assert r.json["status"] == "dirty" and r.json["logbook"] == "/api/equipment/BR-2000-01/logbook"
    mia = client.auth[maint]
    r = client.post(
        "/api/equipment/BR-2000-01/status",
        json={"status": "maintenance", "reason": "agitator seal leaking"},
        headers=mia,
    )
    assert r.status_code == 200, r.json
    assert (r.json["status"], r.json["status_reason"]) == ("maintenance", "agitator seal leaking")
    # clean and in use are never set by hand
    for status in ("clean", "in_use"):
        r = client.post("/api/equipment/BR-2000-01/status", json={"status": status, "reason": "x"}, headers=mia)
        assert r.status_code == 409 and r.json["code"] == "status_not_by_hand"
    r = client.post(
        "/api/equipment/BR-2000-01/status", json={"status": "dirty", "reason": "seal replaced"}, headers=mia
    )
    assert r.json["status"] == "dirty"
    rows = [a for a in audit_rows(runtime, "equipment", "BR-2000-01") if a.action == "equipment.status"]
    assert [(a.user, a.reason) for a in rows] == [("mia", "agitator seal leaking"), ("mia", "seal replaced")]
    assert '"maintenance"' in rows[0].new and '"dirty"' in rows[0].old
    r = client.patch(
        "/api/equipment/BR-2000-01",
        json={"calibration_interval_days": 90, "location": "Suite 4", "reason": "moved"},
        headers=client.auth["sv"],
    )
    assert r.status_code == 200 and r.json["location"] == "Suite 4"
    updates = {
        a.field: (a.old, a.new)
        for a in audit_rows(runtime, "equipment", "BR-2000-01")
        if a.action == "equipment.update"
    }
    assert updates["location"] == ("Suite 3", "Suite 4")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", "/api/materials", MATERIAL),
        ("patch", "/api/materials/MED-CD-CHO", {"name": "x", "reason": "r"}),
        ("post", "/api/lots", {"lot_id": "L1", "material": "MED-CD-CHO", "quantity": 1}),
        ("patch", "/api/lots/LOT-A1", {"quantity": 1, "reason": "r"}),
        ("post", "/api/lots/LOT-A1/status", {"status": "released", "reason": "r"}),
        ("post", "/api/equipment", EQUIPMENT),
        ("patch", "/api/equipment/BR-2000-01", {"name": "x", "reason": "r"}),
        ("post", "/api/equipment/BR-2000-01/status", {"status": "maintenance", "reason": "r"}),
    ],
)
def test_an_operator_reads_but_changes_nothing(client, method, url, body):
    add_material(client)
    add_lot(client)
    client.post("/api/equipment", json=EQUIPMENT, headers=client.auth["sv"])
    r = getattr(client, method)(url, json=body, headers=client.auth["op"])
    assert r.status_code == 403, r.json
    assert r.json["code"] == "forbidden"
    for read in ("/api/materials", "/api/lots", "/api/lots/LOT-A1", "/api/equipment", "/api/equipment/BR-2000-01"):
        assert client.get(read, headers=client.auth["op"]).status_code == 200


def test_only_qa_releases_and_only_maintenance_takes_equipment_out(client):
    add_material(client)
    add_lot(client)
    client.post("/api/equipment", json=EQUIPMENT, headers=client.auth["sv"])
    r = client.post("/api/lots/LOT-A1/status", json={"status": "released", "reason": "r"}, headers=client.auth["sv"])
    assert r.status_code == 403
    r = client.post(
        "/api/equipment/BR-2000-01/status", json={"status": "maintenance", "reason": "r"}, headers=client.auth["sv"]
    )
    assert r.status_code == 403
    assert client.get("/api/lots").status_code == 200 and client.get("/api/lots", headers={}).status_code in (200, 401)


def test_anonymous_is_401(anon):
    assert anon.get("/api/lots").status_code == 401
    assert anon.post("/api/materials", json=MATERIAL).status_code == 401


def test_a_replayed_request_changes_nothing_twice(client, runtime):
    add_material(client)
    add_lot(client)
    body = {"lot_id": "LOT-A1", "material": MATERIAL["material_id"], "quantity": 200}
    again = client.post("/api/lots", json=body, headers=client.auth["sv"])
    assert again.status_code == 409 and again.json["code"] == "lot_exists"
    decision = {"status": "released", "reason": "CoA ok", "version": 0}
    first = client.post("/api/lots/LOT-A1/status", json=decision, headers=client.auth["qa"])
    replay = client.post("/api/lots/LOT-A1/status", json=decision, headers=client.auth["qa"])
    assert first.status_code == 200 and replay.status_code == 409
    actions = [a.action for a in audit_rows(runtime, "lot", "LOT-A1")]
    assert actions == ["lot.create", "lot.status"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "a string",
        {"status": ["released"], "reason": "r"},
        {"status": "released", "reason": 5},
        {"status": "released", "reason": "r", "version": "0"},
        {"status": "released", "reason": "r", "version": True},
    ],
)
def test_a_wrongly_typed_status_change_is_422(client, body):
    add_material(client)
    add_lot(client)
    r = client.post("/api/lots/LOT-A1/status", json=body, headers=client.auth["qa"])
    assert r.status_code == 422, r.json
    assert client.get("/api/lots/LOT-A1").json["status"] == "quarantine"
