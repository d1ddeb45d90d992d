"""The server disappearing and coming back: stop() closes the port and drops clients,
start() listens again on the same port with the same equipment state (the phase kept
running meanwhile, as on a PLC whose OPC UA server restarted), and close() frees the
port for a new simulator."""

from __future__ import annotations

import json
import socket
import time

import pytest
from asyncua import Client, ua

from integrations.equipment_sim import NAMESPACE_URI, EquipmentSimulator, SimulatorError

from .conftest import free_port, run, ua_tool


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stop_then_start_on_the_same_port_keeps_the_running_phase():
    port = free_port()
    with EquipmentSimulator("127.0.0.1", port, speed=1800, seed=3) as sim:
        node = sim.node_id
        call = ua_tool(
            "uacall", "-u", sim.endpoint, "-n", node("BR-101"), "-m", "2:StartPhase", "-t", "string",
            'Growth,{"request_id":"task-7"}',
        )  # fmt: skip
        run_id = call.stdout.strip().split("=", 1)[1]

        async def held_connection():
            client = Client(sim.endpoint, timeout=3)
            await client.connect()
            idx = await client.get_namespace_index(NAMESPACE_URI)
            state = client.get_node(ua.NodeId("BR-101.State", idx))
            assert await state.read_value() == "Running"
            sim.stop()  # the server disappears under a connected client
            with pytest.raises((ConnectionError, ua.UaError, TimeoutError)):
                await state.read_value()
            await client.disconnect()

        run(held_connection())
        assert not port_open(port)
        refused = ua_tool("uaread", "-u", sim.endpoint, "-n", node("BR-101.State"))
        assert refused.returncode == 1
        time.sleep(2.2)  # the phase (1 simulated hour, 2 s at this speed) ends while the server is down
        sim.start()
        assert port_open(port)

        async def after_outage():
            async with Client(sim.endpoint, timeout=5) as client:
                idx = await client.get_namespace_index(NAMESPACE_URI)
                read = {
                    k: await client.get_node(ua.NodeId(f"BR-101.{k}", idx)).read_value() for k in ("State", "RunId")
                }
                read["PhaseReport"] = json.loads(
                    await client.get_node(ua.NodeId("BR-101.PhaseReport", idx)).read_value()
                )
                # the client retrying its StartPhase after the outage gets the same run, not a second one
                br = client.get_node(ua.NodeId("BR-101", idx))
                read["again"] = await br.call_method(f"{idx}:StartPhase", "Growth", '{"request_id": "task-7"}')
                return read

        read = run(after_outage())
        assert read["State"] == "Complete" and read["RunId"] == run_id and read["again"] == run_id
        assert read["PhaseReport"]["run_id"] == run_id and read["PhaseReport"]["outcome"] == "completed"
    assert not port_open(port)
    with EquipmentSimulator("127.0.0.1", port) as fresh:  # the port is free again
        assert fresh.equipment.phases.state == "Idle" and port_open(port)


def test_a_port_in_use_is_a_clear_error(sim):
    other = EquipmentSimulator("127.0.0.1", sim.port)
    try:
        with pytest.raises(SimulatorError, match=f"cannot listen on 127.0.0.1:{sim.port}"):
            other.start()
    finally:
        other.close()
