"""A lot's genealogy as a page: ``/lots/<lot_id>/genealogy`` shows what went into the lot
(backward: the batch that produced it, the lots that batch consumed, and on through every
intermediate) and where it went (forward: the batches that used it and what they made),
as two indented trees with batch links, quantities, units and steps. The same data as
``GET /api/lots/{lot}/genealogy`` (``engine.genealogy``); a node met twice is shown once
and then referred to, so a cycle or a shared input cannot repeat without end."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, render_template, request

from engine import genealogy
from engine.errors import BatchlineError

from ..runtime import runtime
from .pages import bp, require


def tree(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The trace as nested items below its lot: backward, a node's children are what flowed
    into it; forward, where it flowed. Each item: the edge, the node reached, its children
    (or ``repeat`` when the node is already shown above)."""
    nodes = {n["id"]: n for n in trace["nodes"]}
    near, far = ("to", "from") if trace["direction"] == "backward" else ("from", "to")
    by_node: dict[str, list[dict[str, Any]]] = {}
    for edge in trace["edges"]:
        by_node.setdefault(edge[near], []).append(edge)
    seen = {trace["root"]["id"]}

    def below(node_id: str) -> list[dict[str, Any]]:
        items = []
        for edge in by_node.get(node_id, []):
            other = edge[far]
            if other in seen:
                items.append({"edge": edge, "node": nodes[other], "children": [], "repeat": True})
                continue
            seen.add(other)
            items.append({"edge": edge, "node": nodes[other], "children": below(other), "repeat": False})
        return items

    return below(trace["root"]["id"])


def iso(value: Any) -> str:
    """A stored time as ISO 8601 UTC (SQLite gives it back without its zone)."""
    if not isinstance(value, datetime):
        return ""
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


@bp.route("/lots/<lot_id>/genealogy")
def lot_genealogy(lot_id: str):
    require("batch.read")
    depth_text = request.args.get("depth", str(genealogy.DEFAULT_DEPTH))
    if not depth_text.isdigit() or len(depth_text) > 3 or not 1 <= int(depth_text) <= genealogy.MAX_DEPTH:
        abort(400, description=f"The depth is a whole number from 1 to {genealogy.MAX_DEPTH}.")
    depth = int(depth_text)
    try:
        backward = genealogy.trace(runtime(), lot_id, "backward", depth)
        forward = genealogy.trace(runtime(), lot_id, "forward", depth)
    except BatchlineError as exc:
        abort(404 if exc.code == "lot_not_found" else 400, description=exc.message)
    return render_template(
        "ui/genealogy.html",
        lot=backward["root"],
        depth=depth,
        backward=backward,
        forward=forward,
        backward_tree=tree(backward),
        forward_tree=tree(forward),
        iso=iso,
    )
