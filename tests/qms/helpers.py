"""What the QMS tests share: a batch with exceptions, a QMS subscriber, signed messages."""

from __future__ import annotations

import json
import time
import uuid

from engine import batches
from engine.jobs import sign_webhook
from engine.models import BatchException
from engine.qms import subscribers
from tests.support import approved_recipe, read_recipe

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 random bytes, written for these tests only


def batch_with_exceptions(rt, n: int, batch_id: str = "B-QMS") -> list[int]:
    """A running batch and ``n`` action-limit exceptions on it; answers their ids."""
    approved_recipe(rt, read_recipe("loop.bpmn"), user="qa.author")
    batches.start_batch(rt, "sampling_loop", batch_id, user="sup.x", parameters={})
    ids = []
    for i in range(n):
        out = batches.raise_exception(rt, batch_id, source="limit", severity="action", message=f"pH high #{i}")
        ids.append(out["id"])
    return ids


def request_deviations(rt, exception_ids: list[int]) -> None:
    """What core's raise_in does for a rule that opens a deviation: the contract event
    ``qms.deviation.requested``, emitted in the transaction (one per exception)."""
    from engine.models import Batch
    from engine.quality.exceptions import request_deviation

    with rt.transaction() as s:
        for exc_id in exception_ids:
            exc = s.get(BatchException, exc_id)
            request_deviation(rt, s, s.get(Batch, exc.batch_id), exc)


def add_qms(rt, url: str = "http://127.0.0.1:9/qms", secret: str = SECRET, name: str = "demo-qms") -> dict:
    out, _ = subscribers.add(
        rt, name=name, url=url, event_types=["qms.deviation.requested"], kind="qms", secret=secret, by="admin.x"
    )
    return out


def message(type_: str, batch_id: str, exc_id: int, number: str = "DEV-2026-0001", **extra) -> bytes:
    data = {"exception": {"batch_id": batch_id, "id": exc_id}, "deviation": number, **extra}
    return json.dumps({"type": type_, "timestamp": "2026-01-01T00:00:00Z", "data": data}).encode()


def signed(body: bytes, secret: str = SECRET, *, msg_id: str | None = None, ts: int | None = None) -> dict:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if ts is None else ts
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_webhook(secret, msg_id, ts, body),
    }
