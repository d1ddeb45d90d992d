"""The QMS's answers: ``POST /api/qms/events``, authenticated by its Standard Webhooks
signature alone (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: ``v1,`` +
base64 HMAC-SHA256 of ``id.timestamp.body`` under the QMS subscriber's secret).

Why the signature and not an API token: a token of role ``service`` is shared by ERP,
LIMS and equipment integrations; whoever holds one must still not be able to open or
close a deviation in the QMS's name. Only the holder of the QMS's secret can.

The check, before anything is parsed or stored: all three headers present, the timestamp
within ``TOLERANCE_SECONDS`` of now (a stale or future message is refused: a captured
message cannot be replayed later), and one ``v1`` signature matching the secret of an
enabled QMS subscriber (constant-time comparison; that subscriber is the QMS the message
came from). A replay inside the window is caught by the unique ``webhook_id`` of
``qms_inbound_event``: answered 200 with ``replayed: true`` and no second effect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..errors import BatchlineError
from ..models import EventSubscriber, QmsInboundEvent
from . import deviations, subscribers
from .secrets import raw_key

TOLERANCE_SECONDS = 300
MAX_ID = 200
MAX_SIGNATURES = 10


class SignatureInvalid(BatchlineError):
    """The message is not signed by a configured QMS (nothing was stored)."""

    code = "signature_invalid"
    status = 401


def _timestamp(value: str | None, now: float) -> int:
    if not value or not value.isascii() or not value.isdigit() or len(value) > 12:
        raise SignatureInvalid("webhook-timestamp is missing or not a Unix time in seconds")
    ts = int(value)
    if abs(now - ts) > TOLERANCE_SECONDS:
        raise SignatureInvalid(
            f"webhook-timestamp is more than {TOLERANCE_SECONDS} s from now (stale or future message)",
            code="signature_stale",
        )
    return ts


def _signatures(header: str | None) -> list[bytes]:
    found = []
    for part in (header or "").split(" ")[:MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


class SignedMessage:
    """A Standard Webhooks message as received: what was signed (``id.timestamp.body``)
    and the v1 signatures offered. The id, the timestamp's age and the signature header
    are checked here, once for every sender (the QMS, the LIMS)."""

    def __init__(self, body: bytes, headers: dict[str, str | None], now: float | None = None):
        msg_id = headers.get("webhook-id")
        if not msg_id or len(msg_id) > MAX_ID or not msg_id.isascii() or not msg_id.isprintable():
            raise SignatureInvalid("webhook-id is missing or not printable ASCII of at most 200 characters")
        ts = _timestamp(headers.get("webhook-timestamp"), time.time() if now is None else now)
        self.given = _signatures(headers.get("webhook-signature"))
        if not self.given:
            raise SignatureInvalid("webhook-signature is missing or holds no v1 signature")
        self.signed = f"{msg_id}.{ts}.".encode() + body

    def signed_with(self, key: bytes) -> bool:
        expected = hmac.new(key, self.signed, hashlib.sha256).digest()
        return any(hmac.compare_digest(expected, sig) for sig in self.given)


def verify(s, settings, body: bytes, headers: dict[str, str | None], now: float | None = None) -> EventSubscriber:
    """The enabled QMS subscriber whose secret signed ``body``; raises ``SignatureInvalid``."""
    message = SignedMessage(body, headers, now)
    for row, secret in subscribers.qms_secrets(s, settings):
        if message.signed_with(raw_key(secret)):
            return row
    raise SignatureInvalid("no signature matches the secret of an enabled QMS subscriber")


def receive(rt, body: bytes, headers: dict[str, str | None], parse) -> tuple[dict[str, Any], bool]:
    """Verify, then apply a QMS message once. ``parse(body) -> (type, data)`` checks the
    payload (the web layer's schemas) after the signature verified. Answers the outcome
    and whether it was a replay."""
    msg_id = headers.get("webhook-id") or ""
    try:
        with rt.transaction() as s:
            subscriber = verify(s, rt.settings, body, headers)
            prior = s.scalars(select(QmsInboundEvent).where(QmsInboundEvent.webhook_id == msg_id)).one_or_none()
            if prior is not None:
                return {"webhook_id": msg_id, "type": prior.type, "replayed": True}, True
            type_, data = parse(body)
            outcome = deviations.apply(s, rt, subscriber, type_, data)
            s.add(QmsInboundEvent(webhook_id=msg_id, subscriber_id=subscriber.id, type=type_, body=body.decode()))
            s.flush()
    except IntegrityError:  # the same message, verified twice at once: the other one counted
        with rt.transaction() as s:
            prior = s.scalars(select(QmsInboundEvent).where(QmsInboundEvent.webhook_id == msg_id)).one_or_none()
        if prior is None:
            raise
        return {"webhook_id": msg_id, "type": prior.type, "replayed": True}, True
    return {"webhook_id": msg_id, "type": type_, "replayed": False, **outcome}, False
