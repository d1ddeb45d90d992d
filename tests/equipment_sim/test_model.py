"""The simulator's process, phase logic and alarms on their own (no server): a 14-day
fed-batch looks like one, every ISA-88 command is allowed exactly where it should be,
and alarms raise once, clear once, and ignore planned setpoint changes."""

from __future__ import annotations

import json
import random

import pytest

from integrations.equipment_sim.alarms import AlarmMonitor
from integrations.equipment_sim.culture import Culture
from integrations.equipment_sim.phases import ABORTED, COMPLETE, HELD, IDLE, RUNNING, PhaseLogic, Refused, report


def test_a_fourteen_day_run_stays_in_plausible_ranges():
    culture = Culture(rng=random.Random(1))
    seen = []
    for hour in range(14 * 24):
        if hour == 120:
            culture.setpoints.temperature = 33.0  # the temperature shift of the demo process
        culture.step(1.0, growth=1.0)
        seen.append(culture.readings())
    day3, day14 = seen[3 * 24], seen[-1]
    assert 1.5 < day3["VCD"] < 5.0 and 15.0 < day14["VCD"] < 23.0
    assert all(20.0 < r["DO"] < 45.0 for r in seen)
    assert all(75.0 < r["Agitation"] < 175.0 for r in seen) and day14["Agitation"] > 140.0
    assert 180.0 < day14["Volume"] < 200.0
    assert abs(day14["Temperature"] - 33.0) < 0.2 and abs(day14["pH"] - 7.0) < 0.03


def test_no_growth_when_idle_and_slower_when_held():
    idle, held, running = (Culture(rng=random.Random(1)) for _ in range(3))
    for _ in range(48):
        idle.step(1.0, growth=0.0)
        held.step(1.0, growth=0.3)
        running.step(1.0, growth=1.0)
    assert idle.vcd == 0.45 and idle.volume == 140.0
    assert 0.45 < held.vcd < running.vcd


def test_faults_move_the_process_then_wear_off():
    culture = Culture(rng=random.Random(1))
    culture.inject("do_drop")
    culture.inject("temperature_excursion")
    culture.step(1.0, growth=1.0)
    assert culture.do < 15.0 and culture.temperature > 38.5
    for _ in range(4):
        culture.step(1.0, growth=1.0)
    assert culture.do > 35.0 and abs(culture.temperature - 36.8) < 0.3
    culture.inject("ph_drift")
    culture.inject("clear")
    assert culture.faults == {}


COMMANDS = {
    "Hold": lambda p: p.hold(),
    "Restart": lambda p: p.restart(),
    "Stop": lambda p: p.stop(),
    "Abort": lambda p: p.abort(),
    "Reset": lambda p: p.reset(),
    "StartPhase": lambda p: p.start("Growth", "{}"),
}
# state -> {command: state after}; every command not listed is refused with BadInvalidState
ALLOWED = {
    IDLE: {"StartPhase": RUNNING, "Reset": IDLE},
    RUNNING: {"Hold": HELD, "Stop": COMPLETE, "Abort": ABORTED},
    HELD: {"Restart": RUNNING, "Stop": COMPLETE, "Abort": ABORTED, "Reset": IDLE},
    COMPLETE: {"StartPhase": RUNNING, "Reset": IDLE},
    ABORTED: {"StartPhase": RUNNING, "Reset": IDLE},
}
PATHS = {IDLE: [], RUNNING: ["StartPhase"], HELD: ["StartPhase", "Hold"], COMPLETE: ["StartPhase", "Stop"]}
PATHS[ABORTED] = ["StartPhase", "Abort"]


@pytest.mark.parametrize("state", list(ALLOWED))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_is_allowed_only_in_its_states(state, command):
    logic = PhaseLogic()
    for step in PATHS[state]:
        COMMANDS[step](logic)
    assert logic.state == state
    if command in ALLOWED[state]:
        COMMANDS[command](logic)
        assert logic.state == ALLOWED[state][command]
    else:
        with pytest.raises(Refused) as refused:
            COMMANDS[command](logic)
        assert refused.value.status == "BadInvalidState" and f"while BR-101 is {state}" in refused.value.message
        assert logic.state == state


def test_a_phase_completes_after_its_duration_and_held_time_does_not_count():
    logic = PhaseLogic()
    run, started = logic.start("Production", '{"duration_h": 2, "temperature": 36.5}')
    assert started and run.duration_h == 2.0
    assert logic.advance(1.5) is None
    logic.hold()
    assert logic.advance(5.0) is None
    logic.restart()
    done = logic.advance(0.6)
    assert done is run and logic.state == COMPLETE and run.outcome == "completed" and run.elapsed_h == 2.0
    text = report(run, "BR-101", {"Temperature": {"node_id": "ns=2;s=BR-101.Temperature", "value": 36.5}})
    data = json.loads(text)
    assert data["parameters"] == {"duration_h": 2, "temperature": 36.5} and data["equipment"] == "BR-101"
    assert data["started"] <= data["ended"]


def test_alarms_raise_once_clear_once_and_wait_for_setpoint_changes_to_settle():
    alarms = AlarmMonitor()
    sp = {"temperature": 36.8, "ph": 7.0}
    normal = {"Temperature": 36.8, "pH": 7.0, "DO": 40.0}
    hot = {**normal, "Temperature": 38.5}
    assert alarms.check(0.1, normal, sp) == []
    first = alarms.check(0.1, hot, sp)
    assert [(a.kind, a.active, a.severity) for a in first] == [("temperature_deviation", True, 700)]
    assert alarms.check(0.1, hot, sp) == []  # still active: no new event
    assert alarms.check(0.1, {**normal, "Temperature": 38.0}, sp) == []  # inside the hysteresis
    cleared = alarms.check(0.1, normal, sp)
    assert [(a.kind, a.active, a.severity) for a in cleared] == [("temperature_deviation", False, 100)]
    alarms.setpoint_changed("temperature")
    shifted = {"temperature": 33.0, "ph": 7.0}
    assert alarms.check(0.2, normal, shifted) == []  # a planned shift is not an alarm while it settles
    assert [a.kind for a in alarms.check(0.4, normal, shifted)] == ["temperature_deviation"]
    low = alarms.check(0.1, {**normal, "Temperature": 33.0, "DO": 12.0}, shifted)
    assert [(a.kind, a.active) for a in low] == [("temperature_deviation", False), ("do_low", True)]
