"""Delivering an outbox event to one receiver: the ``deliver`` job's handler.

A webhook or QMS subscriber (and each URL of ``settings.webhook_urls``) gets an HTTP POST
of the CloudEvent, signed per Standard Webhooks. Any other kind of subscriber (``mqtt``)
is handed to the *publisher* registered for its kind on the runtime
(``Runtime.publishers``): the engine never imports a broker client. ``integrations.mqtt``
registers one, through the ``batchline.publishers`` entry point group or its
``install(rt)``, so an install can leave MQTT out; a subscriber whose kind has no
publisher in the worker's process fails its job with a message saying so, and is retried
and ends as an incident like any delivery.

A publisher raises ``ConnectorError`` when the event did not reach the receiver (then
the job executor retries it with backoff); returning means the receiver has it (for MQTT:
the broker acknowledged it, PUBACK at QoS 1). Delivery is at least once: receivers dedupe
on the CloudEvent ``id``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Protocol

from sqlalchemy import select

from . import outbox
from .connectors import ConnectorError
from .models import OutboxEvent, utcnow
from .qms.subscribers import DeliveryTarget, load_target

#: subscriber kinds the engine delivers itself, over HTTP
HTTP_KINDS = ("webhook", "qms")


class Publisher(Protocol):
    """Delivers CloudEvents to subscribers of one kind (registered in ``Runtime.publishers``)."""

    def publish(self, target: DeliveryTarget, envelope: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def load_publishers(registry: dict[str, Any], settings: Any) -> None:
    """The installed publishers (entry point group ``batchline.publishers``: name = kind,
    value = a factory taking the settings). A broken one is left out: its subscribers'
    deliveries fail with a message naming the missing kind."""
    for ep in entry_points(group="batchline.publishers"):
        try:
            registry.setdefault(ep.name, ep.load()(settings))
        except Exception:  # noqa: BLE001 - an optional publisher must not stop the plant
            continue


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks signature: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    key = secret.encode("utf-8")
    if secret.startswith("whsec_"):
        key = base64.b64decode(secret[len("whsec_") :])
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


_local = threading.local()


def _http():
    """One ``requests.Session`` per worker thread: a receiver that keeps connections
    alive is not reconnected for every event."""
    import requests

    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def post_webhook(url: str, secret: str, envelope: dict[str, Any]) -> None:
    """POST the CloudEvent (structured mode), signed when there is a secret."""
    import requests

    body = json.dumps(envelope, separators=(",", ":")).encode()
    ts = int(time.time())
    headers = {
        "content-type": "application/cloudevents+json",
        "webhook-id": envelope["id"],
        "webhook-timestamp": str(ts),
    }
    if secret:
        headers["webhook-signature"] = sign_webhook(secret, envelope["id"], ts, body)
    try:
        resp = _http().post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as exc:  # the message names the URL, never the headers
        raise ConnectorError(f"webhook {url} unreachable: {type(exc).__name__}") from None
    if resp.status_code >= 300:
        raise ConnectorError(
            f"webhook {url} answered HTTP {resp.status_code}",
            retry=resp.status_code >= 500 or resp.status_code in (408, 429),
        )


def _send(rt: Any, payload: dict, envelope: dict[str, Any], target: DeliveryTarget | None) -> None:
    if target is None:
        post_webhook(payload.get("url") or "", rt.settings.webhook_secret, envelope)
    elif target.kind in HTTP_KINDS:
        post_webhook(target.url, target.secret, envelope)
    else:
        publisher = rt.publishers.get(target.kind)
        if publisher is None:
            raise ConnectorError(
                f"subscriber {target.name}: no publisher for kind {target.kind!r} is installed in this worker "
                "(integrations.mqtt for mqtt)"
            )
        publisher.publish(target, envelope)


def _mark_delivered(s: Any, seq: int) -> None:
    event = s.get(OutboxEvent, seq)
    if event.delivered_at is None:
        event.delivered_at = utcnow()


def deliver(rt: Any, batch_id: Any, task_id: Any, payload: dict) -> Callable[[Any], None] | None:
    """The ``deliver`` job run on its own (``engine.jobs.run_job``; ``payload``: ``seq``
    and either ``subscriber`` (an id) or ``url``). Answers what to write when the job is
    done (the event's ``delivered_at``), which ``run_job`` writes in its closing commit."""
    target: DeliveryTarget | None = None
    with rt.transaction(deferred=True) as s:  # a read: on SQLite, no wait for the write lock
        event = s.get(OutboxEvent, payload["seq"])
        envelope = outbox.cloudevent(event, rt.settings)
        if "subscriber" in payload:
            target = load_target(s, rt.settings, payload["subscriber"])
            if target is None:
                return None  # the subscriber was disabled: nothing more is sent to it
    _send(rt, payload, envelope, target)
    seq = payload["seq"]
    return lambda s: _mark_delivered(s, seq)


def deliver_many(rt: Any, job_ids: list[int], worker: str, *, failed: Callable[..., Any]) -> int:
    """Run a worker's claimed ``deliver`` jobs as one round: one read for the events and
    their subscribers, each sent in turn (in job order, so per receiver in event order),
    and one commit for all that were delivered. A failed delivery goes through ``failed``
    (``engine.jobs``: retried with backoff, an incident when its attempts run out); the
    receiver's later events in this round are not tried (they would meet the same broken
    receiver) and count a failed attempt with the same message. Answers how many ran."""
    from .models import Job
    from .vocabulary import JobState

    todo: list[tuple[int, dict, dict[str, Any], DeliveryTarget | None, bool]] = []
    with rt.transaction(deferred=True) as s:
        targets: dict[int, DeliveryTarget | None] = {}
        for job in s.scalars(select(Job).where(Job.id.in_(job_ids)).order_by(Job.id)):
            if job.state != JobState.PENDING or job.locked_by != worker:
                continue
            payload = dict(job.payload)
            envelope = outbox.cloudevent(s.get(OutboxEvent, payload["seq"]), rt.settings)
            target, dropped = None, False
            if "subscriber" in payload:
                sid = payload["subscriber"]
                if sid not in targets:
                    targets[sid] = load_target(s, rt.settings, sid)
                target, dropped = targets[sid], targets[sid] is None
            todo.append((job.id, payload, envelope, target, dropped))
    done: list[tuple[int, int | None]] = []
    broken: dict[str, ConnectorError] = {}
    for job_id, payload, envelope, target, dropped in todo:
        if dropped:  # the subscriber was disabled: the job ends, nothing is sent
            done.append((job_id, None))
            continue
        receiver = f"subscriber:{target.id}" if target is not None else f"url:{payload.get('url')}"
        try:
            if receiver in broken:
                raise broken[receiver]
            _send(rt, payload, envelope, target)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded with its message
            if isinstance(exc, ConnectorError):
                broken[receiver] = exc
                message = str(exc)
            else:
                message = f"{type(exc).__name__}: {exc}"
            failed(rt, job_id, message, retry=getattr(exc, "retry", True), detail="")
            continue
        done.append((job_id, payload["seq"]))
    if done:
        with rt.transaction() as s:
            now = utcnow()
            for job_id, seq in done:
                job = s.get(Job, job_id)
                job.state = JobState.DONE
                job.attempts += 1
                job.finished_at = now
                job.locked_by = None
                job.locked_until = None
                if seq is not None:
                    _mark_delivered(s, seq)
    return len(todo)
