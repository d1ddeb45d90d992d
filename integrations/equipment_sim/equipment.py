"""The simulated equipment behind the address space: BR-101 and BAL-01, their method
handlers and the periodic update that moves the process and publishes its values.

The equipment outlives the OPC UA listener: :class:`EquipmentSimulator` can stop and
start the server (a test making the server disappear) while the culture keeps growing
and a running phase keeps counting, like a PLC whose OPC UA server restarts.

Method handlers never raise: a refused call answers a Bad status code with the reason
in the call's diagnostic info and in ``BR-101.LastError``, because asyncua turns an
exception into a bare ``BadUnexpectedError`` that tells the operator nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua

from . import address_space as aspace
from .address_space import BALANCE, BIOREACTOR, SETPOINTS
from .alarms import AlarmMonitor
from .culture import FAULTS, Culture, Setpoints
from .phases import NUMERIC, PhaseLogic, Refused, report

log = logging.getLogger("batchline.equipment_sim")
MAX_STEP_H = 0.05  # integrate in steps of at most 3 simulated minutes
SETPOINT_RANGE = {
    "TemperatureSetpoint": NUMERIC["temperature"],
    "pHSetpoint": NUMERIC["pH"],
    "DOSetpoint": NUMERIC["DO"],
    "AgitationSetpoint": NUMERIC["agitation"],
}
PARAMETER_SETPOINT = {"temperature": "TemperatureSetpoint", "pH": "pHSetpoint", "DO": "DOSetpoint"}
PARAMETER_SETPOINT["agitation"] = "AgitationSetpoint"
LOAD_RANGE = (0.0, 1000.0)
SETTLE_SECONDS, WAIT_STABLE_SECONDS = 0.3, 3.0


def _result(status: str = "Good", message: str = "", n_inputs: int = 0, outputs=None) -> ua.CallMethodResult:
    res = ua.CallMethodResult()
    res.StatusCode = ua.StatusCode(getattr(ua.StatusCodes, status))
    res.OutputArguments = list(outputs or [])
    if message:
        res.InputArgumentResults = [ua.StatusCode(res.StatusCode.value) for _ in range(max(n_inputs, 1))]
        res.InputArgumentDiagnosticInfos = [ua.DiagnosticInfo(AdditionalInfo=message) for _ in range(max(n_inputs, 1))]
    return res


def _strings(args: tuple, names: tuple[str, ...]) -> list[str]:
    """The method's String inputs, or :class:`Refused` naming what is wrong."""
    if len(args) < len(names):
        raise Refused("BadArgumentsMissing", f"expected arguments {', '.join(names)}; got {len(args)}")
    if len(args) > len(names):
        raise Refused("BadTooManyArguments", f"expected {len(names)} argument(s), got {len(args)}")
    values = []
    for name, arg in zip(names, args):
        value = arg.Value if isinstance(arg, ua.Variant) else arg
        if not isinstance(value, str):
            raise Refused("BadTypeMismatch", f"argument {name!r} must be a String, not {type(value).__name__}")
        values.append(value)
    return values


