"""The simulator through a Python asyncua client: the ISA-88 commands, alarms delivered
as events to a subscription, and every kind of bad method input answered with a Bad
status and a sentence (in the call's diagnostic info and in BR-101.LastError)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asyncua import Client, ua

from integrations.equipment_sim import ALARM_EVENT_TYPE, NAMESPACE_URI

from .conftest import run


async def call_raw(client: Client, idx: int, method: str, *args) -> ua.CallMethodResult:
    """A call without asyncua's high-level wrapper, to see the diagnostic info."""
    request = ua.CallMethodRequest(
        ObjectId=ua.NodeId("BR-101", idx), MethodId=ua.NodeId(f"BR-101.{method}", idx), InputArguments=list(args)
    )
    return (await client.uaclient.call([request]))[0]


def s(text: str) -> ua.Variant:
    return ua.Variant(text, ua.VariantType.String)


async def value(client: Client, idx: int, key: str):
    return await client.get_node(ua.NodeId(key, idx)).read_value()


def test_isa88_commands_move_the_state(idle_sim):
    async def scenario():
        async with Client(idle_sim.endpoint) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            br = client.get_node(ua.NodeId("BR-101", idx))
            params = json.dumps({"duration_h": 50, "temperature": 36.5, "batch": "MAB-001"})
            run_id = await br.call_method(f"{idx}:StartPhase", "Production", params)
            assert await value(client, idx, "BR-101.TemperatureSetpoint") == 36.5
            seen = [await value(client, idx, "BR-101.State")]
            for command in ("Hold", "Restart", "Hold", "Stop"):
                await br.call_method(f"{idx}:{command}")
                seen.append(await value(client, idx, "BR-101.State"))
            report = json.loads(await value(client, idx, "BR-101.PhaseReport"))
            await br.call_method(f"{idx}:Reset")
            seen.append(await value(client, idx, "BR-101.State"))
            second = await br.call_method(f"{idx}:StartPhase", "Harvest", "")
            await br.call_method(f"{idx}:Abort")
            seen.append(await value(client, idx, "BR-101.State"))
            third = await br.call_method(f"{idx}:StartPhase", "Harvest", '{"duration_h": 0.2}')  # from Aborted
            await asyncio.sleep(0.6)
            seen.append(await value(client, idx, "BR-101.State"))
            return run_id, report, seen, {second, third}, await value(client, idx, "BR-101.Phase")

    run_id, report, seen, later, phase = run(scenario())
    assert seen == ["Running", "Held", "Running", "Held", "Complete", "Idle", "Aborted", "Complete"]
    assert report["run_id"] == run_id and report["outcome"] == "stopped"
    assert report["parameters"]["batch"] == "MAB-001" and report["simulated_hours"] < 50
    assert len(later) == 2 and run_id not in later and phase == "Harvest"


def test_a_repeated_request_id_returns_the_same_run(idle_sim):
    async def scenario():
        async with Client(idle_sim.endpoint) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            br = client.get_node(ua.NodeId("BR-101", idx))
            params = json.dumps({"duration_h": 10, "request_id": "task-42"})
            first = await br.call_method(f"{idx}:StartPhase", "Growth", params)
            again = await br.call_method(f"{idx}:StartPhase", "Growth", params)
            other = await call_raw(client, idx, "StartPhase", s("Growth"), s('{"request_id": "task-43"}'))
            return first, again, other

    first, again, other = run(scenario())
    assert first == again
    assert other.StatusCode.value == ua.StatusCodes.BadInvalidState


def test_two_clients_starting_at_once_start_one_phase(idle_sim):
    async def start(n):
        async with Client(idle_sim.endpoint) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            return await call_raw(client, idx, "StartPhase", s("Growth"), s(f'{{"duration_h": 10, "who": {n}}}'))

    async def both():
        return await asyncio.gather(*(start(n) for n in range(4)))

    results = run(both())
    good = [r for r in results if r.StatusCode.is_good()]
    assert len(good) == 1
    assert all(r.StatusCode.value == ua.StatusCodes.BadInvalidState for r in results if r not in good)


