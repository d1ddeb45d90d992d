"""When the equipment or its configuration fails: the server disappears in the middle of
a phase (an incident with the real error, resumed by itself when the server is back,
the report recorded once), an unknown node, an unreachable endpoint, a wrong namespace
and settings that make no sense give incidents and errors a person can act on."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from engine import batches, jobs
from engine.connectors import ConnectorConfig, ConnectorError
from engine.models import BatchException, Step
from integrations.opcua.connector import OpcUaConnector
from tests.engine.engine_helpers import complete, ready, run_jobs_until
from tests.support import person

from .conftest import NAMESPACE, config_for, free_port, load_recipe


def _incidents(rt, batch_id: str, open_only: bool = True) -> list[dict]:
    return [i for i in jobs.incidents(rt, open_only=open_only) if i["batch_id"] == batch_id]


def test_server_gone_mid_phase_incident_then_resumes_and_records_once(plant, rt, sim):
    load_recipe(rt, "opcua_equipment.bpmn")
    batches.start_batch(rt, "opcua_bioreactor", "OPC-DOWN", user="sup.carl", parameters={"duration_h": 3})
    run_jobs_until(rt, lambda: "approve_setpoint" in ready(rt, "OPC-DOWN"))
    complete(rt, "OPC-DOWN", "approve_setpoint", {"setpoint": 36.8}, user="sup.carl", signer=person("sup.carl"))
    run_jobs_until(rt, lambda: plant.link.read(["BR-101.State"])["BR-101.State"]["value"] == "Running")
    sim.stop()
    try:
        run_jobs_until(rt, lambda: bool(_incidents(rt, "OPC-DOWN")))
        (incident,) = _incidents(rt, "OPC-DOWN")
        assert "BR-101 unreachable while phase Production runs" in incident["message"]
        assert str(sim.port) in incident["message"]  # the real error names the endpoint
        jobs.run_due(rt)
        assert len(_incidents(rt, "OPC-DOWN")) == 1  # one incident, however long it lasts
        assert "check_report" not in ready(rt, "OPC-DOWN")
        time.sleep(3.2)  # the phase completes while nobody is connected
    finally:
        sim.start()
    run_jobs_until(rt, lambda: "check_report" in ready(rt, "OPC-DOWN"), timeout=20)
    assert _incidents(rt, "OPC-DOWN") == []
    (resolved,) = _incidents(rt, "OPC-DOWN", open_only=False)
    assert resolved["resolved_at"] is not None
    with rt.transaction() as s:
        steps = s.scalars(select(Step).where(Step.bpmn_id == "run_production")).all()
        assert len(steps) == 1 and steps[0].values["outcome"] == "completed"
        raised = s.scalars(select(BatchException).where(BatchException.category == "incident")).all()
        assert len(raised) == 1 and "unreachable" in raised[0].message
    for _ in range(3):
        jobs.run_due(rt)
    with rt.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Step).where(Step.bpmn_id == "run_production")) == 1


def test_unknown_node_is_a_clear_incident_not_retried(plant, rt):
    load_recipe(rt, "opcua_read.bpmn")
    batches.start_batch(rt, "opcua_read", "OPC-NODE", user="sup.carl", parameters={"nodes": "Temperature, Nope"})
    run_jobs_until(rt, lambda: bool(_incidents(rt, "OPC-NODE")))
    (incident,) = _incidents(rt, "OPC-NODE")
    assert "cannot read BR-101.Nope" in incident["message"] and "BadNodeIdUnknown" in incident["message"]


def test_unreachable_endpoint_is_retried_then_an_incident(rt, sim):
    from integrations import opcua

    opcua.install(rt)
    config = ConnectorConfig("BR-101", "opcua", f"opc.tcp://127.0.0.1:{free_port()}", {"namespace": NAMESPACE}, None, 1)
    connector = OpcUaConnector(config, rt)
    rt.connectors.register("BR-101", connector)
    try:
        load_recipe(rt, "opcua_read.bpmn")
        batches.start_batch(rt, "opcua_read", "OPC-PORT", user="sup.carl", parameters={"nodes": "Temperature"})
        run_jobs_until(rt, lambda: bool(_incidents(rt, "OPC-PORT")))
        (incident,) = _incidents(rt, "OPC-PORT")
        assert "unreachable" in incident["message"] and "ConnectionRefused" in incident["message"]
    finally:
        connector.close()


def test_wrong_namespace_is_a_clear_incident(rt, sim):
    from integrations import opcua

    opcua.install(rt)
    connector = OpcUaConnector(config_for(sim, namespace="urn:not-there"), rt)
    rt.connectors.register("BR-101", connector)
    try:
        load_recipe(rt, "opcua_read.bpmn")
        batches.start_batch(rt, "opcua_read", "OPC-NS", user="sup.carl", parameters={"nodes": "Temperature"})
        run_jobs_until(rt, lambda: bool(_incidents(rt, "OPC-NS")))
        assert "has no namespace 'urn:not-there'" in _incidents(rt, "OPC-NS")[0]["message"]
    finally:
        connector.close()


@pytest.mark.parametrize(
    "endpoint, settings, says",
    [
        ("http://127.0.0.1:4840", {"namespace": NAMESPACE}, "endpoint must be opc.tcp://host:port"),
        ("opc.tcp://127.0.0.1:x", {"namespace": NAMESPACE}, "bad port"),
        ("opc.tcp://127.0.0.1:4840", {}, "settings.namespace"),
        ("opc.tcp://127.0.0.1:4840", {"namespace": NAMESPACE, "security": "Basic128"}, "security must be one of"),
        ("opc.tcp://127.0.0.1:4840", {"namespace": NAMESPACE, "security": "Basic256Sha256"}, "needs a client"),
        ("opc.tcp://127.0.0.1:4840", {"namespace": NAMESPACE, "certificate": "/nonexistent"}, "not a readable file"),
        ("opc.tcp://127.0.0.1:4840", {"namespace": NAMESPACE, "monitoring": {"tags": {}}}, "monitoring.tags"),
        (
            "opc.tcp://127.0.0.1:4840",
            {"namespace": NAMESPACE, "monitoring": {"tags": {"DO": {"alert": [1]}}, "unit_procedures": ["u"]}},
            "[low, high]",
        ),
        (
            "opc.tcp://127.0.0.1:4840",
            {"namespace": NAMESPACE, "monitoring": {"tags": {"DO": {}}, "unit_procedures": []}},
            "unit_procedures",
        ),
        (
            "opc.tcp://127.0.0.1:4840",
            {"namespace": NAMESPACE, "phase_poll_seconds": float("nan")},
            "phase_poll_seconds",
        ),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(endpoint, settings, says):
    with pytest.raises(ConnectorError) as err:
        OpcUaConnector(ConnectorConfig("BR-101", "opcua", endpoint, settings, "s3cret-password", 5))
    assert says in str(err.value) and err.value.retry is False
    assert "s3cret-password" not in str(err.value)


def test_bad_operation_parameters_are_refused(plant):
    from engine.connectors import ServiceCall

    def call(operator, **params):
        return plant.call(ServiceCall("B", "t", "x", operator, params, "cb"))

    cases = [
        ("BR-101.delete", {}, "has no operation 'delete'"),
        ("BR-101.read", {"nodes": []}, "read needs nodes"),
        ("BR-101.read", {"nodes": ["x" * 300]}, "is not a node name"),
        ("BR-101.read", {"nodes": [{"a": 1}]}, "is not a node name"),
        ("BR-101.write", {"node": "TemperatureSetpoint"}, "needs a value"),
        ("BR-101.write", {"node": "TemperatureSetpoint", "value": "hot"}, "is not a Double"),
        ("BR-101.write", {"node": "TemperatureSetpoint", "value": 99}, "refused: BadOutOfRange"),
        ("BR-101.call", {"method": "Hold", "args": "x"}, "args must be a list"),
        ("BR-101.call", {"method": "Hold"}, "Hold is not allowed while BR-101 is Idle"),
        ("BR-101.call", {"method": "BAL-01.Weigh", "args": [1]}, "takes 0 argument(s)"),
        ("BR-101.run_phase", {"phase": ""}, "needs phase"),
        ("BR-101.run_phase", {"phase": "P", "parameters": "{nope"}, "not JSON"),
    ]
    for operator, params, says in cases:
        with pytest.raises(ConnectorError) as err:
            call(operator, **params)
        assert says in str(err.value), (operator, str(err.value))
        assert err.value.retry is False
