"""PenSim (``analytics.simulator``) as a test process of the evaluation, next to the
independent processes of ``analytics.processes``: the same ``Process`` interface, so
the protocol runs every process the same way and nothing in it knows PenSim.

Until ``analytics.processes`` exists on this branch, ``ProcessRun`` is defined here
with the fields of the interface agreed for issue 11; once it exists, its class is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..simulator import FAULT_TYPES, STEPS, VARIABLES, draw_fault, simulate_batches

try:  # the shared interface (analytics/processes, helper branch p11-processes)
    from ..processes import ProcessRun  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - only before that package is merged

    @dataclass
    class ProcessRun:  # type: ignore[no-redef]
        """One run (a batch, or a window of a continuous process) with its ground truth."""

        run_id: str
        times: np.ndarray
        X: np.ndarray
        variables: tuple
        units: tuple
        fault_type: str | None
        onset_hours: float | None
        durations: np.ndarray | None
        duration_names: tuple = ()
        details: dict = field(default_factory=dict)


class PenSimProcess:
    """The fed-batch penicillin simulator as a ``Process`` named "pensim": hourly
    measurements of 300 h batches, four manual-step durations, six fault types.

    For step-duration faults the onset is the hour the step happens (the end of the
    batch for the harvest): that is when the step's duration becomes known.

    Two optional hooks of a process that the evaluation uses when present, both
    from what the MES knows while the batch runs (never from the ground truth in
    ``details``): ``landmark_hours(run)`` - the feed start, read from the measured
    feed rate (batch maturity is aligned on it), and ``duration_known_hours(run)`` -
    the hour each manual step ends, from the schedule."""

    def landmark_hours(self, run):
        """First sample with the feed pump on (known in real time once it happens)."""
        feeding = np.asarray(run.X)[:, self.variables.index("feed_rate")] > 0
        return float(run.times[np.argmax(feeding)]) if feeding.any() else float(run.times[-1])

    def duration_known_hours(self, run):
        return [float(self.hours if h is None else h) for _, _, _, h in STEPS]

    name = "pensim"
    kind = "batch"
    variables = tuple(v for v, _ in VARIABLES)
    units = tuple(u for _, u in VARIABLES)
    fault_types = FAULT_TYPES
    hours = 300

    def simulate(self, n_runs, seed, faults=None):
        faults = [None] * int(n_runs) if faults is None else list(faults)
        if len(faults) != n_runs:
            raise ValueError(f"{len(faults)} faults given for {n_runs} runs")
        rng = np.random.default_rng([int(seed), 7])
        drawn = [None if f is None else draw_fault(rng, f, self.hours) for f in faults]
        batches = simulate_batches(n_runs, int(seed), hours=self.hours, faults=drawn)
        return [
            ProcessRun(
                run_id=b.batch_id,
                times=b.times,
                X=b.series,
                variables=self.variables,
                units=self.units,
                fault_type=None if b.fault is None else b.fault.type,
                onset_hours=None if b.fault is None else float(b.fault.onset),
                durations=b.step_durations,
                duration_names=tuple(s[0] for s in STEPS),
                details={"fault": None if b.fault is None else b.fault.to_dict()},
            )
            for b in batches
        ]


def available_processes():
    """name -> factory of every process the evaluation can run: PenSim, plus the
    independent processes of ``analytics.processes`` when that package is present."""
    found = {"pensim": PenSimProcess}
    try:
        from ..processes import PROCESSES  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - before the processes package is merged
        PROCESSES = {}
    found.update(PROCESSES)
    return found
