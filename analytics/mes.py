"""The former home of the trend analytics, split by job into ``batch_record``,
``training``, ``catalogue``, ``scoring``, ``charts``, ``findings`` and ``jobs``.

Kept only so that ``from analytics import mes; mes.install(rt)`` in ``web/app.py`` and
``web/cli.py`` keeps working until they import ``analytics.jobs.install``; new code
imports the module of the job it needs. Nothing in ``analytics`` imports this module.
"""

from .batch_record import NumberField, StepPoint, as_number, number_fields, recipe_versions, step_points
from .catalogue import DURATION, DURATION_KIND, UNIVARIATE, describe_model, list_models, model_cards
from .charts import durations, trend
from .findings import findings
from .jobs import install
from .scoring import RUN_WINDOW, score_step
from .training import ALPHA, MIN_BATCHES, TrainResult, train

__all__ = [
    "ALPHA",
    "DURATION",
    "DURATION_KIND",
    "MIN_BATCHES",
    "RUN_WINDOW",
    "UNIVARIATE",
    "NumberField",
    "StepPoint",
    "TrainResult",
    "as_number",
    "describe_model",
    "durations",
    "findings",
    "install",
    "list_models",
    "model_cards",
    "number_fields",
    "recipe_versions",
    "score_step",
    "step_points",
    "train",
    "trend",
]
