"""Hostile and broken process orders: every one answered 4xx with why, none starts a
batch. XML: DOCTYPE (so external entities and entity bombs), oversize, not well-formed,
schema-invalid, not a schedule, missing or ill-typed elements. JSON: wrong types,
missing fields, unknown fields. Other media types: 415."""

from __future__ import annotations

import pytest

from .conftest import URL, batch_count, order_json, order_xml, post_xml

B2 = 'xmlns="http://www.mesa.org/xml/B2MML"'


def _request(inner: str) -> bytes:
    return f"<OperationsSchedule {B2}><OperationsRequest>{inner}</OperationsRequest></OperationsSchedule>".encode()


PRODUCED = (
    "<SegmentRequirement><MaterialRequirement><MaterialDefinitionID>MAB-01-HCCF</MaterialDefinitionID>"
    "<MaterialUse>Produced</MaterialUse><Quantity><QuantityString>{q}</QuantityString>"
    "<UnitOfMeasure>L</UnitOfMeasure></Quantity></MaterialRequirement></SegmentRequirement>"
)

HOSTILE_XML = {
    "xxe": (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<OperationsSchedule xmlns="http://www.mesa.org/xml/B2MML"><ID>&xxe;</ID></OperationsSchedule>',
        "xml_doctype",
    ),
    "billion_laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<OperationsSchedule xmlns="http://www.mesa.org/xml/B2MML"><ID>&lol3;</ID></OperationsSchedule>',
        "xml_doctype",
    ),
    "plain_doctype": (b"<!DOCTYPE OperationsSchedule><OperationsSchedule/>", "xml_doctype"),
    "not_well_formed": (b"<OperationsSchedule><OperationsRequest></OperationsSchedule>", "xml_malformed"),
    "not_xml": (b"PO-1001;harvest_order;2000", "xml_malformed"),
    "empty": (b"", "xml_malformed"),
    "another_document": (f"<OperationsPerformance {B2}/>".encode(), "process_order_invalid"),
    "no_namespace": (b"<OperationsSchedule><OperationsRequest/></OperationsSchedule>", "process_order_invalid"),
    "schema_invalid_time": (_request("<ID>PO-9</ID><StartTime>tomorrow</StartTime>"), "b2mml_invalid"),
    "schema_invalid_order": (
        _request("<OperationsDefinitionID>r</OperationsDefinitionID><ID>PO-9</ID>"),
        "b2mml_invalid",
    ),
    "schema_invalid_use": (
        _request(
            "<ID>PO-9</ID><SegmentRequirement><MaterialRequirement><MaterialUse>Eaten</MaterialUse>"
            "</MaterialRequirement></SegmentRequirement>"
        ),
        "b2mml_invalid",
    ),
    "no_request": (f"<OperationsSchedule {B2}/>".encode(), "process_order_invalid"),
    "maintenance": (
        f"<OperationsSchedule {B2}><OperationsType>Maintenance</OperationsType></OperationsSchedule>".encode(),
        "process_order_invalid",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_XML))
def test_hostile_or_broken_xml_is_refused(erp, runtime, case):
    body, code = HOSTILE_XML[case]
    r = post_xml(erp, body)
    assert 400 <= r.status_code < 500, (case, r.status_code, r.json)
    assert r.json["code"] == code, r.json
    assert "root:" not in r.get_data(as_text=True)  # no file content leaked into the answer
    assert batch_count(runtime) == 0


MISSING = {
    "missing ID": (
        _request("<OperationsDefinitionID>harvest_order</OperationsDefinitionID>" + PRODUCED.format(q=10)),
        "OperationsRequest[1]/ID: missing",
    ),
    "missing recipe": (
        _request("<ID>PO-9</ID>" + PRODUCED.format(q=10)),
        "OperationsRequest[1]/OperationsDefinitionID: missing",
    ),
    "no produced material": (
        _request("<ID>PO-9</ID><OperationsDefinitionID>harvest_order</OperationsDefinitionID>"),
        "OperationsRequest[1]/SegmentRequirement/MaterialRequirement: needs exactly one with MaterialUse Produced",
    ),
    "quantity not a number": (
        _request(
            "<ID>PO-9</ID><OperationsDefinitionID>harvest_order</OperationsDefinitionID>" + PRODUCED.format(q="lots")
        ),
        "MaterialRequirement[1]/Quantity/QuantityString: 'lots' is not a number",
    ),
    "negative quantity": (
        _request("<ID>PO-9</ID><OperationsDefinitionID>harvest_order</OperationsDefinitionID>" + PRODUCED.format(q=-5)),
        "OperationsRequest[1]/SegmentRequirement[1]/MaterialRequirement[1]/Quantity/QuantityString: must be a positive",
    ),
    "infinite quantity": (
        _request(
            "<ID>PO-9</ID><OperationsDefinitionID>harvest_order</OperationsDefinitionID>" + PRODUCED.format(q="INF")
        ),
        "QuantityString: must be a positive finite number",
    ),
    "bad batch id": (
        _request(
            "<ID>PO/../9</ID><OperationsDefinitionID>harvest_order</OperationsDefinitionID>" + PRODUCED.format(q=1)
        ),
        "OperationsRequest[1]/ID: batch id",
    ),
}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_missing_or_ill_typed_elements_are_named(erp, runtime, case):
    body, message = MISSING[case]
    r = post_xml(erp, body)
    assert r.status_code == 422, r.json
    assert message in r.json["message"], r.json
    assert batch_count(runtime) == 0


