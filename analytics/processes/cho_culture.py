"""CHO cell kinetics: how fast the cells grow, die, eat and make antibody in a given state.

Unstructured, Monod-type kinetics of the kind used for process development of mammalian
fed-batch cultures: growth limited by glucose and amino acids and inhibited by lactate,
ammonium, high pCO2 and osmolality; a temperature shift that slows growth and raises the
specific productivity; the lactate shift (cells make lactate while they grow fast and
consume it when growth slows). Every function works on arrays of runs at once, which is
what makes a hundred batches cheap.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

LACTATE_MM_PER_G = 11.1  # 90.08 g/mol
GLUCOSE_MM_PER_G = 5.55  # 180.16 g/mol


def _clip(x, lo: float, hi: float):
    """np.clip without its dispatch overhead, which matters at thousands of steps."""
    return np.minimum(np.maximum(x, lo), hi)


def osmolality(s: SimpleNamespace) -> np.ndarray:
    """mOsm/kg: the salts not otherwise tracked plus the solutes the culture changes."""
    return s.S + GLUCOSE_MM_PER_G * s.G + LACTATE_MM_PER_G * s.L + s.HCO3 + s.A + s.aa


def ph(s: SimpleNamespace) -> np.ndarray:
    """Henderson-Hasselbalch on the bicarbonate buffer (pK 6.1, CO2 solubility 0.0307 mM/mmHg)."""
    return 6.1 + np.log10(np.maximum(s.HCO3, 0.05) / (0.0307 * np.maximum(s.pCO2, 0.5)))


def rates(s: SimpleNamespace, p: SimpleNamespace, t: float, ph_true: np.ndarray) -> SimpleNamespace:
    """Volumetric rates per hour for the current state (cells in 1e6/mL, glucose/lactate/titre g/L, mM)."""
    dT = s.T - 36.8
    f_temp = np.exp(0.45 * dT) * np.exp(-0.5 * (np.maximum(s.T - 37.4, 0.0) / 0.6) ** 2)
    f_ph = np.exp(-0.5 * ((ph_true - 7.0) / 0.22) ** 2)
    f_do = 1.05 * s.DO / (2.0 + s.DO)
    f_co2 = 1.0 / (1.0 + np.maximum(s.pCO2 - 110.0, 0.0) / 150.0)
    osm = osmolality(s)
    f_osm = 1.0 / (1.0 + np.maximum(osm - 400.0, 0.0) / 150.0)
    f_glc = s.G / (0.1 + s.G)
    f_aa = s.aa / (0.8 + s.aa)
    f_lac = 70.0 / (70.0 + LACTATE_MM_PER_G * s.L)
    f_amm = 18.0 / (18.0 + s.A)
    lag = 1.0 - 0.8 * np.exp(-t / p.tau_lag)
    stress = f_ph * f_do * f_co2 * f_osm
    mu = p.mu_max * f_temp * stress * f_glc * f_aa * f_lac * f_amm * lag

    # contaminant (zero unless the contamination fault started it): bacteria eat glucose,
    # breathe hard, acidify the broth and release what kills the CHO cells
    f_c = s.G / (0.2 + s.G) * s.DO / (3.0 + s.DO) * (1.0 - s.C / 150.0)
    mu_c = p.mu_contaminant * np.maximum(f_c, 0.0)
    toxin = 0.035 * s.C / (s.C + 8.0)

    kd = (
        p.kd0 * np.exp(0.1 * dT)
        + 0.012 * 0.05 / (0.05 + s.G)  # glucose starvation
        + 0.010 * 0.2 / (0.2 + s.aa)  # amino-acid starvation
        + p.kd_age * np.maximum(t - p.t_age, 0.0) / 24.0  # ageing culture
        + 0.008 * (1.0 - stress)  # pH, DO, CO2 or osmotic stress
        + 0.0015 * s.A / (s.A + 10.0)
        + toxin
    )
    growing = mu / (mu + 0.012)
    q_glc = (mu / p.Yxg + p.m_glc * (0.55 + 0.45 * f_temp)) * f_glc
    q_lac = p.Y_lac * q_glc * growing**1.5 - p.q_lac_uptake * s.L / (0.3 + s.L) * (1.0 - growing) * f_glc
    q_aa = (mu / p.Yxa + p.m_aa) * f_aa
    q_amm = p.Y_amm * mu + p.m_amm * f_aa
    q_p = p.q_p * _clip(1.0 + 0.09 * (36.8 - s.T), 0.7, 1.5) * f_aa / (0.2 + f_aa) * 1.2 * (0.5 + 0.5 * f_ph)
    q_o2 = p.q_o2 * (0.55 + 0.45 * f_temp) * (0.8 + 0.2 * growing)

    X = s.Xv
    return SimpleNamespace(
        dXv=(mu - kd) * X,
        dXd=kd * X - 0.004 * s.Xd,
        dG=-q_glc * X - 0.004 * s.C * f_c,
        dL=q_lac * X,
        dA=q_amm * X,
        daa=-q_aa * X,
        dP=q_p * X,
        dC=mu_c * s.C,
        our=q_o2 * X + 0.03 * s.C * np.maximum(f_c, 0.0),  # mmol O2 / L / h
        acid=0.06 * s.C * np.maximum(f_c, 0.0),  # mM/h of acid from the contaminant
        mu=mu,
        kd=kd,
    )
