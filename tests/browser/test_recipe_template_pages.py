"""The recipe editor's templates and suggestions, server side (Flask's test client):
saving a recipe that calls a library operation template brings that template's files
and forms from its effective (or pinned) version and records the version in the call
activity; the "Similar library components" route is QA's, CSRF-checked, and refuses
hostile drafts with the reason."""

from __future__ import annotations

import json

import pytest

import workflows
from tests.support import approved_recipe

from .test_recipe_pages import GOOD_FORM, bpmn, csrf, save, versions_of
from .test_ui_pages import log_in

TEMPLATE = "tpl_hold_time"


@pytest.fixture
def app(runtime):
    from web.app import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def template(runtime):
    """The library's hold-time template as an effective recipe version here."""
    entry = workflows.get(TEMPLATE)
    return approved_recipe(runtime, dict(entry.files), forms=dict(entry.forms), user="qa.dora")


def calling(process_id: str, called: str = TEMPLATE, pin: str | None = None) -> str:
    """A recipe: one user task, then a call activity running ``called``."""
    props = (
        '<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="templateVersion" '
        f'value="{pin}"/></spiffworkflow:properties></bpmn:extensionElements>'
        if pin is not None
        else ""
    )
    return (
        bpmn(process_id)
        .replace(
            "<bpmn:endEvent id='e'/>",
            f'<bpmn:callActivity id="hold" name="Hold" calledElement="{called}">{props}'
            "</bpmn:callActivity><bpmn:endEvent id='e'/>",
        )
        .replace(
            'sourceRef="weigh" targetRef="e"',
            'sourceRef="weigh" targetRef="hold"/><bpmn:sequenceFlow id="f3" sourceRef="hold" targetRef="e"',
        )
    )


def suggest(client, draft, csrf_token: str | None):
    data = {"draft": json.dumps(draft) if not isinstance(draft, str) else draft}
    if csrf_token is not None:
        data["csrf_token"] = csrf_token
    return client.post("/recipes/suggestions", data=data)


def test_the_editor_offers_the_effective_templates(client, template):
    log_in(client, "qa.dora")
    page = client.get("/recipes/new").text
    data = json.loads(page.split('id="recipe-data">', 1)[1].split("</script>", 1)[0])
    (choice,) = [c for c in data["templates"] if c["process_id"] == TEMPLATE]
    assert choice["version"] == template.version and choice["id"] == template.id
    assert {"version": template.version, "status": "effective", "id": template.id} in choice["versions"]
    assert "pages_recipe" not in {c["process_id"] for c in data["templates"]}  # a plain recipe is no template


def test_saving_a_call_to_a_template_brings_its_files_and_records_the_version(client, template):
    log_in(client, "qa.dora")
    r = save(client, {"files": {"r.bpmn": calling("tpl_calls")}, "forms": {"weigh_form": GOOD_FORM}}, csrf(client))
    assert r.status_code == 201, r.json
    assert r.json["templates"] == [
        {"element_id": "hold", "process_id": TEMPLATE, "recipe": TEMPLATE, "version": template.version}
    ]
    (rv,) = versions_of(client, "tpl_calls")
    assert set(rv.bpmn) == {"r.bpmn", *template.bpmn}
    assert rv.bpmn["hold_time.bpmn"] == template.bpmn["hold_time.bpmn"]
    assert set(rv.forms) == {"weigh_form", *template.forms}
    # the version is written into the call activity (the engine keeps it; the hash covers it)
    assert f'name="templateVersion" value="{template.version}"' in rv.bpmn["r.bpmn"]
    # a pinned version is kept; saving the stored files again is the same version
    again = save(client, {"files": dict(rv.bpmn), "forms": dict(rv.forms), "base_id": rv.id}, csrf(client))
    assert again.status_code == 200 and again.json["id"] == rv.id, again.json
    # a stale copy of the template in the recipe is replaced by the pinned version's file
    stale = {**rv.bpmn, "hold_time.bpmn": rv.bpmn["hold_time.bpmn"].replace('name="', 'name="Old ', 1)}
    again = save(client, {"files": stale, "forms": dict(rv.forms), "base_id": rv.id}, csrf(client))
    assert again.status_code == 200 and again.json["id"] == rv.id, again.json


