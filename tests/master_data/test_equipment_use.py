"""Equipment status by use, on the step path: a step that scans equipment takes it for
its batch (later steps of the same batch still scan it; another batch is refused), the
batch's end leaves it dirty, the library's CIP SOP cleans it, the calibration SOPs set
``calibrated_until``; maintenance's reason is what a refused scan says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from analytics.nominal import LIBRARY_LOOPS, Systems, run_batch, valid_values
from engine import batches
from engine.errors import InvalidInput
from engine.master_data import equipment as equipment_md
from engine.models import AuditEvent, Equipment, EquipmentLogEntry, utcnow
from engine.users import Person
from forms import load_form
from tests.engine.test_library_runs import CREW, PARAMETERS, imported
from web import demo

VESSEL = demo.equipment_for("mixing_vessel")
BALANCE = demo.equipment_for("balance")
METER = demo.equipment_for("ph_meter")
MIA = Person("mia", "Mia Maintenance", ("maintenance",))


def run(rt, key: str, batch_id: str, before_task=None) -> None:
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
        before_task=before_task,
    )
    assert batches.get_batch(rt, batch_id)["state"] == "complete"


def equipment(rt, equipment_id: str) -> Equipment:
    with rt.transaction() as s:
        eq = s.get(Equipment, equipment_id)
        s.expunge(eq)
        return eq


def first_task_refusal(rt, key: str, batch_id: str) -> dict:
    """Start ``batch_id`` and complete its first task nominally: the 422's field messages."""
    batches.start_batch(rt, key, batch_id, user="sup.carl", parameters={**PARAMETERS, "batch_id": batch_id})
    (task,) = batches.ready_tasks(rt, batch_id)
    form = load_form(task["form_definition"])
    signer, witness = CREW.signers(task, form)
    with pytest.raises(InvalidInput) as err:
        batches.complete_task(
            rt, batch_id, task["id"], valid_values(form, CREW), user=signer.username, signer=signer, witness=witness
        )
    assert batches.steps(rt, batch_id) == []  # nothing stored
    return err.value.details["fields"]


def test_use_then_dirty_then_clean_by_the_cip_template(rt):
    seen = []

    def look(bpmn_id: str) -> None:  # before each later task: what the batch holds
        seen.append((bpmn_id, equipment(rt, VESSEL).status, equipment(rt, VESSEL).in_use_by))

    run(rt, "tpl_buffer_prep", "USE-1", before_task=look)  # the vessel is scanned at set-up
    assert seen[0][1:] == ("clean", None)  # before the first step
    assert all(s[1:] == ("in_use", "USE-1") for s in seen[1:]) and len(seen) > 1
    vessel = equipment(rt, VESSEL)
    assert (vessel.status, vessel.in_use_by) == ("dirty", None)
    assert (equipment(rt, BALANCE).status, equipment(rt, BALANCE).in_use_by) == ("clean", None)  # an instrument

    # dirty: another batch's scan is refused, saying so
    fields = first_task_refusal(rt, "tpl_buffer_prep", "USE-2")
    assert any("dirty" in m for msgs in fields.values() for m in msgs), fields

    run(rt, "tpl_cip", "CIP-1")  # the cleaning SOP scans the dirty vessel and cleans it
    vessel = equipment(rt, VESSEL)
    assert (vessel.status, vessel.in_use_by) == ("clean", None) and "CIP" in vessel.status_reason
    with rt.transaction() as s:
        kinds = [e.kind for e in s.scalars(select(EquipmentLogEntry).where(EquipmentLogEntry.equipment_id == VESSEL))]
        trail = [
            (a.user, a.old, a.new)
            for a in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.object_id == VESSEL, AuditEvent.action == "equipment.status")
                .order_by(AuditEvent.id)
            )
        ]
    assert kinds == ["cip"]
    assert ['"in_use"' in t[2] for t in trail] == [True, False, False]  # taken, released dirty, cleaned
    assert '"dirty"' in trail[1][2] and trail[1][0] == "system" and '"clean"' in trail[2][2]
    run(rt, "tpl_buffer_prep", "USE-3")  # clean again: usable


def test_equipment_in_use_by_another_batch_is_refused(rt):
    imported(rt, "tpl_charge_material")
    with rt.transaction() as s:
        s.get(Equipment, VESSEL).status = "in_use"
        s.get(Equipment, VESSEL).in_use_by = "OTHER-7"
    fields = first_task_refusal(rt, "tpl_charge_material", "USE-9")
    assert any("in use by batch OTHER-7" in m for msgs in fields.values() for m in msgs), fields


