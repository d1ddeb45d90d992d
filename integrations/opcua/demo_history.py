"""Demo history in the shape of the OPC UA monitoring: the equipment samples of earlier
mAb batches, from the equipment simulator's own process model (``equipment_sim.culture``)
stepped offline, so the equipment models are trained on what monitoring will send and a
nominal live run on the simulator is not flagged.

Each earlier batch varies as real batches do (seeded per batch, reproducible): inoculum
density and volume, growth rate, feed rate, and setpoint offsets within the controllers'
tolerance. Samples are hourly from 1 h to 6 h before the phase's end (the first hour is
the phase's start-up: the live run's first sample may still show the vessel before the
inoculum; at the end the equipment goes idle and its cascade winds down, while the
operators still finish the unit procedure), ``t_hours`` since the production phase
started, with the variable names of ``DEMO_TAGS``.
"""

from __future__ import annotations

import random
from typing import Any

from integrations.equipment_sim.culture import FEED_RATE, VCD_START, VOLUME_START, Culture, Setpoints

from .demo import DEMO_TAGS

#: the production phase of the demo recipe (mab_upstream's defaults)
DURATION_H = 312
END_MARGIN_H = 6  # hours before the phase's end the history stops
STEP_H = 0.05  # the simulator integrates in steps of at most 3 simulated minutes
#: OPC UA node -> sample variable, as monitoring names them
VARIABLES = {node: tag["variable"] for node, tag in DEMO_TAGS.items()}


def one_batch(seed: int, duration_h: int = DURATION_H) -> list[dict[str, Any]]:
    """Hourly samples of one simulated production phase (deterministic for ``seed``)."""
    rng = random.Random(seed)
    sp = Setpoints(
        temperature=36.8 + rng.gauss(0, 0.08),
        ph=7.0 + rng.gauss(0, 0.015),
        do=40.0 + rng.gauss(0, 0.8),
    )
    culture = Culture(rng=rng, setpoints=sp, feed_rate=FEED_RATE * rng.uniform(0.92, 1.08))
    culture.restart_culture(VCD_START * rng.uniform(0.9, 1.1), VOLUME_START + rng.gauss(0, 1.0))
    growth = rng.uniform(0.95, 1.05)
    samples = []
    steps_per_hour = round(1 / STEP_H)
    for hour in range(1, duration_h - END_MARGIN_H + 1):
        for _ in range(steps_per_hour):
            culture.step(STEP_H, growth)
        values = culture.readings()
        samples.append({"t_hours": float(hour), "values": {VARIABLES[k]: v for k, v in values.items()}})
    return samples


def history_samples(n_batches: int, seed: int) -> list[list[dict[str, Any]]]:
    """Samples of ``n_batches`` earlier production phases (the history writer's source)."""
    return [one_batch(seed * 1000 + i) for i in range(n_batches)]
