"""Process orders from the ERP: each order of a received schedule becomes a batch of the
recipe's effective version, its id the batch id.

A schedule is taken whole or not at all: every order is checked first (recipe, material,
resend or conflicting order), then all batches start in ONE transaction, so an unknown
material in the third order leaves the first two unstarted too. A resent order (same id,
same content, compared by the hash of what it says, not of its bytes) answers with the
batch it made; the same id with other content is a conflict. Two identical posts at the
same moment make one batch: the database's unique batch id decides, and the loser reads
the winner's batch on its retry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from . import audit, outbox
from .batches.descriptions import describe
from .batches.inputs import check_batch_id
from .batches.step_path import start_in
from .batches.unit_of_work import ATTEMPTS, wait_for_writer
from .errors import Conflict, EngineFault, InvalidInput
from .exports.operations_b2mml import OrderInvalid, OrderRequest
from .models import Batch, Material, ProcessOrder, RecipeVersion
from .recipes import RUNNABLE, effective_version
from .runtime import Runtime


@dataclass
class Received:
    """What a post of orders did: the batches (new and existing) and whether any is new."""

    batches: list[dict[str, Any]]
    created: int


def content_hash(order: OrderRequest) -> str:
    return hashlib.sha256(json.dumps(order.content(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parameters_of(order: OrderRequest) -> dict[str, Any]:
    """The batch's start parameters: recipes name ``process_order`` (erp.* service
    tasks); the planned output and lots are there for forms and scripts to show."""
    return {
        "batch_id": order.order_id,
        "process_order": order.order_id,
        "planned_material": order.material,
        "planned_quantity": order.quantity,
        "planned_unit": order.unit,
        "planned_lots": ",".join(lot.lot for lot in order.lots),
    }


def receive(rt: Runtime, orders: list[OrderRequest], *, user: str) -> Received:
    """Start a batch for every new order of a schedule, all or nothing (see module)."""
    seen: set[str] = set()
    for order in orders:
        try:
            order.order_id = check_batch_id(order.order_id)
        except InvalidInput as exc:
            raise OrderInvalid(f"{order.where}/ID: {exc.message}", details={"where": f"{order.where}/ID"}) from None
        if order.order_id in seen:
            raise OrderInvalid(f"{order.where}/ID: {order.order_id!r} appears twice in the document")
        seen.add(order.order_id)
    for _attempt in range(ATTEMPTS):
        try:
            return _receive_once(rt, orders, user)
        except IntegrityError:  # PostgreSQL: another post started the same order first
            continue
        except OperationalError as exc:  # SQLite: another writer committed since our snapshot
            if "locked" not in str(exc):
                raise
            wait_for_writer(rt)
    raise Conflict(
        "the database kept changing while the orders were taken; repeat the request", code="concurrent_change"
    )


def _receive_once(rt: Runtime, orders: list[OrderRequest], user: str) -> Received:
    try:
        with rt.transaction(deferred=True) as s:
            plan = [_check(s, order) for order in orders]
            answers: list[dict[str, Any]] = []
            created = 0
            for order, found in plan:
                if isinstance(found, ProcessOrder):
                    answers.append(_existing(s, found))
                    continue
                batch, described = start_in(rt, s, found, order.order_id, user, parameters_of(order))
                _record(rt, s, order, batch, found, user)
                answers.append({**described, "process_order": order.order_id, "created": True})
                created += 1
            return Received(answers, created)
    except WorkflowException as exc:
        raise EngineFault(f"the recipe failed at start: {exc}") from exc


def _check(s: Session, order: OrderRequest) -> tuple[OrderRequest, ProcessOrder | RecipeVersion]:
    """The order's existing ProcessOrder (a resend), or the recipe version to start."""
    existing = s.get(ProcessOrder, order.order_id)
    if existing is not None:
        if existing.document_hash != content_hash(order):
            raise Conflict(
                f"{order.where}/ID: process order {order.order_id!r} was received before with other content; "
                "a changed order needs a new id",
                code="process_order_changed",
                details={"where": f"{order.where}/ID", "order": order.order_id},
            )
        return order, existing
    if s.scalar(select(Batch.id).where(Batch.batch_id == order.order_id)) is not None:
        raise Conflict(
            f"{order.where}/ID: a batch {order.order_id!r} exists already (not from this order)",
            code="batch_exists",
            details={"where": f"{order.where}/ID"},
        )
    rv = effective_version(s, order.recipe)
    if rv is None or rv.status not in RUNNABLE:
        raise OrderInvalid(
            f"{order.recipe_where}: no approved recipe {order.recipe!r}",
            code="recipe_not_found",
            details={"where": order.recipe_where, "recipe": order.recipe},
        )
    _known_material(s, order.material, order.material_where)
    for lot, where in zip(order.lots, order.lot_where, strict=False):
        if lot.material is not None:
            _known_material(s, lot.material, where)
    return order, rv


def _known_material(s: Session, material: str, where: str) -> None:
    row = s.get(Material, material)
    if row is None or not row.active:
        raise OrderInvalid(
            f"{where}: unknown material {material!r}",
            code="material_not_found",
            details={"where": where, "material": material},
        )


def _existing(s: Session, order: ProcessOrder) -> dict[str, Any]:
    batch = s.get_one(Batch, order.batch_id)
    rv = s.get_one(RecipeVersion, batch.recipe_version_id)
    return {**describe(batch, rv), "process_order": order.order_id, "created": False}


def _record(rt: Runtime, s: Session, order: OrderRequest, batch: Batch, rv: RecipeVersion, user: str) -> None:
    s.add(
        ProcessOrder(
            order_id=order.order_id,
            batch_id=batch.id,
            recipe=order.recipe,
            recipe_version_id=rv.id,
            material=order.material,
            quantity=order.quantity,
            unit=order.unit,
            planned_lots=[vars(lot) for lot in order.lots],
            document_hash=content_hash(order),
            received_by=user,
        )
    )
    facts = {**order.content(), "recipe_version": rv.version}
    audit.record(
        s, user=user, action="process_order.received", object_type="process_order", object_id=order.order_id, new=facts
    )
    outbox.emit(s, rt.settings, "process_order.received", order.order_id, facts)
    s.flush()  # the unique order id decides a race here, inside the retry loop


def list_orders(rt: Runtime, limit: int = 100) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        rows = s.execute(
            select(ProcessOrder, Batch.batch_id, Batch.state)
            .join(Batch, Batch.id == ProcessOrder.batch_id)
            .order_by(ProcessOrder.received_at.desc())
            .limit(limit)
        )
        return [
            {
                "order": o.order_id,
                "batch_id": batch_id,
                "state": state,
                "recipe": o.recipe,
                "material": o.material,
                "quantity": o.quantity,
                "unit": o.unit,
                "planned_lots": o.planned_lots,
                "received_at": o.received_at.isoformat(),
                "received_by": o.received_by,
            }
            for o, batch_id, state in rows
        ]
