"""When the bioreactor raises an alarm, and when it returns to normal.

Deviation alarms (temperature, pH) wait until the loop has had time to settle after a
setpoint change (half a simulated hour): a planned temperature shift is not an alarm,
a jacket failure is. The low-DO alarm is absolute (below 20 % air saturation the
cells are short of oxygen whatever the setpoint). Each alarm is reported once when it
becomes active and once when it clears, never on every sample, so a subscriber sees
edges, as with an alarm system's event journal; an active alarm clears only when the
value is back well inside its limit (20 % hysteresis), so probe noise does not chatter.

Plain Python: the server turns each :class:`Alarm` into an OPC UA event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SETTLE_H = 0.5
TEMPERATURE_BAND, PH_BAND, DO_LOW = 1.5, 0.2, 20.0
SEVERITY = {"temperature_deviation": 700, "ph_deviation": 600, "do_low": 800}
CLEARED_SEVERITY = 100


@dataclass(frozen=True)
class Alarm:
    kind: str
    active: bool
    severity: int
    message: str
    value: float
    limit: float


@dataclass
class AlarmMonitor:
    active: set[str] = field(default_factory=set)
    since_change_h: dict[str, float] = field(default_factory=dict)  # setpoint name -> hours since change

    def setpoint_changed(self, name: str) -> None:
        self.since_change_h[name] = 0.0

    def settled(self, name: str) -> bool:
        return self.since_change_h.get(name, SETTLE_H) >= SETTLE_H

    def _hysteresis(self, kind: str) -> float:
        """An active alarm clears only well inside its limit, so probe noise does not chatter."""
        return 0.8 if kind in self.active else 1.0

    def check(self, dt_h: float, values: dict[str, float], setpoints: dict[str, float]) -> list[Alarm]:
        """The alarms that became active or cleared since the last check."""
        for name in self.since_change_h:
            self.since_change_h[name] += dt_h
        t, t_sp = values["Temperature"], setpoints["temperature"]
        ph, ph_sp = values["pH"], setpoints["ph"]
        do = values["DO"]
        conditions = {
            "temperature_deviation": (
                abs(t - t_sp) > TEMPERATURE_BAND * self._hysteresis("temperature_deviation")
                and self.settled("temperature"),
                f"Temperature {t:.2f} °C deviates {t - t_sp:+.2f} °C from setpoint {t_sp:.2f} °C "
                f"(band ±{TEMPERATURE_BAND} °C)",
                t,
                TEMPERATURE_BAND,
            ),
            "ph_deviation": (
                abs(ph - ph_sp) > PH_BAND * self._hysteresis("ph_deviation") and self.settled("ph"),
                f"pH {ph:.2f} deviates {ph - ph_sp:+.2f} from setpoint {ph_sp:.2f} (band ±{PH_BAND})",
                ph,
                PH_BAND,
            ),
            "do_low": (
                do < DO_LOW / self._hysteresis("do_low"),
                f"Dissolved oxygen {do:.1f} % is below {DO_LOW:.0f} % air saturation",
                do,
                DO_LOW,
            ),
        }
        raised: list[Alarm] = []
        for kind, (now_active, message, value, limit) in conditions.items():
            if now_active and kind not in self.active:
                self.active.add(kind)
                raised.append(Alarm(kind, True, SEVERITY[kind], f"BR-101: {message}", value, limit))
            elif not now_active and kind in self.active:
                self.active.discard(kind)
                label = kind.replace("_", " ")
                raised.append(Alarm(kind, False, CLEARED_SEVERITY, f"BR-101: {label} returned to normal", value, limit))
        return raised
