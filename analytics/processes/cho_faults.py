"""What goes wrong in a CHO fed-batch, how big and when: the fault table of ``cho_fedbatch``.

Magnitudes are drawn from ranges a plant would act on, not from ranges that any chart
catches: a pH probe that drifts 0.01-0.03 pH per day, a DO probe reading 6-15 % air
saturation off, a 15-30 % slower-growing media lot. Onsets are drawn per batch.
Every run draws every fault's onset and magnitude from its own stream whether or not
the fault is used, so the same seed gives the same normal data and the same fault for
a batch whatever the other batches get.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np


@dataclass(frozen=True)
class FaultSpec:
    onset: tuple[float, float]  # hours after inoculation
    magnitude: tuple[float, float]
    unit: str
    signed: bool  # magnitude drawn with a random sign
    what: str


PROCESS_FAULTS: dict[str, FaultSpec] = {
    "ph_probe_drift": FaultSpec(
        (48, 240), (0.01, 0.03), "pH/day", True, "pH probe drifts linearly; the loop follows the probe"
    ),
    "do_sensor_bias": FaultSpec(
        (24, 288), (6.0, 15.0), "% air sat.", True, "DO probe reads off by a constant bias from onset"
    ),
    "temperature_offset": FaultSpec(
        (24, 240), (0.4, 1.0), "°C", True, "control temperature probe offset; the broth runs off setpoint"
    ),
    "feed_underdelivery": FaultSpec(
        (72, 240), (0.15, 0.35), "fraction", False, "nutrient feed pump delivers this fraction less"
    ),
    "contamination": FaultSpec(
        (72, 264), (0.25, 0.5), "1/h", False, "bacterial contaminant growing at this rate from 1e-3 units"
    ),
    "low_growth": FaultSpec(
        (0, 0), (0.15, 0.30), "fraction", False, "bad media lot: maximum growth rate lower by this fraction"
    ),
    "co2_stripping_failure": FaultSpec(
        (72, 240), (0.3, 0.6), "fraction", False, "sparger fouls: CO2 stripping falls by this fraction over 24 h"
    ),
    "agitation_slip": FaultSpec(
        (48, 264), (0.10, 0.25), "fraction", False, "magnetic drive slips: impeller turns this fraction slower"
    ),
}
DURATION_FAULTS = {"slow_step": 2.0, "rushed_step": 0.5}
FAULT_TYPES: tuple[str, ...] = tuple(PROCESS_FAULTS) + tuple(DURATION_FAULTS)


def draw_faults(rng: np.random.Generator, faults: list[str | None], time_scale: float = 1.0) -> SimpleNamespace:
    """Per-batch onset and magnitude arrays; zero magnitude (and onset inf) where a batch lacks the fault.

    Onset ranges are for a 14-day batch; ``time_scale`` (days / 14) stretches them to the batch's length.
    """
    n, names = len(faults), list(PROCESS_FAULTS)
    u_onset, u_mag = rng.random((n, len(names))), rng.random((n, len(names)))
    sign = np.where(rng.random((n, len(names))) < 0.5, -1.0, 1.0)
    out = SimpleNamespace(onset=np.full(n, np.inf), magnitude=np.zeros(n))
    for name in names:
        setattr(out, name, np.zeros(n))
    for i, fault in enumerate(faults):
        if fault not in PROCESS_FAULTS:
            continue
        j, spec = names.index(fault), PROCESS_FAULTS[fault]
        onset = time_scale * (spec.onset[0] + u_onset[i, j] * (spec.onset[1] - spec.onset[0]))
        mag = spec.magnitude[0] + u_mag[i, j] * (spec.magnitude[1] - spec.magnitude[0])
        mag = mag * sign[i, j] if spec.signed else mag
        out.onset[i], out.magnitude[i] = onset, mag
        getattr(out, fault)[i] = mag
    return out


def active(f: SimpleNamespace, t: float) -> SimpleNamespace:
    """The faults as the bioreactor feels them at time ``t`` (nothing before onset)."""
    on = t >= f.onset
    elapsed = np.where(on, t - np.where(on, f.onset, 0.0), 0.0)
    return SimpleNamespace(
        ph_drift=f.ph_probe_drift * elapsed / 24.0,
        do_bias=np.where(on, f.do_sensor_bias, 0.0),
        temp_offset=np.where(on, f.temperature_offset, 0.0),
        feed_loss=np.where(on, f.feed_underdelivery, 0.0),
        strip_loss=f.co2_stripping_failure * np.minimum(elapsed / 24.0, 1.0),
        slip=np.where(on, f.agitation_slip, 0.0),
    )
