"""What every independent test process hands to an evaluation: runs of measured data.

The monitors are judged on processes they were not designed on; this module is the only
thing an evaluation needs to know about them, so a new process plugs in without the
evaluation reading its physics.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np


@dataclass
class ProcessRun:
    """One batch (or one window of a continuous process) as the historian recorded it.

    ``X[t, v]`` is variable ``variables[v]`` at ``times[t]`` (hours from the start of the
    batch, or from the start of the continuous trajectory). ``fault_type`` is None for a
    normal run; ``onset_hours`` is then None too. ``durations`` are the manual steps'
    durations in minutes, named by ``duration_names`` (None for a process without
    manual steps). ``details`` holds what an evaluation may report but must not use to
    detect: the drawn fault magnitude, the batch's hidden parameters, true states.
    """

    run_id: str
    times: np.ndarray
    X: np.ndarray
    variables: tuple[str, ...]
    units: tuple[str, ...]
    fault_type: str | None
    onset_hours: float | None
    durations: np.ndarray | None
    duration_names: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)


class Process(Protocol):
    """A simulated process that makes normal and faulty runs, deterministic by seed."""

    name: str
    kind: Literal["batch", "continuous"]
    variables: tuple[str, ...]
    units: tuple[str, ...]
    fault_types: tuple[str, ...]

    def simulate(self, n_runs: int, seed: int, faults: list[str | None] | None = None) -> list[ProcessRun]:
        """``faults[i]`` is the fault of run i (None = normal); magnitudes and onsets are drawn inside."""
        ...


def check_faults(faults: list[str | None] | None, n_runs: int, known: tuple[str, ...]) -> list[str | None]:
    """The fault list filled in and checked, so a typo fails loudly instead of giving normal runs."""
    if isinstance(n_runs, bool) or not isinstance(n_runs, numbers.Integral) or n_runs < 0:
        raise ValueError(f"n_runs must be a non-negative integer, got {n_runs!r}")
    if faults is None:
        return [None] * n_runs
    faults = list(faults)
    if len(faults) != n_runs:
        raise ValueError(f"faults has {len(faults)} entries for {n_runs} runs")
    unknown = sorted({repr(f) for f in faults if f is not None and (not isinstance(f, str) or f not in known)})
    if unknown:
        raise ValueError(f"unknown fault types {unknown}; known: {list(known)}")
    return [None if f is None else str(f) for f in faults]
