"""Equipment over OPC UA: the ``opcua`` connector type (read, write, call a method, run
a phase from a recipe's service tasks), the phase watcher that records a phase's report
when the equipment completes it, and monitoring of configured tags during a unit
procedure.

One module per job: ``settings`` (what an instance is configured with), ``link`` (the
shared session on its own loop thread), ``connector`` (the operations), ``approval`` (a
supervisor's signature before a write), ``phases`` (the watcher job), ``monitoring``
(the sampling job), ``demo`` (wiring the demo's bioreactor).

The engine never imports this package: ``install(rt)`` registers the connector type (when
the runtime's registry has types) and the two job kinds on a runtime, as
``analytics.jobs.install`` does for scoring.
"""

from __future__ import annotations

from typing import Any

from .connector import PHASE_JOB, OpcUaConnector, factory
from .monitoring import MONITOR_JOB, start_monitoring, stop_monitoring
from .phases import watch_phase

__all__ = [
    "MONITOR_JOB",
    "PHASE_JOB",
    "OpcUaConnector",
    "factory",
    "install",
    "start_monitoring",
    "stop_monitoring",
    "watch_phase",
]


def install(rt: Any) -> None:
    """Register the phase watcher and monitoring job handlers (and the ``opcua`` type,
    where the connector registry knows types) on this runtime."""
    from .monitoring import monitor

    rt.job_handlers[PHASE_JOB] = watch_phase
    rt.job_handlers[MONITOR_JOB] = monitor
    register_type = getattr(rt.connectors, "register_type", None)
    if register_type is not None:
        register_type("opcua", factory)
