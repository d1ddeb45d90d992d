"""Samples sent to a LIMS and the results it sends back.

Out: a LIMS connector (``integrations.lims_rest``) records each sample it registered
(``record_sample``) with the specification limits it sent, so a result that comes back
without limits is still checked against them.

In: ``receive_result`` delivers a result as the ``lims_result`` message that the waiting
batch correlates by ``sample_id`` (the same path as the simulated LIMS), once per result
id: a replay answers ``replayed`` and delivers nothing. A result id is claimed first
(``delivering``, unique in ``lims_result_receipt``), so two requests carrying the same
result at the same moment deliver it once. When no batch waits for the sample yet the
claim is released (``undelivered``) and the LIMS may send the result again.

A numeric value outside its limits raises a batch exception (category ``limit.action``)
titled ``LIMS result out of specification: titre 3.1 g/L, specification 4.0–6.0``, once
per result and test (its finding key).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .errors import Conflict, NotFound
from .models import LimsResultReceipt, LimsSample, utcnow

MESSAGE = "lims_result"
#: a claim older than this is taken to belong to a request that died
STALE_CLAIM = timedelta(seconds=60)


def record_sample(rt, *, sample_id: str, connector: str, batch_id: str, task_key: str, specs: dict) -> None:
    """Remember a registered sample (a repeated registration of the same sample keeps the first)."""
    try:
        with rt.transaction() as s:
            if s.get(LimsSample, sample_id) is None:
                s.add(
                    LimsSample(
                        sample_id=sample_id,
                        connector=connector,
                        batch_id=batch_id,
                        task_key=task_key,
                        specifications=specs,
                        requested_at=utcnow(),
                    )
                )
    except IntegrityError:  # the same sample recorded by a concurrent retry
        pass


def _number(x: Any) -> str:
    return repr(float(x)) if isinstance(x, float) else str(x)


def _limit(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def out_of_spec(result: dict[str, Any], spec: dict[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    """(title, limits) when a numeric result lies outside its limits (the result's own
    ``low``/``high`` first, else the specification sent with the sample), else None."""
    value = result.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    spec = spec or {}
    low = _limit(result.get("low", spec.get("low")))
    high = _limit(result.get("high", spec.get("high")))
    if not ((low is not None and value < low) or (high is not None and value > high)):
        return None
    unit = result.get("unit") or spec.get("unit") or ""
    if low is not None and high is not None:
        limits = f"{_number(low)}–{_number(high)}"
    elif low is not None:
        limits = f"≥ {_number(low)}"
    else:
        limits = f"≤ {_number(high)}"
    shown = f"{_number(value)} {unit}".strip()
    title = f"LIMS result out of specification: {result['test']} {shown}, specification {limits}"
    return title, {"low": low, "high": high, "unit": unit}


def message_payload(body: dict[str, Any]) -> dict[str, Any]:
    """What the batch receives: ``sample_id``, each test's value by name, and the list."""
    payload: dict[str, Any] = {"sample_id": body["sample_id"], "result_id": body["result_id"]}
    for r in body["results"]:
        payload.setdefault(r["test"], r.get("value"))
    payload["results"] = body["results"]
    return payload


def _claim(rt, result_id: str, sample_id: str) -> dict[str, Any] | None:
    """Claim a result id for delivery; answers the earlier outcome when it was delivered."""
    now = utcnow()
    try:
        with rt.transaction() as s:
            s.add(
                LimsResultReceipt(
                    result_id=result_id,
                    sample_id=sample_id,
                    state="delivering",
                    delivered_to=[],
                    received_at=now,
                    updated_at=now,
                )
            )
        return None
    except IntegrityError:
        pass
    with rt.transaction() as s:
        row = s.get(LimsResultReceipt, result_id)
        if row is None:
            raise Conflict("the result is being received by another request; send it again", code="result_busy")
        if row.state == "delivered":
            return {
                "result_id": result_id,
                "sample_id": row.sample_id,
                "replayed": True,
                "delivered_to": row.delivered_to,
            }
        taken = s.execute(
            update(LimsResultReceipt)
            .where(LimsResultReceipt.result_id == result_id, LimsResultReceipt.updated_at == row.updated_at)
            .where((LimsResultReceipt.state == "undelivered") | (LimsResultReceipt.updated_at < now - STALE_CLAIM))
            .values(state="delivering", updated_at=now)
        ).rowcount
        if taken != 1:
            raise Conflict("the result is being received by another request; send it again", code="result_busy")
    return None


