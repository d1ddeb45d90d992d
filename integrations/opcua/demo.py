"""The demo's bioreactor over OPC UA: one call configures the ``BR-101`` connector
instance (the equipment simulator's endpoint, its namespace, the monitored tags and their
limits), points equipment BR-101 at it and starts monitoring, so the demo batch's
production unit procedure is sampled from the simulator instead of a pushed feed.

Every configuration change is audited as ``demo`` (the instance row and the equipment's
connector); running it again changes nothing that is already so."""

from __future__ import annotations

from typing import Any

from engine import audit
from engine.connectors import ConnectorConfig
from engine.models import ConnectorInstance, Equipment, utcnow
from engine.runtime import Runtime

from . import install
from .connector import OpcUaConnector
from .monitoring import start_monitoring

NAMESPACE = "urn:batchline:equipment-sim"

#: the tags the demo samples: OPC UA node -> sample variable and limits (alert inside action)
DEMO_TAGS: dict[str, dict[str, Any]] = {
    "Temperature": {"variable": "temperature", "alert": [35.5, 38.5], "action": [34.0, 40.0], "unit": "°C"},
    "pH": {"variable": "ph", "alert": [6.8, 7.3], "action": [6.6, 7.5], "unit": "pH"},
    "DO": {"variable": "dissolved_o2", "alert": [30.0, None], "action": [20.0, None], "unit": "%"},
    "Agitation": {"variable": "agitation", "unit": "rpm"},
    "Volume": {"variable": "volume", "unit": "L"},
    "VCD": {"variable": "viable_cell_density", "unit": "1e6 cells/mL"},
}


def demo_settings(
    *, equipment: str = "BR-101", unit_procedure: str = "up_production", speed: float = 3600.0, period: float = 5.0
) -> dict[str, Any]:
    """The connector instance settings the demo uses (``speed``: the simulator's
    simulated seconds per real second, so a sample's ``t_hours`` is process time)."""
    return {
        "namespace": NAMESPACE,
        "equipment": equipment,
        "phase_poll_seconds": 2.0,
        "incident_after_seconds": 10.0,
        "monitoring": {
            "unit_procedures": [unit_procedure],
            "period_seconds": period,
            "time_scale": speed,
            "tags": DEMO_TAGS,
        },
    }


def connect_bioreactor(
    rt: Runtime,
    endpoint: str = "opc.tcp://127.0.0.1:4840",
    *,
    name: str = "BR-101",
    equipment_id: str = "BR-101",
    server_equipment: str = "BR-101",
    unit_procedure: str = "up_production",
    speed: float = 3600.0,
    period: float = 5.0,
    user: str = "demo",
) -> OpcUaConnector:
    """Configure the ``name`` connector instance for the simulator at ``endpoint``, set
    equipment ``equipment_id``'s connector to it (creating the bioreactor if the plant
    has none; ``server_equipment`` is its name on the OPC UA server), register the
    connector on ``rt`` and start monitoring. Returns the connector (close it when the
    demo stops)."""
    settings = demo_settings(equipment=server_equipment, unit_procedure=unit_procedure, speed=speed, period=period)
    install(rt)  # the job handlers, and the type where the registry knows types
    configured = _configure(rt, name, endpoint, settings, user)
    with rt.transaction() as s:
        unit = s.get(Equipment, equipment_id)
        if unit is None:
            unit = Equipment(
                equipment_id=equipment_id, equipment_class="bioreactor", status="clean", name="Bioreactor 200 L"
            )
            s.add(unit)
            audit.record(
                s, user=user, action="equipment.create", object_type="equipment", object_id=equipment_id,
                new={"equipment_class": "bioreactor", "status": "clean"},
            )  # fmt: skip
        if unit.connector != name:
            audit.record(
                s, user=user, action="equipment.update", object_type="equipment", object_id=equipment_id,
                field="connector", old=unit.connector, new=name,
            )  # fmt: skip
            unit.connector = name
            unit.updated_at = utcnow()
    if configured:
        connector = rt.connectors.get(name)  # built from the instance row by the registry
    else:
        connector = OpcUaConnector(
            ConnectorConfig(name=name, type="opcua", endpoint=endpoint, settings=settings, timeout_seconds=5.0), rt
        )
        rt.connectors.register(name, connector)
    start_monitoring(rt, name)
    return connector


def _configure(rt: Runtime, name: str, endpoint: str, settings: dict[str, Any], user: str) -> bool:
    """The connector instance row, through ``engine.connector_config`` (checked, audited)
    where this Batchline has it; else written here, audited. True when the registry
    resolves configured instances itself."""
    try:
        from engine import connector_config  # type: ignore[attr-defined]
    except ImportError:
        connector_config = None
    fields = {"endpoint": endpoint, "settings": settings, "timeout_seconds": 5.0}
    if connector_config is not None and hasattr(rt.connectors, "register_type"):
        from engine.errors import NotFound

        try:
            current = connector_config.get(rt, name)
        except NotFound:
            connector_config.add(rt, name=name, type="opcua", by=user, **fields)
        else:
            if not current.get("enabled", True):
                connector_config.enable(rt, name, by=user)
            connector_config.update(rt, name, by=user, **fields)
        return True
    with rt.transaction() as s:
        row = s.get(ConnectorInstance, name)
        wanted = {"type": "opcua", "endpoint": endpoint, "settings": settings, "enabled": True}
        old = None if row is None else {k: getattr(row, k) for k in wanted}
        if old != wanted:
            if row is None:
                row = ConnectorInstance(name=name, created_at=utcnow())
                s.add(row)
            for key, value in wanted.items():
                setattr(row, key, value)
            row.timeout_seconds = 5.0
            row.updated_at = utcnow()
            row.updated_by = user
            audit.record(
                s,
                user=user,
                action="connector.configured",
                object_type="connector",
                object_id=name,
                old=old,
                new=wanted,
                reason="demo: the bioreactor simulator over OPC UA",
            )
    return False
