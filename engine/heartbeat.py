"""The job workers' heartbeat: is anyone working the jobs?

Why a table and not a process check: the web nodes and the workers run on different
machines; the database is what they share. Each ``batchline worker`` writes its row
(host, pid, last beat) every ``worker_heartbeat_seconds`` from a small thread of its
own — a long job does not make it look dead — and stamps ``stopped_at`` with the job
locks it gave back when it stops gracefully. ``/api/ready`` answers 503 when no running
worker has beaten within ``worker_heartbeat_max_age_seconds``; ``/metrics`` reports the
age of the newest beat.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from .models import WorkerHeartbeat, utcnow
from .runtime import Runtime

log = logging.getLogger("batchline.heartbeat")

#: a worker's row is kept this long after its last beat (what stopped when, released what)
FORGET_AFTER = timedelta(days=7)


def beat(rt: Runtime, worker: str) -> None:
    """Write this worker's row now (insert on the first beat)."""
    now = utcnow()
    with rt.transaction() as s:
        row = s.get(WorkerHeartbeat, worker)
        if row is None:  # a worker starting: rows of workers silent for a week go (one per process ever run)
            s.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_AFTER))
            s.add(WorkerHeartbeat(worker=worker, host=socket.gethostname()[:200], pid=os.getpid(), beat_at=now))
        else:
            row.beat_at = now
            row.stopped_at = None


def stopped(rt: Runtime, worker: str, released: int) -> None:
    """The worker stopped gracefully: its row says when and how many job locks it gave back."""
    with rt.transaction() as s:
        row = s.get(WorkerHeartbeat, worker)
        if row is None:
            row = WorkerHeartbeat(worker=worker, host=socket.gethostname()[:200], pid=os.getpid())
            s.add(row)
        row.stopped_at = utcnow()
        row.released_jobs = released


def newest_beat(rt: Runtime) -> datetime | None:
    """When the most recent running worker last beat (None: no worker is running)."""
    with rt.transaction(deferred=True) as s:
        return s.scalar(select(func.max(WorkerHeartbeat.beat_at)).where(WorkerHeartbeat.stopped_at.is_(None)))


def age_seconds(rt: Runtime) -> float | None:
    newest = newest_beat(rt)
    return None if newest is None else max(0.0, (utcnow() - newest).total_seconds())


class Heartbeat:
    """Beats for ``worker`` every ``interval`` seconds in a daemon thread until stopped."""

    def __init__(self, rt: Runtime, worker: str, interval: float):
        self.rt, self.worker, self.interval = rt, worker, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batchline-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def _beat(self) -> None:
        try:
            beat(self.rt, self.worker)
        except Exception:  # the database went away for a moment: the next beat tries again
            log.warning("worker %s: heartbeat not written", self.worker, exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 5)
