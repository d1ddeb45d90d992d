"""A one-task recipe that scans a buffer lot and a mixing vessel (and types an order
number with a pattern), with its lots and vessels: what the scan-check tests share.

Ids carry a prefix so the browser tests' shared runtime never sees two tests' rows."""

from __future__ import annotations

from datetime import timedelta

from engine.models import Equipment, Material, MaterialLot, utcnow
from tests.support import approved_recipe

RECIPE = "scan_charge"
MATERIAL = "SCAN-PBS"

BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="defs_scan_charge" targetNamespace="https://batchline.example/tests/scans">
  <bpmn:process id="scan_charge" name="Buffer charge" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="charge" name="Charge the buffer">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formKey" value="sc_charge"/>
        </spiffworkflow:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="charge"/>
    <bpmn:sequenceFlow id="f2" sourceRef="charge" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""

FORM = {
    "type": "default",
    "id": "sc_charge",
    "schemaVersion": 16,
    "components": [
        {
            "id": "Field_lot",
            "type": "textfield",
            "key": "buffer_lot",
            "label": "Buffer lot",
            "validate": {"required": True},
            "properties": {"fieldKind": "materialLot", "material": MATERIAL},
        },
        {
            "id": "Field_vessel",
            "type": "textfield",
            "key": "vessel",
            "label": "Mixing vessel",
            "validate": {"required": True},
            "properties": {"fieldKind": "equipment", "equipmentClass": "mixing_vessel"},
        },
        {
            "id": "Field_order",
            "type": "textfield",
            "key": "order_no",
            "label": "Order number",
            "validate": {"pattern": "[0-9]{10}"},
        },
        {
            "id": "Field_volume",
            "type": "number",
            "key": "volume",
            "label": "Volume charged",
            "properties": {"unit": "L", "hardMin": "1", "hardMax": "100", "alertHigh": "80", "actionHigh": "90"},
        },
    ],
}


def install(rt, prefix: str) -> dict[str, str]:
    """The recipe (approved), and lots and vessels in every state a scan meets; returns their ids."""
    approved_recipe(rt, {"scan_charge.bpmn": BPMN}, forms={"sc_charge": FORM}, user="qa.dora")
    now = utcnow()
    ids = {
        "lot_ok": f"{prefix}-LOT-OK",
        "lot_quarantine": f"{prefix}-LOT-Q",
        "lot_expired": f"{prefix}-LOT-EXP",
        "lot_other": f"{prefix}-LOT-NACL",
        "vessel_ok": f"{prefix}-MV-1",
        "vessel_dirty": f"{prefix}-MV-2",
        "vessel_busy": f"{prefix}-MV-3",
        "vessel_maint": f"{prefix}-MV-4",
        "vessel_overdue": f"{prefix}-MV-5",
        "balance": f"{prefix}-BAL-1",
    }
    with rt.transaction() as s:
        for material, name in ((MATERIAL, "PBS buffer"), ("SCAN-NACL", "Sodium chloride 5 M")):
            if s.get(Material, material) is None:
                s.add(Material(material_id=material, name=name, unit="L", kind="raw_material", description=""))
        s.flush()
        s.add(MaterialLot(lot_id=ids["lot_ok"], material=MATERIAL, status="released", expires_at=now + timedelta(90)))
        s.add(
            MaterialLot(
                lot_id=ids["lot_quarantine"], material=MATERIAL, status="quarantine", status_reason="awaiting CoA"
            )
        )
        s.add(
            MaterialLot(lot_id=ids["lot_expired"], material=MATERIAL, status="released", expires_at=now - timedelta(1))
        )
        s.add(MaterialLot(lot_id=ids["lot_other"], material="SCAN-NACL", status="released"))
        s.add(Equipment(equipment_id=ids["vessel_ok"], equipment_class="mixing_vessel", status="clean"))
        s.add(Equipment(equipment_id=ids["vessel_dirty"], equipment_class="mixing_vessel", status="dirty"))
        s.add(
            Equipment(
                equipment_id=ids["vessel_busy"], equipment_class="mixing_vessel", status="in_use", in_use_by="OTHER-1"
            )
        )
        s.add(
            Equipment(
                equipment_id=ids["vessel_maint"],
                equipment_class="mixing_vessel",
                status="maintenance",
                status_reason="agitator seal replaced",
            )
        )
        s.add(
            Equipment(
                equipment_id=ids["vessel_overdue"],
                equipment_class="mixing_vessel",
                status="clean",
                calibrated_until=now - timedelta(days=2),
            )
        )
        s.add(Equipment(equipment_id=ids["balance"], equipment_class="balance", status="clean"))
    return ids


__all__ = ["BPMN", "FORM", "RECIPE", "install"]
