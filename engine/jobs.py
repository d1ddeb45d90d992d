"""The job executor: timers, service tasks and event delivery run as rows in the
database (the design of Camunda 7's job executor), not in a sleeping request.

A worker acquires due jobs by writing its name and a lock expiry on them. On PostgreSQL
acquisition uses ``SELECT … FOR UPDATE SKIP LOCKED`` so several workers on several
machines never take the same job; on SQLite the single writer lock does the same. A
failed job is retried with exponential backoff; when its retries run out it is marked
``failed`` and an incident is recorded (audited, visible in API and CLI, and sent as an
event). A worker that dies leaves its lock to expire; another worker then takes the job.
A worker told to stop (SIGTERM) finishes the job it is running, gives back the locks of
the jobs it claimed but did not start (another worker takes them at once, not after
``job_lock_seconds``) and says so in its heartbeat row (``engine.heartbeat``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from . import audit, batches, order_confirmations, outbox
from .batches import lateness
from .connectors import Completed, ConnectorError, Pending
from .db import row_locks
from .delivery import deliver, deliver_many, sign_webhook  # noqa: F401 - sign_webhook: part of this module's interface
from .errors import BatchlineError
from .heartbeat import Heartbeat
from .heartbeat import stopped as heartbeat_stopped
from .models import Incident, Job, utcnow
from .quality import processes as quality_processes
from .runtime import Runtime
from .vocabulary import BatchState, ExceptionCategory, JobKind, JobState

log = logging.getLogger("batchline.jobs")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class RetryLater(Exception):
    """Not a failure: try again after ``delay`` seconds without counting an attempt."""

    def __init__(self, delay: float):
        super().__init__(f"retry in {delay}s")
        self.delay = delay


def due_unlocked(s: Session, now: datetime, limit: int, kind: str | None = None) -> list[Job]:
    """Pending jobs due by ``now`` that no worker holds (or whose lock expired), oldest
    first, locked for this transaction where the database locks rows (``SKIP LOCKED``:
    two workers never wait on, or take, the same job). The one claim query, used by the
    executor and by the scoring of waiting steps (``analytics.scoring_queue``)."""
    stmt = select(Job).where(
        Job.state == JobState.PENDING,
        Job.due_at <= now,
        or_(Job.locked_until.is_(None), Job.locked_until < now),
    )
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    stmt = stmt.order_by(Job.due_at, Job.id).limit(limit)
    if row_locks(s):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(s.scalars(stmt))


def acquire(rt: Runtime, worker: str, limit: int = 10, kind: str | None = None) -> list[int]:
    now = utcnow()
    with rt.transaction() as s:
        jobs = due_unlocked(s, now, limit, kind)
        for job in jobs:
            job.locked_by = worker
            job.locked_until = now + timedelta(seconds=rt.settings.job_lock_seconds)
        return [j.id for j in jobs]


def run_job(rt: Runtime, job_id: int, worker: str) -> str:
    """Run one acquired job; returns its new state."""
    with rt.transaction(deferred=True) as s:  # a read: on SQLite, no wait for the write lock
        job = s.get(Job, job_id)
        if job is None or job.state != JobState.PENDING or job.locked_by != worker:
            return "skipped"
        kind, batch_pk, task_id, payload = job.kind, job.batch_id, job.task_id, dict(job.payload)
        batch_id = None
        if batch_pk is not None:
            from .models import Batch

            batch_id = s.get(Batch, batch_pk).batch_id
    try:
        handler = rt.job_handlers.get(kind) or HANDLERS.get(kind)
        if handler is None:
            raise RuntimeError(f"no handler for job kind {kind!r} in this process")
        # a handler may answer what to write when the job is done: written in the job's
        # own closing transaction (one commit less per job; ``engine.delivery``)
        finish = handler(rt, batch_id, task_id, payload)
    except RetryLater as later:
        return _reschedule(rt, job_id, later.delay)
    except Exception as exc:  # every failure is recorded with its real message
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, (BatchlineError, ConnectorError)) else str(exc)
        retry = getattr(exc, "retry", True)
        log.warning("job %s (%s) failed: %s", job_id, kind, message)
        return _failed(rt, job_id, message, retry=retry, detail=traceback.format_exc(limit=5))
    with rt.transaction() as s:
        job = s.get(Job, job_id)
        job.state = JobState.DONE
        job.attempts += 1
        job.finished_at = utcnow()
        job.locked_by = None
        job.locked_until = None
        if callable(finish):
            finish(s)
    return JobState.DONE


def _reschedule(rt: Runtime, job_id: int, delay: float) -> str:
    with rt.transaction() as s:
        job = s.get(Job, job_id)
        job.due_at = utcnow() + timedelta(seconds=delay)
        job.locked_by = None
        job.locked_until = None
    return JobState.PENDING


def _failed(rt: Runtime, job_id: int, message: str, *, retry: bool, detail: str) -> str:
    with rt.transaction() as s:
        job = s.get(Job, job_id)
        job.attempts += 1
        job.last_error = message[:4000]
        job.locked_by = None
        job.locked_until = None
        if retry and job.attempts < job.max_attempts:
            delay = rt.settings.job_backoff_seconds * (2 ** (job.attempts - 1))
            job.due_at = utcnow() + timedelta(seconds=delay)
            return JobState.PENDING
        job.state = JobState.FAILED
        job.finished_at = utcnow()
        incident = Incident(job_id=job.id, batch_id=job.batch_id, kind=job.kind, message=message[:4000])
        s.add(incident)
        s.flush()
        audit.record(
            s,
            user="system",
            action="incident.created",
            object_type="job",
            object_id=str(job.id),
            new={"kind": job.kind, "message": message[:500]},
        )
        outbox.emit(
            s,
            rt.settings,
            "incident.created",
            f"job/{job.id}",
            {"incident": incident.id, "job": job.id, "kind": job.kind, "message": message[:500]},
        )
        if job.batch_id is not None:  # review by exception: the batch's record shows it
            from .models import Batch
            from .quality import exceptions as qx

            qx.raise_in(
                rt,
                s,
                s.get(Batch, job.batch_id),
                category=ExceptionCategory.INCIDENT,
                message=f"{job.kind} job ran out of retries: {message[:500]}",
                value={"attempts": job.attempts, "error": message[:500]},
                limits={"max_attempts": job.max_attempts},
                details={"incident": incident.id, "job": job.id, "kind": job.kind, "task_id": job.task_id},
                critical=bool((job.payload or {}).get("critical")),
            )
        return JobState.FAILED


# --- handlers ------------------------------------------------------------------------


def _timer(rt: Runtime, batch_id: str, task_id: str, payload: dict) -> None:
    state = batches.get_batch(rt, batch_id)["state"]
    if state == BatchState.HELD:
        raise RetryLater(rt.settings.worker_poll_seconds * 10)
    if state != BatchState.RUNNING:
        return
    if batches.fire_timer(rt, batch_id, task_id) is None:  # not due by the workflow's clock yet
        raise RetryLater(max(rt.settings.worker_poll_seconds, 0.5))


def _service_task(rt: Runtime, batch_id: str, task_id: str, payload: dict) -> None:
    call, state = batches.service_task_call(rt, batch_id, task_id)
    if state == BatchState.HELD:
        raise RetryLater(rt.settings.worker_poll_seconds * 10)
    if call is None or state != BatchState.RUNNING:
        return
    connector = rt.connectors.get(call.operator)
    try:
        result = connector.call(call)  # no database lock is held here
    except ConnectorError as exc:
        if exc.bpmn_error:
            batches.complete_service_task(rt, batch_id, task_id, {}, error=(exc.bpmn_error, str(exc)))
            return
        raise
    if isinstance(result, Pending):
        batches.complete_service_task(rt, batch_id, task_id, {}, pending=True)
    elif isinstance(result, Completed):
        batches.complete_service_task(rt, batch_id, task_id, dict(result.data))
    elif isinstance(result, dict):
        batches.complete_service_task(rt, batch_id, task_id, result)
    else:
        raise ConnectorError(f"connector {call.operator!r} returned {type(result).__name__}", retry=False)


#: a handler may answer a callable that ``run_job`` calls with the session of its closing
#: transaction (what to write when the job is done); most answer None
HANDLERS: dict[str, Callable[[Runtime, Any, Any, dict], Any]] = {
    JobKind.TIMER: _timer,
    JobKind.SERVICE_TASK: _service_task,
    JobKind.DELIVER: deliver,
    JobKind.STEP_DUE: lateness.step_due,
    JobKind.START_QUALITY_PROCESS: quality_processes.start_scheduled,
    JobKind.ERP_CONFIRMATION: order_confirmations.send,
}


# --- the worker loop -----------------------------------------------------------------


#: event deliveries claimed per round: sent one after the other over kept-open connections,
#: their completion written in one transaction (``engine.delivery.deliver_many``)
DELIVERY_BATCH = 100


def release_locks(rt: Runtime, worker: str) -> int:
    """Give back the locks ``worker`` holds on pending jobs (a graceful stop): another
    worker takes them on its next poll. Returns how many were released."""
    with rt.transaction() as s:
        result = s.execute(
            update(Job)
            .where(Job.locked_by == worker, Job.state == JobState.PENDING)
            .values(locked_by=None, locked_until=None)
        )
        return int(result.rowcount or 0)


def run_due(rt: Runtime, worker: str | None = None, limit: int = 10, stop: threading.Event | None = None) -> int:
    """Acquire and run the jobs due now; returns how many ran. Event deliveries first,
    in one batch (a commit per delivery would cap a worker at a few dozen events a
    second on SQLite's fsync), then up to ``limit`` other jobs one by one. Once ``stop``
    is set no further job starts; the ones claimed and not started keep their lock until
    the worker loop releases it (``release_locks``)."""
    worker = worker or worker_name()
    ran = 0
    deliveries = acquire(rt, worker, DELIVERY_BATCH, kind=JobKind.DELIVER)
    if deliveries:
        ran += deliver_many(rt, deliveries, worker, failed=_failed)
    if stop is not None and stop.is_set():
        return ran
    for job_id in acquire(rt, worker, limit):
        if stop is not None and stop.is_set():
            break
        run_job(rt, job_id, worker)
        ran += 1
    return ran


def work(
    rt: Runtime,
    *,
    stop: threading.Event | None = None,
    worker: str | None = None,
    max_seconds: float | None = None,
    idle_exit: bool = False,
    heartbeat: bool = False,
) -> int:
    """The worker loop: poll for due jobs until stopped. Returns jobs run.

    ``heartbeat``: write this worker's heartbeat row while it runs (``batchline worker``);
    on the way out, whether stopped or done, the locks it still holds are released."""
    worker = worker or worker_name()
    stop = stop or threading.Event()
    deadline = time.monotonic() + max_seconds if max_seconds else None
    total = 0
    beating = Heartbeat(rt, worker, rt.settings.worker_heartbeat_seconds).start() if heartbeat else None
    try:
        while not stop.is_set():
            if deadline and time.monotonic() > deadline:
                break
            try:
                ran = run_due(rt, worker, stop=stop)
            except Exception:  # the database went away for a moment: wait and go on
                log.exception("worker %s: poll failed", worker)
                ran = 0
            total += ran
            if ran == 0:
                if idle_exit:
                    break
                stop.wait(rt.settings.worker_poll_seconds)
    finally:
        if beating is not None:
            beating.stop()
        try:
            released = release_locks(rt, worker)
        except Exception:  # the database is gone: the locks expire after job_lock_seconds
            log.exception("worker %s: job locks not released", worker)
        else:
            if released:
                log.info("worker %s: released %d job lock(s)", worker, released)
            if beating is not None:
                try:
                    heartbeat_stopped(rt, worker, released)
                except Exception:  # only the record of the stop is missing
                    log.warning("worker %s: stop not recorded", worker, exc_info=True)
    return total


def incidents(rt: Runtime, open_only: bool = True) -> list[dict[str, Any]]:
    from .models import Batch

    with rt.transaction() as s:
        stmt = select(Incident, Batch.batch_id).outerjoin(Batch, Batch.id == Incident.batch_id).order_by(Incident.id)
        if open_only:
            stmt = stmt.where(Incident.resolved_at.is_(None))
        return [
            {
                "id": i.id,
                "job_id": i.job_id,
                "batch_id": batch_id,
                "kind": i.kind,
                "message": i.message,
                "created_at": i.created_at.isoformat(),
                "resolved_at": i.resolved_at.isoformat() if i.resolved_at else None,
            }
            for i, batch_id in s.execute(stmt)
        ]


def retry_incident(rt: Runtime, incident_id: int, *, user: str) -> dict[str, Any]:
    """Resolve an incident by giving its job a fresh set of attempts."""
    from .errors import Conflict, NotFound

    with rt.transaction() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            raise NotFound(f"incident {incident_id} not found", code="incident_not_found")
        if inc.resolved_at is not None:
            raise Conflict(f"incident {incident_id} is resolved already", code="incident_resolved")
        job = s.get(Job, inc.job_id)
        job.state = JobState.PENDING
        job.attempts = 0
        job.due_at = utcnow()
        job.finished_at = None
        inc.resolved_at = utcnow()
        inc.resolved_by = user
        audit.record(s, user=user, action="incident.retry", object_type="incident", object_id=str(incident_id))
        return {"id": inc.id, "job_id": job.id, "state": job.state}