def test_the_same_id_twice_in_one_document_is_refused(erp, runtime):
    from lxml import etree

    root = etree.fromstring(order_xml("PO-1"))
    root.append(etree.fromstring(order_xml("PO-1")).find("{http://www.mesa.org/xml/B2MML}OperationsRequest"))
    r = post_xml(erp, etree.tostring(root))
    assert r.status_code == 422 and "appears twice" in r.json["message"]
    assert batch_count(runtime) == 0


def test_an_oversize_document_is_refused(erp, runtime):
    padding = b"<Description>" + b"x" * 1_100_000 + b"</Description>"
    body = order_xml().replace(b"<ID>SCHED-", padding + b"<ID>SCHED-", 1)
    r = post_xml(erp, body)
    assert r.status_code == 413, r.status_code
    assert batch_count(runtime) == 0


def test_the_parser_cap_holds_below_the_request_limit(erp, runtime, monkeypatch):
    from engine.exports import operations_b2mml

    monkeypatch.setattr(operations_b2mml, "MAX_SCHEDULE_BYTES", 2000)
    body = order_xml().replace(b"<ID>SCHED-", b"<Description>" + b"x" * 3000 + b"</Description><ID>SCHED-", 1)
    r = post_xml(erp, body)
    assert r.status_code == 422 and r.json["code"] == "xml_too_large"
    assert batch_count(runtime) == 0


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream", ""])
def test_other_media_types_are_refused(erp, runtime, media):
    r = post_xml(erp, order_xml(), content_type=media)
    assert r.status_code == 415, r.json
    assert batch_count(runtime) == 0


def test_text_xml_is_xml(erp, runtime):
    assert post_xml(erp, order_xml(), content_type="text/xml; charset=utf-8").status_code == 201


def _with(**changes):
    body = order_json()
    body["orders"][0].update(changes)
    return body


BAD_JSON = {
    "not an object": ([1, 2], "orders"),
    "orders not a list": ({"orders": {"id": "x"}}, "orders"),
    "no orders": ({"orders": []}, "orders: 1 to"),
    "unknown top field": ({**order_json(), "extra": 1}, "unknown field(s): extra"),
    "order not an object": ({"orders": ["PO-1"]}, "orders[1]: must be an object"),
    "missing id": (_with(id=None), "orders[1].id: missing"),
    "id a number": (_with(id=1001), "orders[1].id: must be text"),
    "recipe a list": (_with(recipe=["harvest_order"]), "orders[1].recipe: must be text"),
    "quantity text": (_with(quantity="2000 L"), "orders[1].quantity: '2000 L' is not a number"),
    "quantity bool": (_with(quantity=True), "orders[1].quantity: must be a number"),
    "quantity zero": (_with(quantity=0), "orders[1].quantity: must be a positive"),
    "missing unit": (_with(unit=None), "orders[1].unit: missing"),
    "lots not a list": (_with(lots="L-1"), "orders[1].lots: must be a list"),
    "lot without id": (_with(lots=[{"material": "MED-CD-CHO"}]), "orders[1].lots[1].lot: missing"),
    "lot unknown field": (_with(lots=[{"lot": "L", "colour": "red"}]), "orders[1].lots[1]: must be an object"),
    "unknown order field": (_with(priority=1), "orders[1]: unknown field(s) priority"),
    "control characters": (_with(id="PO\u00071"), "orders[1].id: must be 1 to 100 characters"),
    "too long": (_with(material="M" * 101), "orders[1].material: must be 1 to 100"),
    "unknown lot material": (
        _with(lots=[{"lot": "L", "material": "NOPE"}]),
        "orders[1].lots[1].material: unknown material",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_bad_json_orders_are_named(erp, runtime, case):
    body, message = BAD_JSON[case]
    r = erp.post(URL, json=body, headers=erp.auth["alice"])
    assert r.status_code == 422, (case, r.json)
    assert message in r.json["message"], r.json
    assert batch_count(runtime) == 0


def test_broken_json_is_refused(erp, runtime):
    r = erp.post(URL, data=b'{"orders": [', headers={**erp.auth["alice"], "Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.json
    r = erp.post(
        URL, data=b'{"orders": [{"quantity": NaN}]}', headers={**erp.auth["alice"], "Content-Type": "application/json"}
    )
    assert r.status_code in (400, 422), r.json
    assert batch_count(runtime) == 0


def test_anonymous_posts_are_refused_before_the_body_is_read(anon):
    r = anon.post(URL, data=b"<!DOCTYPE x><x/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 401