def test_a_pin_must_name_an_approved_version_of_the_template(client, template):
    log_in(client, "qa.dora")
    for pin in ("99", "x", "-1", "9" * 40, ""):
        files = {"r.bpmn": calling("tpl_badpin", pin=pin)}
        r = save(client, {"files": files, "forms": {"weigh_form": GOOD_FORM}}, csrf(client))
        if pin == "":  # no pin: the effective version
            assert r.status_code == 201 and r.json["templates"][0]["version"] == template.version
            continue
        assert r.status_code == 422, (pin, r.json)
        (problem,) = r.json["details"]["problems"]
        assert problem["code"] == "template_version_unknown" and problem["element_id"] == "hold"
    assert [v.version for v in versions_of(client, "tpl_badpin")] == [1]


def test_a_recipe_file_may_not_take_a_template_files_name(client, template):
    log_in(client, "qa.dora")
    r = save(
        client, {"files": {"hold_time.bpmn": calling("tpl_clash")}, "forms": {"weigh_form": GOOD_FORM}}, csrf(client)
    )
    assert r.status_code == 422 and r.json["code"] == "template_file_conflict"
    assert not versions_of(client, "tpl_clash")


def test_suggestions_are_qa_only_and_need_the_csrf_token(app, client, template):
    entry = workflows.get(TEMPLATE)
    draft = {"bpmn": {k: v.decode() for k, v in entry.files.items()}, "forms": dict(entry.forms)}
    operator = app.test_client()
    log_in(operator, "op.anna")
    assert suggest(operator, draft, csrf(operator)).status_code == 403
    log_in(client, "qa.dora")
    assert suggest(client, draft, None).status_code == 400
    assert suggest(client, draft, "forged").status_code == 400
    near = {
        "bpmn": {
            "mine.bpmn": entry.files["hold_time.bpmn"]
            .decode()
            .replace(TEMPLATE, "my_hold")
            .replace('name="', 'name="My ', 1)
        },
        "forms": dict(entry.forms),
    }
    r = suggest(client, near, csrf(client))
    assert r.status_code == 200, r.json
    first = r.json["suggestions"][0]
    assert first["template"] == TEMPLATE and first["score"] > 0.8
    assert first["installed"] == {"recipe": TEMPLATE, "version": template.version, "id": template.id}
    # the template itself open in the editor is not suggested to itself
    assert TEMPLATE not in [s["template"] for s in suggest(client, draft, csrf(client)).json["suggestions"]]
    # an unrelated draft: nothing suggested
    r = suggest(client, {"bpmn": {"r.bpmn": bpmn("unrelated")}, "forms": {"weigh_form": GOOD_FORM}}, csrf(client))
    assert r.status_code == 200 and all(s["score"] >= r.json["threshold"] for s in r.json["suggestions"])


def test_hostile_drafts_are_refused_with_the_reason(client):
    log_in(client, "qa.dora")
    token = csrf(client)
    xxe = bpmn("sg_xxe", head='<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>').replace(
        'name="Weigh"', 'name="&x;"'
    )
    r = suggest(client, {"bpmn": {"r.bpmn": xxe}}, token)
    assert r.status_code == 422 and r.json["details"]["problems"][0]["code"] == "xml_doctype"
    assert "root:" not in r.text
    assert suggest(client, "{" * 10_000, token).status_code == 400
    assert suggest(client, "", token).status_code == 400
    shapes = ({"bpmn": "x"}, {"bpmn": {}}, {"bpmn": {"a": 1}}, {"bpmn": {"a": bpmn()}, "forms": []}, [1], '"text"')
    for bad in shapes:
        r = suggest(client, bad, token)
        assert r.status_code == 422, bad
        assert r.json["code"] in ("bpmn_missing", "bpmn_invalid", "forms_invalid", "body_invalid"), bad
    r = suggest(client, {"bpmn": {"r.bpmn": "<not xml"}}, token)
    assert r.status_code == 422 and r.json["details"]["problems"][0]["code"] == "xml_malformed"
    big = bpmn("sg_big").replace("<bpmn:process", "<!--" + "x" * 2_100_000 + "--><bpmn:process")
    assert suggest(client, {"bpmn": {"r.bpmn": big}}, token).status_code == 413
