"""Shared fixtures for the forms tests: the sample inoculation form and fake lookups."""

import copy
import json
from pathlib import Path

import pytest

from forms import EquipmentCheck, LotCheck, clear_compiled_forms, compile_form

FIXTURES = Path(__file__).parent / "fixtures"


class FakeLookups:
    """Master data stand-in: a few released lots and free, clean equipment."""

    def __init__(self):
        self.lots = {"LOT-MED-0042": "MED-CHO-CD-001", "LOT-BUF-0007": "BUF-PBS-001"}
        self.expired = {"LOT-MED-0001"}
        self.equipment = {"BR-2000-01": "Bioreactor-2000L", "BR-2000-02": "Bioreactor-2000L"}
        self.in_use = {"BR-2000-02": "B-0999"}
        self.calls = []

    def check_material_lot(self, lot_id, material):
        self.calls.append(("lot", lot_id, material))
        if lot_id in self.expired:
            return LotCheck(False, f"Lot {lot_id} expired on 2024-12-31.")
        if lot_id not in self.lots:
            return LotCheck(False, f"Lot {lot_id} is not known or not released.")
        if self.lots[lot_id] != material:
            return LotCheck(False, f"Lot {lot_id} is {self.lots[lot_id]}, not {material}.")
        return LotCheck(True)

    def check_equipment(self, equipment_id, equipment_class, batch_id):
        self.calls.append(("equipment", equipment_id, equipment_class, batch_id))
        if equipment_id not in self.equipment:
            return EquipmentCheck(False, "")
        other = self.in_use.get(equipment_id)
        if other and other != batch_id:
            return EquipmentCheck(False, f"{equipment_id} is in use by batch {other}.")
        return EquipmentCheck(True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_compiled_forms()
    yield
    clear_compiled_forms()


@pytest.fixture
def inoculation_source():
    return json.loads((FIXTURES / "inoculation.json").read_text(encoding="utf-8"))


@pytest.fixture
def inoculation(inoculation_source):
    return compile_form(inoculation_source)


@pytest.fixture
def lookups():
    return FakeLookups()


VALID_SUBMISSION = {
    "bioreactor_id": "BR-2000-01",
    "media_lot": "LOT-MED-0042",
    "pre_checks": ["port_connected", "do_calibrated", "ph_calibrated"],
    "line_clearance": True,
    "seed_vcd": 5.0,
    "seed_viability": 97.5,
    "inoculum_volume": 150,
    "seed_appearance": "normal",
    "working_volume": 1500,
    "ph": 7.05,
    "temperature": 36.5,
    "inoculation_time": "2025-03-01T10:15:00+01:00",
    "transfer_method": "pump",
    "sample_id": "S-000123",
    "comments": "Transfer uneventful.",
}


@pytest.fixture
def submission():
    return copy.deepcopy(VALID_SUBMISSION)
