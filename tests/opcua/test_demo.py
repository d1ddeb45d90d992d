"""The demo wiring: ``connect_bioreactor`` configures the connector instance, points
BR-101 at it, registers it and starts monitoring; audited once, idempotent."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.connectors import ServiceCall
from engine.models import AuditEvent, ConnectorInstance, Equipment, Job
from integrations.opcua.demo import connect_bioreactor


def test_connect_bioreactor_configures_and_monitors(rt, sim):
    endpoint = f"opc.tcp://127.0.0.1:{sim.port}"
    connector = connect_bioreactor(rt, endpoint)
    try:
        again = connect_bioreactor(rt, endpoint)
        again.close()
        with rt.transaction() as s:
            row = s.get(ConnectorInstance, "BR-101")
            assert row.type == "opcua" and row.endpoint == endpoint and row.enabled
            assert row.settings["monitoring"]["unit_procedures"] == ["up_production"]
            assert s.get(Equipment, "BR-101").connector == "BR-101"
            assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "opcua_monitor")) == 1
            actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.object_id == "BR-101")))
        # the instance through engine.connector_config where it exists ("connector.added"), once
        assert sorted(a for a in actions if a.startswith("equipment.")) == ["equipment.create", "equipment.update"]
        assert len([a for a in actions if a in ("connector.configured", "connector.added")]) == 1
        assert "opcua_phase" in rt.job_handlers and "opcua_monitor" in rt.job_handlers
        got = rt.connectors.get("BR-101.read").call(ServiceCall("B", "t", "x", "BR-101.read", {"nodes": "DO"}, "cb"))
        assert isinstance(got.data["DO"], float)
    finally:
        connector.close()