class Equipment:
    """BR-101 and BAL-01: process, phase logic, alarms, balance; publishes to a Server."""

    def __init__(self, speed: float = 3600.0, seed: int | None = None):
        self.speed = speed  # simulated seconds per real second
        self.culture = Culture(rng=random.Random(seed))
        self.phases = PhaseLogic()
        self.alarms = AlarmMonitor()
        self.load, self.tare, self.load_changed = 0.0, 0.0, 0.0
        self.server: Server | None = None
        self.space: aspace.AddressSpace | None = None
        self.alarm_events: Any = None
        self._last_tick: float | None = None
        self._seen_setpoints: dict[str, float] = {}
        self.lock = asyncio.Lock()

    # ---- wiring -----------------------------------------------------------------
    def handlers(self) -> dict[str, Any]:
        return {
            "StartPhase": self._start_phase,
            "Hold": self._command("Hold", self.phases.hold),
            "Restart": self._command("Restart", self.phases.restart),
            "Stop": self._stop,
            "Abort": self._command("Abort", self.phases.abort),
            "Reset": self._command("Reset", self.phases.reset),
            "InjectFault": self._inject_fault,
            "Tare": self._tare,
            "Weigh": self._weigh,
        }

    def initial_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {f"{BIOREACTOR}.{k}": v for k, v in self.culture.readings().items()}
        sp = self.culture.setpoints
        for name, (attr, _pv) in SETPOINTS.items():
            values[f"{BIOREACTOR}.{name}"] = getattr(sp, attr)
        values[f"{BIOREACTOR}.State"] = self.phases.state
        return values

    async def attach(self, server: Server) -> None:
        """Build the address space on ``server`` and the alarm event generator."""
        self.server = server
        self.space = await aspace.build(server, self.handlers(), self.initial_values())
        self._seen_setpoints = {name: self._read(f"{BIOREACTOR}.{name}") for name in SETPOINTS}
        for name, (low, high) in {**SETPOINT_RANGE, "Load": LOAD_RANGE}.items():
            key = f"{BALANCE}.Load" if name == "Load" else f"{BIOREACTOR}.{name}"
            server.set_attribute_value_setter(self.space.node(key).nodeid, _range_check(key, low, high))
        self.alarm_events = await server.get_event_generator(self.space.alarm_type, self.space.bioreactor)

    # ---- reading and publishing -------------------------------------------------
    def _read(self, key: str) -> Any:
        assert self.server is not None and self.space is not None
        dv = self.server.read_attribute_value(self.space.node(key).nodeid)
        return dv.Value.Value if dv.Value is not None else None

    async def _write(self, key: str, value: Any, vtype: ua.VariantType, when: datetime | None = None) -> None:
        assert self.server is not None and self.space is not None
        stamp = when or datetime.now(UTC)
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=stamp, ServerTimestamp=stamp)
        await self.server.write_attribute_value(self.space.node(key).nodeid, dv)

    async def _write_text(self, name: str, value: str) -> None:
        await self._write(f"{BIOREACTOR}.{name}", value, ua.VariantType.String)

    async def _publish_state(self) -> None:
        await self._write_text("State", self.phases.state)

    # ---- the periodic update ----------------------------------------------------
    async def tick(self) -> None:
        """Move the process by the real time since the last tick times ``speed``."""
        now = time.monotonic()
        dt_real = 0.0 if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        async with self.lock:
            self._apply_written_setpoints()
            dt_h = dt_real * self.speed / 3600.0
            finished = None
            while dt_h > 1e-9:
                step = min(dt_h, MAX_STEP_H)
                dt_h -= step
                growth = {"Running": 1.0, "Held": 0.3}.get(self.phases.state, 0.0)
                self.culture.step(step, growth)
                finished = self.phases.advance(step) or finished
            readings = self.culture.readings()
            stamp = datetime.now(UTC)
            for name, value in readings.items():
                await self._write(f"{BIOREACTOR}.{name}", value, ua.VariantType.Double, stamp)
            await self._publish_balance()
            if finished is not None:
                await self._complete(finished)
            sp = vars(self.culture.setpoints)
            for alarm in self.alarms.check(dt_real * self.speed / 3600.0, readings, sp):
                await self._emit(alarm)

    def _apply_written_setpoints(self) -> None:
        """Pick up setpoints a client wrote; a change restarts the alarms' settling time."""
        for name, (attr, _pv) in SETPOINTS.items():
            value = self._read(f"{BIOREACTOR}.{name}")
            if value != self._seen_setpoints.get(name):
                self._seen_setpoints[name] = value
                setattr(self.culture.setpoints, attr, float(value))
                self.alarms.setpoint_changed(attr)

    async def _emit(self, alarm) -> None:
        ev = self.alarm_events.event
        ev.Severity = alarm.severity
        ev.AlarmKind, ev.Active, ev.Value, ev.Limit = alarm.kind, alarm.active, float(alarm.value), float(alarm.limit)
        log.info("alarm %s", alarm.message)
        await self.alarm_events.trigger(message=alarm.message)

    async def _complete(self, run) -> None:
        assert self.space is not None
        values = {}
        for name, (unit, _code) in aspace.PROCESS_VARIABLES.items():
            dv = self.server.read_attribute_value(self.space.node(f"{BIOREACTOR}.{name}").nodeid)
            values[name] = {
                "node_id": self.space.node(f"{BIOREACTOR}.{name}").nodeid.to_string(),
                "value": dv.Value.Value,
                "unit": unit,
                "source_timestamp": dv.SourceTimestamp.isoformat() if dv.SourceTimestamp else None,
            }
        await self._write_text("PhaseReport", report(run, BIOREACTOR, values))
        await self._publish_state()

    async def reset_all(self) -> None:
        """Back to Idle, no fault, default setpoints, no active alarm, an empty balance
        (between tests or demo runs; the culture itself is kept)."""
        async with self.lock:
            if self.phases.state in ("Running", "Held"):
                self.phases.abort()
            self.phases.reset()
            self.culture.inject("clear")
            defaults = Setpoints()
            for name, (attr, _pv) in SETPOINTS.items():
                await self._write(f"{BIOREACTOR}.{name}", float(getattr(defaults, attr)), ua.VariantType.Double)
            self._apply_written_setpoints()
            self.alarms.active.clear()
            self.alarms.since_change_h.clear()
            self.tare = 0.0
            await self._write(f"{BALANCE}.Load", 0.0, ua.VariantType.Double)
            await self._write_text("LastError", "")
            await self._publish_state()

    # ---- BR-101 methods ---------------------------------------------------------
    async def _refused(self, exc: Refused, n_inputs: int) -> ua.CallMethodResult:
        log.info("refused: %s", exc.message)
        await self._write_text("LastError", exc.message)
        return _result(exc.status, exc.message, n_inputs)

    async def _start_phase(self, parent, *args) -> ua.CallMethodResult:
        async with self.lock:
            try:
                phase, parameters = _strings(args, ("phase", "parameters"))
                run, started = self.phases.start(phase, parameters)
            except Refused as exc:
                return await self._refused(exc, 2)
            if started:
                p = run.parameters
                if "initial_vcd" in p or "initial_volume" in p:
                    self.culture.restart_culture(p.get("initial_vcd", self.culture.vcd), p.get("initial_volume", 140.0))
                if "feed_rate" in p:
                    self.culture.feed_rate = float(p["feed_rate"])
                for key, node_name in PARAMETER_SETPOINT.items():
                    if key in p:
                        await self._write(f"{BIOREACTOR}.{node_name}", float(p[key]), ua.VariantType.Double)
                self._apply_written_setpoints()
                await self._write_text("RunId", run.run_id)
                await self._write_text("Phase", run.phase)
                await self._write_text("PhaseReport", "")
                await self._publish_state()
                log.info("phase %s started as %s", run.phase, run.run_id)
            return _result(outputs=[ua.Variant(run.run_id, ua.VariantType.String)])

    def _command(self, name: str, action):
        async def handler(parent, *args) -> ua.CallMethodResult:
            async with self.lock:
                try:
                    if args:
                        raise Refused("BadTooManyArguments", f"{name} takes no arguments")
                    action()
                except Refused as exc:
                    return await self._refused(exc, len(args))
                await self._publish_state()
                return _result()

        return handler

    async def _stop(self, parent, *args) -> ua.CallMethodResult:
        async with self.lock:
            try:
                if args:
                    raise Refused("BadTooManyArguments", "Stop takes no arguments")
                run = self.phases.stop()
            except Refused as exc:
                return await self._refused(exc, len(args))
            await self._complete(run)
            return _result()

    async def _inject_fault(self, parent, *args) -> ua.CallMethodResult:
        async with self.lock:
            try:
                (kind,) = _strings(args, ("kind",))
                if kind not in FAULTS:
                    raise Refused("BadInvalidArgument", f"unknown fault {kind[:64]!r}; known: {', '.join(FAULTS)}")
            except Refused as exc:
                return await self._refused(exc, 1)
            self.culture.inject(kind)
            log.info("fault injected: %s (%s)", kind, FAULTS[kind])
            return _result()

    # ---- BAL-01 -----------------------------------------------------------------
    def _gross(self) -> float:
        load = self._read(f"{BALANCE}.Load")
        if load != self.load:
            self.load, self.load_changed = load, time.monotonic()
        return self.load

    def _stable(self) -> bool:
        self._gross()
        return time.monotonic() - self.load_changed >= SETTLE_SECONDS

    async def _publish_balance(self) -> None:
        stable = self._stable()
        net = self.load - self.tare
        if not stable:  # a settling balance wobbles
            net += self.culture.rng.gauss(0, 0.02 * max(1.0, abs(self.load)) ** 0.5)
        await self._write(f"{BALANCE}.Weight", round(net, 3), ua.VariantType.Double)
        await self._write(f"{BALANCE}.Stable", stable, ua.VariantType.Boolean)

    async def _wait_stable(self) -> None:
        deadline = time.monotonic() + WAIT_STABLE_SECONDS
        while not self._stable():
            if time.monotonic() > deadline:
                raise Refused("BadInvalidState", f"BAL-01 is not stable after {WAIT_STABLE_SECONDS:.0f} s")
            await asyncio.sleep(0.05)

    async def _tare(self, parent, *args) -> ua.CallMethodResult:
        try:
            if args:
                raise Refused("BadTooManyArguments", "Tare takes no arguments")
            await self._wait_stable()
        except Refused as exc:
            return _result(exc.status, exc.message, len(args))
        self.tare = self.load
        await self._publish_balance()
        return _result()

    async def _weigh(self, parent, *args) -> ua.CallMethodResult:
        try:
            if args:
                raise Refused("BadTooManyArguments", "Weigh takes no arguments")
            await self._wait_stable()
        except Refused as exc:
            return _result(exc.status, exc.message, len(args))
        net = round(self.load - self.tare, 3)
        return _result(outputs=[ua.Variant(net, ua.VariantType.Double)])


def _range_check(key: str, low: float, high: float):
    """A value setter refusing writes outside ``low..high`` (the client sees BadOutOfRange)."""

    def setter(node, attr, value: ua.DataValue) -> None:
        number = value.Value.Value if value.Value is not None else None
        if not isinstance(number, float) or not low <= number <= high:
            log.info("refused write %s=%r (allowed %s..%s)", key, number, low, high)
            raise ua.UaStatusCodeError(ua.StatusCodes.BadOutOfRange)
        attribute = node.attributes[attr]
        attribute.value, attribute.value_callback = value, None

    return setter
