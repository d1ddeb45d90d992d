"""The recipe the qualification tests run: gown (needs ``aseptic-gowning``, signed) ->
transfer (needs ``aseptic-gowning``, signed and witnessed) -> label (no qualification)."""

from __future__ import annotations

from engine import recipes
from engine.runtime import Runtime

NS = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'targetNamespace="https://batchline.example/tests"'
)
QUAL = "aseptic-gowning"


def _task(bpmn_id: str, name: str, form: str, qual: str | None) -> str:
    prop = f'<spiffworkflow:property name="qual" value="{qual}"/>' if qual is not None else ""
    return f"""    <bpmn:userTask id="{bpmn_id}" name="{name}">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formKey" value="{form}"/>{prop}
        </spiffworkflow:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>"""


def bpmn(qual: str = QUAL) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS} id="defs_quals">
  <bpmn:process id="aseptic_steps" name="Gown, transfer, label" isExecutable="true">
    <bpmn:startEvent id="start"/>
{_task("gown", "Gown for grade B", "gown_form", qual)}
{_task("transfer", "Aseptic transfer", "transfer_form", qual)}
{_task("label", "Label the bag", "gown_form", None)}
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="gown"/>
    <bpmn:sequenceFlow id="f2" sourceRef="gown" targetRef="transfer"/>
    <bpmn:sequenceFlow id="f3" sourceRef="transfer" targetRef="label"/>
    <bpmn:sequenceFlow id="f4" sourceRef="label" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>""".encode()


def _form(form_id: str, witness: bool) -> dict:
    props = {"signatureMeaning": "Performed"}
    if witness:
        props |= {"witnessRequired": "true", "witnessRole": "Operator"}
    return {
        "type": "default",
        "id": form_id,
        "schemaVersion": 16,
        "components": [
            {"id": "Text_1", "type": "text", "text": "Do it.", "properties": props},
            {"id": "Field_done", "type": "checkbox", "key": "done", "label": "Done", "validate": {"required": True}},
        ],
    }


FORMS = {"gown_form": _form("gown_form", False), "transfer_form": _form("transfer_form", True)}
DATA = {"done": True}


def install(rt: Runtime) -> None:
    recipes.import_recipe(rt, {"aseptic.bpmn": bpmn()}, forms=FORMS, user="qa.lead", approve=True)
