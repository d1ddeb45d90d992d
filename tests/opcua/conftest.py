"""The real equipment simulator (``integrations.equipment_sim``, an asyncua server) on a
free port, and an ``opcua`` connector instance named BR-101 registered on the test
runtime with the OPC UA job handlers installed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from engine import users
from engine.connectors import ConnectorConfig
from integrations import opcua
from integrations.equipment_sim import EquipmentSimulator
from integrations.opcua.connector import OpcUaConnector
from tests.support import approved_recipe, read_recipe

NAMESPACE = "urn:batchline:equipment-sim"
FORMS = Path(__file__).resolve().parents[1] / "recipes" / "opcua_forms"
#: people the OPC UA tests sign as (the approval check reads roles from the accounts)
PEOPLE = {"op.anna": ["operator"], "sup.carl": ["supervisor"], "qa.quinn": ["qa"]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def sim():
    """One simulator for the session (its server takes seconds to start), fast: one
    simulated hour per real second."""
    simulator = EquipmentSimulator("127.0.0.1", free_port(), speed=3600.0)
    simulator.start()
    yield simulator
    simulator.close()


@pytest.fixture
def idle_sim(sim):
    """The simulator with BR-101 back to Idle (a test may leave a phase behind)."""
    from integrations.opcua.link import EquipmentLink
    from integrations.opcua.settings import parse

    link = EquipmentLink("reset", parse(config_for(sim)), timeout=5)
    try:
        state = link.read(["BR-101.State"])["BR-101.State"]["value"]
        if state in ("Running", "Held"):
            link.call("BR-101.Abort", [])
        if state != "Idle":
            link.call("BR-101.Reset", [])
    finally:
        link.close()
    return sim


def config_for(sim, name: str = "BR-101", **settings) -> ConnectorConfig:
    base = {"namespace": NAMESPACE, "equipment": "BR-101", "phase_poll_seconds": 0.2, "incident_after_seconds": 0}
    return ConnectorConfig(
        name=name,
        type="opcua",
        endpoint=f"opc.tcp://127.0.0.1:{sim.port}",
        settings={**base, **settings},
        timeout_seconds=3.0,
    )


@pytest.fixture
def plant(rt, idle_sim):
    """The runtime with the OPC UA jobs installed, the BR-101 connector registered and
    the test people as accounts."""
    opcua.install(rt)
    connector = OpcUaConnector(config_for(idle_sim), rt)
    rt.connectors.register("BR-101", connector)
    for username, roles in PEOPLE.items():
        users.create_user(rt, username, username.title(), roles, by="test", password="correct horse battery staple")
    yield connector
    connector.close()


def load_recipe(rt, *files: str) -> None:
    forms = {p.stem: json.loads(p.read_text()) for p in FORMS.glob("*.json")}
    approved_recipe(rt, read_recipe(*files), forms=forms, user="qa.lead")
