"""What an ``opcua`` connector instance is configured with, checked once when the
connector is built, so a typo in the configuration is a clear message at the first call
(an incident naming the setting) instead of a stack trace from deep in asyncua.

Settings (``connector_instance.settings``)::

    namespace          "urn:batchline:equipment-sim" (node names are looked up in it)
    equipment          "BR-101": the default equipment; "Temperature" means "BR-101.Temperature"
    security           "None" (default) or "Basic256Sha256" (SignAndEncrypt)
    certificate        client certificate (DER or PEM path); its URI is the application URI
    private_key        its private key (PEM path); a password, if any, is the instance's secret
    server_certificate the server certificate to trust (DER or PEM path)
    application_uri    the client's application URI (default: read from the certificate)
    phase_poll_seconds how often a running phase is checked besides its subscription (2)
    incident_after_seconds  how long the server may be away during a phase before an incident (10)
    monitoring         see ``integrations.opcua.monitoring`` (tags, limits, period)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from engine.connectors import ConnectorConfig, ConnectorError

SECURITY = ("None", "Basic256Sha256")
LIMIT_LEVELS = ("alert", "action")


@dataclass(frozen=True)
class Tag:
    """One monitored value: the node (relative to the equipment), the variable name its
    samples carry (what the analytics models know it as) and its limits (low, high)."""

    node: str
    variable: str
    alert: tuple[float | None, float | None] | None = None
    action: tuple[float | None, float | None] | None = None
    unit: str = ""


@dataclass(frozen=True)
class Monitoring:
    tags: tuple[Tag, ...]
    unit_procedures: tuple[str, ...]
    period_seconds: float = 5.0
    #: simulated (or process) seconds per real second: t_hours of a sample = real hours x this
    time_scale: float = 1.0


@dataclass(frozen=True)
class OpcUaSettings:
    endpoint: str
    namespace: str
    equipment: str
    security: str = "None"
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = None
    application_uri: str | None = None
    phase_poll_seconds: float = 2.0
    incident_after_seconds: float = 10.0
    monitoring: Monitoring | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _bad(config: ConnectorConfig, message: str) -> ConnectorError:
    return ConnectorError(f"OPC UA connector {config.name!r}: {message}", retry=False)


def _number(config: ConnectorConfig, where: str, value: Any, default: float, low: float = 0.0) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= low:
        raise _bad(config, f"{where} must be a number above {low:g}, not {value!r}")
    return float(value)


def _file(config: ConnectorConfig, where: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not Path(value).is_file():
        raise _bad(config, f"{where} {value!r} is not a readable file")
    return value


def _limits(config: ConnectorConfig, where: str, value: Any) -> tuple[float | None, float | None] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = [value.get("low"), value.get("high")]
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _bad(config, f"{where} must be [low, high] (null for no limit on a side)")
    out = []
    for v in value:
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
            raise _bad(config, f"{where} must hold numbers or null, not {v!r}")
        out.append(None if v is None else float(v))
    return out[0], out[1]


def _monitoring(config: ConnectorConfig, raw: Any) -> Monitoring | None:
    if raw in (None, {}):
        return None
    if not isinstance(raw, dict):
        raise _bad(config, "monitoring must be an object with tags, unit_procedures, period_seconds")
    tags_raw = raw.get("tags")
    if not isinstance(tags_raw, dict) or not tags_raw:
        raise _bad(config, "monitoring.tags must map node names to {variable, alert, action}")
    tags = []
    for node, spec in tags_raw.items():
        spec = spec or {}
        if not isinstance(node, str) or not node or not isinstance(spec, dict):
            raise _bad(config, f"monitoring.tags.{node}: give an object (variable, alert, action, unit)")
        variable = spec.get("variable") or node.rsplit(".", 1)[-1]
        if not isinstance(variable, str) or not variable.replace("_", "a").isalnum() or variable[0].isdigit():
            raise _bad(config, f"monitoring.tags.{node}.variable {variable!r} is not a variable name")
        tags.append(
            Tag(
                node=node,
                variable=variable,
                alert=_limits(config, f"monitoring.tags.{node}.alert", spec.get("alert")),
                action=_limits(config, f"monitoring.tags.{node}.action", spec.get("action")),
                unit=str(spec.get("unit") or ""),
            )
        )
    ups = raw.get("unit_procedures")
    if isinstance(ups, str):
        ups = [ups]
    if not isinstance(ups, list) or not ups or not all(isinstance(u, str) and u for u in ups):
        raise _bad(config, "monitoring.unit_procedures must list the unit procedures (BPMN ids) sampled")
    return Monitoring(
        tags=tuple(tags),
        unit_procedures=tuple(ups),
        period_seconds=_number(config, "monitoring.period_seconds", raw.get("period_seconds"), 5.0),
        time_scale=_number(config, "monitoring.time_scale", raw.get("time_scale"), 1.0),
    )


def parse(config: ConnectorConfig) -> OpcUaSettings:
    """The instance's settings, checked (ConnectorError, not retried, naming the setting)."""
    url = urlparse(config.endpoint or "")
    if url.scheme != "opc.tcp" or not url.hostname:
        raise _bad(config, f"endpoint must be opc.tcp://host:port, not {config.endpoint!r}")
    try:
        url.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise _bad(config, f"endpoint {config.endpoint!r} has a bad port") from None
    raw = dict(config.settings or {})
    security = raw.get("security") or "None"
    if security not in SECURITY:
        raise _bad(config, f"security must be one of {', '.join(SECURITY)}, not {security!r}")
    namespace = raw.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise _bad(config, "settings.namespace (the namespace URI of the equipment's nodes) is missing")
    equipment = raw.get("equipment") or config.name
    if not isinstance(equipment, str):
        raise _bad(config, "settings.equipment must be the equipment's name on the server")
    cert = _file(config, "certificate", raw.get("certificate"))
    key = _file(config, "private_key", raw.get("private_key"))
    server_cert = _file(config, "server_certificate", raw.get("server_certificate"))
    if security != "None" and not (cert and key):
        raise _bad(config, f"security {security} needs a client certificate and private_key")
    return OpcUaSettings(
        endpoint=config.endpoint,
        namespace=namespace,
        equipment=equipment,
        security=security,
        certificate=cert,
        private_key=key,
        server_certificate=server_cert,
        application_uri=raw.get("application_uri") or None,
        phase_poll_seconds=_number(config, "phase_poll_seconds", raw.get("phase_poll_seconds"), 2.0),
        incident_after_seconds=_number(config, "incident_after_seconds", raw.get("incident_after_seconds"), 10.0, -1),
        monitoring=_monitoring(config, raw.get("monitoring")),
        extra={k: v for k, v in raw.items() if k not in OpcUaSettings.__dataclass_fields__},
    )
