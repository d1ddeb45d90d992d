"""The recipe pages' server-side rules, without a browser: who may open the editor and
save, CSRF on every save and submit, and hostile recipes (oversize, XXE) refused by the
engine with the reason in the JSON the editor shows."""

from __future__ import annotations

import json

import pytest

from engine import recipes

from .test_ui_pages import log_in, token

GOOD_FORM = {
    "type": "default",
    "id": "weigh_form",
    "components": [{"type": "number", "key": "mass", "label": "Mass", "properties": {"unit": "g", "hardMin": "0"}}],
}


def bpmn(process_id: str = "pages_recipe", form_key: str | None = "weigh_form", head: str = "") -> str:
    props = (
        f'<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="formKey" value="{form_key}"/>'
        "</spiffworkflow:properties></bpmn:extensionElements>"
        if form_key
        else ""
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{head}'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="x">'
        f'<bpmn:process id="{process_id}" name="Pages recipe" isExecutable="true">'
        '<bpmn:startEvent id="s"/><bpmn:userTask id="weigh" name="Weigh">'
        f"{props}</bpmn:userTask><bpmn:endEvent id='e'/>"
        '<bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="weigh"/>'
        '<bpmn:sequenceFlow id="f2" sourceRef="weigh" targetRef="e"/>'
        "</bpmn:process></bpmn:definitions>"
    )


@pytest.fixture
def app(runtime):
    from web.app import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


def csrf(client) -> str:
    return token(client.get("/recipes/").text)


def save(client, body, csrf_token: str | None):
    data = {"recipe": json.dumps(body)}
    if csrf_token is not None:
        data["csrf_token"] = csrf_token
    return client.post("/recipes/save", data=data)


def versions_of(client, key: str):
    return [rv for rv in recipes.list_versions(client.application.extensions["batchline"]) if rv.recipe == key]


def test_everyone_reads_recipes_only_qa_opens_the_editor(client):
    log_in(client, "op.anna")
    page = client.get("/recipes/")
    assert page.status_code == 200 and "buffer_prep" in page.text and "Design a new recipe" not in page.text
    rv = versions_of(client, "buffer_prep")[0]
    assert client.get(f"/recipes/{rv.id}").status_code == 200
    assert client.get(f"/recipes/{rv.id}/diagram").json["files"]
    assert client.get("/recipes/new").status_code == 403
    assert client.get(f"/recipes/{rv.id}/edit").status_code == 403
    r = save(client, {"files": {"r.bpmn": bpmn("op_recipe")}, "forms": {"weigh_form": GOOD_FORM}}, csrf(client))
    assert r.status_code == 403 and not versions_of(client, "op_recipe")
    r = client.post(f"/recipes/{rv.id}/submit", data={"csrf_token": csrf(client)})
    assert r.status_code == 403


def test_qa_saves_a_new_draft_and_never_changes_an_existing_version(client):
    log_in(client, "qa.dora")
    assert "recipe-editor" in client.get("/recipes/new").text
    body = {"files": {"r.bpmn": bpmn("pages_draft")}, "forms": {"weigh_form": GOOD_FORM}}
    r = save(client, body, csrf(client))
    assert r.status_code == 201, r.json
    assert r.json["status"] == "draft" and r.json["version"] == 1 and r.json["created"] is True
    again = save(client, {**body, "base_id": r.json["id"]}, csrf(client))
    assert again.status_code == 200 and again.json["id"] == r.json["id"]  # identical content: the same version
    changed = json.loads(json.dumps(body))
    changed["forms"]["weigh_form"]["components"][0]["properties"]["hardMax"] = "500"
    v2 = save(client, {**changed, "base_id": r.json["id"]}, csrf(client))
    assert v2.status_code == 201 and v2.json["version"] == 2
    first, second = sorted(versions_of(client, "pages_draft"), key=lambda v: v.version)
    assert "hardMax" not in first.forms["weigh_form"]["components"][0]["properties"]
    assert second.status == "draft"
    # a new recipe cannot take an existing recipe's id
    taken = save(client, body, csrf(client))
    assert taken.status_code == 409 and taken.json["code"] == "recipe_exists"
    # the page of version 2 compares it with version 1: the changed limit is named
    page = client.get(f"/recipes/{second.id}").text
    assert 'id="compare-form"' in page and f'value="{first.id}"' in page
    diff = client.get(f"/recipes/{second.id}/diff?against={first.id}")
    assert diff.status_code == 200 and "hardMax" in diff.text


