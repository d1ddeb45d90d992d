"""Consuming a counted lot on the step path: more than on hand is refused with nothing
stored; two batches taking the last litres at once, one is refused (PostgreSQL and
SQLite); a movement changed behind Batchline's back is found by ``audit verify``; a
recorded lot quantity is not corrected in place."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from analytics.nominal import valid_values
from engine import audit, batches, lot_movements
from engine.errors import Conflict, InvalidInput
from forms import load_form
from tests.engine.tamper import as_owner
from tests.engine.test_library_runs import CREW, imported
from tests.genealogy.chain import HCCF, import_chain, lot, movements, set_quantity, upstream
from web import demo

STOCK_HCCF = demo.lot_for(HCCF)


def at_batch_start(rt, batch_id: str) -> dict:
    batches.start_batch(rt, "mab_downstream", batch_id, user="sup.carl", parameters={"batch_id": batch_id})
    (task,) = batches.ready_tasks(rt, batch_id)
    assert task["bpmn_id"] == "ds_batch_start"
    return task


def load_hccf(rt, batch_id: str, task: dict, litres: str):
    form = load_form(task["form_definition"])
    values = {**valid_values(form, CREW), "ds_hccf_lot": STOCK_HCCF, "ds_hccf_volume_l": litres}
    signer, witness = CREW.signers(task, form)
    return batches.complete_task(rt, batch_id, task["id"], values, user=signer.username, signer=signer, witness=witness)


def test_consuming_more_than_on_hand_is_refused_and_nothing_is_stored(rt):
    imported(rt, "mab_downstream")
    set_quantity(rt, STOCK_HCCF, 100.0)
    task = at_batch_start(rt, "DS-1")
    with pytest.raises(InvalidInput) as err:
        load_hccf(rt, "DS-1", task, "1800")
    assert err.value.code == "lot_quantity_insufficient"
    assert err.value.details["fields"]["ds_hccf_lot"] == [
        f"lot {STOCK_HCCF} has 100 L on hand; 1800 L cannot be consumed"
    ]
    assert batches.steps(rt, "DS-1") == [] and movements(rt) == [] and lot(rt, STOCK_HCCF).quantity == 100.0
    assert [t["bpmn_id"] for t in batches.ready_tasks(rt, "DS-1")] == ["ds_batch_start"]  # still to do
    load_hccf(rt, "DS-1", task, "100")  # all that is left: taken
    assert lot(rt, STOCK_HCCF).quantity == 0.0
    (moved,) = [m for m in movements(rt) if m.lot_id == STOCK_HCCF]
    assert (moved.kind, moved.quantity, moved.unit, moved.step_seq) == ("consumed", 100.0, "L", 1)


def test_two_batches_taking_the_last_litres_at_once_one_is_refused(rt, monkeypatch):
    imported(rt, "mab_downstream")
    set_quantity(rt, STOCK_HCCF, 1800.0)
    tasks = {b: at_batch_start(rt, b) for b in ("DS-A", "DS-B")}
    # both steps reach the stock update before either commits (where the database lets
    # them: SQLite serialises writers, so there the second waits at its first write)
    gate = threading.Barrier(2)
    take = lot_movements.take_from_lot

    def together(s, found, use):
        try:
            gate.wait(timeout=3)
        except threading.BrokenBarrierError:
            pass
        return take(s, found, use)

    monkeypatch.setattr(lot_movements, "take_from_lot", together)
    outcomes: dict[str, str] = {}

    def submit(batch_id: str) -> None:
        try:
            load_hccf(rt, batch_id, tasks[batch_id], "1800")
            outcomes[batch_id] = "stored"
        except InvalidInput as exc:
            outcomes[batch_id] = exc.code

    threads = [threading.Thread(target=submit, args=(b,)) for b in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes.values()) == ["lot_quantity_insufficient", "stored"], outcomes
    assert lot(rt, STOCK_HCCF).quantity == 0.0
    (moved,) = [m for m in movements(rt) if m.lot_id == STOCK_HCCF]
    assert moved.quantity == 1800.0
    with rt.transaction() as s:
        assert audit.verify(s).ok


def test_audit_verify_finds_a_movement_changed_behind_batchlines_back(rt):
    imported(rt, "mab_downstream")
    load_hccf(rt, "DS-1", at_batch_start(rt, "DS-1"), "500")
    (moved,) = [m for m in movements(rt) if m.lot_id == STOCK_HCCF]
    with rt.transaction() as s:
        assert audit.verify(s).ok
    with pytest.raises(Exception, match="append_only"):
        with rt.transaction() as s:
            s.execute(text("UPDATE lot_movement SET quantity = 5"))
    with as_owner(rt) as s:
        s.execute(text("UPDATE lot_movement SET quantity = 5 WHERE id = :i"), {"i": moved.id})
    with rt.transaction() as s:
        result = audit.verify(s)
    assert not result.ok
    assert any(p.startswith(f"lot_movement {moved.id} (batch DS-1, step 1)") and "edited" in p for p in result.problems)


def test_a_movement_inserted_behind_batchlines_back_is_found(rt):
    imported(rt, "mab_downstream")
    load_hccf(rt, "DS-1", at_batch_start(rt, "DS-1"), "500")
    with rt.transaction() as s:
        s.execute(
            text(
                "INSERT INTO lot_movement (kind, lot_id, material, batch_id, step_seq, quantity, unit, recorded_by, "
                "recorded_at) SELECT 'consumed', 'LOT-X', 'X', batch_id, 1, 1, 'L', 'intruder', recorded_at "
                "FROM lot_movement LIMIT 1"
            )
        )
    with rt.transaction() as s:
        result = audit.verify(s)
    assert any("lot_movement" in p and "inserted outside Batchline" in p for p in result.problems)


def corrector(step: dict):
    return CREW.operator if step["user"] == CREW.operator.username else CREW.supervisor


def test_a_recorded_lot_is_not_corrected_in_place(rt):
    imported(rt, "mab_downstream")
    load_hccf(rt, "DS-1", at_batch_start(rt, "DS-1"), "500")
    (step,) = batches.steps(rt, "DS-1")
    with pytest.raises(Conflict) as err:
        batches.correct_step(rt, "DS-1", 1, "ds_hccf_lot", demo.lot_for("X"), reason="typo", signer=corrector(step))
    assert err.value.code == "lot_movement_not_correctable"
    assert lot(rt, STOCK_HCCF).quantity == 4500.0 and len(movements(rt, STOCK_HCCF)) == 1


def test_a_corrected_quantity_reverses_the_movement_and_records_the_new_one(rt):
    imported(rt, "mab_downstream")
    load_hccf(rt, "DS-1", at_batch_start(rt, "DS-1"), "500")
    (step,) = batches.steps(rt, "DS-1")
    batches.correct_step(rt, "DS-1", 1, "ds_hccf_volume_l", "400", reason="misread the scale", signer=corrector(step))
    assert [m.quantity for m in movements(rt, STOCK_HCCF)] == [500.0, -500.0, 400.0]
    assert lot(rt, STOCK_HCCF).quantity == 4600.0
    batches.correct_step(rt, "DS-1", 1, "ds_hccf_volume_l", "450", reason="second look", signer=corrector(step))
    assert [m.quantity for m in movements(rt, STOCK_HCCF)] == [500.0, -500.0, 400.0, -400.0, 450.0]
    assert lot(rt, STOCK_HCCF).quantity == 4550.0
    set_quantity(rt, STOCK_HCCF, 10.0)  # meanwhile other batches took the rest
    with pytest.raises(InvalidInput) as err:
        batches.correct_step(rt, "DS-1", 1, "ds_hccf_volume_l", "500", reason="x", signer=corrector(step))
    assert err.value.code == "lot_quantity_insufficient" and "needs 50 L more" in err.value.message
    assert len(movements(rt, STOCK_HCCF)) == 5 and lot(rt, STOCK_HCCF).quantity == 10.0
    with rt.transaction() as s:
        assert audit.verify(s).ok
        actions = s.execute(text("SELECT action FROM audit_event WHERE object_type = 'material_lot'")).scalars().all()
    assert actions == ["lot.consumed"] + ["lot.consumed.reversed", "lot.consumed.corrected"] * 2


def test_a_corrected_produced_quantity_moves_the_produced_lot(rt):
    import_chain(rt)
    hccf = upstream(rt, "UP-1")
    step = next(s for s in batches.steps(rt, "UP-1") if s["bpmn_id"] == "hv_hccf")
    batches.correct_step(rt, "UP-1", step["seq"], "hccf_volume_l", "1750", reason="tank gauge", signer=corrector(step))
    assert [m.quantity for m in movements(rt, hccf)] == [1800.0, -1800.0, 1750.0]
    assert lot(rt, hccf).quantity == 1750.0
    set_quantity(rt, hccf, 30.0)  # downstream has taken most of it
    with pytest.raises(InvalidInput) as err:  # the lot cannot give back what it no longer holds
        batches.correct_step(rt, "UP-1", step["seq"], "hccf_volume_l", "1700", reason="x", signer=corrector(step))
    assert err.value.code == "lot_quantity_insufficient"
    assert lot(rt, hccf).quantity == 30.0


def test_a_quantity_in_another_unit_than_the_lot_is_refused(rt):
    imported(rt, "mab_downstream")
    task = at_batch_start(rt, "DS-1")
    with rt.transaction() as s:
        s.execute(text("UPDATE material_lot SET unit = 'kg' WHERE lot_id = :l"), {"l": STOCK_HCCF})
    with pytest.raises(InvalidInput) as err:
        load_hccf(rt, "DS-1", task, "500")
    assert err.value.code == "lot_unit_mismatch" and "counted in kg" in err.value.message
    assert movements(rt) == []


def test_a_replayed_step_consumes_once(rt):
    imported(rt, "mab_downstream")
    task = at_batch_start(rt, "DS-1")
    form = load_form(task["form_definition"])
    values = {**valid_values(form, CREW), "ds_hccf_lot": STOCK_HCCF, "ds_hccf_volume_l": "700"}
    signer, witness = CREW.signers(task, form)
    for _ in range(2):  # the tablet lost the answer and sent the same request again
        batches.complete_task(
            rt, "DS-1", task["id"], values, user=signer.username, signer=signer, witness=witness, idempotency_key="k-1"
        )
    assert [m.quantity for m in movements(rt, STOCK_HCCF)] == [700.0] and lot(rt, STOCK_HCCF).quantity == 4300.0


def test_an_overridden_unknown_lot_is_recorded_as_used_but_not_counted(rt):
    imported(rt, "mab_downstream")
    task = at_batch_start(rt, "DS-1")
    form = load_form(task["form_definition"])
    values = {**valid_values(form, CREW), "ds_hccf_lot": "LOT-NOT-REGISTERED", "ds_hccf_volume_l": "700"}
    signer, witness = CREW.signers(task, form)
    batches.complete_task(
        rt,
        "DS-1",
        task["id"],
        values,
        user=signer.username,
        signer=signer,
        witness=witness,
        override={"ds_hccf_lot": "ERP lot not yet interfaced; identity confirmed by QC"},
        override_signer=CREW.supervisor,
    )
    (moved,) = movements(rt, "LOT-NOT-REGISTERED")
    assert (moved.material, moved.quantity, moved.unit) == (HCCF, 700.0, "L")
    assert lot(rt, STOCK_HCCF).quantity == 5000.0
