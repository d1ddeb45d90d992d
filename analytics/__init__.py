"""Out-of-trend analytics for Batchline: monitors that flag a batch, a step value or
a step duration that does not look like the history of the same recipe step.

The monitors stand alone (numpy, scipy, scikit-learn only; ``base``, ``univariate``,
``pca``, ``duration``, ``forest``, ``store``, ``timeseries``, ``simulator``,
``evaluation``): fit a monitor on history, store it as JSON in a ModelCard, score new
batches, explain what drove a flag. They are what this module exports.

Wired to the batch record (these import ``engine``, never the reverse):
``batch_record`` (what the models read), ``training``, ``catalogue`` (the trained models),
``scoring`` (the ``score_step`` job; ``step_models`` keeps the models parsed,
``scoring_queue`` scores the waiting steps together), ``charts`` and ``findings`` (what QA looks at),
``equipment`` (equipment time series), ``jobs`` (``install(rt)`` registers the job
handlers), ``history`` (demo history).
"""

from .base import CalibrationWarning, Monitor, NotEnoughHistory
from .duration import DurationMonitor
from .forest import IsolationForestMonitor
from .pca import PCAMonitor
from .store import ModelCard, dumps, loads, monitor_from_dict
from .univariate import RULES, UnivariateMonitor

__all__ = [
    "CalibrationWarning",
    "DurationMonitor",
    "IsolationForestMonitor",
    "ModelCard",
    "Monitor",
    "NotEnoughHistory",
    "PCAMonitor",
    "RULES",
    "UnivariateMonitor",
    "dumps",
    "loads",
    "monitor_from_dict",
]