def test_saves_and_submits_need_the_csrf_token(client):
    log_in(client, "qa.dora")
    body = {"files": {"r.bpmn": bpmn("pages_csrf")}, "forms": {"weigh_form": GOOD_FORM}}
    assert save(client, body, None).status_code == 400
    assert save(client, body, "forged").status_code == 400
    assert not versions_of(client, "pages_csrf")
    rv = versions_of(client, "buffer_prep")[0]
    assert client.post(f"/recipes/{rv.id}/submit", data={}).status_code == 400


def test_problems_name_the_element(client):
    log_in(client, "qa.dora")
    r = save(client, {"files": {"r.bpmn": bpmn("pages_noform", form_key=None)}, "forms": {}}, csrf(client))
    assert r.status_code == 422 and r.json["code"] == "recipe_invalid"
    (problem,) = r.json["details"]["problems"]
    assert problem["code"] == "form_missing" and problem["element_id"] == "weigh"
    empty = {"type": "default", "id": "weigh_form", "components": []}
    r = save(client, {"files": {"r.bpmn": bpmn("pages_empty")}, "forms": {"weigh_form": empty}}, csrf(client))
    assert r.status_code == 422 and r.json["details"]["problems"][0]["element_id"] == "weigh"
    assert "no input fields" in r.json["details"]["problems"][0]["message"]
    service = bpmn("pages_service").replace(
        "<bpmn:endEvent id='e'/>",
        '<bpmn:serviceTask id="call_erp" name="Tell ERP"><bpmn:extensionElements>'
        '<spiffworkflow:serviceTaskOperator id="erp_of_another_plant.nowhere"><spiffworkflow:parameters/>'
        "</spiffworkflow:serviceTaskOperator>"
        "</bpmn:extensionElements></bpmn:serviceTask>"
        "<bpmn:endEvent id='e'/>",
    )
    service = service.replace(
        'targetRef="e"/></bpmn:process>',
        'targetRef="call_erp"/><bpmn:sequenceFlow id="f3" sourceRef="call_erp" targetRef="e"/></bpmn:process>',
    )
    r = save(client, {"files": {"r.bpmn": service}, "forms": {"weigh_form": GOOD_FORM}}, csrf(client))
    assert r.status_code == 422, r.json
    assert [p["element_id"] for p in r.json["details"]["problems"]] == ["call_erp"], r.json
    assert r.json["details"]["problems"][0]["code"] == "connector_unknown"
    assert not [k for k in ("pages_noform", "pages_empty", "pages_service") if versions_of(client, k)]


def test_hostile_recipes_are_refused_with_the_reason(client):
    log_in(client, "qa.dora")
    xxe = bpmn("pages_xxe", head='<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>').replace(
        'name="Weigh"', 'name="&x;"'
    )
    r = save(client, {"files": {"r.bpmn": xxe}, "forms": {"weigh_form": GOOD_FORM}}, csrf(client))
    assert r.status_code == 422 and r.json["details"]["problems"][0]["code"] == "xml_doctype"
    assert "root:" not in r.text
    huge = bpmn("pages_huge").replace("<bpmn:process", "<!--" + "x" * 2_100_000 + "--><bpmn:process")
    r = save(client, {"files": {"r.bpmn": huge}, "forms": {}}, csrf(client))
    assert r.status_code == 413  # over the request limit: refused before anything is read
    r = save(client, {"files": "not a dict"}, csrf(client))
    assert r.status_code == 422 and r.json["code"] == "bpmn_missing"
    r = client.post("/recipes/save", data={"csrf_token": csrf(client), "recipe": "{" * 10_000})
    assert r.status_code == 400
    r = save(
        client,
        {"files": {"r.bpmn": bpmn("pages_base")}, "forms": {"weigh_form": GOOD_FORM}, "base_id": "1"},
        csrf(client),
    )
    assert r.status_code == 422
    assert not [k for k in ("pages_xxe", "pages_huge", "pages_base") if versions_of(client, k)]


def test_an_operator_cannot_submit_from_the_page(client):
    rv = versions_of(client, "buffer_prep")[0]
    log_in(client, "op.anna")
    assert client.post(f"/recipes/{rv.id}/submit", data={"csrf_token": csrf(client)}).status_code == 403


def test_only_a_draft_is_submitted_from_the_page_and_only_with_the_csrf_token(client):
    rv = versions_of(client, "buffer_prep")[0]  # the fixture's recipe: approved, not a draft
    log_in(client, "qa.dora")
    r = client.post(f"/recipes/{rv.id}/submit", data={"csrf_token": csrf(client)})
    assert r.status_code == 409 and r.json["code"]
    assert client.post(f"/recipes/{rv.id}/submit", data={}).status_code == 400  # no CSRF token
