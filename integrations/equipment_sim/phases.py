"""The bioreactor's ISA-88 phase logic: which command is allowed in which state, what a
phase's parameters may be, and the report written when a phase completes.

States: Idle, Running, Held, Complete, Aborted. ``StartPhase`` from Idle, or from
Complete/Aborted (which resets first); Hold from Running; Restart from Held; Stop from
Running or Held ends the phase as Complete (outcome "stopped"); Abort from Running or
Held; Reset from Complete, Aborted, Held or Idle back to Idle. Anything else is refused
with a sentence saying what the state is and what is allowed, which the server turns
into ``BadInvalidState``.

Plain Python (no OPC UA): the server module maps :class:`Refused` to a status code.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

IDLE, RUNNING, HELD, COMPLETE, ABORTED = "Idle", "Running", "Held", "Complete", "Aborted"
STATES = (IDLE, RUNNING, HELD, COMPLETE, ABORTED)
MAX_PARAMETERS_BYTES = 16_384
PHASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
# name -> (low, high); numbers only. Setpoints are applied when the phase starts.
NUMERIC = {
    "duration_h": (0.0, 24.0 * 60),
    "temperature": (4.0, 45.0),
    "pH": (5.5, 8.5),
    "DO": (0.0, 100.0),
    "agitation": (0.0, 400.0),
    "feed_rate": (0.0, 20.0),
    "initial_vcd": (0.01, 50.0),
    "initial_volume": (1.0, 250.0),
}
DEFAULT_DURATION_H = 1.0


class Refused(Exception):
    """A command or its input is not acceptable; ``status`` names the OPC UA status code."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_parameters(text: str) -> dict:
    """The JSON object of a StartPhase call, checked: numbers in range, strings short,
    nothing nested. Extra keys (a batch id, an order number) are kept for the report."""
    if not isinstance(text, str):
        raise Refused("BadInvalidArgument", "parameters must be a JSON object as a String")
    if len(text.encode("utf-8", "replace")) > MAX_PARAMETERS_BYTES:
        raise Refused("BadInvalidArgument", f"parameters are longer than {MAX_PARAMETERS_BYTES} bytes")
    if not text.strip():
        return {}
    try:
        data = json.loads(text, parse_constant=lambda c: None)  # NaN/Infinity refused below
    except ValueError as exc:
        raise Refused("BadInvalidArgument", f"parameters are not valid JSON: {exc}") from None
    except RecursionError:
        raise Refused("BadInvalidArgument", "parameters are nested too deeply") from None
    if not isinstance(data, dict):
        raise Refused("BadInvalidArgument", 'parameters must be a JSON object, e.g. {"duration_h": 2}')
    for key, value in data.items():
        if len(key) > 64:
            raise Refused("BadInvalidArgument", f"parameter name {key[:64]!r}... is longer than 64 characters")
        if key in NUMERIC:
            low, high = NUMERIC[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise Refused("BadInvalidArgument", f"parameter {key!r} must be a number, not {value!r}")
            if not low <= value <= high:
                raise Refused("BadInvalidArgument", f"parameter {key!r}={value} is outside {low}..{high}")
        elif key == "request_id":
            if not isinstance(value, str) or not 0 < len(value) <= 200:
                raise Refused("BadInvalidArgument", "parameter 'request_id' must be a string of 1..200 characters")
        elif value is not None and not isinstance(value, str | int | float | bool):
            raise Refused("BadInvalidArgument", f"parameter {key!r} must be a number, string or boolean")
        elif isinstance(value, str) and len(value) > 1000:
            raise Refused("BadInvalidArgument", f"parameter {key!r} is longer than 1000 characters")
    if data.get("duration_h", 1.0) <= 0:
        raise Refused("BadInvalidArgument", "parameter 'duration_h' must be above 0")
    return data


@dataclass
class Run:
    """One phase run: what was asked, how far it is, when it started and ended."""

    run_id: str
    phase: str
    parameters: dict
    duration_h: float
    started: datetime
    elapsed_h: float = 0.0
    ended: datetime | None = None
    outcome: str = ""


@dataclass
class PhaseLogic:
    state: str = IDLE
    run: Run | None = None
    last_message: str = ""
    history: list[str] = field(default_factory=list)  # request ids already started, newest last

    def _refuse(self, command: str, allowed: str) -> Refused:
        return Refused("BadInvalidState", f"{command} is not allowed while BR-101 is {self.state}; {allowed}")

    def start(self, phase: str, parameters_text: str) -> tuple[Run, bool]:
        """Start a phase; returns (run, started_now). A repeated call with the same
        ``request_id`` as the current or last run returns that run instead of refusing,
        so a client that lost the answer can retry without starting the phase twice."""
        if not isinstance(phase, str) or not PHASE_NAME.match(phase):
            raise Refused(
                "BadInvalidArgument",
                "phase must be a name of 1..64 letters, digits, spaces, '_', '-' or '.', e.g. 'Production'",
            )
        parameters = parse_parameters(parameters_text)
        request_id = parameters.get("request_id")
        if request_id and self.run is not None and self.run.parameters.get("request_id") == request_id:
            return self.run, False
        if self.state in (RUNNING, HELD):
            raise self._refuse("StartPhase", "Stop or Abort the running phase first")
        run = Run(
            run_id=f"BR-101-{utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
            phase=phase,
            parameters=parameters,
            duration_h=float(parameters.get("duration_h", DEFAULT_DURATION_H)),
            started=utc_now(),
        )
        self.run, self.state = run, RUNNING
        return run, True

    def hold(self) -> None:
        if self.state != RUNNING:
            raise self._refuse("Hold", "only a Running phase can be held")
        self.state = HELD

    def restart(self) -> None:
        if self.state != HELD:
            raise self._refuse("Restart", "only a Held phase can be restarted")
        self.state = RUNNING

    def stop(self) -> Run:
        if self.state not in (RUNNING, HELD) or self.run is None:
            raise self._refuse("Stop", "only a Running or Held phase can be stopped")
        return self._finish("stopped")

    def abort(self) -> None:
        if self.state not in (RUNNING, HELD) or self.run is None:
            raise self._refuse("Abort", "only a Running or Held phase can be aborted")
        self.run.ended, self.run.outcome, self.state = utc_now(), "aborted", ABORTED

    def reset(self) -> None:
        if self.state == RUNNING:
            raise self._refuse("Reset", "Hold, Stop or Abort the phase first")
        if self.state == HELD and self.run is not None:
            self.run.ended, self.run.outcome = utc_now(), "aborted"
        self.state = IDLE

    def advance(self, dt_h: float) -> Run | None:
        """Count running time; returns the run when it has just completed."""
        if self.state != RUNNING or self.run is None:
            return None
        self.run.elapsed_h += dt_h
        if self.run.elapsed_h >= self.run.duration_h:
            self.run.elapsed_h = self.run.duration_h
            return self._finish("completed")
        return None

    def _finish(self, outcome: str) -> Run:
        assert self.run is not None
        self.run.ended, self.run.outcome, self.state = utc_now(), outcome, COMPLETE
        return self.run


def report(run: Run, equipment: str, values: dict[str, dict]) -> str:
    """The PhaseReport JSON: what ran, with which parameters, and the final process values
    with their node ids and source timestamps (for the batch record)."""
    return json.dumps(
        {
            "run_id": run.run_id,
            "equipment": equipment,
            "phase": run.phase,
            "parameters": run.parameters,
            "outcome": run.outcome,
            "started": run.started.isoformat(),
            "ended": (run.ended or utc_now()).isoformat(),
            "simulated_hours": round(run.elapsed_h, 4),
            "values": values,
        },
        sort_keys=True,
    )
