"""Fed-batch penicillin fermentation simulator: normal and faulty batches with known
ground truth, to train the out-of-trend monitors, measure how well they find faults,
and seed the demo with a believable batch history.

The process model is the Bajpai & Reuss (1980) penicillin kinetics as used in PenSim
(Birol, Ündey & Çinar 2002, Comput. Chem. Eng. 26:1553): biomass X, substrate S,
penicillin P, dissolved oxygen C_L, volume V and CO2, with

    mu    = mu_x S / (K_x X + S) * C_L / (K_ox X + C_L)              (Contois + O2)
    mu_pp = mu_p S / (K_p + S + S^2/K_I) * C_L^p / (K_op X + C_L^p)  (substrate inhibition)
    dX/dt = mu X - X F/V
    dP/dt = mu_pp X - K P - P F/V                                    (hydrolysis K)
    dS/dt = -mu X/Y_xs - mu_pp X/Y_ps - m_x X + F s_f/V - S F/V
    dC_L/dt = -mu X/Y_xo - mu_pp X/Y_po - m_o X + kLa (C_L* - C_L) - C_L F/V
    dV/dt = F
    dCO2/dt = a1 dX/dt + a2 X + a3

Simplifications (so 100+ batches simulate in about a second, all batches at once
with a fixed-step RK4, dt = 0.25 h; halving it changes the final titre by
< 0.02 %): temperature and pH are taken as perfectly controlled (their
Arrhenius/pH factors = 1); kLa is a fixed per-batch constant instead of PenSim's
aeration/power correlation; dissolved O2 is at quasi-steady state (its time constant
1/kLa is ~2 min, far below the 1 h sampling), solved by fixed-point iteration
inside the right-hand side; no evaporation.  The feed starts when S falls below
0.3 g/L (end of the batch phase, as in PenSim).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

#: measured time series: (name, unit)
VARIABLES = (
    ("feed_rate", "L/h"),
    ("volume", "L"),
    ("dissolved_o2", "% sat"),
    ("biomass", "g/L"),
    ("substrate", "g/L"),
    ("penicillin", "g/L"),
    ("co2", "mmol/L"),
    ("oxygen_uptake_rate", "mmol/(L h)"),
)
VARIABLE_NAMES = tuple(v for v, _ in VARIABLES)

#: end-of-batch / per-phase parameters: (name, unit)
PARAMETERS = (
    ("final_titre", "g/L"),
    ("peak_biomass", "g/L"),
    ("mean_do_fed_batch", "% sat"),
    ("min_do", "% sat"),
    ("total_feed", "L"),
    ("final_volume", "L"),
    ("batch_phase_length", "h"),
    ("mean_our_fed_batch", "mmol/(L h)"),
)
PARAMETER_NAMES = tuple(p for p, _ in PARAMETERS)

#: manual steps: (name, median minutes, sigma of log duration, hour it happens)
STEPS = (
    ("charge media", 45.0, 0.12, 0.0),
    ("inoculate", 20.0, 0.15, 0.0),
    ("sample", 10.0, 0.15, 120.0),
    ("harvest", 90.0, 0.10, None),  # at the end of the batch
)
STEP_NAMES = tuple(s[0] for s in STEPS)

FAULT_TYPES = (
    "sensor_bias",
    "sensor_drift",
    "feed_fault",
    "kinetic_change",
    "slow_step",
    "rushed_step",
)
#: sensors a bias or drift fault can hit
FAULTY_SENSORS = ("dissolved_o2", "biomass", "substrate", "penicillin", "co2", "oxygen_uptake_rate")

#: PenSim nominal kinetic parameters (Birol et al. 2002, table 1)
NOMINAL = dict(
    mu_x=0.092,
    K_x=0.15,
    K_ox=2e-2,
    mu_p=0.005,
    K_p=2e-4,
    K_I=0.10,
    p=3.0,
    K_op=5e-4,
    K_h=0.04,
    Y_xs=0.45,
    Y_xo=0.04,
    Y_ps=0.90,
    Y_po=0.20,
    m_x=0.014,
    m_o=0.467,
    s_f=600.0,
    a1=0.143,
    a2=4e-7,
    a3=1e-4,
    C_star=1.16,
)
#: kinetic parameters that vary from batch to batch (log-normal, sigma 2 %)
VARYING = ("mu_x", "mu_p", "K_x", "Y_xs", "m_x", "K_h")

#: relative / absolute sensor noise (1 standard deviation)
NOISE = {
    "feed_rate": (0.01, 0.0),
    "volume": (0.003, 0.0),
    "dissolved_o2": (0.0, 0.5),
    "biomass": (0.03, 0.01),
    "substrate": (0.05, 0.002),
    "penicillin": (0.02, 0.002),
    "co2": (0.01, 0.0),
    "oxygen_uptake_rate": (0.02, 0.0),
}


@dataclass
class Fault:
    """What went wrong, where and when (the ground truth for evaluation).

    ``target`` is the sensor (bias/drift) or the manual step (slow/rushed);
    ``magnitude`` is the bias as a fraction of the sensor's mean reading, the drift
    per hour as such a fraction, the relative feed loss, the relative mu_x drop, or
    the duration factor of the step; ``onset`` and ``duration`` are in hours
    (duration None = to the end of the batch).
    """

    type: str
    onset: float
    magnitude: float
    target: str | None = None
    duration: float | None = None

    def to_dict(self):
        return asdict(self)


@dataclass
class SimulatedBatch:
    """One simulated batch: what the MES and the historian would have recorded."""

    batch_id: str
    times: np.ndarray  # (n_times,) hours
    series: np.ndarray  # (n_times, len(VARIABLES)) measured values
    parameters: np.ndarray  # (len(PARAMETERS),) end-of-batch parameter values
    step_durations: np.ndarray  # (len(STEPS),) minutes
    fault: Fault | None = None
    truth: dict = field(default_factory=dict, repr=False)  # noise-free final states

    @property
    def is_normal(self):
        return self.fault is None


def feed_start(batch):
    """Hour the feed of a simulated batch starts (its last hour if it never feeds): the
    landmark batches are aligned on, known in real time once the feed starts."""
    feeding = batch.series[:, 0] > 0
    return float(batch.times[np.argmax(feeding)]) if feeding.any() else float(batch.times[-1])


def draw_fault(rng, fault_type, hours=300):
    """A fault of the given type with onset, magnitude and target drawn from
    plausible ranges."""
    if fault_type not in FAULT_TYPES:
        raise ValueError(f"unknown fault type {fault_type!r}; known: {FAULT_TYPES}")
    if fault_type in ("slow_step", "rushed_step"):
        step = STEPS[rng.integers(len(STEPS))]
        onset = hours if step[3] is None else step[3]
        return Fault(fault_type, float(onset), 2.0 if fault_type == "slow_step" else 0.5, step[0])
    onset = float(np.round(rng.uniform(60.0, 200.0)))
    if fault_type == "sensor_bias":
        sensor = FAULTY_SENSORS[rng.integers(len(FAULTY_SENSORS))]
        return Fault(fault_type, onset, float(rng.choice([-1, 1]) * rng.uniform(0.05, 0.10)), sensor)
    if fault_type == "sensor_drift":
        sensor = FAULTY_SENSORS[rng.integers(len(FAULTY_SENSORS))]
        return Fault(fault_type, onset, float(rng.choice([-1, 1]) * rng.uniform(0.0005, 0.0015)), sensor)
    if fault_type == "feed_fault":
        return Fault(
            fault_type, onset, float(rng.uniform(0.10, 0.25)), "feed pump", float(np.round(rng.uniform(60.0, 120.0)))
        )
    return Fault(fault_type, onset, float(rng.uniform(0.15, 0.30)), "mu_x")  # kinetic_change


def _rates(state, feed, k):
    """Right-hand side for all batches at once; also returns C_L and the O2 uptake."""
    X, S, P, V, _ = state.T
    X = np.maximum(X, 1e-9)
    S = np.maximum(S, 0.0)
    dilution = feed / V
    substrate_growth = S / (k["K_x"] * X + S)
    substrate_production = S / (k["K_p"] + S + S**2 / k["K_I"])
    CL = k["C_star"] * np.ones_like(X)
    for _ in range(4):  # quasi-steady dissolved O2; contraction factor << 1
        mu = k["mu_x_now"] * substrate_growth * CL / (k["K_ox"] * X + CL)
        mu_pp = k["mu_p"] * substrate_production * CL ** k["p"] / (k["K_op"] * X + CL ** k["p"])
        uptake = mu * X / k["Y_xo"] + mu_pp * X / k["Y_po"] + k["m_o"] * X
        CL = np.maximum((k["kla"] * k["C_star"] - uptake) / (k["kla"] + dilution), 1e-4)
    dX = mu * X - X * dilution
    dS = -mu * X / k["Y_xs"] - mu_pp * X / k["Y_ps"] - k["m_x"] * X + feed * k["s_f"] / V - S * dilution
    dP = mu_pp * X - k["K_h"] * P - P * dilution
    dV = feed
    dCO2 = k["a1"] * dX + k["a2"] * X + k["a3"]
    return np.stack([dX, dS, dP, dV, dCO2], axis=1), CL, uptake


def simulate_batches(
    n_batches, seed, fault_type=None, hours=300, sample_every=1.0, dt=0.25, first_batch_number=1, faults=None
):
    """Simulate ``n_batches`` batches, all normal or all with one fault type.

    ``fault_type`` is one of FAULT_TYPES (onset, magnitude and target are drawn
    per batch from plausible ranges) or None for normal batches; ``faults`` (one
    Fault or None per batch) overrides it.  Same arguments, same batches.
    """
    rng = np.random.default_rng(seed)
    n = int(n_batches)
    if faults is None:
        faults = [None if fault_type is None else draw_fault(rng, fault_type, hours) for _ in range(n)]
    if len(faults) != n:
        raise ValueError(f"{len(faults)} faults given for {n} batches")
    k = {name: np.full(n, value) for name, value in NOMINAL.items()}
    for name in VARYING:
        k[name] = k[name] * rng.lognormal(0.0, 0.02, n)
    k["kla"] = 35.0 * rng.lognormal(0.0, 0.05, n)
    feed_rate = 0.045 * rng.lognormal(0.0, 0.03, n)
    state = np.stack(
        [
            0.1 * rng.lognormal(0.0, 0.10, n),  # X g/L
            15.0 * rng.lognormal(0.0, 0.03, n),  # S g/L
            np.zeros(n),  # P g/L
            100.0 * rng.lognormal(0.0, 0.01, n),  # V L
            0.5 * np.ones(n),  # CO2 mmol/L
        ],
        axis=1,
    )

    feed_loss = np.zeros(n)
    feed_window = np.full((n, 2), np.inf)
    mu_drop = np.zeros(n)
    mu_onset = np.full(n, np.inf)
    for i, fault in enumerate(faults):
        if fault is None:
            continue
        if fault.type == "feed_fault":
            feed_loss[i] = fault.magnitude
            end = np.inf if fault.duration is None else fault.onset + fault.duration
            feed_window[i] = (fault.onset, end)
        elif fault.type == "kinetic_change":
            mu_drop[i], mu_onset[i] = fault.magnitude, fault.onset

    n_times = int(round(hours / sample_every)) + 1
    substeps = int(round(sample_every / dt))
    times = np.arange(n_times) * sample_every
    true = np.zeros((n_times, n, len(VARIABLES)))
    fed = np.zeros(n, dtype=bool)
    t = 0.0
    for i_time in range(n_times):
        for sub in range(substeps if i_time < n_times - 1 else 1):
            fed |= state[:, 1] < 0.3
            command = np.where(fed, feed_rate, 0.0)
            in_window = (t >= feed_window[:, 0]) & (t < feed_window[:, 1])
            actual = command * (1.0 - feed_loss * in_window)
            k["mu_x_now"] = k["mu_x"] * (1.0 - mu_drop * (t >= mu_onset))
            k1, CL, uptake = _rates(state, actual, k)
            if sub == 0:
                true[i_time] = np.stack(
                    [
                        command,
                        state[:, 3],
                        100.0 * CL / k["C_star"],
                        state[:, 0],
                        np.maximum(state[:, 1], 0.0),
                        state[:, 2],
                        state[:, 4],
                        uptake,
                    ],
                    axis=1,
                )
            if i_time == n_times - 1:
                break
            k2 = _rates(state + 0.5 * dt * k1, actual, k)[0]
            k3 = _rates(state + 0.5 * dt * k2, actual, k)[0]
            k4 = _rates(state + dt * k3, actual, k)[0]
            state = state + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
            state[:, 1] = np.maximum(state[:, 1], 0.0)
            t += dt

    measured = true.copy()
    for j, name in enumerate(VARIABLE_NAMES):
        relative, absolute = NOISE[name]
        sd = relative * np.abs(true[:, :, j]) + absolute
        measured[:, :, j] = true[:, :, j] + sd * rng.standard_normal((n_times, n))
    measured[:, :, 0] = np.maximum(measured[:, :, 0], 0.0) * (true[:, :, 0] > 0)  # pump off reads 0

    durations = np.stack([m * rng.lognormal(0.0, s, n) for _, m, s, _ in STEPS], axis=1)

    batches = []
    for i, fault in enumerate(faults):
        series = measured[:, i, :]
        if fault is not None and fault.type in ("sensor_bias", "sensor_drift"):
            j = VARIABLE_NAMES.index(fault.target)
            level = np.mean(np.abs(true[:, i, j]))
            after = times >= fault.onset
            if fault.type == "sensor_bias":
                series[after, j] += fault.magnitude * level
            else:
                series[after, j] += fault.magnitude * level * (times[after] - fault.onset)
            if fault.target != "feed_rate":
                series[:, j] = np.maximum(series[:, j], 0.0)
        if fault is not None and fault.type in ("slow_step", "rushed_step"):
            durations[i, STEP_NAMES.index(fault.target)] *= fault.magnitude
        batches.append(
            SimulatedBatch(
                batch_id=f"SIM-{seed}-{first_batch_number + i:05d}",
                times=times,
                series=series,
                parameters=batch_parameters(times, series),
                step_durations=durations[i],
                fault=fault,
                truth={"final_penicillin": float(true[-1, i, 5]), "final_biomass": float(true[-1, i, 3])},
            )
        )
    return batches


def batch_parameters(times, series):
    """End-of-batch and per-phase parameters from the measured time series."""
    column = {name: series[:, j] for j, name in enumerate(VARIABLE_NAMES)}
    feeding = column["feed_rate"] > 0
    feed_start = float(times[np.argmax(feeding)]) if feeding.any() else float(times[-1])
    fed_batch = times >= feed_start
    return np.array(
        [
            column["penicillin"][-1],
            column["biomass"].max(),
            column["dissolved_o2"][fed_batch].mean(),
            column["dissolved_o2"].min(),
            float(np.sum((column["feed_rate"][1:] + column["feed_rate"][:-1]) / 2 * np.diff(times))),
            column["volume"][-1],
            feed_start,
            column["oxygen_uptake_rate"][fed_batch].mean(),
        ]
    )


def history_for_demo(n_batches, seed=0):
    """Normal batch history for the demo: per batch, parameter values by name with
    units and manual-step durations (minutes) by step name."""
    units = dict(PARAMETERS)
    history = []
    for batch in simulate_batches(n_batches, seed):
        history.append(
            {
                "batch_id": batch.batch_id,
                "parameters": {
                    name: {"value": round(float(v), 4), "unit": units[name]}
                    for name, v in zip(PARAMETER_NAMES, batch.parameters)
                },
                "step_durations": {name: round(float(d), 2) for name, d in zip(STEP_NAMES, batch.step_durations)},
                "duration_unit": "min",
            }
        )
    return history
