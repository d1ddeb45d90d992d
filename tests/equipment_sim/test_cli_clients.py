"""The simulator seen through asyncua's own command-line clients (an independent client):
browse, read, write a setpoint, run a phase to Complete and read its report, tare and
weigh on the balance, and refused input answered with a Bad status."""

from __future__ import annotations

import json
import time

from .conftest import ua_tool


def test_browse_shows_the_equipment_and_its_variables(sim):
    objects = ua_tool("uals", "-u", sim.endpoint, "-n", "i=85")
    assert objects.returncode == 0, objects.stderr
    assert "BR-101" in objects.stdout and "BAL-01" in objects.stdout
    br = ua_tool("uals", "-u", sim.endpoint, "-n", sim.node_id("BR-101"))
    for name in ("Temperature", "pH", "DO", "Agitation", "Volume", "VCD", "State", "PhaseReport", "StartPhase"):
        assert f"s=BR-101.{name}" in br.stdout, name


def test_process_values_are_plausible(sim):
    limits = {
        "Temperature": (30.0, 40.0),
        "pH": (6.5, 7.5),
        "DO": (0.0, 100.0),
        "Agitation": (50.0, 200.0),
        "Volume": (100.0, 200.0),
        "VCD": (0.1, 30.0),
    }
    for name, (low, high) in limits.items():
        out = ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id(f"BR-101.{name}"))
        assert out.returncode == 0, out.stderr
        assert low <= float(out.stdout) <= high, (name, out.stdout)


def test_write_a_setpoint_and_the_process_follows(idle_sim):
    sim = idle_sim
    node = sim.node_id("BR-101.TemperatureSetpoint")
    out = ua_tool("uawrite", "-u", sim.endpoint, "-n", node, "-t", "double", "35.5")
    assert out.returncode == 0, out.stderr
    assert float(ua_tool("uaread", "-u", sim.endpoint, "-n", node).stdout) == 35.5
    time.sleep(1.5)  # 1.5 simulated hours, six time constants of the jacket
    temperature = float(ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BR-101.Temperature")).stdout)
    assert abs(temperature - 35.5) < 0.2


def test_a_setpoint_out_of_range_is_refused(idle_sim):
    sim = idle_sim
    node = sim.node_id("BR-101.pHSetpoint")
    out = ua_tool("uawrite", "-u", sim.endpoint, "-n", node, "-t", "double", "14.0")
    assert out.returncode == 1 and "BadOutOfRange" in out.stdout + out.stderr
    assert float(ua_tool("uaread", "-u", sim.endpoint, "-n", node).stdout) == 7.0
    # an integer is not a Double: asyncua itself refuses the type
    out = ua_tool("uawrite", "-u", sim.endpoint, "-n", node, "-t", "int32", "7")
    assert out.returncode == 1 and "BadTypeMismatch" in out.stdout + out.stderr


def test_start_phase_runs_to_complete_with_a_phase_report(idle_sim):
    sim = idle_sim
    ns = sim.namespace_index()
    call = ua_tool(
        "uacall",
        "-u",
        sim.endpoint,
        "-n",
        sim.node_id("BR-101"),
        "-m",
        f"{ns}:StartPhase",
        "-t",
        "string",
        'Growth,{"duration_h":1.5}',
    )
    assert call.returncode == 0, call.stdout + call.stderr
    run_id = call.stdout.strip().split("=", 1)[1]
    assert run_id.startswith("BR-101-")
    state = ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BR-101.State")).stdout.strip()
    assert state == "Running"
    deadline = time.monotonic() + 10
    while state != "Complete" and time.monotonic() < deadline:
        time.sleep(0.3)
        state = ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BR-101.State")).stdout.strip()
    assert state == "Complete"
    report = json.loads(ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BR-101.PhaseReport")).stdout)
    assert report["run_id"] == run_id and report["phase"] == "Growth" and report["outcome"] == "completed"
    assert report["parameters"] == {"duration_h": 1.5} and report["simulated_hours"] == 1.5
    temperature = report["values"]["Temperature"]
    assert temperature["node_id"] == sim.node_id("BR-101.Temperature") and temperature["unit"] == "°C"
    assert temperature["source_timestamp"] >= report["started"]
    assert ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BR-101.RunId")).stdout.strip() == run_id


def test_a_refused_call_says_why(idle_sim):
    sim = idle_sim
    ns = sim.namespace_index()
    hold = ua_tool("uacall", "-u", sim.endpoint, "-n", sim.node_id("BR-101"), "-m", f"{ns}:Hold")
    assert hold.returncode == 1 and "BadInvalidState" in hold.stdout
    last_error = ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BR-101.LastError")).stdout
    assert "Hold is not allowed while BR-101 is Idle" in last_error
    bad_json = ua_tool(
        "uacall", "-u", sim.endpoint, "-n", sim.node_id("BR-101"), "-m", f"{ns}:StartPhase", "-t", "string",
        "Growth,{duration_h: 2}",
    )  # fmt: skip
    assert bad_json.returncode == 1 and "BadInvalidArgument" in bad_json.stdout
    assert "not valid JSON" in ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BR-101.LastError")).stdout
    assert ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BR-101.State")).stdout.strip() == "Idle"


def test_balance_tare_and_weigh(idle_sim):
    sim = idle_sim
    ns = sim.namespace_index()
    load = sim.node_id("BAL-01.Load")
    assert ua_tool("uawrite", "-u", sim.endpoint, "-n", load, "-t", "double", "2.5").returncode == 0
    tare = ua_tool("uacall", "-u", sim.endpoint, "-n", sim.node_id("BAL-01"), "-m", f"{ns}:Tare")
    assert tare.returncode == 0, tare.stdout + tare.stderr
    assert ua_tool("uawrite", "-u", sim.endpoint, "-n", load, "-t", "double", "3.75").returncode == 0
    weigh = ua_tool("uacall", "-u", sim.endpoint, "-n", sim.node_id("BAL-01"), "-m", f"{ns}:Weigh")
    assert weigh.returncode == 0, weigh.stdout + weigh.stderr
    assert float(weigh.stdout.strip().split("=", 1)[1]) == 1.25
    weight = ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BAL-01.Weight")).stdout
    assert float(weight) == 1.25
    assert ua_tool("uaread", "-u", sim.endpoint, "-n", sim.node_id("BAL-01.Stable")).stdout.strip() == "True"
    negative = ua_tool("uawrite", "-u", sim.endpoint, "-n", load, "-t", "double", "-1.0")
    assert negative.returncode == 1 and "BadOutOfRange" in negative.stdout + negative.stderr
