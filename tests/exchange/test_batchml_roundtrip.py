"""A recipe version as BatchML (BatchInformation/MasterRecipe, B2MML V0700) and back:
the same BPMN bytes, forms and content hash — in another database, under another key;
the document validates against the MESA schema; a mutated, tampered, hostile or oversize
document is refused with the reason."""

from __future__ import annotations

import base64
import re
import shutil

import pytest
from lxml import etree

import workflows
from engine import recipes
from engine.errors import XmlRefused
from engine.exports import recipe_batchml, recipe_exchange
from tests.support import RECIPES, make_runtime

NS = {"b": recipe_batchml.NS}


def _import(rt, key: str, **kw):
    entry = workflows.get(key)
    return recipes.import_recipe(rt, dict(entry.files), forms=dict(entry.forms), user="qa.author", recipe=key, **kw)


@pytest.fixture
def other_rt(sqlite_template, tmp_path):
    """A second site: an empty database of its own."""
    path = tmp_path / "other-site.db"
    shutil.copy(sqlite_template, path)
    rt = make_runtime(f"sqlite:///{path}")
    yield rt
    rt.close()


@pytest.mark.parametrize("key", ["mab_upstream", "tpl_charge_material"])
def test_round_trip_to_another_site_gives_the_same_content_hash(rt, other_rt, key):
    rv = _import(rt, key)
    document, _ = recipe_exchange.export_version(rt, rv.id)
    assert recipe_batchml.validate(etree.fromstring(document)) == []
    answer, created = recipe_exchange.import_document(other_rt, document, user="qa.importer")
    assert created and answer["recipe"] == key and answer["status"] == "draft"
    assert answer["content_hash"] == rv.content_hash
    copy = recipes.get_version(other_rt, answer["id"])
    assert copy.bpmn == rv.bpmn and copy.forms == rv.forms and copy.process_id == rv.process_id
    # importing the same document again is the same version, not a new one
    again, created = recipe_exchange.import_document(other_rt, document, user="qa.importer")
    assert not created and again["id"] == answer["id"]


def test_round_trip_under_another_key_in_the_same_database(rt):
    rv = _import(rt, "tpl_charge_material")
    document, _ = recipe_exchange.export_version(rt, rv.id)
    answer, created = recipe_exchange.import_document(rt, document, user="qa.importer", recipe="charge_site_b")
    assert created and answer["id"] != rv.id and answer["recipe"] == "charge_site_b"
    assert answer["content_hash"] == rv.content_hash


def test_bytes_survive_exactly_crlf_tabs_and_non_ascii(rt, other_rt):
    text = (RECIPES / "loop.bpmn").read_text().replace('name="Take a sample"', 'name="Prélèvement\tµL — 取样"')
    data = text.replace("\n", "\r\n").encode("utf-8")
    rv = recipes.import_recipe(rt, {"loop crlf.bpmn": data}, user="qa.author")
    document, _ = recipe_exchange.export_version(rt, rv.id)
    answer, _ = recipe_exchange.import_document(other_rt, document, user="qa.importer")
    assert answer["content_hash"] == rv.content_hash
    assert recipes.get_version(other_rt, answer["id"]).bpmn["loop crlf.bpmn"].encode("utf-8") == data


def test_the_export_is_a_master_recipe_with_a_readable_isa88_view(rt):
    rv = _import(rt, "mab_upstream")
    root = etree.fromstring(recipe_exchange.export_version(rt, rv.id)[0])
    assert root.tag == f"{{{recipe_batchml.NS}}}BatchInformation"
    assert "courtesy of MESA International" in etree.tostring(root).decode()
    master = root.find("b:MasterRecipe", NS)
    assert master.findtext("b:ID", namespaces=NS) == "mab_upstream"
    assert master.findtext("b:Version", namespaces=NS) == str(rv.version)
    kinds = [e.text for e in master.findall("b:RecipeElement/b:RecipeElementType", NS)]
    assert kinds.count("Procedure") == 1 and kinds.count("UnitProcedure") == 4
    phases = master.findall(".//b:RecipeElement[b:RecipeElementType='Phase']", NS)
    assert len(phases) >= 20
    ids = {i.text for i in master.findall("b:OtherInformation/b:ID", NS)}
    assert {f"bpmn:{n}" for n in rv.bpmn} | {f"form:{f}" for f in rv.forms} <= ids


