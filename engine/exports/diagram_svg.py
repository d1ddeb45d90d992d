"""A recipe's BPMN diagram as SVG, drawn on the server from the file's BPMN DI (the
layout the modeler saved): events as circles, tasks and call activities as rounded
rectangles with their names, gateways as diamonds, sequence flows as polylines with
arrows.

Why on the server: a reviewer, a PDF, a mail or another system gets the picture without
running bpmn-js. Why built with lxml and never by string formatting: names come from
whoever wrote the BPMN, and a task called ``<script>…`` must stay text — the tree escapes
every name, and the SVG holds no script, no link and no external reference.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from ..bpmn.safe_xml import parse_xml
from ..errors import InvalidInput

SVG_NS = "http://www.w3.org/2000/svg"
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
BPMNDI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
DC = "{http://www.omg.org/spec/DD/20100524/DC}"
DI = "{http://www.omg.org/spec/DD/20100524/DI}"
_S = f"{{{SVG_NS}}}"
MARGIN = 20.0
MAX_LABEL_CHARS = 200

_EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
_GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
_GATEWAY_MARK = {"exclusiveGateway": "X", "parallelGateway": "+", "inclusiveGateway": "O", "eventBasedGateway": "*"}
STYLE = (
    "text{font-family:sans-serif;font-size:11px;fill:#222}"
    ".shape{fill:#fff;stroke:#222;stroke-width:1.5}"
    ".end{stroke-width:3.5}"
    ".flow{fill:none;stroke:#222;stroke-width:1.2}"
    ".other{fill:#fff;stroke:#888;stroke-dasharray:4 3}"
)


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _num(value: str | None) -> float:
    try:
        number = float(value or 0)
    except ValueError:
        return 0.0
    return number if abs(number) < 1e7 else 0.0  # a NaN/huge coordinate must not break the picture


def _bounds(node: etree._Element) -> tuple[float, float, float, float] | None:
    b = node.find(f"{DC}Bounds")
    if b is None:
        return None
    return _num(b.get("x")), _num(b.get("y")), _num(b.get("width")), _num(b.get("height"))


def _el(parent: etree._Element, name: str, text: str | None = None, **attrs: Any) -> etree._Element:
    node = etree.SubElement(parent, _S + name, {k.replace("_", "-"): _fmt(v) for k, v in attrs.items()})
    if text is not None:
        node.text = text
    return node


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _label_lines(name: str, width: float) -> list[str]:
    """The name wrapped to the shape's width (about 6 px a character), at most 4 lines."""
    text = "".join(c if c.isprintable() else " " for c in name)[:MAX_LABEL_CHARS]
    per_line = max(int(width / 6.2), 6)
    lines: list[str] = []
    words = [w[i : i + per_line] for w in text.split() for i in range(0, len(w), per_line)]
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > 4:
        lines = lines[:4]
        lines[-1] = lines[-1][: per_line - 1] + "…"
    return lines


def _text(parent: etree._Element, name: str, cx: float, top: float, width: float) -> None:
    lines = _label_lines(name, width)
    if not lines:
        return
    text = _el(parent, "text", x=cx, y=top, text_anchor="middle")
    for n, line in enumerate(lines):
        _el(text, "tspan", line, x=cx, dy="0" if n == 0 else "1.2em")


def _semantic(root: etree._Element) -> dict[str, etree._Element]:
    return {node.get("id"): node for node in root.iter() if isinstance(node.tag, str) and node.get("id")}


def render(filename: str, data: bytes | str) -> bytes:
    """The SVG of one BPMN file's first diagram; InvalidInput if it has no layout (DI)."""
    root = parse_xml(filename, data)
    elements = _semantic(root)
    plane = root.find(f"{BPMNDI}BPMNDiagram/{BPMNDI}BPMNPlane")
    if plane is None:
        raise InvalidInput(f"{filename} has no diagram layout (BPMN DI) to draw", code="diagram_missing")
    svg = etree.Element(_S + "svg", nsmap={None: SVG_NS})
    _el(svg, "title", f"{filename}")
    _el(svg, "style", STYLE)
    defs = _el(svg, "defs")
    marker = _el(
        defs, "marker", id="arrow", viewBox="0 0 10 10", refX=10, refY=5, markerWidth=8, markerHeight=8, orient="auto"
    )
    _el(marker, "path", d="M0,0 L10,5 L0,10 z", fill="#222")
    xs: list[float] = []
    ys: list[float] = []
    shapes = _el(svg, "g", **{"class": "shapes"})
    flows = _el(svg, "g", **{"class": "flows"})
    for node in plane:
        kind = _local(node.tag)
        semantic = elements.get(node.get("bpmnElement") or "")
        if kind == "BPMNShape" and (box := _bounds(node)) is not None:
            xs += [box[0], box[0] + box[2]]
            ys += [box[1], box[1] + box[3] + 40]
            _shape(shapes, node, semantic, box)
        elif kind == "BPMNEdge":
            points = [(_num(p.get("x")), _num(p.get("y"))) for p in node.findall(f"{DI}waypoint")]
            if len(points) < 2:
                continue
            xs += [p[0] for p in points]
            ys += [p[1] for p in points]
            _flow(flows, node, semantic, points)
    if not xs:
        xs, ys = [0.0, 100.0], [0.0, 100.0]
    x0, y0 = min(xs) - MARGIN, min(ys) - MARGIN
    width, height = max(xs) - x0 + MARGIN, max(ys) - y0 + MARGIN
    svg.set("viewBox", f"{x0:g} {y0:g} {width:g} {height:g}")
    svg.set("width", f"{width:g}")
    svg.set("height", f"{height:g}")
    return etree.tostring(svg, xml_declaration=True, encoding="UTF-8")


