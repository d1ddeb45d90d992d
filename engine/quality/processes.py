"""Quality processes: QA's BPMN flows (``workflows/qa/``) run about a subject — a batch,
an exception, a recipe version. (The process runner lands with the quality-process
change; until then no quality process runs, so none is open and none needs finishing.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..models import Batch
from ..runtime import Runtime


def running_about(s: Session, batch: Batch) -> list[dict[str, Any]]:
    """Quality processes about ``batch`` still running, other than its release flow."""
    return []


def finish_release_flows(rt: Runtime, s: Session, batch: Batch, *, user: str) -> None:
    """The batch was released or rejected: its release flow has nothing left to do."""
    return None
