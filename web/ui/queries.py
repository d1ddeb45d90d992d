"""Reads the pages need that the engine has no function for yet. They are kept here, in
one place, so they move into the engine (and out of the web layer) together once it
offers them.
"""

from __future__ import annotations

from sqlalchemy import select

from engine.models import Batch, Job

from ..runtime import runtime


def trend_check_pending(batch_id: str, seq: int) -> bool:
    """True while the out-of-trend check of this step has not run yet (it runs right
    after commit, off the request): the page then refreshes itself once it has."""
    with runtime().transaction() as s:
        batch_pk = s.scalars(select(Batch.id).where(Batch.batch_id == batch_id)).first()
        pending = s.scalars(
            select(Job.payload).where(Job.batch_id == batch_pk, Job.kind == "score_step", Job.state == "pending")
        )
        return any(p.get("seq") == seq for p in pending)