def test_equipment_held_by_the_same_batch_stays_scannable(rt):
    imported(rt, "tpl_charge_material")
    with rt.transaction() as s:
        s.get(Equipment, VESSEL).status = "in_use"
        s.get(Equipment, VESSEL).in_use_by = "SAME-1"
    run(rt, "tpl_charge_material", "SAME-1")
    assert equipment(rt, VESSEL).status == "dirty"


def test_maintenance_reason_is_what_the_refused_scan_says(rt):
    imported(rt, "tpl_charge_material")
    equipment_md.change_status(rt, VESSEL, "maintenance", by=MIA, reason="agitator seal leaking")
    fields = first_task_refusal(rt, "tpl_charge_material", "USE-M")
    assert any(m == f"{VESSEL} is in maintenance: agitator seal leaking" for msgs in fields.values() for m in msgs), (
        fields
    )


def test_an_aborted_batch_leaves_what_it_held_dirty(rt):
    imported(rt, "tpl_charge_material")
    batches.start_batch(rt, "tpl_charge_material", "AB-1", user="sup.carl", parameters={**PARAMETERS})
    (task,) = batches.ready_tasks(rt, "AB-1")
    form = load_form(task["form_definition"])
    signer, witness = CREW.signers(task, form)
    batches.complete_task(
        rt, "AB-1", task["id"], valid_values(form, CREW), user=signer.username, signer=signer, witness=witness
    )
    assert equipment(rt, VESSEL).in_use_by == "AB-1"
    batches.change_state(rt, "AB-1", "abort", user="sup.carl", reason="spill")
    vessel = equipment(rt, VESSEL)
    assert (vessel.status, vessel.in_use_by) == ("dirty", None)


def test_a_calibration_sets_the_due_date_from_the_interval(rt):
    imported(rt, "tpl_ph_meter_calibration")
    with rt.transaction() as s:  # overdue: production scans are refused, the calibration is not
        s.get(Equipment, METER).calibrated_until = utcnow() - timedelta(days=1)
    before = utcnow()
    run(rt, "tpl_ph_meter_calibration", "CAL-1")
    due = equipment(rt, METER).calibrated_until
    assert timedelta(days=30) <= due - before <= timedelta(days=30, minutes=5)  # Settings.calibration_days
    with rt.transaction() as s:
        s.get(Equipment, METER).calibration_interval_days = 7
    run(rt, "tpl_ph_meter_calibration", "CAL-2")
    due = equipment(rt, METER).calibrated_until
    assert timedelta(days=6, hours=23) <= due - utcnow() <= timedelta(days=7)
    assert equipment(rt, METER).status == "clean"  # a calibration takes nothing into use
    with rt.transaction() as s:
        actions = s.scalars(
            select(AuditEvent.new).where(AuditEvent.object_id == METER, AuditEvent.action == "equipment.calibrated")
        ).all()
    assert len(actions) == 2


def test_a_daily_check_holds_a_day(rt):
    run(rt, "tpl_balance_daily_check", "BDC-1")
    due = equipment(rt, BALANCE).calibrated_until
    assert timedelta(hours=23) <= due - utcnow() <= timedelta(hours=24)


@pytest.fixture
def rt_by_unit_procedure(db_url):
    from tests.support import make_runtime

    runtime = make_runtime(db_url, equipment_released_at="unit_procedure")
    yield runtime
    runtime.close()


def test_released_at_the_end_of_its_unit_procedure_when_so_configured(rt_by_unit_procedure):
    """mab_downstream: Protein A's column and skid are dirty once Protein A ends (the suite
    the top process scanned stays held), so AEX, which scans the same (single) skid in the
    demo plant, is refused: the plant would clean it or use another skid."""
    rt = rt_by_unit_procedure
    column, skid, suite = (demo.equipment_for(c) for c in ("chromatography_column", "chromatography_skid", "suite"))
    seen: dict[str, tuple] = {}

    def look(bpmn_id: str) -> None:
        seen[bpmn_id] = tuple((equipment(rt, e).status, equipment(rt, e).in_use_by) for e in (column, skid, suite))

    with pytest.raises(InvalidInput) as refused:
        run(rt, "mab_downstream", "DS-UP-1", before_task=look)
    fields = refused.value.details["fields"]
    assert fields == {"aex_skid_id": [f"{skid} is dirty: clean it (CIP/SIP) first"]}
    during = seen["tpl_pac_load"]  # inside Protein A: column and skid held, the suite too
    assert during == (("in_use", "DS-UP-1"), ("in_use", "DS-UP-1"), ("in_use", "DS-UP-1"))
    after = seen["tpl_lvi_acidify"]  # Protein A ended: released dirty; the suite still held
    assert after == (("dirty", None), ("dirty", None), ("in_use", "DS-UP-1"))
