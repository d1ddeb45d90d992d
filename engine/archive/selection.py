"""Which batches are due for the archive, and a run over them (``batchline archive run``,
and the worker's daily call ``run_due``).

Due: a complete production batch QA released or rejected (the decision recorded in
``batch_disposition``) before the cut-off — ``archive_after_days`` ago, or a date given
— with no exception still open or escalated, and not archived yet. A batch failing on
its own (a changed record, a full disk) is reported and the run goes on; two runs at
once archive each batch once (the batch lock and the ``archived_batch`` key decide; the
loser reports it as archived already).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import exists, func, select

from ..errors import BatchlineError, InvalidInput
from ..models import ArchivedBatch, Batch, BatchDisposition
from ..runtime import Runtime
from .moving import DECIDED, archive_batch, unresolved_exceptions

#: at most this many batches per run (the next run takes the rest)
RUN_LIMIT = 1000


def cutoff(rt: Runtime, before: date | datetime | None) -> datetime | None:
    """The decision time before which batches are due; None when archiving is off."""
    if before is not None:
        if isinstance(before, datetime):
            return before if before.tzinfo else before.replace(tzinfo=UTC)
        return datetime.combine(before, time.min, tzinfo=UTC)
    days = rt.settings.archive_after_days
    if days <= 0:
        return None
    return datetime.now(UTC) - timedelta(days=days)


def due(rt: Runtime, before: datetime, limit: int = RUN_LIMIT) -> list[dict[str, Any]]:
    """Batches due for the archive, oldest decision first."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= RUN_LIMIT:
        raise InvalidInput(f"limit is a whole number from 1 to {RUN_LIMIT}", code="limit_invalid")
    decided = (
        select(BatchDisposition.batch_id, func.max(BatchDisposition.signed_at).label("decided_at"))
        .group_by(BatchDisposition.batch_id)
        .subquery()
    )
    stmt = (
        select(Batch.batch_id, Batch.state, decided.c.decided_at)
        .join(decided, decided.c.batch_id == Batch.id)
        .where(
            Batch.kind == "production",
            Batch.state.in_([s.value for s in DECIDED]),
            Batch.completed_at.is_not(None),
            decided.c.decided_at < before.astimezone(UTC),
            Batch.id.not_in(select(ArchivedBatch.batch_id)),
            ~exists().where(*unresolved_exceptions(Batch.id)),
        )
        .order_by(decided.c.decided_at, Batch.id)
        .limit(limit)
    )
    with rt.transaction(deferred=True) as s:
        return [{"batch_id": b, "state": st, "decided_at": _iso(d)} for b, st, d in s.execute(stmt)]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def run(
    rt: Runtime, *, by: str, before: date | datetime | None = None, dry_run: bool = False, limit: int = RUN_LIMIT
) -> dict[str, Any]:
    """Archive every due batch (or, ``dry_run``, say which would be)."""
    when = cutoff(rt, before)
    if when is None:
        return {"enabled": False, "before": None, "due": [], "archived": [], "skipped": [], "failed": []}
    batches = due(rt, when, limit)
    out: dict[str, Any] = {
        "enabled": True,
        "before": when.isoformat(),
        "dry_run": dry_run,
        "due": batches,
        "archived": [],
        "skipped": [],
        "failed": [],
    }
    if dry_run:
        return out
    for item in batches:
        try:
            out["archived"].append(archive_batch(rt, item["batch_id"], by=by))
        except BatchlineError as exc:
            kind = "skipped" if exc.code == "batch_archived" else "failed"
            out[kind].append({"batch_id": item["batch_id"], "code": exc.code, "message": exc.message})
        except OSError as exc:  # the archive folder: full, read-only, gone
            out["failed"].append({"batch_id": item["batch_id"], "code": "archive_write_failed", "message": str(exc)})
    return out


def run_due(rt: Runtime) -> dict[str, Any]:
    """The worker's daily call: archive what ``archive_after_days`` makes due (nothing when 0)."""
    return run(rt, by="system")
