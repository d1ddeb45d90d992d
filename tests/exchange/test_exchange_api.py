"""The exchange API on SQLite and PostgreSQL: export.xml validated and round-tripped
through import.xml with the same content hash; wrong types, hostile and oversize
documents, Idempotency-Key replay, concurrent imports; who may do what."""

from __future__ import annotations

import threading

import pytest
from lxml import etree
from sqlalchemy import select

import workflows
from engine.exports import recipe_batchml
from engine.models import AuditEvent
from tests.support import RECIPES

XML = {"Content-Type": "application/xml"}


def _import_library(client, key: str) -> dict:
    entry = workflows.get(key)
    body = {"bpmn": {n: d.decode("utf-8") for n, d in entry.files.items()}, "forms": entry.forms, "recipe": key}
    r = client.post("/api/recipes", json=body, headers=client.auth["quentin"])
    assert r.status_code == 201, r.json
    return r.json


@pytest.fixture
def template(client):
    return _import_library(client, "tpl_charge_material")


def _export(client, version_id: int) -> bytes:
    r = client.get(f"/api/recipes/{version_id}/export.xml")
    assert r.status_code == 200, r.data[:500]
    return r.data


@pytest.mark.parametrize("key", ["mab_upstream", "tpl_charge_material"])
def test_export_validates_and_imports_back_with_the_same_hash(client, key):
    rv = _import_library(client, key)
    r = client.get(f"/api/recipes/{rv['id']}/export.xml")
    assert r.status_code == 200 and r.mimetype == "application/xml"
    assert r.headers["X-Recipe-Content-Hash"] == rv["content_hash"]
    assert recipe_batchml.validate(etree.fromstring(r.data)) == []
    back = client.post(f"/api/recipes/import.xml?recipe={key}_copy", data=r.data, headers={**XML, **client.auth["qa"]})
    assert back.status_code == 201, back.json
    assert back.json["content_hash"] == rv["content_hash"] and back.json["created"] is True
    assert back.json["recipe"] == f"{key}_copy" and back.json["status"] == "draft"
    shown = client.get(f"/api/recipes/{back.json['id']}").json
    original = client.get(f"/api/recipes/{rv['id']}").json
    assert shown["bpmn"] == original["bpmn"] and shown["forms"] == original["forms"]
    with client.application.extensions["batchline"].transaction() as s:
        trail = s.scalars(select(AuditEvent).where(AuditEvent.action == "recipe.imported_batchml")).all()
        assert [(e.user, e.object_id) for e in trail] == [("qa", f"{key}_copy:1")]


def test_importing_the_identical_document_answers_the_existing_version(client, template):
    document = _export(client, template["id"])
    r = client.post("/api/recipes/import.xml", data=document, headers={**XML, **client.auth["qa"]})
    assert r.status_code == 200 and r.json["created"] is False and r.json["id"] == template["id"]


def test_idempotency_key_replays_and_refuses_another_request(client, template):
    document = _export(client, template["id"])
    headers = {**XML, **client.auth["qa"], "Idempotency-Key": "k-1"}
    first = client.post("/api/recipes/import.xml?recipe=replayed", data=document, headers=headers)
    second = client.post("/api/recipes/import.xml?recipe=replayed", data=document, headers=headers)
    assert first.status_code == 201 and second.status_code == 201 and first.json == second.json
    other = client.post("/api/recipes/import.xml?recipe=another", data=document, headers=headers)
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"


def test_concurrent_imports_of_one_document_make_one_version(app, client, template):
    document = _export(client, template["id"])
    answers: list = []

    def post():
        c = app.test_client()
        r = c.post("/api/recipes/import.xml?recipe=raced", data=document, headers={**XML, **client.auth["qa"]})
        answers.append((r.status_code, r.json))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [body for status, body in answers if status in (200, 201)]
    assert ok and all(status in (200, 201, 409, 503) for status, _ in answers), answers
    assert len({body["id"] for body in ok}) == 1
    versions = [v for v in client.get("/api/recipes").json if v["recipe"] == "raced"]
    assert len(versions) == 1


def test_schema_invalid_document_is_refused_with_the_reason(client, template):
    root = etree.fromstring(_export(client, template["id"]))
    ns = {"b": recipe_batchml.NS}
    root.find(".//b:LinkType", ns).text = "Teleport"
    r = client.post("/api/recipes/import.xml", data=etree.tostring(root), headers={**XML, **client.auth["qa"]})
    assert r.status_code == 422 and r.json["code"] == "batchml_invalid"
    assert "Teleport" in r.json["message"] and r.json["details"]["problems"]


@pytest.mark.parametrize("name", ["xxe.bpmn", "billion_laughs.bpmn"])
def test_hostile_xml_is_refused(client, name):
    data = (RECIPES.parent / "bpmn" / name).read_bytes()
    r = client.post("/api/recipes/import.xml", data=data, headers={**XML, **client.auth["qa"]})
    assert r.status_code == 422 and r.json["code"] == "xml_refused"
    assert "DOCTYPE" in r.json["message"]


def test_oversize_malformed_and_wrong_types_are_refused(client):
    qa = {**XML, **client.auth["qa"]}
    big = client.post("/api/recipes/import.xml", data=b"<a>" + b"x" * 2_100_000 + b"</a>", headers=qa)
    assert big.status_code == 413 and big.json["code"]
    assert client.post("/api/recipes/import.xml", data=b"<a>", headers=qa).json["code"] == "xml_refused"
    assert client.post("/api/recipes/import.xml", data=b"", headers=qa).status_code == 422
    r = client.post("/api/recipes/import.xml", json={"bpmn": "x"}, headers=client.auth["qa"])
    assert r.status_code == 415 and r.json["code"] == "unsupported_media_type"
    r = client.post("/api/recipes/import.xml?recipe=", data=b"<a/>", headers=qa)
    assert r.status_code == 422
    r = client.post("/api/recipes/import.xml", data=(RECIPES / "loop.bpmn").read_bytes(), headers=qa)
    assert r.status_code == 422 and r.json["code"] == "batchml_invalid"


def test_permissions(client, anon, template):
    document = _export(client, template["id"])
    assert anon.get(f"/api/recipes/{template['id']}/export.xml").status_code == 401
    assert anon.post("/api/recipes/import.xml", data=document, headers=XML).status_code == 401
    # everyone reads recipes; only QA imports them
    assert client.get(f"/api/recipes/{template['id']}/export.xml", headers=client.auth["op"]).status_code == 200
    r = client.post("/api/recipes/import.xml?recipe=x", data=document, headers={**XML, **client.auth["op"]})
    assert r.status_code == 403 and r.json["code"] == "forbidden"
    r = client.post("/api/recipes/import.xml?recipe=x", data=document, headers={**XML, **client.auth["sv"]})
    assert r.status_code == 403


def test_unknown_recipe_is_404(client):
    assert client.get("/api/recipes/999999/export.xml").json["code"] == "recipe_not_found"
    assert client.get("/api/recipes/99999999999/export.xml").status_code == 404
