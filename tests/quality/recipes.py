"""The recipe the exception-source tests run: a user task with a ``due`` time, a form
that scans a material lot and equipment (an override), and a critical service task."""

from __future__ import annotations

NS = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'targetNamespace="https://batchline.example/tests"'
)


def due_bpmn(due: str = "PT2H") -> bytes:
    """weigh (due ``due``) -> charge (scans a lot and a vessel) -> end."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="defs_due">
  <bpmn:process id="late_steps" name="Weigh, then charge" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="weigh" name="Weigh glucose">
      <bpmn:extensionElements>
        <spiffworkflow:properties><spiffworkflow:property name="due" value="{due}"/></spiffworkflow:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:userTask id="charge" name="Charge the vessel">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formKey" value="charge_form"/>
        </spiffworkflow:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="weigh"/>
    <bpmn:sequenceFlow id="f2" sourceRef="weigh" targetRef="charge"/>
    <bpmn:sequenceFlow id="f3" sourceRef="charge" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>""".encode()


CHARGE_FORM = {
    "type": "default",
    "id": "charge_form",
    "schemaVersion": 16,
    "components": [
        {
            "id": "Text_1",
            "type": "text",
            "text": "Charge the medium.",
            "properties": {"signatureMeaning": "Performed"},
        },
        {
            "id": "Field_lot",
            "type": "textfield",
            "key": "media_lot",
            "label": "Medium lot",
            "validate": {"required": True},
            "properties": {"fieldKind": "materialLot", "material": "MED-1", "critical": "true"},
        },
        {
            "id": "Field_vessel",
            "type": "textfield",
            "key": "vessel",
            "label": "Vessel",
            "validate": {"required": True},
            "properties": {"fieldKind": "equipment", "equipmentClass": "Vessel"},
        },
        {
            "id": "Field_volume",
            "type": "number",
            "key": "volume_l",
            "label": "Volume",
            "validate": {"required": True, "min": 1, "max": 100},
            "properties": {"unit": "L"},
        },
    ],
}


def critical_service_bpmn(critical: bool = True) -> bytes:
    prop = '<spiffworkflow:properties><spiffworkflow:property name="critical" value="true"/></spiffworkflow:properties>'
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="defs_incident">
  <bpmn:process id="erp_post" name="Post to ERP" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:serviceTask id="post_erp" name="Post goods issue">
      <bpmn:extensionElements>
        {prop if critical else ""}
        <spiffworkflow:serviceTaskOperator id="erp.confirm" resultVariable="erp">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="order" type="str" value="'PO-1'"/>
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="post_erp"/>
    <bpmn:sequenceFlow id="f2" sourceRef="post_erp" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>""".encode()
