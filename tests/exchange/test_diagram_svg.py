"""The diagram as SVG, drawn on the server from BPMN DI: the right shapes for events,
tasks, gateways and flows, and hostile names staying inert text."""

from __future__ import annotations

import pytest
from lxml import etree

import workflows
from engine.exports import diagram_svg
from tests.exchange.conftest import drawn_bpmn

SVG = {"s": diagram_svg.SVG_NS}


def _inert(svg: bytes) -> etree._Element:
    """The SVG parses, holds no script, no foreign element, no event handler, no link."""
    root = etree.fromstring(svg)
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        assert node.tag.startswith("{" + diagram_svg.SVG_NS + "}"), node.tag
        assert etree.QName(node).localname not in ("script", "foreignObject", "a", "image", "use")
        for attr in node.attrib:
            assert not attr.lower().startswith("on") and "href" not in attr.lower()
    return root


def test_shapes_of_a_drawn_recipe():
    root = _inert(diagram_svg.render("drawn.bpmn", drawn_bpmn("Weigh buffer salts")))
    assert len(root.findall(".//s:g[@class='startEvent']/s:circle", SVG)) == 1
    assert len(root.findall(".//s:g[@class='endEvent']/s:circle", SVG)) == 1
    task = root.find(".//s:g[@class='userTask']/s:rect", SVG)
    assert task is not None and task.get("rx") == "10"
    assert root.find(".//s:g[@class='exclusiveGateway']/s:polygon", SVG) is not None
    flows = root.findall(".//s:polyline", SVG)
    assert len(flows) == 3 and all(f.get("marker-end") == "url(#arrow)" for f in flows)
    assert flows[2].get("points") == "400,118 425,118 450,118"
    lines = [t.text for t in root.findall(".//s:g[@class='userTask']//s:tspan", SVG)]
    assert " ".join(lines) == "Weigh buffer salts"


def test_a_hostile_task_name_is_escaped_text():
    svg = diagram_svg.render("drawn.bpmn", drawn_bpmn())
    assert b"<script" not in svg and b"<img" not in svg
    assert b"&lt;script&gt;" in svg
    root = _inert(svg)
    lines = [t.text for t in root.findall(".//s:g[@class='userTask']//s:tspan", SVG)]
    assert "".join(lines).replace(" ", "").startswith('<script>alert("x")</script>&"quotes"')
    assert len(lines) == 4 and lines[-1].endswith("…")  # a long name is cut, as text


def test_every_library_file_draws():
    for entry in workflows.library():
        for name, data in entry.files.items():
            root = _inert(diagram_svg.render(name, data))
            assert root.findall(".//s:circle", SVG) and root.findall(".//s:polyline", SVG), name


def test_a_file_without_layout_is_refused():
    from tests.support import RECIPES

    with pytest.raises(Exception) as err:
        diagram_svg.render("loop.bpmn", (RECIPES / "loop.bpmn").read_bytes())
    assert getattr(err.value, "code", None) == "diagram_missing"


def test_diagram_over_http(client, anon):
    r = client.post(
        "/api/recipes", json={"bpmn": {"drawn.bpmn": drawn_bpmn().decode()}}, headers=client.auth["quentin"]
    )
    assert r.status_code == 201, r.json
    rid = r.json["id"]
    svg = client.get(f"/api/recipes/{rid}/diagram.svg", headers=client.auth["op"])
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert "default-src 'none'" in svg.headers["Content-Security-Policy"]
    assert svg.headers["X-Content-Type-Options"] == "nosniff"
    _inert(svg.data)
    assert b"&lt;script&gt;" in svg.data
    assert client.get(f"/api/recipes/{rid}/diagram.svg?file=nope.bpmn").json["code"] == "diagram_file_unknown"
    assert client.get(f"/api/recipes/{rid}/diagram.svg?file=drawn.bpmn").status_code == 200
    assert anon.get(f"/api/recipes/{rid}/diagram.svg").status_code == 401
    assert client.get("/api/recipes/999999/diagram.svg").status_code == 404
