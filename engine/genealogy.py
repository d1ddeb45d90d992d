"""Tracing a lot through batches: what went into it (backward) and where it went (forward).

A recall or a deviation investigation asks two questions of the genealogy written on the
step path (``engine.lot_movements``): *which lots went into this drug substance lot*,
through every intermediate (HCCF, the media, the cell bank vial) and every batch between
them; and *which batches used this media lot*, and what they made. Both walk the
``lot_movement`` relations level by level:

* backward: lot <- the batch that produced it <- the lots that batch consumed <- ...
* forward: lot -> the batches that consumed it -> the lots they produced -> ...

The answer is a graph, nodes (lots, batches) and edges (one per movement, with its
quantity, unit and step), because a lot may reach the same batch by several steps and
two paths may meet. Every node is expanded once (a cycle — a lot recorded as produced by
a batch that consumed it, or rework — ends there), the walk stops after ``depth`` levels
of batches and after ``MAX_NODES`` nodes, and the answer says when it was cut short.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import InvalidInput, NotFound
from .models import Batch, LotMovement, Material, MaterialLot, RecipeVersion, Step
from .runtime import Runtime

DIRECTIONS = ("backward", "forward")
DEFAULT_DEPTH = 10
MAX_DEPTH = 50
#: a genealogy larger than this is cut short (``truncated``): no page shows more
MAX_NODES = 2000
MAX_LOT_ID = 100


def check_query(direction: Any, depth: Any) -> tuple[str, int]:
    """The direction and depth of a trace, or InvalidInput saying what is wrong."""
    if direction not in DIRECTIONS:
        raise InvalidInput("direction is backward or forward", code="direction_invalid")
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth is a whole number from 1 to {MAX_DEPTH}", code="depth_invalid")
    return direction, depth


def lot_node(lot: MaterialLot | None, lot_id: str, material: str | None, names: dict[str, Material]) -> dict[str, Any]:
    code = lot.material if lot is not None else material
    known = names.get(code or "")
    return {
        "id": f"lot:{lot_id}",
        "type": "lot",
        "lot_id": lot_id,
        "material": code,
        "material_name": known.name if known is not None else None,
        "status": lot.status if lot is not None else None,
        "quantity": lot.quantity if lot is not None else None,
        "unit": (lot.unit if lot is not None else None) or (known.unit if known is not None else None),
        "expires_at": lot.expires_at if lot is not None else None,
        "produced_by": lot.produced_by if lot is not None else None,
    }


class _Walk:
    """The graph being built: nodes by id, edges in the order found."""

    def __init__(self, s: Session):
        self.s = s
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: list[dict[str, Any]] = []
        self.truncated = False
        self.batch_names: dict[int, str] = {}

    def full(self) -> bool:
        if len(self.nodes) >= MAX_NODES:
            self.truncated = True
        return self.truncated

    def add_lots(self, lot_ids: Iterable[str], materials: dict[str, str], level: int) -> None:
        wanted = [lot_id for lot_id in lot_ids if f"lot:{lot_id}" not in self.nodes]
        if not wanted:
            return
        lots = {lot.lot_id: lot for lot in self.s.scalars(select(MaterialLot).where(MaterialLot.lot_id.in_(wanted)))}
        codes = {lot.material for lot in lots.values()} | set(materials.values())
        names = {m.material_id: m for m in self.s.scalars(select(Material).where(Material.material_id.in_(codes)))}
        for lot_id in wanted:
            if self.full():
                return
            self.nodes[f"lot:{lot_id}"] = {
                **lot_node(lots.get(lot_id), lot_id, materials.get(lot_id), names),
                "level": level,
            }

    def add_batches(self, batch_pks: Iterable[int], level: int) -> None:
        wanted = [pk for pk in batch_pks if pk not in self.batch_names]
        if not wanted:
            return
        rows = self.s.execute(
            select(Batch, RecipeVersion.recipe, RecipeVersion.version)
            .join(RecipeVersion, RecipeVersion.id == Batch.recipe_version_id)
            .where(Batch.id.in_(wanted))
        ).all()
        for batch, recipe, version in rows:
            self.batch_names[batch.id] = batch.batch_id
            if self.full():
                continue
            self.nodes[f"batch:{batch.batch_id}"] = {
                "id": f"batch:{batch.batch_id}",
                "type": "batch",
                "batch_id": batch.batch_id,
                "recipe": recipe,
                "recipe_version": version,
                "state": batch.state,
                "started_at": batch.created_at,
                "level": level,
            }

    def add_edges(self, movements: list[LotMovement]) -> None:
        steps = self._step_names(movements)
        for m in movements:
            batch = self.batch_names.get(m.batch_id)
            lot, node = f"lot:{m.lot_id}", f"batch:{batch}"
            if batch is None or lot not in self.nodes or node not in self.nodes:
                continue
            consumed = m.kind == "consumed"
            self.edges.append(
                {
                    "from": lot if consumed else node,
                    "to": node if consumed else lot,
                    "kind": m.kind,
                    "lot_id": m.lot_id,
                    "batch_id": batch,
                    "quantity": m.quantity,
                    "unit": m.unit,
                    "step_seq": m.step_seq,
                    "step_name": steps.get((m.batch_id, m.step_seq)),
                    "recorded_by": m.recorded_by,
                    "recorded_at": m.recorded_at,
                }
            )

    def _step_names(self, movements: list[LotMovement]) -> dict[tuple[int, int | None], str]:
        pks = {m.batch_id for m in movements}
        if not pks:
            return {}
        rows = self.s.execute(select(Step.batch_id, Step.seq, Step.task_name).where(Step.batch_id.in_(pks))).all()
        wanted = {(m.batch_id, m.step_seq) for m in movements}
        return {(b, seq): name for b, seq, name in rows if (b, seq) in wanted}


def _movements(s: Session, kind: str, *, lots: Iterable[str] = (), batches: Iterable[int] = ()) -> list[LotMovement]:
    query = select(LotMovement).where(LotMovement.kind == kind)
    lots, batches = list(lots), list(batches)
    if lots:
        query = query.where(LotMovement.lot_id.in_(lots))
    elif batches:
        query = query.where(LotMovement.batch_id.in_(batches))
    else:
        return []
    return list(s.scalars(query.order_by(LotMovement.id)))


def trace_in(s: Session, lot_id: str, direction: str, depth: int) -> dict[str, Any]:
    """The genealogy of ``lot_id`` inside an open session (see ``trace``)."""
    direction, depth = check_query(direction, depth)
    if not isinstance(lot_id, str) or not lot_id or len(lot_id) > MAX_LOT_ID:
        raise NotFound("no lot has an id like this", code="lot_not_found")
    root = s.get(MaterialLot, lot_id)
    first = s.scalars(select(LotMovement).where(LotMovement.lot_id == lot_id).limit(1)).first()
    if root is None and first is None:
        raise NotFound(f"lot {lot_id!r} is not known", code="lot_not_found")
    walk = _Walk(s)
    walk.add_lots([lot_id], {lot_id: first.material} if first is not None else {}, 0)
    # backward: a lot's producing batch, then what that batch consumed; forward: the
    # batches that consumed the lot, then what they produced
    to_batch, from_batch = ("produced", "consumed") if direction == "backward" else ("consumed", "produced")
    frontier, seen_lots, seen_batches = [lot_id], {lot_id}, set()
    reached = 0
    for level in range(1, depth + 1):
        if not frontier or walk.full():
            break
        reached = level
        into = _movements(s, to_batch, lots=frontier)
        new_batches = [pk for pk in dict.fromkeys(m.batch_id for m in into) if pk not in seen_batches]
        seen_batches.update(new_batches)
        walk.add_batches(new_batches, level)
        walk.add_edges(into)
        out = _movements(s, from_batch, batches=new_batches)
        materials = {m.lot_id: m.material for m in out}
        walk.add_lots(materials, materials, level)
        walk.add_edges(out)
        frontier = [x for x in dict.fromkeys(m.lot_id for m in out) if x not in seen_lots]
        seen_lots.update(frontier)
    else:
        if frontier and _movements(s, to_batch, lots=frontier):
            walk.truncated = True  # more generations than the depth asked for
    return {
        "lot_id": lot_id,
        "direction": direction,
        "depth": depth,
        "levels": reached,
        "truncated": walk.truncated,
        "root": walk.nodes[f"lot:{lot_id}"],
        "nodes": list(walk.nodes.values()),
        "edges": walk.edges,
    }


def trace(rt: Runtime, lot_id: str, direction: str = "backward", depth: int = DEFAULT_DEPTH) -> dict[str, Any]:
    """The genealogy of a lot: nodes (lots and batches, each with the ``level`` it was
    reached at) and edges (one per movement: ``from`` -> ``to`` in the direction material
    flowed, with quantity, unit and step). 404 ``lot_not_found`` for a lot neither the
    registry nor any movement knows."""
    with rt.transaction() as s:
        return trace_in(s, lot_id, direction, depth)
