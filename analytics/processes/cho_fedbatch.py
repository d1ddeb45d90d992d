"""``cho_fedbatch``: a 14-day CHO fed-batch as its historian records it, batch after batch.

Batches differ the way real ones do: inoculum density and viability, the media lot
(glucose, amino acids, osmolality, growth), the seed train's age (lag and growth), the
cells' kinetic parameters, the hour the operator shifts the temperature and takes the
daily sample, probe calibrations. Online sensors carry white plus autocorrelated
error and are averaged over each historian interval; offline results (cell count,
metabolites, titre, blood-gas) are taken once a day and held until the next one, as a
historian shows them. Manual steps (inoculation, daily sampling, feed preparation,
harvest) have log-normal durations with a batch-wide crew factor.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Literal

import numpy as np

from .cho_bioreactor import Bioreactor
from .cho_culture import osmolality, ph
from .cho_faults import DURATION_FAULTS, FAULT_TYPES, PROCESS_FAULTS, active, draw_faults
from .noise import lognormal, sensor_error, zero_order_hold
from .runs import ProcessRun, check_faults

ONLINE = (
    ("temperature", "°C"),
    ("jacket_temperature", "°C"),
    ("ph", "pH"),
    ("dissolved_oxygen", "% air sat."),
    ("agitation", "rpm"),
    ("o2_flow", "slpm"),
    ("co2_flow", "slpm"),
    ("base_added", "L"),
    ("volume", "L"),
)
OFFLINE = (
    ("viable_cell_density", "1e6 cells/mL"),
    ("viability", "%"),
    ("glucose", "g/L"),
    ("lactate", "g/L"),
    ("ammonium", "mM"),
    ("titre", "g/L"),
    ("osmolality", "mOsm/kg"),
    ("pco2_offline", "mmHg"),
    ("ph_offline", "pH"),
)
# white sd, AR(1) sd, AR(1) phi per historian sample
ONLINE_NOISE = (
    (0.02, 0.02, 0.9),
    (0.05, 0.05, 0.9),
    (0.004, 0.004, 0.95),
    (0.5, 0.8, 0.9),
    (0.3, 0.0, 0.0),
    (0.02, 0.0, 0.0),
    (0.01, 0.0, 0.0),
    (0.005, 0.0, 0.0),
    (0.15, 0.1, 0.98),
)
FEED_FRACTION = 0.035  # of the initial volume per day, days 3..13
GLUCOSE_TRIGGER, GLUCOSE_TARGET = 4.0, 6.5  # g/L, on the day's offline result
SHIFT_FROM, SHIFT_TO = 36.8, 33.0
STEP_MEDIANS = {
    "inoculation": (45.0, 0.25),
    "sampling": (12.0, 0.3),
    "feed_prep": (30.0, 0.25),
    "harvest": (120.0, 0.2),
}


def draw_batches(rng: np.random.Generator, n: int) -> SimpleNamespace:
    """The hidden, batch-to-batch varying parameters of ``n`` batches."""
    media = 1.0 + 0.02 * rng.standard_normal(n)  # media lot quality
    seed_age = rng.uniform(10.0, 60.0, n)  # days since thaw
    p = SimpleNamespace(media_lot=media, seed_age=seed_age)
    p.mu_max = lognormal(rng, n, 0.046, 0.04) * media * (1.0 - 0.002 * (seed_age - 35.0))
    p.tau_lag = lognormal(rng, n, 8.0, 0.25) * (1.0 + 0.008 * (seed_age - 35.0))
    p.Xv0 = lognormal(rng, n, 0.45, 0.10)
    p.viability0 = rng.uniform(0.95, 0.99, n)
    p.G0 = lognormal(rng, n, 6.5, 0.02) * media
    p.L0 = lognormal(rng, n, 0.15, 0.2)
    p.A0 = lognormal(rng, n, 0.5, 0.2)
    p.aa0 = lognormal(rng, n, 25.0, 0.03) * media
    p.V0 = lognormal(rng, n, 140.0, 0.01)
    p.HCO3_0 = lognormal(rng, n, 18.0, 0.03)
    p.pCO2_0 = lognormal(rng, n, 40.0, 0.05)
    osm0 = lognormal(rng, n, 300.0, 0.015)
    p.S0 = osm0 - (5.55 * p.G0 + 11.1 * p.L0 + p.HCO3_0 + p.A0 + p.aa0)
    p.kd0 = lognormal(rng, n, 0.0012, 0.10)
    p.kd_age = lognormal(rng, n, 0.0003, 0.20)
    p.t_age = 200.0 + 12.0 * rng.standard_normal(n)
    p.Yxg = lognormal(rng, n, 3.7, 0.05)
    p.m_glc = lognormal(rng, n, 0.0065, 0.06)
    p.Y_lac = lognormal(rng, n, 0.75, 0.08)
    p.q_lac_uptake = lognormal(rng, n, 0.004, 0.15)
    p.Yxa = lognormal(rng, n, 1.5, 0.05)
    p.m_aa = lognormal(rng, n, 0.007, 0.08)
    p.Y_amm = lognormal(rng, n, 0.10, 0.10)
    p.m_amm = lognormal(rng, n, 0.0008, 0.10)
    p.q_p = lognormal(rng, n, 18e-3 / 24.0, 0.08)
    p.q_o2 = lognormal(rng, n, 0.22, 0.06)
    p.kla0 = lognormal(rng, n, 1.5, 0.05)
    p.kla1 = lognormal(rng, n, 5.0, 0.05)
    p.kla_o2 = lognormal(rng, n, 1.0, 0.08)
    p.k_strip = lognormal(rng, n, 2.0, 0.08)
    p.co2_gain = lognormal(rng, n, 250.0, 0.05)
    p.T_cal = 0.05 * rng.standard_normal(n)
    p.pH_cal = 0.01 * rng.standard_normal(n)
    p.DO_cal = 1.0 * rng.standard_normal(n)
    p.t_shift = 120.0 + rng.uniform(-3.0, 3.0, n)
    p.feed_volume = FEED_FRACTION * 140.0 * (1.0 + 0.02 * rng.standard_normal((n, 22)))  # up to 21 days
    p.mu_contaminant = np.zeros(n)
    return p


class ChoFedBatch:
    """The CHO fed-batch process (``Process`` protocol): 14 days, one historian sample per ``sample_hours``."""

    name = "cho_fedbatch"
    kind: Literal["batch", "continuous"] = "batch"
    fault_types = FAULT_TYPES
    duration_fault_types = tuple(DURATION_FAULTS)
    variables = tuple(v for v, _ in ONLINE + OFFLINE)
    units = tuple(u for _, u in ONLINE + OFFLINE)

    def __init__(self, days: float = 14.0, sample_hours: float = 1.0, dt: float = 0.05):
        if not 1.0 <= days <= 21.0 or not 0.05 <= sample_hours <= 24.0 or not 0.005 <= dt <= sample_hours:
            raise ValueError("days in [1, 21], sample_hours in [0.05, 24], dt in [0.005, sample_hours]")
        self.days, self.sample_hours = float(days), float(sample_hours)
        self.substeps = max(1, int(round(sample_hours / dt)))
        self.dt = sample_hours / self.substeps
        self.times = np.arange(int(round(days * 24.0 / sample_hours)) + 1) * sample_hours

    def fault_info(self) -> dict[str, dict]:
        """The fault table for reports: what each fault does, its magnitude range and onset range (hours)."""
        info = {
            name: {
                "what": f.what,
                "magnitude": f.magnitude,
                "unit": f.unit,
                "signed": f.signed,
                "onset_hours": (f.onset[0] * self.days / 14.0, f.onset[1] * self.days / 14.0),
            }
            for name, f in PROCESS_FAULTS.items()
        }
        for name, factor in DURATION_FAULTS.items():
            info[name] = {"what": f"one manual step event takes x{factor}", "magnitude": (factor, factor), "unit": "x"}
            info[name] |= {"signed": False, "onset_hours": (0.0, float(self.times[-1]))}
        return info

    def simulate(self, n_runs: int, seed: int, faults: list[str | None] | None = None) -> list[ProcessRun]:
        faults = check_faults(faults, n_runs, self.fault_types)
        if n_runs == 0:
            return []
        batch_rng, fault_rng, noise_rng, step_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )
        p = draw_batches(batch_rng, n_runs)
        f = draw_faults(fault_rng, faults, self.days / 14.0)
        p.mu_max = p.mu_max * (1.0 - f.low_growth)
        p.mu_contaminant = f.contamination
        online, offline, sample_times, true = self._run(p, f, noise_rng)
        X = np.concatenate([online, zero_order_hold(sample_times, offline, self.times)], axis=2)
        durations, names, step_faults = self._durations(step_rng, faults, sample_times)
        runs = []
        for i, fault in enumerate(faults):
            onset = None if fault is None else float(f.onset[i]) if fault in PROCESS_FAULTS else step_faults[i][1]
            details = {
                "magnitude": float(f.magnitude[i]) if fault in PROCESS_FAULTS else DURATION_FAULTS.get(fault or ""),
                "unit": PROCESS_FAULTS[fault].unit if fault in PROCESS_FAULTS else None,
                "step": step_faults[i][0],
                "sample_times": sample_times[i],
                "media_lot": float(p.media_lot[i]),
                "seed_age_days": float(p.seed_age[i]),
                "mu_max": float(p.mu_max[i]),
                "true_final": {k: float(v[i]) for k, v in true.items()},
            }
            runs.append(
                ProcessRun(
                    run_id=f"cho-{seed}-{i:04d}",
                    times=self.times.copy(),
                    X=X[i],
                    variables=self.variables,
                    units=self.units,
                    fault_type=fault,
                    onset_hours=onset,
                    durations=durations[i],
                    duration_names=names,
                    details=details,
                )
            )
        return runs

    def _run(self, p: SimpleNamespace, f: SimpleNamespace, rng: np.random.Generator):
        """Integrate every batch together; returns online (n, T, 9), offline (n, K, 9), sample times, final states."""
        n, T, dt = p.V0.size, self.times.size, self.dt
        days = int(self.days)
        K = days + 1
        sample_times = np.concatenate(
            [np.zeros((n, 1)), 24.0 * np.arange(1, K) + rng.uniform(-1.5, 1.5, (n, K - 1))], axis=1
        )
        sample_times[:, -1] = np.minimum(sample_times[:, -1], self.times[-1] - 0.5)
        z_online = [sensor_error(rng, n, T, w, c, phi) for w, c, phi in ONLINE_NOISE]
        z_off = rng.standard_normal((n, K, len(OFFLINE)))
        z_volume = rng.standard_normal((n, K))
        feed_start = sample_times + 1.0
        feed_rate = np.where((np.arange(K) >= 3) & (np.arange(K) < days), p.feed_volume[:, :K], 0.0)  # L over 1 h
        glc_start, glc_rate = np.full((n, K), np.inf), np.zeros((n, K))
        br = Bioreactor(p, n)
        s = br.s
        offline = np.zeros((n, K, len(OFFLINE)))
        online = np.zeros((n, T, len(ONLINE)))
        online[:, 0] = self._online(br, br.out)
        for i in range(n):  # the inoculation sample, taken as the culture starts
            offline[i, 0] = self._sample(s, i, z_off[i, 0])
        contaminated = np.zeros(n, dtype=bool)
        added = {"feed": np.zeros(n), "glucose": np.zeros(n), "samples": np.zeros(n)}
        acc = np.zeros((n, 7))
        for k in range(1, T):
            acc[:] = 0.0
            probe_error = (z_online[0][:, k], z_online[2][:, k], z_online[3][:, k])
            for j in range(self.substeps):
                t = self.times[k - 1] + j * dt
                start = (~contaminated) & (t >= f.onset) & (p.mu_contaminant > 0)
                if start.any():
                    s.C[start], contaminated[start] = 1e-3, True
                fa = active(f, t)
                T_sp = np.where(t >= p.t_shift, SHIFT_TO, SHIFT_FROM)
                feeding = ((t >= feed_start) & (t < feed_start + 1.0)) * feed_rate
                glc = ((t >= glc_start) & (t < glc_start + 0.25)) * glc_rate
                feeding, glc = feeding.sum(axis=1) * (1.0 - fa.feed_loss), glc.sum(axis=1)
                br.step(t, dt, T_sp, feeding, glc, fa, probe_error)
                added["feed"] += feeding * dt
                added["glucose"] += glc * dt
                hit = (sample_times > t) & (sample_times <= t + dt)
                if hit.any():
                    for i, kk in zip(*np.nonzero(hit)):
                        offline[i, kk] = self._sample(s, i, z_off[i, kk])
                        glucose, volume = offline[i, kk, 2], s.V[i] * (1.0 + 0.003 * z_volume[i, kk])
                        if kk >= 1 and glucose < GLUCOSE_TRIGGER:
                            glc_start[i, kk] = sample_times[i, kk] + 0.75
                            glc_rate[i, kk] = 4.0 * (GLUCOSE_TARGET - glucose) * volume / (400.0 - GLUCOSE_TARGET)
                        s.V[i] -= 0.03  # sample volume
                        added["samples"][i] += 0.03
                o = br.out
                acc += np.stack([o.temp_probe, o.jacket, o.ph_probe, o.do_probe, o.agitation, o.o2, o.co2], axis=1)
            online[:, k, :7] = acc / self.substeps
            online[:, k, 7] = s.base
            online[:, k, 8] = s.V
        for v, z in enumerate(z_online):
            if v not in (0, 2, 3):  # the loops' probes carry their errors already
                online[:, :, v] += z
        online[:, 0, [0, 2, 3]] += np.stack([z_online[0][:, 0], z_online[2][:, 0], z_online[3][:, 0]], axis=1)
        online[:, :, 4:8] = np.maximum(online[:, :, 4:8], 0.0)
        true = {"viable_cell_density": s.Xv.copy(), "titre": s.P.copy(), "volume": s.V.copy(), "lactate": s.L.copy()}
        true |= {"base_L": s.base.copy(), "feed_L": added["feed"], "glucose_L": added["glucose"]}
        true |= {"samples_L": added["samples"], "initial_volume_L": p.V0.copy()}
        return online, offline, sample_times, true

    @staticmethod
    def _online(br: Bioreactor, o: SimpleNamespace) -> np.ndarray:
        s = br.s
        return np.stack([o.temp_probe, o.jacket, o.ph_probe, o.do_probe, o.agitation, o.o2, o.co2, s.base, s.V], axis=1)

    @staticmethod
    def _sample(s: SimpleNamespace, i: int, z: np.ndarray) -> np.ndarray:
        """What the lab reports for batch ``i``: cell counter, metabolite analyser, titre assay, blood-gas."""
        viab = 100.0 * s.Xv[i] / (s.Xv[i] + s.Xd[i])
        osm = float(osmolality(SimpleNamespace(**{k: getattr(s, k)[i] for k in ("S", "G", "L", "HCO3", "A", "aa")})))
        pH = float(ph(SimpleNamespace(HCO3=s.HCO3[i], pCO2=s.pCO2[i])))
        values = (
            s.Xv[i] * (1.0 + 0.05 * z[0]),
            min(viab + 1.0 * z[1], 100.0),
            s.G[i] + (0.03 + 0.025 * s.G[i]) * z[2],
            s.L[i] + (0.02 + 0.04 * s.L[i]) * z[3],
            s.A[i] * (1.0 + 0.06 * z[4]),
            s.P[i] + (0.01 + 0.05 * s.P[i]) * z[5],
            osm + 3.0 * z[6],
            s.pCO2[i] * (1.0 + 0.04 * z[7]),
            pH + 0.015 * z[8],
        )
        return np.maximum(np.array(values), [0, 0, 0, 0, 0, 0, 0, 0, 0])

    def _durations(self, rng: np.random.Generator, faults: list[str | None], sample_times: np.ndarray):
        """Manual step durations (minutes) per batch; a duration fault stretches or squeezes one event."""
        n, K = sample_times.shape
        days = int(self.days)
        names = ["inoculation"] + [f"sampling_day{d:02d}" for d in range(1, K)]
        names += [f"feed_prep_day{d:02d}" for d in range(3, days)] + ["harvest"]
        kinds = [n_.split("_day")[0] for n_ in names]
        times = np.concatenate(
            [np.zeros((n, 1)), sample_times[:, 1:], sample_times[:, 3:days] + 0.25, np.full((n, 1), self.times[-1])],
            axis=1,
        )
        median = np.array([STEP_MEDIANS[k][0] for k in kinds])
        sigma = np.array([STEP_MEDIANS[k][1] for k in kinds])
        crew = np.exp(0.1 * rng.standard_normal((n, 1)))
        d = median * crew * np.exp(sigma * rng.standard_normal((n, len(names))))
        which: list[int] = np.asarray(rng.integers(0, len(names), size=n)).tolist()
        step_faults: list[tuple[str | None, float | None]] = []
        for i, fault in enumerate(faults):
            if fault in DURATION_FAULTS:
                d[i, which[i]] *= DURATION_FAULTS[fault]
                step_faults.append((names[which[i]], float(times[i, which[i]])))
            else:
                step_faults.append((None, None))
        return d, tuple(names), step_faults
