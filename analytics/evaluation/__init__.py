"""How well each out-of-trend method finds faults, measured on simulated batches with
known faults, with every method held to the same batch false-alarm rate
(``batchline analytics evaluate``; results in docs/analytics.md).

One module per job: ``protocol`` (the batches of a seed, the protocol and its counts),
``methods`` (the methods compared), ``results`` (tables and plots).
"""

from .methods import (
    BatchParameterMethod,
    CombinedMethod,
    DurationMethod,
    Method,
    SeriesMethod,
    TrajectoryReference,
    UnfoldedSeriesMethod,
    default_methods,
)
from .protocol import MethodResult, Split, evaluate, make_split
from .results import FAULT_LABELS, plot_results, results_table

__all__ = [
    "FAULT_LABELS",
    "BatchParameterMethod",
    "CombinedMethod",
    "DurationMethod",
    "Method",
    "MethodResult",
    "SeriesMethod",
    "Split",
    "TrajectoryReference",
    "UnfoldedSeriesMethod",
    "default_methods",
    "evaluate",
    "make_split",
    "plot_results",
    "results_table",
]
