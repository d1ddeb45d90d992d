"""The CHO bioreactor: mass balances and the control loops a plant runs around the cells.

Control structure (different from a penicillin fed-batch on purpose):
- temperature: PI controller moving the jacket (temperature control unit) supply
  temperature; setpoint 36.8 °C, shifted to 33 °C on day ~5;
- pH: one split-range PI with a deadband, CO2 sparge when the pH is high, 1 M Na2CO3
  when it is low (the bicarbonate buffer, lactate and ammonium move the pH);
- dissolved oxygen: split-range cascade, the PI output first raises the agitation from
  its minimum to its maximum, then opens the pure-O2 sparge;
- feeds: a daily nutrient bolus (SOP volume) and a glucose bolus when the operator's
  daily glucose result is below a trigger (in ``cho_fedbatch``).

The loops see the probe readings, so a drifting or biased probe moves the true culture
away from the setpoint while the recorded value sits on it, as in a real plant. The
states advance by explicit Euler at ``dt`` except dissolved O2 and CO2, whose fast gas
transfer is integrated exactly over the step (stable for any kLa).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .cho_culture import LACTATE_MM_PER_G, _clip, ph, rates

DO_SETPOINT = 40.0  # % air saturation
PH_SETPOINT, PH_DEADBAND = 7.0, 0.07
N_MIN, N_MAX = 80.0, 170.0  # rpm
O2_MAX = 8.0  # slpm pure O2
CO2_MAX = 3.0  # slpm CO2
BASE_MAX = 0.25  # L/h of 1 M Na2CO3
O2_SATURATION_PURE = 476.0  # % air saturation in equilibrium with pure O2
FEED = dict(G=40.0, aa=220.0, S=650.0)  # nutrient feed: g/L glucose, mM amino acids, mOsm/kg salts
GLUCOSE_STOCK = 400.0  # g/L


class Bioreactor:
    """States and controllers of ``n`` batches at once (every attribute an array over batches)."""

    def __init__(self, p: SimpleNamespace, n: int):
        self.p = p
        self.s = SimpleNamespace(
            Xv=p.Xv0.copy(),
            Xd=p.Xv0 * (1.0 - p.viability0) / p.viability0,
            G=p.G0.copy(),
            L=p.L0.copy(),
            A=p.A0.copy(),
            aa=p.aa0.copy(),
            P=np.zeros(n),
            V=p.V0.copy(),
            S=p.S0.copy(),
            HCO3=p.HCO3_0.copy(),
            pCO2=p.pCO2_0.copy(),
            DO=np.full(n, 95.0),
            T=np.full(n, 36.8),
            C=np.zeros(n),
            base=np.zeros(n),
        )
        self.i_temp = np.zeros(n)
        self.u_do = np.zeros(n)
        self.u_ph = np.zeros(n)
        self.out = SimpleNamespace(
            jacket=np.full(n, 37.2),
            agitation=np.full(n, N_MIN),
            o2=np.zeros(n),
            co2=np.zeros(n),
            base_rate=np.zeros(n),
            ph=ph(self.s),
            temp_probe=self.s.T + p.T_cal,
            ph_probe=ph(self.s) + p.pH_cal,
            do_probe=self.s.DO + p.DO_cal,
        )

    def step(
        self, t: float, dt: float, T_sp: np.ndarray, feed: np.ndarray, glucose: np.ndarray, f: SimpleNamespace, err
    ):
        """Advance every batch by ``dt`` hours; ``feed``/``glucose`` are pump rates in L/h.

        ``f`` holds the faults as arrays over batches, already switched on only after onset;
        ``err`` the temperature, pH and DO probes' errors (the loops act on them, as real loops do).
        """
        s, p, o = self.s, self.p, self.out

        # --- temperature loop (probe may carry a fault offset) ---
        temp_probe = s.T + p.T_cal + f.temp_offset + err[0]
        e = T_sp - temp_probe
        self.i_temp = _clip(self.i_temp + 1.5 * e * dt, -15.0, 15.0)
        jacket = _clip(T_sp + 4.0 * e + self.i_temp, 4.0, 48.0)

        # --- dissolved-oxygen cascade: agitation, then O2 ---
        do_probe = s.DO + p.DO_cal + f.do_bias + err[2]
        e = DO_SETPOINT - do_probe
        self.u_do = _clip(self.u_do + 0.012 * e * dt, 0.0, 2.0)
        u = _clip(self.u_do + 0.0015 * e, 0.0, 2.0)
        agitation = N_MIN + (N_MAX - N_MIN) * np.minimum(u, 1.0)
        o2 = O2_MAX * _clip(u - 1.0, 0.0, 1.0)
        impeller = agitation * (1.0 - f.slip) / 100.0
        kla_air = p.kla0 + p.kla1 * impeller**2
        kla_o2 = p.kla_o2 * o2 * impeller**0.7

        # --- pH: split range with deadband, CO2 up / base down ---
        ph_true = ph(s)
        ph_probe = ph_true + p.pH_cal + f.ph_drift + err[1]
        e = ph_probe - PH_SETPOINT
        e = np.sign(e) * np.maximum(np.abs(e) - PH_DEADBAND, 0.0)
        self.u_ph = _clip(self.u_ph + 0.8 * e * dt, -1.0, 1.0)
        u = _clip(self.u_ph + 2.0 * e, -1.0, 1.0)
        co2 = CO2_MAX * np.maximum(u, 0.0)
        base_rate = BASE_MAX * np.maximum(-u, 0.0)

        # --- the cells ---
        r = rates(s, p, t, ph_true)

        # gases: exact integration of first-order transfer over the step
        k = kla_air + kla_o2
        do_inf = (kla_air * 100.0 + kla_o2 * O2_SATURATION_PURE - 476.0 * r.our) / k
        s.DO = np.maximum(do_inf + (s.DO - do_inf) * np.exp(-k * dt), 0.0)
        k_strip = p.k_strip * impeller**0.5 * (1.0 + 0.08 * o2 + 0.1 * co2) * (1.0 - f.strip_loss)
        co2_in = 0.9 * r.our / 0.0307 + p.co2_gain * co2
        co2_inf = co2_in / k_strip
        s.pCO2 = co2_inf + (s.pCO2 - co2_inf) * np.exp(-k_strip * dt)

        # temperature of the broth: jacket, room, metabolic heat
        s.T = s.T + dt * ((jacket - s.T) / 0.35 + (21.0 - s.T) / 25.0 + 0.01 * r.our)

        # --- mass balances with dilution by feed, glucose and base ---
        inflow = feed + glucose + base_rate
        d = inflow / s.V
        s.Xv = np.maximum(s.Xv + dt * (r.dXv - d * s.Xv), 0.0)
        s.Xd = np.maximum(s.Xd + dt * (r.dXd - d * s.Xd), 0.0)
        s.G = np.maximum(s.G + dt * (r.dG + (feed * FEED["G"] + glucose * GLUCOSE_STOCK) / s.V - d * s.G), 0.0)
        s.L = np.maximum(s.L + dt * (r.dL - d * s.L), 0.0)
        s.A = np.maximum(s.A + dt * (r.dA - d * s.A), 0.0)
        s.aa = np.maximum(s.aa + dt * (r.daa + feed * FEED["aa"] / s.V - d * s.aa), 0.0)
        s.P = s.P + dt * (r.dP - d * s.P)
        s.C = np.maximum(s.C + dt * (r.dC - d * s.C), 0.0)
        s.S = s.S + dt * ((feed * FEED["S"] + base_rate * 2000.0) / s.V - d * s.S)
        # lactic acid and the contaminant's acids use up bicarbonate, ammonia and base make it
        s.HCO3 = np.maximum(
            s.HCO3 + dt * (-LACTATE_MM_PER_G * r.dL + r.dA - r.acid + base_rate * 2000.0 / s.V - d * s.HCO3), 0.0
        )
        s.V = s.V + dt * inflow
        s.base = s.base + dt * base_rate

        o.jacket, o.agitation, o.o2, o.co2, o.base_rate = jacket, agitation, o2, co2, base_rate
        o.ph, o.temp_probe, o.ph_probe, o.do_probe = ph_true, temp_probe, ph_probe, do_probe
        o.mu, o.kd = r.mu, r.kd
