"""Genealogy through the engine: a drug substance lot traced back through its HCCF and the
upstream batch to the cell bank vial; a media lot traced forward to every batch that used
it; the lots' quantities on hand follow the movements (``engine.lot_movements``,
``engine.genealogy``)."""

from __future__ import annotations

import pytest

from engine import genealogy
from engine.errors import InvalidInput, NotFound
from tests.genealogy.chain import (
    CELL_BANK_LOT,
    DS,
    HCCF,
    MEDIA_LOT,
    downstream,
    import_chain,
    lot,
    movements,
    upstream,
)


def ids(trace, kind: str) -> set[str]:
    return {n["lot_id"] if kind == "lot" else n["batch_id"] for n in trace["nodes"] if n["type"] == kind}


def test_a_drug_substance_lot_is_traced_back_to_its_cell_bank(rt):
    import_chain(rt)
    vials_before = lot(rt, CELL_BANK_LOT).quantity
    hccf = upstream(rt, "UP-1")
    produced = lot(rt, hccf)
    assert (produced.material, produced.quantity, produced.unit, produced.produced_by) == (HCCF, 1800.0, "L", "UP-1")
    assert lot(rt, CELL_BANK_LOT).quantity == vials_before - 1  # one vial thawed
    ds = downstream(rt, "DS-1", hccf, litres="1200")
    assert lot(rt, hccf).quantity == 600.0  # 1800 L produced, 1200 L loaded downstream
    ds_lot = lot(rt, ds)
    assert (ds_lot.material, ds_lot.status, ds_lot.produced_by, ds_lot.unit) == (DS, "quarantine", "DS-1", "kg")

    trace = genealogy.trace(rt, ds, "backward")
    assert {"DS-1", "UP-1"} == ids(trace, "batch")
    assert {ds, hccf, CELL_BANK_LOT, MEDIA_LOT} <= ids(trace, "lot")
    edges = {(e["from"], e["to"]): e for e in trace["edges"]}
    assert edges[("batch:DS-1", f"lot:{ds}")]["kind"] == "produced"
    load = edges[(f"lot:{hccf}", "batch:DS-1")]
    assert (load["kind"], load["quantity"], load["unit"]) == ("consumed", 1200.0, "L")
    assert load["step_name"] == "Batch start: order, HCCF and line clearance"
    assert edges[("batch:UP-1", f"lot:{hccf}")]["quantity"] == 1800.0
    vial = edges[(f"lot:{CELL_BANK_LOT}", "batch:UP-1")]
    assert (vial["quantity"], vial["unit"]) == (1.0, "vial")
    levels = {n["id"]: n["level"] for n in trace["nodes"]}
    assert levels[f"lot:{ds}"] == 0 and levels["batch:DS-1"] == 1 and levels[f"lot:{CELL_BANK_LOT}"] == 2
    assert trace["truncated"] is False

    shallow = genealogy.trace(rt, ds, "backward", depth=1)  # the downstream batch and its inputs only
    assert ids(shallow, "batch") == {"DS-1"} and CELL_BANK_LOT not in ids(shallow, "lot")
    assert shallow["truncated"] is True  # the HCCF has a producing batch beyond depth 1


def test_a_media_lot_is_traced_forward_to_every_batch_that_used_it(rt):
    import_chain(rt)
    first, second = upstream(rt, "UP-A"), upstream(rt, "UP-B")
    trace = genealogy.trace(rt, MEDIA_LOT, "forward", depth=1)
    assert ids(trace, "batch") == {"UP-A", "UP-B"}
    assert {first, second} <= ids(trace, "lot")
    used = [e for e in trace["edges"] if e["kind"] == "consumed"]
    # the medium is scanned at the thaw, the passages, the rocking bag and the basal medium
    # charge: one edge per step, the counted one (basal medium powder) with its kg
    assert {e["batch_id"] for e in used} == {"UP-A", "UP-B"}
    counted = [e for e in used if e["quantity"] is not None]
    assert [(e["batch_id"], e["quantity"], e["unit"]) for e in counted] == [("UP-A", 27.0, "kg"), ("UP-B", 27.0, "kg")]
    assert lot(rt, MEDIA_LOT).quantity == 500 - 2 * 27.0
    assert len(movements(rt, MEDIA_LOT)) == len(used)


@pytest.mark.parametrize(
    ("direction", "depth", "code"),
    [("sideways", 3, "direction_invalid"), ("backward", 0, "depth_invalid"), ("forward", 10_000, "depth_invalid")],
)
def test_a_bad_query_is_refused(rt, direction, depth, code):
    with pytest.raises(InvalidInput) as err:
        genealogy.trace(rt, MEDIA_LOT, direction, depth)
    assert err.value.code == code


@pytest.mark.parametrize("lot_id", ["NO-SUCH-LOT", "x" * 500, ""])
def test_an_unknown_lot_is_not_found(rt, lot_id):
    with pytest.raises(NotFound) as err:
        genealogy.trace(rt, lot_id, "backward", 3)
    assert err.value.code == "lot_not_found"