BAD_INPUT = [
    ([s(""), s("{}")], "BadInvalidArgument", "phase must be a name"),
    ([s("Growth; DROP TABLE"), s("{}")], "BadInvalidArgument", "phase must be a name"),
    ([s("G" * 500), s("{}")], "BadInvalidArgument", "phase must be a name"),
    ([s("Growth"), s("{not json")], "BadInvalidArgument", "not valid JSON"),
    ([s("Growth"), s("[1, 2]")], "BadInvalidArgument", "must be a JSON object"),
    ([s("Growth"), s('{"duration_h": "two"}')], "BadInvalidArgument", "'duration_h' must be a number"),
    ([s("Growth"), s('{"duration_h": -1}')], "BadInvalidArgument", "outside"),
    ([s("Growth"), s('{"duration_h": NaN}')], "BadInvalidArgument", "must be a number"),
    ([s("Growth"), s('{"duration_h": 1e999}')], "BadInvalidArgument", "must be a number"),
    ([s("Growth"), s('{"pH": 14}')], "BadInvalidArgument", "outside"),
    ([s("Growth"), s('{"nested": {"a": 1}}')], "BadInvalidArgument", "number, string or boolean"),
    ([s("Growth"), s('{"x": "' + "a" * 20_000 + '"}')], "BadInvalidArgument", "longer than"),
    ([s("Growth"), s('{"a": ' * 5000 + "1" + "}" * 5000)], "BadInvalidArgument", "longer than 16384 bytes"),
    ([s("Growth"), s("[" * 8000 + "]" * 8000)], "BadInvalidArgument", "nested too deeply"),
    ([s("Growth"), s('{"a": [' * 100 + "]}" * 100)], "BadInvalidArgument", "number, string or boolean"),
    ([s("Growth")], "BadArgumentsMissing", "expected arguments"),
    ([s("Growth"), s("{}"), s("extra")], "BadTooManyArguments", "expected 2"),
    ([ua.Variant(3.5, ua.VariantType.Double), s("{}")], "BadTypeMismatch", "must be a String"),
]


@pytest.mark.parametrize(("args", "status", "words"), BAD_INPUT)
def test_bad_start_phase_input_is_refused_with_a_reason(idle_sim, args, status, words):
    async def scenario():
        async with Client(idle_sim.endpoint) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            result = await call_raw(client, idx, "StartPhase", *args)
            return result, await value(client, idx, "BR-101.LastError"), await value(client, idx, "BR-101.State")

    result, last_error, state = run(scenario())
    assert result.StatusCode.value == getattr(ua.StatusCodes, status), ua.StatusCode(result.StatusCode.value).name
    message = result.InputArgumentDiagnosticInfos[0].AdditionalInfo
    assert words in message and message == last_error
    assert state == "Idle"


def test_unknown_fault_and_arguments_to_commands(idle_sim):
    async def scenario():
        async with Client(idle_sim.endpoint) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            fault = await call_raw(client, idx, "InjectFault", s("meteor"))
            hold = await call_raw(client, idx, "Reset", s("now"))
            return fault, hold

    fault, reset = run(scenario())
    assert fault.StatusCode.value == ua.StatusCodes.BadInvalidArgument
    assert "known: temperature_excursion, do_drop" in fault.InputArgumentDiagnosticInfos[0].AdditionalInfo
    assert reset.StatusCode.value == ua.StatusCodes.BadTooManyArguments


class Events:
    def __init__(self):
        self.received = []

    def event_notification(self, event):
        self.received.append(event)


def test_an_injected_fault_raises_an_alarm_event_and_it_clears(idle_sim):
    async def scenario():
        async with Client(idle_sim.endpoint) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            br = client.get_node(ua.NodeId("BR-101", idx))
            handler = Events()
            subscription = await client.create_subscription(50, handler)
            await subscription.subscribe_events(br, client.get_node(ua.NodeId(ALARM_EVENT_TYPE, idx)))
            await br.call_method(f"{idx}:InjectFault", "temperature_excursion")
            for _ in range(80):  # the fault lasts three simulated hours: raise, then clear
                if len(handler.received) >= 2:
                    break
                await asyncio.sleep(0.1)
            return handler.received

    received = run(scenario())
    raised, cleared = received[0], received[1]
    assert raised.AlarmKind == "temperature_deviation" and raised.Active is True and raised.Severity == 700
    assert "Temperature" in raised.Message.Text and "setpoint 36.80" in raised.Message.Text
    assert raised.SourceName == "BR-101" and raised.Value > 38.3
    assert cleared.AlarmKind == "temperature_deviation" and cleared.Active is False and cleared.Severity == 100


def test_do_drop_raises_the_low_do_alarm(idle_sim):
    async def scenario():
        async with Client(idle_sim.endpoint) as client:
            idx = await client.get_namespace_index(NAMESPACE_URI)
            br = client.get_node(ua.NodeId("BR-101", idx))
            handler = Events()
            subscription = await client.create_subscription(50, handler)
            await subscription.subscribe_events(br, client.get_node(ua.NodeId(ALARM_EVENT_TYPE, idx)))
            await br.call_method(f"{idx}:InjectFault", "do_drop")
            for _ in range(40):
                if handler.received:
                    break
                await asyncio.sleep(0.1)
            return handler.received

    received = run(scenario())
    assert received and received[0].AlarmKind == "do_low" and received[0].Severity == 800
    assert "below 20 %" in received[0].Message.Text
