"""The analytics package's job handlers and how a runtime gets them.

The engine never imports analytics: ``install(rt)`` registers the handlers on a runtime
(``create_app``, ``batchline worker`` and ``batchline demo`` call it), and from then on
the engine schedules a ``score_step`` job for each operator step in the step's own
transaction; ``record_samples`` schedules ``score_samples`` for equipment samples.
"""

from __future__ import annotations

from engine.runtime import Runtime
from engine.vocabulary import JobKind

from .equipment.scoring import score_samples
from .scoring import score_step


def install(rt: Runtime) -> None:
    """Register the ``score_step`` job handler (``analytics.scoring``) and the
    ``score_samples`` one (equipment time series, ``analytics.equipment``) on this
    runtime: from then on every operator step schedules its scoring job in its own
    transaction."""
    rt.job_handlers[JobKind.SCORE_STEP] = score_step
    rt.job_handlers[JobKind.SCORE_SAMPLES] = score_samples
