"""Equipment time series of a batch: samples a unit procedure's equipment sends for a
running batch (``engine.models.EquipmentSample``), a time-series PCA model per recipe and
unit procedure trained on earlier batches (``analytics.timeseries``, stored in
``trend_model`` as a model card), and the ``score_samples`` job that scores a running
batch's samples received so far and raises a trend exception when T² or SPE goes beyond
its limit.

One module per job: ``samples`` (receiving and reading samples), ``training`` (the
models, with the alignment and limits explained there), ``scoring`` (the job and the
batch's chart data), ``simulated`` (simulated equipment for the demo and tests).

The engine never imports this package; ``analytics.jobs.install`` registers the job.
"""

from .samples import (
    JOB,
    MAX_SAMPLES,
    MAX_VARIABLES,
    UNIT_PROCEDURE,
    VARIABLE_NAME,
    check_samples,
    record_samples,
    sample_count,
    samples_of,
    series_of,
)
from .scoring import STATISTICS, equipment_samples, running_since, score, score_samples
from .simulated import simulated_samples, write_simulated_history
from .training import BATCH_ALPHA, KIND, PARAMETER, train_in_session

__all__ = [
    "BATCH_ALPHA",
    "JOB",
    "KIND",
    "MAX_SAMPLES",
    "MAX_VARIABLES",
    "PARAMETER",
    "STATISTICS",
    "UNIT_PROCEDURE",
    "VARIABLE_NAME",
    "check_samples",
    "equipment_samples",
    "record_samples",
    "running_since",
    "sample_count",
    "samples_of",
    "score",
    "score_samples",
    "series_of",
    "simulated_samples",
    "train_in_session",
    "write_simulated_history",
]
