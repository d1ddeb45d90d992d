"""Suggestions while drafting: a near-copy of a library template is recognised (top hit,
high score); an unrelated operation is not (below the threshold); the API ranks and
refuses bad input."""

from __future__ import annotations

import copy

import pytest

import workflows
from analytics import suggestions

UNRELATED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="forklift" name="Forklift daily check" isExecutable="true">
    <bpmn:startEvent id="s" name="Shift begins"/>
    <bpmn:userTask id="t" name="Inspect forklift tyres and horn"/>
    <bpmn:endEvent id="e" name="Forklift released"/>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="t"/>
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>
"""
UNRELATED_FORMS = {
    "forklift_check": {
        "components": [
            {"key": "tyre_pressure_bar", "label": "Tyre pressure", "type": "number"},
            {"key": "horn_works", "label": "Horn works", "type": "checkbox"},
        ]
    }
}


def near_copy(key: str) -> tuple[dict[str, str], dict]:
    """The template redrawn by someone else: ids renamed, a task and a label reworded."""
    entry = workflows.get(key)
    files = {}
    for data in entry.files.values():
        text = data.decode("utf-8").replace(f'id="{key}"', 'id="my_new_operation"')
        files["draft.bpmn"] = text.replace("Weigh and charge material", "Weigh and add the material")
    forms = copy.deepcopy(entry.forms)
    for form in forms.values():
        for field in form.get("components", []):
            if field.get("label"):
                field["label"] = field["label"] + " (draft)"
                break
    return files, forms


@pytest.mark.parametrize("key", [e.key for e in workflows.library() if e.kind == "template"])
def test_a_near_copy_of_a_template_is_the_top_hit(key):
    files, forms = near_copy(key)
    ranked = suggestions.rank(files, forms)
    assert ranked[0].key == key and ranked[0].score >= 0.8, ranked[:3]
    assert ranked[1].score < ranked[0].score - 0.3
    assert suggestions.suggest(files, forms)[0].key == key


def test_an_unrelated_operation_is_not_suggested():
    ranked = suggestions.rank({"forklift.bpmn": UNRELATED}, UNRELATED_FORMS)
    assert ranked[0].score < suggestions.THRESHOLD, ranked[:3]
    assert suggestions.suggest({"forklift.bpmn": UNRELATED}, UNRELATED_FORMS) == []


def test_suggestions_over_http(client, anon):
    files, forms = near_copy("tpl_charge_material")
    r = client.post("/api/recipes/suggestions", json={"bpmn": files, "forms": forms}, headers=client.auth["qa"])
    assert r.status_code == 200, r.json
    assert r.json["suggestions"][0]["template"] == "tpl_charge_material"
    assert r.json["suggestions"][0]["score"] >= 0.8 and r.json["threshold"] == suggestions.THRESHOLD
    scores = [s["score"] for s in r.json["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    r = client.post("/api/recipes/suggestions", json={"bpmn": {"f.bpmn": UNRELATED}, "forms": UNRELATED_FORMS})
    assert r.status_code == 200 and r.json["suggestions"] == []
    assert anon.post("/api/recipes/suggestions", json={"bpmn": files}).status_code == 401


def test_suggestions_refuse_bad_input(client):
    post = client.post
    assert post("/api/recipes/suggestions", json={}).json["code"] == "validation_error"
    assert post("/api/recipes/suggestions", json={"bpmn": "text"}).status_code == 422
    assert post("/api/recipes/suggestions", json={"bpmn": {"a": 1}}).status_code == 422
    assert post("/api/recipes/suggestions", json={"bpmn": {"a": UNRELATED}, "forms": []}).status_code == 422
    assert post("/api/recipes/suggestions", data="x", content_type="text/plain").status_code == 415
    xxe = '<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>'
    r = post("/api/recipes/suggestions", json={"bpmn": {"x.bpmn": xxe}})
    assert r.status_code == 422 and r.json["code"] == "xml_refused"
    assert post("/api/recipes/suggestions", json={"bpmn": {"x.bpmn": "<a>"}}).json["code"] == "xml_refused"
