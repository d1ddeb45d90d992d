"""How well each out-of-trend method finds faults while a run progresses, measured on
simulated processes with known faults (PenSim and the independent processes of
``analytics.processes``), with every method held to the same run false-alarm rate
(``batchline analytics evaluate``; results in docs/analytics.md).

One module per job: ``pensim`` (PenSim as a process), ``features`` (what a monitor
knows at each sample time), ``methods`` (baselines, the project's monitors,
combinations), ``online`` (the online detectors designed here), ``choices`` (which
methods, which settings), ``protocol`` (the runs, the protocol and its counts),
``results`` (tables and plots).
"""

from .choices import default_methods
from .methods import CombinedMethod, DurationMethod, Method, MonitorMethod, PlainPCA
from .online import DynamicResiduals, OnlineMPCA
from .pensim import PenSimProcess, ProcessRun, available_processes
from .protocol import MethodResult, Split, evaluate, make_split, score_split
from .results import plot_results, results_tables

__all__ = [
    "CombinedMethod",
    "DurationMethod",
    "DynamicResiduals",
    "Method",
    "MethodResult",
    "MonitorMethod",
    "OnlineMPCA",
    "PenSimProcess",
    "PlainPCA",
    "ProcessRun",
    "Split",
    "available_processes",
    "default_methods",
    "evaluate",
    "make_split",
    "plot_results",
    "results_tables",
    "score_split",
]
