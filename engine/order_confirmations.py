"""Confirming a completed process order to the ERP (B2MML ``OperationsPerformance``).

Durable: the confirmation is a job written in the same transaction that completes the
batch (``schedule``, called from ``engine.batches.unit_of_work.persist``), so a crash
after the commit cannot lose it. The job executor sends it (``send``) through the
connector named ``erp`` (operation ``confirm_order``; a configured ``erp-b2mml``
instance in a real install), retries it with backoff, and raises an incident with the
real error when it gives up. The idempotency key is the same for every attempt
(``<batch>:erp-confirmation``) and the document is built from stored facts only, so
the ERP sees one confirmation however often it is sent.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, outbox
from .connectors import Completed, ServiceCall
from .exports.operations_performance import Confirmation, ConfirmationInvalid, Movement, build
from .models import Batch, Job, LotMovement, ProcessOrder, RecipeVersion
from .runtime import Runtime
from .vocabulary import JobKind

#: the connector instance a confirmation goes through, and the operation it asks for
ERP_CONNECTOR = "erp"
OPERATION = "confirm_order"
TASK = "erp-confirmation"
PLANNED_NOTE = "planned quantity of the process order: the batch recorded no produced lot"


def schedule(rt: Runtime, s: Session, batch: Batch) -> None:
    """In the completing transaction: queue the confirmation if the batch came from an
    ERP process order (one query per completed batch; nothing otherwise)."""
    if batch.kind == "quality":
        return
    order_id = s.scalar(select(ProcessOrder.order_id).where(ProcessOrder.batch_id == batch.id))
    if order_id is None:
        return
    s.add(
        Job(
            kind=JobKind.ERP_CONFIRMATION,
            batch_id=batch.id,
            task_id=TASK,
            payload={"order": order_id},
            max_attempts=rt.settings.job_max_attempts,
        )
    )


def _totals(rows: list[LotMovement]) -> list[Movement]:
    """Movements summed per lot, material and unit (a correction is a reversing movement)."""
    sums: dict[tuple[str, str, str | None], float | None] = defaultdict(lambda: None)
    for row in rows:
        key = (row.lot_id, row.material, row.unit)
        if row.quantity is not None:
            sums[key] = (sums[key] or 0.0) + row.quantity
        else:
            sums.setdefault(key, None)
    return [Movement(lot, material, qty, unit) for (lot, material, unit), qty in sums.items()]


def facts(s: Session, order_id: str) -> Confirmation:
    """What the confirmation says, from the order, the batch and its lot movements."""
    order = s.get_one(ProcessOrder, order_id)
    batch = s.get_one(Batch, order.batch_id)
    rv = s.get_one(RecipeVersion, batch.recipe_version_id)
    rows = list(s.scalars(select(LotMovement).where(LotMovement.batch_id == batch.id).order_by(LotMovement.id)))
    produced = _totals([r for r in rows if r.kind == "produced"])
    consumed = _totals([r for r in rows if r.kind == "consumed"])
    of_order = [m for m in produced if m.material == order.material and m.quantity is not None]
    quantity, unit = order.quantity, order.unit
    note: str | None = PLANNED_NOTE
    if of_order:
        quantity = sum(m.quantity or 0.0 for m in of_order)
        unit = of_order[0].unit or order.unit
        note = None
    return Confirmation(
        order_id=order.order_id,
        batch_id=batch.batch_id,
        recipe=order.recipe,
        recipe_version=rv.version,
        started=batch.created_at,
        completed=batch.completed_at or batch.created_at,
        material=order.material,
        quantity=quantity,
        unit=unit,
        note=note,
        produced=[m for m in produced if m.material == order.material],
        consumed=consumed,
    )


def document(rt: Runtime, order_id: str) -> bytes:
    """The validated confirmation document of an order (what ``send`` sends)."""
    with rt.transaction() as s:
        return build(facts(s, order_id))


def send(rt: Runtime, batch_id: str, task_id: Any, payload: dict[str, Any]) -> None:
    """The job handler of ``ERP_CONFIRMATION``: build, validate, send, record."""
    order_id = payload["order"]
    try:
        body = document(rt, order_id)
    except ConfirmationInvalid as exc:  # a bug, not a passing outage: no retry helps
        from .connectors import ConnectorError

        raise ConnectorError(str(exc), retry=False) from None
    call = ServiceCall(
        batch_id=batch_id,
        task_id=TASK,
        bpmn_id="",
        operator=f"{ERP_CONNECTOR}.{OPERATION}",
        params={"order": order_id, "document": body.decode("utf-8"), "media_type": "application/xml"},
        callback_token="",
    )
    result = rt.connectors.get(call.operator).call(call)  # no database lock is held here
    reply = dict(result.data) if isinstance(result, Completed) else {}
    with rt.transaction() as s:
        sent = {
            "order": order_id,
            "document_sha256": hashlib.sha256(body).hexdigest(),
            "idempotency_key": call.idempotency_key,
            "reply": {k: v for k, v in reply.items() if isinstance(v, (str, int, float, bool))},
        }
        audit.record(
            s,
            user="system",
            action="process_order.confirmed",
            object_type="process_order",
            object_id=order_id,
            new=sent,
        )
        outbox.emit(s, rt.settings, "process_order.confirmed", order_id, sent)