def _export(rt, key="tpl_charge_material") -> etree._Element:
    rv = _import(rt, key)
    return etree.fromstring(recipe_exchange.export_version(rt, rv.id)[0])


def test_a_schema_invalid_document_is_refused_with_the_reason(rt):
    root = _export(rt)
    root.find(".//b:RecipeElementType", NS).text = "Bogus"
    with pytest.raises(recipe_batchml.BatchmlInvalid) as err:
        recipe_batchml.read(etree.tostring(root))
    assert err.value.code == "batchml_invalid"
    assert "RecipeElementType" in err.value.message and "Bogus" in err.value.message
    assert err.value.details["problems"]


def test_a_document_without_its_master_recipe_id_is_refused(rt):
    root = _export(rt)
    master = root.find("b:MasterRecipe", NS)
    master.remove(master.find("b:ID", NS))
    with pytest.raises(recipe_batchml.BatchmlInvalid, match="ID"):
        recipe_batchml.read(etree.tostring(root))


def test_files_changed_after_export_are_refused(rt):
    root = _export(rt)
    value = root.find(".//b:OtherInformation[b:ID='bpmn:charge_material.bpmn']/b:Value/b:ValueString", NS)
    changed = base64.b64decode(value.text).replace(b"Weigh and charge material", b"Weigh and dump material")
    value.text = base64.b64encode(changed).decode()
    with pytest.raises(recipe_batchml.BatchmlInvalid) as err:
        recipe_exchange.import_document(rt, etree.tostring(root), user="qa.importer", recipe="tampered")
    assert err.value.code == "content_hash_mismatch"
    assert recipes.list_versions(rt)[-1].recipe != "tampered"


def test_a_non_base64_file_and_a_non_json_form_are_refused(rt):
    root = _export(rt)
    root.find(".//b:OtherInformation[b:ID='bpmn:charge_material.bpmn']/b:Value/b:ValueString", NS).text = "!!"
    with pytest.raises(recipe_batchml.BatchmlInvalid, match="base64"):
        recipe_batchml.read(etree.tostring(root))
    root = _export(rt, "tpl_hold_time")
    form = root.find(".//b:OtherInformation[b:ID='form:tpl_start_hold']/b:Value/b:ValueString", NS)
    form.text = base64.b64encode(b'{"components": NaN}').decode()
    with pytest.raises(recipe_batchml.BatchmlInvalid, match="not a JSON form"):
        recipe_batchml.read(etree.tostring(root))


@pytest.mark.parametrize("name", ["xxe.bpmn", "billion_laughs.bpmn"])
def test_entities_are_refused_before_anything_expands(name):
    hostile = (RECIPES.parent / "bpmn" / name).read_bytes()
    with pytest.raises(XmlRefused) as err:
        recipe_batchml.read(hostile)
    assert err.value.problems[0].code == "xml_doctype"


def test_an_entity_inside_a_batchml_document_is_refused(rt):
    document = etree.tostring(_export(rt), xml_declaration=True, encoding="UTF-8")
    hostile = document.replace(
        b"<BatchInformation", b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<BatchInformation', 1
    )
    hostile = re.sub(rb"<ID>tpl_charge_material</ID>", b"<ID>&e;</ID>", hostile, count=1)
    with pytest.raises(XmlRefused):
        recipe_batchml.read(hostile)


def test_an_oversize_document_is_refused_before_parsing():
    big = b"<BatchInformation>" + b" " * recipe_batchml.MAX_DOCUMENT_BYTES + b"</BatchInformation>"
    with pytest.raises(XmlRefused) as err:
        recipe_batchml.read(big)
    assert err.value.problems[0].code == "xml_too_large"


def test_other_xml_is_not_a_batchml_recipe():
    with pytest.raises(recipe_batchml.BatchmlInvalid, match="not a B2MML BatchInformation"):
        recipe_batchml.read((RECIPES / "loop.bpmn").read_bytes())
