"""Out-of-trend analytics for Batchline: monitors that flag a batch, a step value or
a step duration that does not look like the history of the same recipe step.

Stands alone (numpy, scipy, scikit-learn only) so the MES can wire it in behind a
small API: fit a monitor on history, store it as JSON in a ModelCard, score new
batches, explain what drove a flag.
"""

from .base import CalibrationWarning, Monitor
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
    "PCAMonitor",
    "RULES",
    "UnivariateMonitor",
    "dumps",
    "loads",
    "monitor_from_dict",
]
