"""A supervisor overrides a failed lot/equipment scan check with a reason and their
signature: the step is recorded and an ``override`` exception raised in its transaction.
Hard limits, passing scans and unsigned or self-signed overrides are refused."""

from __future__ import annotations

import pytest

from engine import batches
from engine.errors import InvalidInput
from engine.models import Equipment, MaterialLot
from engine.permissions import Forbidden
from engine.users import Person
from tests.engine.engine_helpers import complete, ready
from tests.quality.recipes import CHARGE_FORM, due_bpmn
from tests.support import approved_recipe

ANNA = Person("op.anna", "Anna Operator", ("operator",))
SAM = Person("sup.sam", "Sam Supervisor", ("supervisor",))


@pytest.fixture
def charging(rt):
    with rt.transaction() as s:
        s.add(MaterialLot(lot_id="LOT-Q", material="MED-1", status="quarantine"))
        s.add(MaterialLot(lot_id="LOT-OK", material="MED-1", status="released"))
        s.add(Equipment(equipment_id="V-1", equipment_class="Vessel", status="clean"))
        s.add(Equipment(equipment_id="V-DIRTY", equipment_class="Vessel", status="dirty"))
    approved_recipe(rt, {"late.bpmn": due_bpmn()}, forms={"charge_form": CHARGE_FORM}, user="qa.lead")
    batches.start_batch(rt, "late_steps", "OV-1", user="sup.sam")
    complete(rt, "OV-1", "weigh", {})
    return rt


def _charge(rt, data, **kw):
    return complete(rt, "OV-1", "charge", data, signer=ANNA, **kw)


def test_without_an_override_a_failed_scan_refuses_the_step(charging):
    with pytest.raises(InvalidInput) as err:
        _charge(charging, {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 10})
    assert "quarantine" in err.value.details["fields"]["media_lot"][0]


def test_a_supervisor_overrides_a_failed_lot_check(charging):
    task_id = ready(charging, "OV-1")["charge"]["id"]
    out = _charge(
        charging,
        {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 10},
        override={"media_lot": "released on paper, ERP update pending"},
        override_signer=SAM,
        idempotency_key="ov-1",
    )
    assert out.status == 200 and out.body["step"]["values"]["media_lot"] == "LOT-Q"
    (exc,) = [e for e in batches.exceptions(charging, "OV-1") if e["category"] == "override"]
    assert exc["source"] == "supervisor" and exc["raised_by"] == "sup.sam" and exc["step_seq"] == 2
    assert exc["parameter"] == "media_lot" and exc["value"] == "LOT-Q" and "quarantine" in exc["limits"]["check"]
    assert exc["severity"] == "critical"  # the lot field is critical
    assert exc["details"]["reason"] == "released on paper, ERP update pending"
    sig = exc["details"]["signature"]
    assert sig["meaning"] == "Approved" and sig["printed_name"] == "Sam Supervisor" and len(sig["content_hash"]) == 64
    assert exc["opens_deviation"] is True
    # a replay answers the first result and raises nothing more
    again = batches.complete_task(
        charging,
        "OV-1",
        task_id,
        {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 10},
        user="op.anna",
        actor=ANNA,
        override={"media_lot": "released on paper, ERP update pending"},
        idempotency_key="ov-1",
    )
    assert again.replayed
    assert len([e for e in batches.exceptions(charging, "OV-1") if e["category"] == "override"]) == 1


def test_a_non_critical_equipment_override_is_major(charging):
    _charge(
        charging,
        {"media_lot": "LOT-OK", "vessel": "V-DIRTY", "volume_l": 10},
        override={"vessel": "cleaned, record late"},
        override_signer=SAM,
    )
    (exc,) = [e for e in batches.exceptions(charging, "OV-1") if e["category"] == "override"]
    assert exc["severity"] == "major" and exc["parameter"] == "vessel" and "dirty" in exc["limits"]["check"]


@pytest.mark.parametrize(
    "data, override, signer, error, code",
    [
        # a hard limit is never overridden
        (
            {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 500},
            {"media_lot": "r"},
            SAM,
            InvalidInput,
            "form_invalid",
        ),
        (
            {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 500},
            {"volume_l": "r"},
            SAM,
            InvalidInput,
            "override_invalid",
        ),
        # a scan that passed has nothing to override
        (
            {"media_lot": "LOT-OK", "vessel": "V-1", "volume_l": 5},
            {"media_lot": "r"},
            SAM,
            InvalidInput,
            "form_invalid",
        ),
        # the other failed scan still refuses
        (
            {"media_lot": "LOT-Q", "vessel": "V-DIRTY", "volume_l": 5},
            {"media_lot": "r"},
            SAM,
            InvalidInput,
            "form_invalid",
        ),
        (
            {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 5},
            {"media_lot": ""},
            SAM,
            InvalidInput,
            "reason_required",
        ),
        (
            {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 5},
            {"media_lot": 3},
            SAM,
            InvalidInput,
            "reason_required",
        ),
        ({"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 5}, {}, SAM, InvalidInput, "override_invalid"),
        ({"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 5}, ["media_lot"], SAM, InvalidInput, "override_invalid"),
        (
            {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 5},
            {"media_lot": "r"},
            None,
            InvalidInput,
            "signature_required",
        ),
        (
            {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 5},
            {"media_lot": "r"},
            ANNA,
            Forbidden,
            "override_forbidden",
        ),
    ],
)
def test_what_cannot_be_overridden_is_refused_and_nothing_is_recorded(charging, data, override, signer, error, code):
    with pytest.raises(error) as err:
        _charge(charging, data, override=override, override_signer=signer)
    assert err.value.code == code
    assert "charge" in ready(charging, "OV-1")
    assert batches.exceptions(charging, "OV-1") == []


def test_the_performer_cannot_override_their_own_step(charging):
    sam_both = Person("sup.sam", "Sam Supervisor", ("supervisor",))
    with pytest.raises(Forbidden) as err:
        complete(
            charging,
            "OV-1",
            "charge",
            {"media_lot": "LOT-Q", "vessel": "V-1", "volume_l": 5},
            user="sup.sam",
            signer=sam_both,
            override={"media_lot": "r"},
            override_signer=sam_both,
        )
    assert err.value.code == "override_by_performer"
