"""The daily archive run in the job worker: a job of kind ``archive_run`` that archives
what ``archive_after_days`` makes due and books the next run a day later.

Why a job and not a timer thread: the job executor already gives one run at a time
across worker processes (``FOR UPDATE SKIP LOCKED``), retries, and an incident people
see when a run fails (a batch that could not be archived: full disk, changed record).
``batchline archive schedule`` books the first run; each run books the next one before
it starts, so a failing run never stops the days after it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ..errors import BatchlineError
from ..models import Job, utcnow
from ..vocabulary import JobState

if TYPE_CHECKING:
    from ..runtime import Runtime

KIND = "archive_run"
EVERY = timedelta(days=1)


class ArchiveRunFailed(BatchlineError):
    code = "archive_run_failed"


def schedule(rt: Runtime, *, after: timedelta = timedelta(0)) -> dict[str, Any]:
    """Book the next daily run unless one is booked already (idempotent)."""
    with rt.transaction() as s:
        pending = s.scalar(select(func.min(Job.due_at)).where(Job.kind == KIND, Job.state == JobState.PENDING))
        if pending is not None:
            return {"scheduled": False, "due_at": pending.isoformat()}
        due_at = utcnow() + after
        s.add(Job(kind=KIND, payload={}, due_at=due_at, max_attempts=rt.settings.job_max_attempts))
        return {"scheduled": True, "due_at": due_at.isoformat()}


def _run(rt: Runtime, _batch_id: str | None, _task_id: str | None, _payload: dict[str, Any]) -> None:
    from .selection import run_due

    with rt.transaction() as s:  # tomorrow's run first (this job is still pending now)
        booked = s.scalar(
            select(func.count()).where(Job.kind == KIND, Job.state == JobState.PENDING, Job.due_at > utcnow())
        )
        if not booked:
            s.add(Job(kind=KIND, payload={}, due_at=utcnow() + EVERY, max_attempts=rt.settings.job_max_attempts))
    out = run_due(rt)
    if out.get("failed"):
        names = ", ".join(f"{f['batch_id']} ({f['code']})" for f in out["failed"][:10])
        raise ArchiveRunFailed(f"{len(out['failed'])} batch(es) could not be archived: {names}")


def install(rt: Runtime) -> None:
    rt.job_handlers.setdefault(KIND, _run)