def _shape(
    parent: etree._Element,
    node: etree._Element,
    semantic: etree._Element | None,
    box: tuple[float, float, float, float],
) -> None:
    x, y, w, h = box
    kind = _local(semantic.tag) if semantic is not None else ""
    name = (semantic.get("name") if semantic is not None else None) or ""
    group = _el(parent, "g", **{"class": kind or "unknown", "data-element-id": node.get("bpmnElement") or ""})
    cx, cy = x + w / 2, y + h / 2
    if kind in _EVENTS:
        _el(group, "circle", cx=cx, cy=cy, r=min(w, h) / 2, **{"class": "shape end" if kind == "endEvent" else "shape"})
        _text(group, name, cx, y + h + 14, max(w, 90.0))
    elif kind in _GATEWAYS:
        points = f"{cx:g},{y:g} {x + w:g},{cy:g} {cx:g},{y + h:g} {x:g},{cy:g}"
        _el(group, "polygon", points=points, **{"class": "shape"})
        mark = _GATEWAY_MARK.get(kind)
        if mark:
            _el(group, "text", mark, x=cx, y=cy + 5, text_anchor="middle", font_size="16px")
        _text(group, name, cx, y + h + 14, max(w, 90.0))
    elif kind.endswith(("Task", "task")) or kind in ("callActivity", "subProcess", "transaction"):
        _el(group, "rect", x=x, y=y, width=w, height=h, rx=10, ry=10, **{"class": "shape"})
        if kind == "callActivity":
            _el(
                group,
                "rect",
                x=x + 3,
                y=y + 3,
                width=max(w - 6, 0),
                height=max(h - 6, 0),
                rx=8,
                ry=8,
                **{"class": "shape"},
            )
        lines = _label_lines(name, w - 8)
        _text(group, name, cx, cy - (len(lines) - 1) * 6.6 + 4, w - 8)
    else:
        _el(group, "rect", x=x, y=y, width=w, height=h, **{"class": "other"})
        _text(group, name, cx, y + h + 14, max(w, 90.0))


def _flow(
    parent: etree._Element,
    node: etree._Element,
    semantic: etree._Element | None,
    points: list[tuple[float, float]],
) -> None:
    kind = _local(semantic.tag) if semantic is not None else "edge"
    attrs: dict[str, Any] = {"class": "flow", "data-element-id": node.get("bpmnElement") or ""}
    if kind == "sequenceFlow":
        attrs["marker-end"] = "url(#arrow)"
    _el(parent, "polyline", points=" ".join(f"{x:g},{y:g}" for x, y in points), **attrs)
    name = semantic.get("name") if semantic is not None else None
    if name:
        (ax, ay), (bx, by) = points[0], points[1]
        _text(parent, name, (ax + bx) / 2, (ay + by) / 2 - 6, 120.0)


def render_recipe(bpmn: dict[str, str], process_id: str | None, filename: str | None = None) -> tuple[str, bytes]:
    """(file name, SVG) of a recipe: the named file, else the file holding the top process."""
    if filename is not None:
        if filename not in bpmn:
            raise InvalidInput(
                f"the recipe has no file {filename!r}", code="diagram_file_unknown", details={"files": sorted(bpmn)}
            )
        return filename, render(filename, bpmn[filename])
    chosen = next((n for n, t in sorted(bpmn.items()) if process_id and f'id="{process_id}"' in t), None)
    chosen = chosen or sorted(bpmn)[0]
    return chosen, render(chosen, bpmn[chosen])
