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
import time
from importlib.metadata import entry_points
from typing import Any, Protocol

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
        resp = requests.post(url, data=body, headers=headers, timeout=10)
    except requests.RequestException as exc:  # the message names the URL, never the headers
        raise ConnectorError(f"webhook {url} unreachable: {type(exc).__name__}") from None
    if resp.status_code >= 300:
        raise ConnectorError(
            f"webhook {url} answered HTTP {resp.status_code}",
            retry=resp.status_code >= 500 or resp.status_code in (408, 429),
        )


def deliver(rt: Any, batch_id: Any, task_id: Any, payload: dict) -> None:
    """The ``deliver`` job: one event to one receiver (``payload``: ``seq`` and either
    ``subscriber`` (an id) or ``url``)."""
    target: DeliveryTarget | None = None
    with rt.transaction() as s:
        event = s.get(OutboxEvent, payload["seq"])
        envelope = outbox.cloudevent(event, rt.settings)
        if "subscriber" in payload:
            target = load_target(s, rt.settings, payload["subscriber"])
            if target is None:
                return  # the subscriber was disabled: nothing more is sent to it
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
    with rt.transaction() as s:
        event = s.get(OutboxEvent, payload["seq"])
        if event.delivered_at is None:
            event.delivered_at = utcnow()
