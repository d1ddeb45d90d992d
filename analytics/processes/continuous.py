"""``continuous``: a perfusion bioreactor at steady state, one long trajectory cut into daily windows.

The plant wanders the way a continuous plant does: slow latent disturbances (AR(1), 0.97
to 0.9995 per 15-min sample) shared by many measurements - the cells' metabolic state,
the medium lot (with lot changes every 3-6 days), the room temperature (daily cycle),
the gas supply, the cells' growth capacity - plus a productivity that declines with the
culture's age and an ATF filter that fouls until the operator changes it. A model fitted
on five days has therefore not seen every operating region of the next ten.

Run i is window i (24 h, 96 samples) of the one trajectory, in time order. A fault
starts inside its window and ends at the window's end; the process then recovers on
its own (a fouled filter is changed at that point, as an operator would).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .noise import lognormal
from .perfusion import Perfusion
from .runs import ProcessRun, check_faults

VARIABLES = (
    ("temperature", "°C", 0.01, 0.015, 0.95),
    ("jacket_temperature", "°C", 0.03, 0.03, 0.9),
    ("ph", "pH", 0.003, 0.004, 0.97),
    ("dissolved_oxygen", "% air sat.", 0.4, 0.6, 0.9),
    ("o2_flow", "slpm", 0.03, 0.0, 0.0),
    ("co2_flow", "slpm", 0.01, 0.0, 0.0),
    ("base_rate", "L/h", 0.002, 0.0, 0.0),
    ("vcd_capacitance", "1e6 cells/mL", 0.5, 0.8, 0.95),
    ("perfusion_rate", "L/h", 0.01, 0.0, 0.0),
    ("bleed_rate", "L/h", 0.005, 0.0, 0.0),
    ("harvest_rate", "L/h", 0.02, 0.0, 0.0),
    ("weight", "kg", 0.05, 0.05, 0.95),
    ("tmp", "mbar", 2.0, 2.0, 0.9),
    ("glucose", "g/L", 0.05, 0.08, 0.97),
    ("lactate", "g/L", 0.04, 0.05, 0.97),
    ("harvest_titre", "g/L", 0.01, 0.01, 0.8),
)  # name, unit, white sd, AR(1) sd, AR(1) phi per sample
PROBES = ("temperature", "ph", "dissolved_oxygen", "vcd_capacitance", "weight")  # read by a control loop
TITRE_HOURS = 2.0  # at-line titre every 2 h, held between results


@dataclass(frozen=True)
class WindowFault:
    magnitude: tuple[float, float]
    unit: str
    signed: bool
    what: str


FAULTS: dict[str, WindowFault] = {
    "ph_sensor_bias": WindowFault((0.05, 0.10), "pH", True, "pH probe offset; the loop moves the true pH"),
    "temperature_sensor_bias": WindowFault((0.3, 0.6), "°C", True, "temperature probe offset"),
    "capacitance_drift": WindowFault((0.5, 1.5), "%/h", True, "capacitance (VCD) probe drifts; bleed follows it"),
    "do_controller_stuck": WindowFault((0.10, 0.25), "fraction", True, "O2 valve sticks this far from its position"),
    "medium_glucose_low": WindowFault((0.10, 0.25), "fraction", False, "medium bag with this much less glucose"),
    "filter_fouling": WindowFault((5.0, 12.0), "x normal rate", False, "ATF filter fouls this many times faster"),
    "harvest_valve_stiction": WindowFault((0.15, 0.40), "L/h", False, "harvest valve sticks within this band"),
}
ONSET_WINDOW = (2.0, 20.0)  # hours after the window starts


class ContinuousPerfusion:
    """The continuous process (``Process`` protocol): ``n_runs`` consecutive windows of one trajectory."""

    name = "continuous"
    kind: Literal["batch", "continuous"] = "continuous"
    fault_types = tuple(FAULTS)
    variables = tuple(v[0] for v in VARIABLES)
    units = tuple(v[1] for v in VARIABLES)

    def __init__(self, window_hours: float = 24.0, sample_hours: float = 0.25, dt: float = 0.05):
        if not 1.0 <= window_hours <= 168.0 or not 0.05 <= sample_hours <= 2.0 or not 0.005 <= dt <= sample_hours:
            raise ValueError("window_hours in [1, 168], sample_hours in [0.05, 2], dt in [0.005, sample_hours]")
        self.per_window = int(round(window_hours / sample_hours))
        self.sample_hours = window_hours / self.per_window
        self.window_hours = float(window_hours)
        self.substeps = max(1, int(round(self.sample_hours / dt)))
        self.burn_in = int(round(72.0 / self.sample_hours))

    def fault_info(self) -> dict[str, dict]:
        """The fault table for reports; onsets are hours after the window's start."""
        return {
            name: {
                "what": f.what,
                "magnitude": f.magnitude,
                "unit": f.unit,
                "signed": f.signed,
                "onset_hours": ONSET_WINDOW,
            }
            for name, f in FAULTS.items()
        }

    def simulate(self, n_runs: int, seed: int, faults: list[str | None] | None = None) -> list[ProcessRun]:
        faults = check_faults(faults, n_runs, self.fault_types)
        if n_runs == 0:
            return []
        plant_rng, dist_rng, noise_rng, fault_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )
        p = {
            "mu_max": float(lognormal(plant_rng, 1, 0.03, 0.03)[0]),
            "kd": float(lognormal(plant_rng, 1, 0.004, 0.05)[0]),
            "q_glc": float(lognormal(plant_rng, 1, 0.0065, 0.03)[0]),
            "q_lac": float(lognormal(plant_rng, 1, 0.002, 0.05)[0]),
            "q_lac_uptake": float(lognormal(plant_rng, 1, 0.0015, 0.05)[0]),
            "q_o2": float(lognormal(plant_rng, 1, 0.12, 0.03)[0]),
            "q_p": float(lognormal(plant_rng, 1, 0.00057, 0.05)[0]),
            "q_amm": 0.0005,
            "kla_air": float(lognormal(plant_rng, 1, 8.0, 0.05)[0]),
            "kla_o2": float(lognormal(plant_rng, 1, 1.0, 0.05)[0]),
            "k_strip": float(lognormal(plant_rng, 1, 4.0, 0.05)[0]),
            "co2_gain": 100.0,
            "k_foul": float(lognormal(plant_rng, 1, 0.008, 0.1)[0]),
            "tmp0": 60.0,
        }
        total = self.burn_in + n_runs * self.per_window
        # one stream per series, drawn in time order: a longer simulation starts with the same windows
        dist = self._disturbances(dist_rng, total)
        draws = self._draw_faults(fault_rng, faults)
        noise = np.empty((total, len(VARIABLES)))
        for v, (_, _, white, sd, phi) in enumerate(VARIABLES):
            e = np.random.default_rng(noise_rng.spawn(1)[0]).standard_normal((total, 2))
            noise[:, v] = white * e[:, 0] + _ar1(e[:, 1], phi, sd)
        probes = [self.variables.index(v) for v in PROBES]
        X, truth = self._run(p, dist, draws, faults, noise)
        others = [v for v in range(len(VARIABLES)) if v not in probes]
        X[:, others] += noise[:, others]  # the probes' errors are in X already, through their loops
        X[:, 4:11] = np.maximum(X[:, 4:11], 0.0)  # flows
        titre = X[:, 15].copy()
        every = max(1, int(round(TITRE_HOURS / self.sample_hours)))
        held = (np.arange(total) // every) * every
        X[:, 15] = titre[held]
        X = X[self.burn_in :]
        truth = truth[self.burn_in :]
        runs = []
        for w, fault in enumerate(faults):
            sl = slice(w * self.per_window, (w + 1) * self.per_window)
            times = w * self.window_hours + self.sample_hours * np.arange(1, self.per_window + 1)
            onset = None if fault is None else w * self.window_hours + draws[w]["onset"]
            details = {
                "window": w,
                # the window after a faulty one starts while the process is still recovering
                "previous_fault": faults[w - 1] if w > 0 else None,
                "magnitude": None if fault is None else draws[w]["magnitude"],
                "unit": None if fault is None else FAULTS[fault].unit,
                "true_vcd": truth[sl, 0].copy(),
                "true_ph": truth[sl, 1].copy(),
                "filter_fouling": truth[sl, 2].copy(),
            }
            runs.append(
                ProcessRun(
                    run_id=f"cont-{seed}-{w:04d}",
                    times=times,
                    X=X[sl].copy(),
                    variables=self.variables,
                    units=self.units,
                    fault_type=fault,
                    onset_hours=onset,
                    durations=None,
                    details=details,
                )
            )
        return runs

    def _disturbances(self, rng: np.random.Generator, total: int) -> dict[str, np.ndarray]:
        """The shared slow disturbances, one value per historian sample (held over the sub-steps)."""
        h = self.sample_hours
        t = (np.arange(total) - self.burn_in) * h
        lot_rng, cell, media, ambient, gas, growth = (np.random.default_rng(s) for s in rng.spawn(6))
        lot = np.zeros(total)
        k = 0
        while k < total:  # medium lots: a new lot every 3-6 days, each a little different
            n_lot = int(lot_rng.uniform(72.0, 144.0) / h)
            lot[k : k + n_lot] = 0.75 * lot_rng.standard_normal()
            k += n_lot
        phase = ambient.uniform(0, 2 * np.pi)
        return {
            "cell": _ar1(cell.standard_normal(total), 0.995, 1.0),
            "media": lot + _ar1(media.standard_normal(total), 0.9995, 0.5),
            "ambient": 0.7 * np.sin(2 * np.pi * t / 24.0 + phase) + _ar1(ambient.standard_normal(total), 0.98, 0.5),
            "gas": _ar1(gas.standard_normal(total), 0.99, 0.6),
            "growth": _ar1(growth.standard_normal(total), 0.99, 1.0),
        }

    def _draw_faults(self, rng: np.random.Generator, faults: list[str | None]) -> list[dict]:
        """Onset and magnitude per window for every fault type (same draws whatever ``faults`` says)."""
        names = list(FAULTS)
        out: list[dict] = []
        for fault in faults:
            u = rng.random((3, len(names)))  # onset, magnitude, sign of every type, window after window
            if fault is None:
                out.append({})
                continue
            j, spec = names.index(fault), FAULTS[fault]
            onset = ONSET_WINDOW[0] + u[0, j] * (ONSET_WINDOW[1] - ONSET_WINDOW[0])
            mag = spec.magnitude[0] + u[1, j] * (spec.magnitude[1] - spec.magnitude[0])
            out.append({"onset": float(onset), "magnitude": float(-mag if spec.signed and u[2, j] < 0.5 else mag)})
        return out

    def _run(self, p: dict, dist: dict, draws: list[dict], faults: list[str | None], noise: np.ndarray):
        """Integrate the trajectory; returns the interval means of the measurements and true states per sample."""
        total = dist["cell"].size
        dt, h = self.sample_hours / self.substeps, self.sample_hours
        plant = Perfusion(p)
        names = self.variables
        X, truth = np.zeros((total, len(names))), np.zeros((total, 3))
        keys = list(dist)
        active: dict = {}
        for k in range(total):
            w = (k - self.burn_in) // self.per_window if k >= self.burn_in else -1
            if k >= self.burn_in and (k - self.burn_in) % self.per_window == 0:
                if active.get("foul_factor"):
                    plant.F = 0.0  # the operator changes the fouled filter at the end of the faulty window
                active = {}
            d = {key: float(dist[key][k]) for key in keys}
            probe_error = {v: float(noise[k, self.variables.index(v)]) for v in PROBES}
            acc = np.zeros(len(names))
            fault = faults[w] if w >= 0 else None
            for j in range(self.substeps):
                t = (k - self.burn_in) * h + j * dt
                if fault is not None and not active and t - w * self.window_hours >= draws[w]["onset"]:
                    active = self._fault_effect(fault, draws[w], plant)
                f = dict(active)
                if "cap_rate" in f:
                    f["cap_drift"] = f["cap_rate"] * (t - w * self.window_hours - draws[w]["onset"]) / 100.0
                plant.step(t, dt, d, f, probe_error)
                acc += [plant.out[n] for n in names]
            X[k] = acc / self.substeps
            truth[k] = (plant.Xv, 6.1 + math.log10(max(plant.HCO3, 0.05) / (0.0307 * plant.pCO2)), plant.F)
        return X, truth

    @staticmethod
    def _fault_effect(fault: str, draw: dict, plant: Perfusion) -> dict:
        m = draw["magnitude"]
        if fault == "ph_sensor_bias":
            return {"ph_bias": m}
        if fault == "temperature_sensor_bias":
            return {"temp_bias": m}
        if fault == "capacitance_drift":
            return {"cap_rate": m}
        if fault == "do_controller_stuck":
            return {"do_stuck": min(max(plant.u_do * (1.0 + m), 0.0), 1.0)}
        if fault == "medium_glucose_low":
            return {"medium_glucose": -m}
        if fault == "filter_fouling":
            return {"foul_factor": m}
        return {"stiction": m}


def _ar1(e: np.ndarray, phi: float, sd: float) -> np.ndarray:
    """A stationary AR(1) series with marginal sd ``sd`` driven by the standard normals ``e``."""
    innov = sd * math.sqrt(1.0 - phi * phi)
    out = np.empty(e.size)
    out[0] = sd * e[0]
    for i in range(1, e.size):
        out[i] = phi * out[i - 1] + innov * e[i]
    return out
