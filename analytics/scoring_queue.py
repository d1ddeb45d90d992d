"""Steps waiting for scoring, picked up together: when a ``score_step`` job runs, it
also scores the other operator steps whose scoring jobs are due and free at that
moment, in its own transaction, so the job executor's claim / run / done commits are
paid once for many steps when batches run in parallel.

Crash-safe and exactly once, as the job executor itself: the waiting jobs are claimed
the way ``engine.jobs.acquire`` claims them (a lock with an expiry, ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, the write lock on SQLite) in the transaction that scores them;
their findings are raised (each once, by its ``finding_key``) and only then are the
jobs marked done. A worker that dies in between leaves the locks to expire, and the
steps are scored again later; a finding raised already is not raised twice. A step
whose scoring fails here is left to its own job (attempts, backoff, incident).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import jobs
from engine.models import Batch, Job, utcnow
from engine.runtime import Runtime
from engine.vocabulary import JobKind, JobState

log = logging.getLogger("batchline.analytics")

Finding = dict[str, Any]
ScoreIn = Callable[[Session, Batch, int, dict[Any, Any]], list[Finding]]
RaiseFindings = Callable[[Runtime, str, int, list[Finding]], list[Finding]]

#: at most this many waiting steps are scored along with one job (bounded transaction)
BATCH_LIMIT = 200


@dataclass
class Claimed:
    """Waiting scoring jobs scored in a handler's transaction, with their findings."""

    owner: str
    steps: list[tuple[int, str, int, list[dict[str, Any]]]] = field(default_factory=list)


def claim_waiting(rt: Runtime, s: Session, score_in: ScoreIn, limit: int = BATCH_LIMIT) -> Claimed:
    """Lock the ``score_step`` jobs due now that no worker holds, and score their steps
    in this transaction with ``score_in`` (``analytics.scoring.score_in``, passed in: the
    scoring module uses this one, not the reverse)."""
    now = utcnow()
    claimed = Claimed(owner=f"score_step-batch:{uuid.uuid4().hex[:12]}")
    waiting = jobs.due_unlocked(s, now, limit, kind=JobKind.SCORE_STEP)
    if not waiting:
        return claimed
    batch_rows = {b.id: b for b in s.scalars(select(Batch).where(Batch.id.in_({j.batch_id for j in waiting})))}
    memo: dict[Any, Any] = {}
    for job in waiting:
        batch = batch_rows.get(job.batch_id) if job.batch_id is not None else None
        if batch is None or "seq" not in (job.payload or {}):
            continue  # not a step of a batch: its own job runs it (and records why it fails)
        try:
            findings = score_in(s, batch, int(job.payload["seq"]), memo)
        except Exception:  # left to its own job: attempts, backoff and incident
            log.exception("scoring step %s of batch %s along with another job", job.payload, batch.batch_id)
            continue
        job.locked_by = claimed.owner
        job.locked_until = now + timedelta(seconds=rt.settings.job_lock_seconds)
        claimed.steps.append((job.id, batch.batch_id, int(job.payload["seq"]), findings))
    return claimed


def finish_claimed(rt: Runtime, claimed: Claimed, raise_findings: RaiseFindings) -> int:
    """Raise the claimed steps' findings (``analytics.scoring.raise_findings``), then mark
    their jobs done (still held by this claim); returns how many steps were scored."""
    done, free = [], []
    for job_id, batch_id, seq, findings in claimed.steps:
        try:
            raise_findings(rt, batch_id, seq, findings)
            done.append(job_id)
        except Exception:
            log.exception("raising the findings of step %s of batch %s", seq, batch_id)
            free.append(job_id)
    if not done and not free:
        return 0
    with rt.transaction() as s:
        now = utcnow()
        for job in s.scalars(select(Job).where(Job.id.in_(done + free), Job.locked_by == claimed.owner)):
            if job.id in done:
                job.state = JobState.DONE
                job.attempts += 1
                job.finished_at = now
            job.locked_by = None
            job.locked_until = None
    return len(done)
