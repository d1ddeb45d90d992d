"""A perfusion bioreactor at steady state: the physics and the control loops of ``continuous``.

Cells are held at a viable-cell-density setpoint by a bleed pump (PI on the capacitance
probe), fresh medium flows in at a cell-specific perfusion rate (feed-forward on the same
probe), an ATF filter retains the cells and passes the product (its sieving falls and its
transmembrane pressure rises as it fouls; the operator changes it at a TMP limit), a
level loop moves the harvest pump. Temperature (jacket PI), DO (PI on the O2 sparge at
fixed agitation) and pH (split-range CO2/base with a deadband) are controlled as well.

One trajectory, scalar floats (a continuous process is one long run), explicit Euler
except the gas balances, which are integrated exactly over the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

VCD_SETPOINT = 50.0  # 1e6 cells/mL
VOLUME = 50.0  # L working volume
CSPR = 0.03 / 24.0  # 1/h per 1e6 cells/mL (30 pL/cell/day)
T_SETPOINT, DO_SETPOINT, PH_SETPOINT, PH_DEADBAND = 36.5, 40.0, 7.0, 0.03
O2_MAX, CO2_MAX, BASE_MAX = 10.0, 4.0, 0.2  # slpm, slpm, L/h of 1 M Na2CO3
TMP_LIMIT = 350.0  # mbar: the operator changes the ATF filter here
MEDIUM = dict(G=8.0, HCO3=24.0)  # g/L glucose, mM bicarbonate


@dataclass
class Perfusion:
    """States (floats) and controller memories of the one bioreactor; ``p`` the plant's fixed parameters."""

    p: dict
    Xv: float = VCD_SETPOINT
    Xd: float = 4.0
    G: float = 3.0
    L: float = 1.0
    A: float = 3.0
    P: float = 0.5
    F: float = 0.2  # filter fouling, 0 = new filter
    V: float = VOLUME
    T: float = T_SETPOINT
    DO: float = DO_SETPOINT
    pCO2: float = 60.0
    HCO3: float = 12.0
    i_temp: float = 0.0
    u_do: float = 0.5
    u_ph: float = -0.1
    i_bleed: float = 0.2 / 24.0
    i_level: float = 0.0
    harvest_valve: float = 2.6
    filter_changes: int = 0
    out: dict = field(default_factory=dict)

    def step(self, t: float, dt: float, d: dict, f: dict, noise: dict) -> None:
        """Advance ``dt`` hours under disturbances ``d``, active faults ``f`` and probe errors ``noise``.

        The loops act on what their probes read, errors included, as a real loop does.
        """
        p = self.p
        # --- temperature ---
        temp_probe = self.T + f.get("temp_bias", 0.0) + noise["temperature"]
        e = T_SETPOINT - temp_probe
        self.i_temp = min(max(self.i_temp + 1.2 * e * dt, -15.0), 15.0)
        jacket = min(max(T_SETPOINT + 4.0 * e + self.i_temp, 4.0), 48.0)
        room = 21.0 + 2.0 * d["ambient"]

        # --- VCD: bleed on the capacitance probe; perfusion feed-forward on the same probe ---
        vcd_probe = self.Xv * (1.0 + 0.04 * d["cell"]) * (1.0 + f.get("cap_drift", 0.0)) + noise["vcd_capacitance"]
        e = vcd_probe - VCD_SETPOINT
        self.i_bleed = min(max(self.i_bleed + 0.0005 * e * dt, 0.0), 0.03)
        bleed = min(max(self.i_bleed + 0.003 * e, 0.0), 0.03)  # 1/h
        perf = min(max(CSPR * vcd_probe, 0.5 / 24.0), 2.5 / 24.0)  # 1/h
        feed_l, bleed_l = perf * VOLUME, bleed * self.V

        # --- level: PI on the weight moves the harvest pump (valve may stick) ---
        weight = self.V * 1.02 + noise["weight"]
        e = weight - VOLUME * 1.02
        self.i_level = min(max(self.i_level + 0.6 * e * dt, -2.0), 2.0)
        cmd = max(feed_l - bleed_l + 2.0 * e + self.i_level, 0.0)
        band = f.get("stiction", 0.0)
        if abs(cmd - self.harvest_valve) > band:
            self.harvest_valve = cmd
        harvest_l = self.harvest_valve

        # --- DO: PI on the O2 sparge, agitation fixed ---
        do_probe = self.DO + f.get("do_bias", 0.0) + noise["dissolved_oxygen"]
        e = DO_SETPOINT - do_probe
        if "do_stuck" in f:
            u = f["do_stuck"]
        else:
            self.u_do = min(max(self.u_do + 0.01 * e * dt, 0.0), 1.0)
            u = min(max(self.u_do + 0.0015 * e, 0.0), 1.0)
        o2 = O2_MAX * u
        gas = 1.0 + 0.08 * d["gas"]
        kla_air, kla_o2 = p["kla_air"] * gas, p["kla_o2"] * o2 * gas

        # --- pH: split range, deadband ---
        ph_true = 6.1 + math.log10(max(self.HCO3, 0.05) / (0.0307 * max(self.pCO2, 0.5)))
        ph_probe = ph_true + f.get("ph_bias", 0.0) + noise["ph"]
        e = ph_probe - PH_SETPOINT
        e = math.copysign(max(abs(e) - PH_DEADBAND, 0.0), e)
        self.u_ph = min(max(self.u_ph + 1.0 * e * dt, -1.0), 1.0)
        u = min(max(self.u_ph + 2.0 * e, -1.0), 1.0)
        co2, base = CO2_MAX * max(u, 0.0), BASE_MAX * max(-u, 0.0)

        # --- the cells (cell state d["cell"] moves their metabolism together) ---
        cell, age = d["cell"], math.exp(-t / (24.0 * 90.0))
        f_temp = math.exp(0.2 * (self.T - 36.5))
        f_ph = math.exp(-0.5 * ((ph_true - 7.0) / 0.25) ** 2)
        f_glc = self.G / (0.3 + self.G)
        mu = p["mu_max"] * (1.0 + 0.15 * d["growth"]) * f_temp * f_ph * f_glc * 60.0 / (60.0 + 11.1 * self.L)
        mu *= self.DO / (3.0 + self.DO)
        kd = p["kd"] * (1.0 + 0.2 * d["growth"] ** 2) + 0.01 * (1.0 - f_ph) + 0.01 * 0.05 / (0.05 + self.G)
        q_glc = p["q_glc"] * (1.0 + 0.12 * cell) * f_glc
        q_lac = p["q_lac"] * (1.0 + 0.3 * cell) * f_glc - p["q_lac_uptake"] * self.L / (1.0 + self.L)
        q_o2 = p["q_o2"] * (1.0 + 0.1 * cell) * f_temp**0.5
        q_p = p["q_p"] * (1.0 - 0.25 * cell) * (0.7 + 0.3 * age) * f_ph

        # gases, exact over the step
        our = q_o2 * self.Xv
        k = kla_air + kla_o2
        do_inf = (kla_air * 100.0 + kla_o2 * 476.0 - 476.0 * our) / k
        self.DO = max(do_inf + (self.DO - do_inf) * math.exp(-k * dt), 0.0)
        k_strip = p["k_strip"] * gas * (1.0 + 0.05 * o2 + 0.1 * co2)
        co2_inf = (0.9 * our / 0.0307 + p["co2_gain"] * co2) / k_strip
        self.pCO2 = co2_inf + (self.pCO2 - co2_inf) * math.exp(-k_strip * dt)
        self.T += dt * ((jacket - self.T) / 0.3 + (room - self.T) / 20.0 + 0.01 * our)

        # --- ATF filter: fouls with the permeate it passes, sieving falls, TMP rises ---
        flux = harvest_l / 2.6
        self.F += dt * p["k_foul"] * f.get("foul_factor", 1.0) * flux * (1.0 + 0.02 * self.Xd)
        sieving = 0.95 / (1.0 + 1.2 * self.F)
        tmp = p["tmp0"] * (1.0 + 2.5 * self.F) * (0.3 + 0.7 * flux)
        if tmp > TMP_LIMIT:  # operator changes the filter
            self.F, self.filter_changes = 0.0, self.filter_changes + 1

        # --- mass balances: d(VC)/dt = in - out + reaction, with the ATF retaining the cells ---
        V = self.V
        d_in, d_bleed, d_harv, d_base = feed_l / V, bleed_l / V, harvest_l / V, base / V
        dv = d_in + d_base - d_bleed - d_harv  # (dV/dt) / V
        g_in = MEDIUM["G"] * (1.0 + 0.04 * d["media"] + f.get("medium_glucose", 0.0))
        self.Xv += dt * ((mu - kd - d_bleed - dv) * self.Xv)
        self.Xd += dt * (kd * self.Xv - (d_bleed + 0.05 * d_harv + dv + 0.01) * self.Xd)
        out = d_bleed + d_harv + dv  # a solute leaves with both outflows
        self.G = max(self.G + dt * (d_in * g_in - out * self.G - q_glc * self.Xv), 0.0)
        self.L = max(self.L + dt * (q_lac * self.Xv - out * self.L), 0.0)
        self.A += dt * (p["q_amm"] * self.Xv - out * self.A)
        self.P = max(self.P + dt * (q_p * self.Xv - (d_bleed + sieving * d_harv + dv) * self.P), 0.0)
        self.HCO3 = max(
            self.HCO3 + dt * (d_in * MEDIUM["HCO3"] - out * self.HCO3 - 11.1 * q_lac * self.Xv + d_base * 2000.0), 0.0
        )
        self.V += dt * V * dv

        self.out = dict(
            temperature=temp_probe,
            jacket_temperature=jacket,
            ph=ph_probe,
            dissolved_oxygen=do_probe,
            o2_flow=o2,
            co2_flow=co2,
            base_rate=base,
            vcd_capacitance=vcd_probe,
            perfusion_rate=feed_l,
            bleed_rate=bleed_l,
            harvest_rate=harvest_l,
            weight=weight,
            tmp=tmp,
            glucose=self.G,
            lactate=self.L,
            harvest_titre=sieving * self.P,
        )