def _finish(rt, result_id: str, state: str, delivered_to: list[Any]) -> None:
    with rt.transaction() as s:
        s.execute(
            update(LimsResultReceipt)
            .where(LimsResultReceipt.result_id == result_id)
            .values(state=state, delivered_to=delivered_to, updated_at=utcnow())
        )


def receive_result(rt, body: dict[str, Any], *, user: str) -> dict[str, Any]:
    """Deliver one checked result message (``result_id``, ``sample_id``, ``results``) once."""
    from . import batches
    from .quality import exceptions as qx

    result_id, sample_id = body["result_id"], body["sample_id"]
    earlier = _claim(rt, result_id, sample_id)
    if earlier is not None:
        return earlier
    try:
        delivered = batches.deliver_message(rt, MESSAGE, message_payload(body), user=user)
    except NotFound:
        _finish(rt, result_id, "undelivered", [])
        raise NotFound(
            f"no batch is waiting for the result of sample {sample_id!r}", code="message_not_correlated"
        ) from None
    except Exception:
        _finish(rt, result_id, "undelivered", [])
        raise
    with rt.transaction() as s:
        sample = s.get(LimsSample, sample_id)
        specs = dict(sample.specifications or {}) if sample is not None else {}
    raised = []
    for result in body["results"]:
        found = out_of_spec(result, specs.get(result["test"]))
        if found is None:
            continue
        title, limits = found
        for target in delivered:
            exc = qx.raise_exception(
                rt,
                target["batch_id"],
                category="limit.action",
                message=title,
                step_seq=target["seq"],
                parameter=result["test"],
                value=result["value"],
                limits=limits,
                details={"sample_id": sample_id, "result_id": result_id, "test": result["test"]},
                finding_key=f"lims:{result_id}:{result['test']}:{target['batch_id']}",
            )
            raised.append(exc["id"])
    _finish(rt, result_id, "delivered", delivered)
    return {
        "result_id": result_id,
        "sample_id": sample_id,
        "replayed": False,
        "delivered_to": delivered,
        "exceptions": raised,
    }


def sample_of(rt, sample_id: str) -> dict[str, Any] | None:
    with rt.transaction() as s:
        row = s.scalars(select(LimsSample).where(LimsSample.sample_id == sample_id)).one_or_none()
        if row is None:
            return None
        return {"sample_id": row.sample_id, "batch_id": row.batch_id, "specifications": dict(row.specifications or {})}


# --- who sent it ----------------------------------------------------------------------


def hmac_key(secret: str) -> bytes:
    """A ``whsec_`` secret stands for its base64 bytes (Standard Webhooks), any other
    secret for its UTF-8 bytes."""
    from .qms.secrets import PREFIX, raw_key

    if secret.startswith(PREFIX):
        try:
            return raw_key(secret)
        except ValueError:
            pass
    return secret.encode("utf-8")


def verify_signature(rt, body: bytes, headers: dict[str, str | None], now: float | None = None) -> str:
    """The name of the enabled ``lims-rest`` instance whose secret signed ``body``
    (Standard Webhooks headers, as the QMS signs); raises ``SignatureInvalid``."""
    from .connector_config import resolve_secret
    from .connectors import ConnectorError
    from .models import ConnectorInstance
    from .qms.inbound import SignatureInvalid, SignedMessage

    message = SignedMessage(body, headers, now)
    with rt.transaction() as s:
        rows = s.scalars(
            select(ConnectorInstance).where(ConnectorInstance.type == "lims-rest", ConnectorInstance.enabled.is_(True))
        ).all()
        for row in rows:
            try:
                secret = resolve_secret(row, rt.settings)
            except ConnectorError:
                continue
            if not secret:
                continue
            if message.signed_with(hmac_key(secret)):
                return row.name
    raise SignatureInvalid("no signature matches the secret of an enabled LIMS connector")
