"""Independent test processes: simulators the out-of-trend monitors were NOT designed on.

A monitor tuned on one simulator can look good only on that simulator. These processes
are written without reading the monitors, so their data is not shaped by the monitors'
assumptions: ``cho_fedbatch`` (a CHO fed-batch cell culture with a temperature shift,
split-range pH and DO loops and daily feeds) and ``continuous`` (a perfusion bioreactor
at steady state, one long autocorrelated trajectory cut into daily windows). Both follow
the ``Process`` protocol: ``simulate(n_runs, seed, faults)`` returns ``ProcessRun``s.
numpy only.
"""

from collections.abc import Callable

from .cho_fedbatch import ChoFedBatch
from .continuous import ContinuousPerfusion
from .runs import Process, ProcessRun

PROCESSES: dict[str, Callable[[], Process]] = {"cho_fedbatch": ChoFedBatch, "continuous": ContinuousPerfusion}

__all__ = ["PROCESSES", "ChoFedBatch", "ContinuousPerfusion", "Process", "ProcessRun"]
