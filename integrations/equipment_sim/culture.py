"""The bioreactor's process, as its probes would show it: a CHO fed-batch in a 200 L vessel.

Plain Python, no OPC UA, so the physics can be read and tested on its own. Time is in
simulated hours. Temperature, pH and dissolved oxygen follow their setpoints with a
first-order lag (the jacket, CO2/base and gas controllers) plus probe noise; viable
cell density grows logistically while a phase runs (about a third as fast when held,
not at all when idle); the oxygen demand grows with the cells and the DO cascade
answers first with agitation, and when agitation is at its limit the DO falls below
setpoint; fed-batch feeds raise the volume slowly. Ranges follow the demo's historian
process (36.8 °C shifted to 33 °C, pH 7.0, DO 40 %, 80–170 rpm, 140 L start).

Injected faults move the true process (a jacket failure, an aeration failure, a CO2
valve stuck open) for a few simulated hours, so alarms follow from the values, not
from a flag.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

TEMPERATURE_SP, PH_SP, DO_SP, AGITATION_SP = 36.8, 7.0, 40.0, 80.0
AGITATION_MAX = 170.0  # rpm, the impeller's limit in the cascade
VOLUME_START, VCD_START = 140.0, 0.45  # L, 1e6 cells/mL
VCD_MAX = 22.0  # logistic capacity, 1e6 cells/mL
MU_MAX = 0.03  # 1/h at 36.8 °C (doubling in about 23 h)
FEED_RATE = 0.16  # L/h while running: the demo process feeds about 54 L over 14 days
FAULT_HOURS = 3.0  # how long an injected fault disturbs the process

TAU = {"temperature": 0.25, "ph": 0.3, "do": 0.08, "agitation": 0.05}  # hours
NOISE = {"temperature": 0.02, "ph": 0.004, "do": 0.4, "agitation": 0.3, "volume": 0.05, "vcd": 0.02}
FAULTS = {
    "temperature_excursion": "the jacket loses cooling: temperature climbs about 3 °C above setpoint",
    "do_drop": "the sparger is blocked: dissolved oxygen falls to about 10 %",
    "ph_drift": "the CO2 valve sticks open: pH falls about 0.35 below setpoint",
    "clear": "clear every injected fault",
}


def _lag(value: float, target: float, tau_h: float, dt_h: float) -> float:
    """Exact first-order step, stable for any step length (a restart catches up in one go)."""
    return target + (value - target) * math.exp(-dt_h / tau_h)


@dataclass
class Setpoints:
    temperature: float = TEMPERATURE_SP
    ph: float = PH_SP
    do: float = DO_SP
    agitation: float = AGITATION_SP


@dataclass
class Culture:
    """True process state; :meth:`readings` adds probe noise."""

    rng: random.Random = field(default_factory=random.Random)
    setpoints: Setpoints = field(default_factory=Setpoints)
    temperature: float = TEMPERATURE_SP
    ph: float = PH_SP
    do: float = DO_SP
    agitation: float = AGITATION_SP
    volume: float = VOLUME_START
    vcd: float = VCD_START
    feed_rate: float = FEED_RATE
    faults: dict[str, float] = field(default_factory=dict)  # kind -> simulated hours left

    def inject(self, kind: str) -> None:
        if kind == "clear":
            self.faults.clear()
        else:
            self.faults[kind] = FAULT_HOURS

    def restart_culture(self, vcd: float, volume: float) -> None:
        """A fresh inoculum (a phase started with ``initial_vcd`` / ``initial_volume``)."""
        self.vcd, self.volume = vcd, volume

    def step(self, dt_h: float, growth: float) -> None:
        """Advance ``dt_h`` simulated hours; ``growth`` is 1 when running, 0.3 held, 0 idle."""
        sp = self.setpoints
        t_target = sp.temperature + (3.0 if "temperature_excursion" in self.faults else 0.0)
        ph_target = sp.ph - (0.35 if "ph_drift" in self.faults else 0.0)
        self.temperature = _lag(self.temperature, t_target, TAU["temperature"], dt_h)
        self.ph = _lag(self.ph, ph_target, TAU["ph"], dt_h)

        # DO cascade: the agitation needed grows with the oxygen demand of the cells.
        demand = self.vcd * max(sp.do, 1.0) / DO_SP
        needed = sp.agitation + 4.5 * demand if growth > 0 else sp.agitation
        ceiling = max(AGITATION_MAX, sp.agitation)
        self.agitation = _lag(self.agitation, min(needed, ceiling), TAU["agitation"], dt_h)
        do_target = sp.do - 0.6 * max(0.0, needed - ceiling)
        if "do_drop" in self.faults:
            do_target = min(do_target, 10.0)
        self.do = _lag(self.do, max(0.0, min(do_target, 100.0)), TAU["do"], dt_h)

        if growth > 0:
            t_factor = math.exp(-0.5 * ((self.temperature - TEMPERATURE_SP) / 4.0) ** 2)
            ph_factor = math.exp(-0.5 * ((self.ph - PH_SP) / 0.3) ** 2)
            o2_factor = min(1.0, self.do / 15.0)
            mu = MU_MAX * growth * t_factor * ph_factor * o2_factor
            # logistic growth, solved exactly over the step
            k = math.exp(mu * dt_h)
            self.vcd = VCD_MAX * self.vcd * k / (VCD_MAX + self.vcd * (k - 1.0))
            self.volume += self.feed_rate * growth * dt_h

        for kind in list(self.faults):
            self.faults[kind] -= dt_h
            if self.faults[kind] <= 0:
                del self.faults[kind]

    def readings(self) -> dict[str, float]:
        """What the probes show now (true value + noise), rounded as a transmitter would."""
        g = self.rng.gauss
        return {
            "Temperature": round(self.temperature + g(0, NOISE["temperature"]), 3),
            "pH": round(self.ph + g(0, NOISE["ph"]), 4),
            "DO": round(max(0.0, self.do + g(0, NOISE["do"])), 2),
            "Agitation": round(max(0.0, self.agitation + g(0, NOISE["agitation"])), 1),
            "Volume": round(self.volume + g(0, NOISE["volume"]), 2),
            "VCD": round(max(0.0, self.vcd * (1.0 + g(0, NOISE["vcd"]))), 3),
        }
