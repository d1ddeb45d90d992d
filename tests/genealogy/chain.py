"""The mAb chain the genealogy tests run through the engine: upstream batches (cell bank
vial and media in, HCCF out) and a downstream batch (HCCF in, drug substance out), with
the nominal values of ``analytics.nominal`` and the demo's counted lots (``web.demo``)."""

from __future__ import annotations

from sqlalchemy import select, update

from analytics.nominal import LIBRARY_LOOPS, Systems, run_batch
from engine import batches
from engine.lot_movements import produced_lot_id
from engine.models import LotMovement, MaterialLot
from tests.engine.test_library_runs import CREW, PARAMETERS, imported
from web import demo

HCCF = "MAB-01-HCCF"
DS = "DS-MAB-01"
CELL_BANK_LOT = demo.lot_for("WCB-CHO-MAB01")
MEDIA_LOT = demo.lot_for("MED-CD-CHO")


def run(rt, recipe: str, batch_id: str, overrides: dict | None = None) -> None:
    systems = Systems()
    systems.connect(rt)
    run_batch(
        rt,
        recipe,
        batch_id,
        CREW,
        systems,
        loops=LIBRARY_LOOPS,
        parameters={**PARAMETERS, "batch_id": batch_id},
        overrides=overrides or {},
        timeout=90,
    )
    assert batches.get_batch(rt, batch_id)["state"] == "complete"


def upstream(rt, batch_id: str) -> str:
    """Run an upstream batch; its HCCF lot, released by QA (so downstream may scan it)."""
    run(rt, "mab_upstream", batch_id)
    lot_id = produced_lot_id(batch_id, HCCF)
    release(rt, lot_id)
    return lot_id


def downstream(rt, batch_id: str, hccf_lot: str, litres: str = "1800") -> str:
    """Run a downstream batch loading ``litres`` of ``hccf_lot``; its drug substance lot."""
    run(rt, "mab_downstream", batch_id, {"ds_batch_start": {"ds_hccf_lot": hccf_lot, "ds_hccf_volume_l": litres}})
    return produced_lot_id(batch_id, DS)


def release(rt, lot_id: str) -> None:
    with rt.transaction() as s:
        s.execute(update(MaterialLot).where(MaterialLot.lot_id == lot_id).values(status="released"))


def set_quantity(rt, lot_id: str, quantity: float) -> None:
    with rt.transaction() as s:
        s.execute(update(MaterialLot).where(MaterialLot.lot_id == lot_id).values(quantity=quantity))


def lot(rt, lot_id: str) -> MaterialLot:
    with rt.transaction() as s:
        found = s.get(MaterialLot, lot_id)
        assert found is not None
        s.expunge(found)
        return found


def movements(rt, lot_id: str | None = None) -> list[LotMovement]:
    with rt.transaction() as s:
        query = select(LotMovement).order_by(LotMovement.id)
        if lot_id is not None:
            query = query.where(LotMovement.lot_id == lot_id)
        rows = list(s.scalars(query))
        s.expunge_all()
        return rows


def import_chain(rt) -> None:
    imported(rt, "mab_upstream")
    imported(rt, "mab_downstream")
