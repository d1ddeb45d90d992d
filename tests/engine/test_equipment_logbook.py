"""The equipment logbook: an SOP task with a ``logbook`` property writes one append-only,
audited entry per scanned equipment on the step path (``engine.equipment_logbook``); a bad
``logbook`` value is refused at import; ``GET /api/equipment/{id}/logbook`` lists them."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

import workflows
from analytics.nominal import LIBRARY_LOOPS, Systems, run_batch
from engine import audit, batches, recipes
from engine.bpmn import RecipeInvalid
from engine.models import Equipment, EquipmentLogEntry
from tests.engine.tamper import as_owner
from tests.engine.test_library_runs import CREW, PARAMETERS, imported
from web import demo

METER = demo.equipment_for("ph_meter")


def calibrate(rt, batch_id: str = "CAL-1", key: str = "tpl_ph_meter_calibration") -> None:
    imported(rt, key)
    systems = Systems()
    systems.connect(rt)
    run_batch(
        rt,
        key,
        batch_id,
        CREW,
        systems,
        loops=LIBRARY_LOOPS,
        parameters={**PARAMETERS, "batch_id": batch_id},
        timeout=60,
    )
    assert batches.get_batch(rt, batch_id)["state"] == "complete"


def entries(rt) -> list[EquipmentLogEntry]:
    with rt.transaction() as s:
        rows = list(s.scalars(select(EquipmentLogEntry).order_by(EquipmentLogEntry.id)))
        s.expunge_all()
        return rows


def test_a_calibration_writes_one_logbook_entry_for_the_scanned_meter(rt):
    calibrate(rt)
    (entry,) = entries(rt)  # the verify task has no logbook property and no scan
    steps = batches.steps(rt, "CAL-1")
    first = next(s for s in steps if s["bpmn_id"] == "tpl_phc_calibrate")
    assert (entry.equipment_id, entry.kind, entry.step_seq) == (METER, "calibration", first["seq"])
    assert entry.values["phc_meter_id"] == METER and entry.values == first["values"]
    assert entry.recorded_by == CREW.operator.username
    with rt.transaction() as s:
        actions = s.execute(
            text("SELECT object_type, object_id, field FROM audit_event WHERE action = 'equipment.logbook'")
        ).all()
        result = audit.verify(s)
    assert [tuple(a) for a in actions] == [("equipment", METER, "calibration")]
    assert result.ok, result.problems


@pytest.mark.parametrize(
    ("key", "kind", "classes"),
    [
        ("tpl_balance_daily_check", "daily_check", ["balance"]),
        ("tpl_cip", "cip", ["mixing_vessel", "cip_skid"]),
        ("tpl_sip", "sip", ["bioreactor"]),
        ("tpl_line_clearance", "line_clearance", ["suite"]),
    ],
)
def test_every_equipment_sop_writes_the_logbook_of_what_it_scanned(rt, key, kind, classes):
    calibrate(rt, "SOP-1", key)
    written = [(e.equipment_id, e.kind) for e in entries(rt)]
    assert written == [(demo.equipment_for(c), kind) for c in classes]


@pytest.mark.parametrize(
    "statement", ["UPDATE equipment_log_entry SET kind = 'use'", "DELETE FROM equipment_log_entry"]
)
def test_the_database_refuses_to_change_a_logbook_entry(rt, statement):
    calibrate(rt)
    with pytest.raises(DatabaseError, match="append_only"):
        with rt.transaction() as s:
            s.execute(text(statement))
    assert len(entries(rt)) == 1 and entries(rt)[0].kind == "calibration"


def test_audit_verify_reports_a_tampered_logbook_entry(rt):
    calibrate(rt)
    (entry,) = entries(rt)
    with as_owner(rt) as s:
        s.execute(text("UPDATE equipment_log_entry SET equipment_id = 'PH_METER-99' WHERE id = :i"), {"i": entry.id})
    with rt.transaction() as s:
        result = audit.verify(s)
    assert not result.ok
    assert any(p.startswith(f"equipment_log_entry {entry.id} (batch CAL-1") and "edited" in p for p in result.problems)


@pytest.mark.parametrize("value", ["calibrate", "CIP", "use; DROP TABLE step", "x" * 300])
def test_a_bad_logbook_value_is_refused_at_import(rt, value):
    entry = workflows.get("tpl_ph_meter_calibration")
    files = {
        name: data.replace(b'name="logbook" value="calibration"', f'name="logbook" value="{value}"'.encode())
        for name, data in entry.files.items()
    }
    assert files != entry.files
    with pytest.raises(RecipeInvalid) as err:
        recipes.import_recipe(rt, files, forms=entry.forms, user="qa.lead")
    (problem,) = [p for p in err.value.problems if p.code == "logbook_invalid"]
    assert problem.element_id == "tpl_phc_calibrate" and "calibration" in problem.message


def test_the_api_lists_an_equipment_logbook_newest_first(client, anon, runtime):
    calibrate(runtime, "CAL-1")
    calibrate(runtime, "CAL-2")
    r = client.get(f"/api/equipment/{METER}/logbook")
    assert r.status_code == 200, r.json
    assert r.json["equipment_id"] == METER
    listed = [(e["batch_id"], e["kind"]) for e in r.json["entries"]]
    assert listed == [("CAL-2", "calibration"), ("CAL-1", "calibration")]
    assert r.json["entries"][0]["values"]["phc_meter_id"] == METER and r.json["entries"][0]["recorded_at"]
    with runtime.transaction() as s:
        s.add(Equipment(equipment_id="BALANCE-01", equipment_class="balance"))
    r = client.get("/api/equipment/BALANCE-01/logbook")  # known to the registry, no entries yet
    assert r.status_code == 200 and r.json["entries"] == []
    for unknown in ("NO-SUCH-METER", "x" * 500, "%27%20OR%201=1"):
        r = client.get(f"/api/equipment/{unknown}/logbook")
        assert r.status_code == 404 and r.json["code"] == "equipment_not_found", r.json
    assert anon.get(f"/api/equipment/{METER}/logbook").status_code == 401
