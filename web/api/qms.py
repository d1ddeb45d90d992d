"""The QMS link over HTTP: event subscribers (``/api/subscribers``, administrators) and
the QMS's signed answers (``/api/qms/events``).

``/api/qms/events`` has no ``@requires``: it is authenticated by the Standard Webhooks
signature of a QMS subscriber's secret (``engine.qms.inbound``), checked before the body
is parsed. An API token is neither needed nor enough: a stolen ``service`` token cannot
open or close a deviation in the QMS's name.
"""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from engine.qms import inbound, subscribers

from ..auth import current_user, requires
from ..errors import ApiError
from ..input_limits import strict_json_loads
from . import runtime
from .batches import REPLAYED
from .schemas import IdempotencyKey
from .schemas.qms import QmsMessage, QmsOutcome, SubscriberChange, SubscriberIn, SubscriberOut

#: a QMS message is a few hundred bytes; anything much larger is not one
MAX_QMS_BODY = 64 * 1024

qms_blp = Blueprint("qms", __name__, url_prefix="/api/qms", description="Messages from the QMS (signed)")
blp = Blueprint("subscribers", __name__, url_prefix="/api", description="Event subscribers (webhooks, QMS, MQTT)")

SIGNED_BODY = {
    "required": True,
    "description": "A Standard Webhooks payload `{type, timestamp, data}`, signed with the QMS subscriber's secret "
    "in the headers `webhook-id`, `webhook-timestamp` (Unix seconds, within 5 minutes of now) and "
    "`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`).",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["type", "data"],
                "properties": {
                    "type": {
                        "type": "string",
                        "enum": ["deviation.opened", "deviation.status_changed", "deviation.closed"],
                    },
                    "timestamp": {"type": "string"},
                    "data": {
                        "type": "object",
                        "required": ["exception", "deviation"],
                        "properties": {
                            "exception": {
                                "type": "object",
                                "required": ["batch_id", "id"],
                                "properties": {"batch_id": {"type": "string"}, "id": {"type": "integer"}},
                            },
                            "deviation": {"type": "string"},
                            "status": {"type": "string"},
                            "capa": {"type": "string"},
                        },
                    },
                },
            }
        }
    },
}


def _parse(body: bytes):
    """The payload, checked only after its signature verified."""
    try:
        value = strict_json_loads(body, "the QMS message")
    except ApiError as exc:
        raise ApiError(422, "payload_invalid", exc.message, exc.details) from None
    if not isinstance(value, dict):
        raise ApiError(422, "payload_invalid", "a QMS message is a JSON object {type, timestamp, data}")
    message = QmsMessage().load(value)
    return message["type"], message["data"]


@qms_blp.route("/events", methods=["POST"])
@qms_blp.doc(security=[], requestBody=SIGNED_BODY)
@qms_blp.response(200, QmsOutcome)
@qms_blp.alt_response(401, description="missing, bad or stale signature (`signature_invalid`, `signature_stale`)")
@qms_blp.alt_response(404, description="the message names an exception Batchline does not have")
@qms_blp.alt_response(409, description="the exception is linked to another deviation number")
@qms_blp.alt_response(413, description="the body is larger than 64 KiB")
@qms_blp.alt_response(422, description="the body is not a QMS message (after a good signature)")
def qms_event():
    """A deviation opened, its status changed or closed (with a CAPA reference), as the
    QMS reports it. Signed per Standard Webhooks (no API token); a repeated `webhook-id`
    answers 200 `replayed: true` and changes nothing."""
    if (request.content_length or 0) > MAX_QMS_BODY:
        raise ApiError(413, "request_too_large", f"a QMS message is at most {MAX_QMS_BODY} bytes")
    body = request.get_data(cache=True)
    if len(body) > MAX_QMS_BODY:
        raise ApiError(413, "request_too_large", f"a QMS message is at most {MAX_QMS_BODY} bytes")
    headers = {k: request.headers.get(k) for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    outcome, replayed = inbound.receive(runtime(), body, headers, _parse)
    return outcome, 200, ({REPLAYED: "true"} if replayed else {})


@blp.route("/subscribers", methods=["GET"])
@requires("subscriber.manage")
@blp.response(200, SubscriberOut(many=True))
def list_subscribers():
    """Every subscriber, enabled or not (secrets are never shown)."""
    return subscribers.list_subscribers(runtime())


@blp.route("/subscribers", methods=["POST"])
@requires("subscriber.manage")
@blp.arguments(SubscriberIn)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(201, SubscriberOut)
@blp.alt_response(409, description="a subscriber with this name exists (`subscriber_exists`)")
def add_subscriber(body, headers):
    """Add a subscriber: the events it wants (globs such as `qms.*`), its URL and secret;
    for kind `mqtt`, the broker URL, `topic_prefix` and optionally `username` and
    `password`. The secret (given, or generated) is in this answer only; a replay with the
    same `Idempotency-Key` answers the subscriber without it. A broker password is never
    answered."""
    out, replayed = subscribers.add(
        runtime(),
        name=body["name"],
        url=body["url"],
        event_types=body["event_types"],
        kind=body["kind"],
        secret=body.get("secret"),
        topic_prefix=body.get("topic_prefix"),
        username=body.get("username"),
        password=body.get("password"),
        by=current_user(),
        idempotency_key=headers.get("idempotency_key"),
        # a broker password is not hashed into the stored request (a fast hash of it is guessable)
        request={k: v for k, v in body.items() if k != "password"},
    )
    return out, 201, ({REPLAYED: "true"} if replayed else {})


@blp.route("/subscribers/<id:subscriber_id>", methods=["GET"])
@requires("subscriber.manage")
@blp.response(200, SubscriberOut)
def get_subscriber(subscriber_id: int):
    """One subscriber (never its secret)."""
    return subscribers.get(runtime(), subscriber_id)


@blp.route("/subscribers/<id:subscriber_id>", methods=["PATCH"])
@requires("subscriber.manage")
@blp.arguments(SubscriberChange)
@blp.response(200, SubscriberOut)
def change_subscriber(body, subscriber_id: int):
    """Change the URL, event types, enabled flag or secret (each change audited; a new
    secret is shown in this answer only)."""
    return subscribers.change(
        runtime(),
        subscriber_id,
        by=current_user(),
        url=body.get("url"),
        event_types=body.get("event_types"),
        enabled=body.get("enabled"),
        secret=body.get("secret"),
        new_secret=body.get("new_secret", False),
        topic_prefix=body.get("topic_prefix"),
        username=body.get("username"),
        password=body.get("password"),
    )


@blp.route("/subscribers/<id:subscriber_id>", methods=["DELETE"])
@requires("subscriber.manage")
@blp.response(200, SubscriberOut)
def disable_subscriber(subscriber_id: int):
    """Disable the subscriber (never deleted: its history stays); nothing more is sent to it."""
    return subscribers.disable(runtime(), subscriber_id, by=current_user())
