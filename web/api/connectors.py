"""Connector instances over HTTP (``/api/connectors``, administrators) and the LIMS's
results (``/api/lims/results``).

``/api/lims/results`` needs both a ``service`` account's token (who delivers, for the
record) and a Standard Webhooks signature under the secret of an enabled ``lims-rest``
connector (which LIMS sent it): a stolen service token alone cannot put results into a
batch record. The signature is checked before the body is parsed; a result id is
delivered once (``engine.lims``).
"""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from engine import connector_config, lims

from ..auth import current_user, requires
from ..errors import ApiError
from ..input_limits import strict_json_loads
from . import runtime
from .batches import REPLAYED
from .schemas.connectors import (
    ConnectionCheck,
    ConnectorChange,
    ConnectorIn,
    ConnectorOut,
    LimsResultIn,
    LimsResultOut,
)

#: a LIMS result message is a few KiB; anything much larger is not one
MAX_RESULT_BODY = 64 * 1024

blp = Blueprint("connectors", __name__, url_prefix="/api", description="Connector instances and LIMS results")


@blp.route("/connectors", methods=["GET"])
@requires("connector.manage")
@blp.response(200, ConnectorOut(many=True))
def list_connectors():
    """Every configured connector, enabled or not (never a secret)."""
    return connector_config.list_instances(runtime())


@blp.route("/connectors", methods=["POST"])
@requires("connector.manage")
@blp.arguments(ConnectorIn)
@blp.response(201, ConnectorOut)
@blp.alt_response(409, description="a connector with this name exists (`connector_exists`)")
def add_connector(body):
    """Add a connector instance: name (what service tasks call), type, endpoint, timeout,
    settings, and a secret (stored encrypted) or a secret reference (`env:NAME`,
    `file:/path`). The secret is never returned."""
    fields = {k: v for k, v in body.items() if k not in ("name", "type")}
    return connector_config.add(runtime(), name=body["name"], type=body["type"], by=current_user(), **fields)


@blp.route("/connectors/<name>", methods=["GET"])
@requires("connector.manage")
@blp.response(200, ConnectorOut)
def get_connector(name: str):
    """One connector instance (never its secret)."""
    return connector_config.get(runtime(), name)


@blp.route("/connectors/<name>", methods=["PATCH"])
@requires("connector.manage")
@blp.arguments(ConnectorChange)
@blp.response(200, ConnectorOut)
def change_connector(body, name: str):
    """Change fields (each change audited; a new secret is audited as `secret set`)."""
    clear = body.pop("clear_secret", False)
    return connector_config.update(runtime(), name, by=current_user(), clear_secret=clear, **body)


@blp.route("/connectors/<name>/disable", methods=["POST"])
@requires("connector.manage")
@blp.response(200, ConnectorOut)
def disable_connector(name: str):
    """Disable (never deleted): a service task calling it raises an incident naming it."""
    return connector_config.disable(runtime(), name, by=current_user())


@blp.route("/connectors/<name>/enable", methods=["POST"])
@requires("connector.manage")
@blp.response(200, ConnectorOut)
def enable_connector(name: str):
    """Enable a disabled connector again."""
    return connector_config.enable(runtime(), name, by=current_user())


@blp.route("/connectors/<name>/test", methods=["POST"])
@requires("connector.manage")
@blp.response(200, ConnectionCheck)
def test_connector(name: str):
    """A dry connection check when the type offers one (nothing is changed in the other
    system): `ok` true, false with the real error, or null when the type has no check."""
    return connector_config.check_connection(runtime(), name)


def _parse(body: bytes):
    try:
        value = strict_json_loads(body, "the LIMS result")
    except ApiError as exc:
        raise ApiError(422, "payload_invalid", exc.message, exc.details) from None
    if not isinstance(value, dict):
        raise ApiError(422, "payload_invalid", "a LIMS result is a JSON object {result_id, sample_id, results}")
    return LimsResultIn().load(value)


@blp.route("/lims/results", methods=["POST"])
@requires("lims.result")
@blp.doc(
    requestBody={
        "required": True,
        "description": "`{result_id, sample_id, results: [{test, value, unit, low, high}]}`, signed per "
        "Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the secret of an "
        "enabled lims-rest connector.",
        "content": {"application/json": {"schema": LimsResultIn}},
    }
)
@blp.response(200, LimsResultOut)
@blp.alt_response(401, description="missing, bad or stale signature")
@blp.alt_response(404, description="no batch waits for this sample (yet): send it again later")
@blp.alt_response(409, description="the same result is being received by another request")
@blp.alt_response(413, description="the body is larger than 64 KiB")
@blp.alt_response(422, description="the body is not a LIMS result")
def lims_result():
    """A LIMS's result for a sample: delivered to the batch waiting for it (correlated by
    `sample_id`), once per `result_id` (a replay answers `replayed: true`). A value
    outside its specification raises a batch exception."""
    if (request.content_length or 0) > MAX_RESULT_BODY:
        raise ApiError(413, "request_too_large", f"a LIMS result is at most {MAX_RESULT_BODY} bytes")
    body = request.get_data(cache=True)
    if len(body) > MAX_RESULT_BODY:
        raise ApiError(413, "request_too_large", f"a LIMS result is at most {MAX_RESULT_BODY} bytes")
    rt = runtime()
    headers = {k: request.headers.get(k) for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    lims.verify_signature(rt, body, headers)
    outcome = lims.receive_result(rt, _parse(body), user=current_user())
    return outcome, 200, ({REPLAYED: "true"} if outcome["replayed"] else {})
