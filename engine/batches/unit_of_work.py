"""One change of a batch = one transaction: replay a repeated request, borrow the live
workflow, change it, then lock the batch and persist everything that follows (task rows,
jobs, message subscriptions, completion) and record the answer for replay — commit, and
only then put the workflow back in the cache.

Why the lock comes after the engine work: engine steps run recipe scripts (up to
`script_cpu_seconds` each), and on SQLite the write lock is the whole database's (measured
on main: every other writer waited while a script ran). So the batch is read without a
lock, the Spiff work happens, and `lock_for_writing` (called before the first write:
`append_step`, `persist`) takes the lock — SQLite's write lock through a deferred
transaction, PostgreSQL's row lock — and checks that the batch's `revision` and state are
still those the work started from. If not, the work is thrown away and done again on the
new revision, at most `ATTEMPTS` times, then 409 `concurrent_change`.

Why the cache entry is *borrowed*: the cache holds the one in-memory copy of a batch's
workflow. Taking it out for the duration of a transaction and putting it back only after
commit means a failed step can never leave a half-changed copy behind for the next
request; the next one reloads from the database instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from SpiffWorkflow.exceptions import WorkflowException
from sqlalchemy import delete, event, inspect, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .. import audit, order_confirmations, outbox, runner
from ..db import row_locks
from ..errors import Conflict, EngineFault, NotFound
from ..idempotency import Outcome, replay, request_hash
from ..master_data import equipment_use
from ..models import Batch, IdempotentRequest, Job, MessageSubscription, utcnow
from ..runtime import Runtime
from ..vocabulary import BatchState, JobKind, JobState
from ..workflow_store import LiveWorkflow, canonical, prune
from . import lateness, ready_index, task_times


def find_batch(s: Session, batch_id: str, *, lock: bool = False) -> Batch:
    """The batch by its id; ``lock`` takes its row lock (PostgreSQL; SQLite's BEGIN
    IMMEDIATE already serialises writers) so changes of one batch queue up."""
    stmt = select(Batch).where(Batch.batch_id == batch_id)
    if lock and row_locks(s):
        stmt = stmt.with_for_update()
    batch = s.scalars(stmt).first()
    if batch is None:
        raise NotFound(f"batch {batch_id!r} not found", code="batch_not_found")
    return batch


def lock_batch(s: Session, batch_id: str) -> Batch:
    return find_batch(s, batch_id, lock=True)


#: how often a change is tried when its batch changed under it before 409 concurrent_change
ATTEMPTS = 5
_GUARD = "batchline_unlocked_batch"
_BUMPED = "batchline_revision_bumped"


class _Stale(Exception):
    """The batch changed between reading it and locking it: do the work again."""


def wait_for_writer(rt: Runtime) -> None:
    """Before trying again on SQLite: wait until the writer that made this attempt stale
    has committed. A deferred transaction cannot wait for the write lock (SQLite refuses
    the upgrade at once, to avoid deadlock), so a retry at once would only meet the same
    writer again; an empty BEGIN IMMEDIATE waits on busy_timeout instead."""
    if rt.settings.is_sqlite:
        with rt.transaction() as s:
            s.execute(select(1))


def lock_for_writing(s: Session, batch: Batch, **values: Any) -> None:
    """Lock the batch read without a lock by `mutate`, now that the engine work is done,
    and check nobody changed it since (no-op when the batch was locked when read).

    ``values``: columns of the batch to set in the same statement (``append_step``'s
    ``step_count``): one round trip fewer than a separate UPDATE flushed with the step."""
    guard = s.info.pop(_GUARD, None)
    if guard is None:
        for name, value in values.items():
            setattr(batch, name, value)
        return
    revision, states = guard
    # One statement for both databases: it takes the lock (PostgreSQL's row lock, waiting
    # for a concurrent writer and then re-reading the row; SQLite's write lock) and is a
    # no-op unless the batch is still at the revision and in a state the work started from.
    stmt = (
        update(Batch)
        .where(Batch.id == batch.id, Batch.revision == revision, Batch.state.in_([str(x) for x in states]))
        .values(**{"revision": Batch.revision, **values})
    )
    try:
        changed = s.connection().execute(stmt).rowcount
    except OperationalError as exc:  # SQLite: another writer committed since the snapshot
        if "locked" not in str(exc):
            raise
        raise _Stale from exc
    if changed != 1:
        raise _Stale
    for name, value in values.items():  # written: the session need not write it again
        set_committed_value(batch, name, value)


def next_revision(s: Session, batch: Batch) -> dict[str, int]:
    """The batch columns ``persist`` will set, for the lock statement to set them at once:
    the next ``revision`` (and ``ready_revision`` while the ready-task index is current).
    ``persist`` then leaves the revision alone."""
    s.info[_BUMPED] = True
    values = {"revision": batch.revision + 1}
    if batch.ready_revision == batch.revision:
        values["ready_revision"] = batch.revision + 1
    return values


def moved_version(batch: Batch) -> bool:
    """The change moved the batch to another recipe version (``engine.recipe_versions``)."""
    return bool(inspect(batch).attrs.recipe_version_id.history.has_changes())


def cache_after_commit(rt: Runtime, s: Session, batch_pk: int, entry: LiveWorkflow) -> None:
    """Put ``entry`` in the cache once ``s`` commits; a rollback leaves it out."""
    event.listen(s, "after_commit", lambda _session: rt.cache.put(batch_pk, entry), once=True)


@contextmanager
def live_workflow(rt: Runtime, s: Session, batch: Batch, *, changing: bool = False) -> Iterator[LiveWorkflow]:
    """Borrow the batch's live workflow from the cache (or load it) and put it back.

    Read without ``changing``, it goes back as soon as the block ends. With
    ``changing`` (the batch must be locked), it goes back only after ``s`` commits. An
    error inside the block drops it either way: the next user reloads it from the rows.
    """
    batch_pk = batch.id
    entry = rt.cache.take(batch_pk, batch.revision) or rt.store.load(s, batch_pk, batch.revision)
    try:
        yield entry
    except BaseException:
        rt.cache.drop(batch_pk)
        raise
    if changing:
        cache_after_commit(rt, s, batch_pk, entry)
    else:
        rt.cache.put(batch_pk, entry)


Change = Callable[[Session, Batch, LiveWorkflow], dict[str, Any]]


class Idempotency(NamedTuple):
    """A request carrying an ``Idempotency-Key``: its answer is stored under the batch *and
    the user*, so a key one person chose never hands their answer to another."""

    user: str
    key: str
    request: dict[str, Any]

    def scope(self, batch_id: str) -> str:
        return f"batch:{batch_id}|user:{self.user}"


def mutate(
    rt: Runtime,
    batch_id: str,
    change: Change,
    *,
    idempotency: Idempotency | None = None,
    allow_states: tuple[BatchState, ...] = (BatchState.RUNNING,),
    status: int = 200,
) -> Outcome:
    """Run ``change`` on the batch's live workflow, lock the batch, persist it, all in one
    transaction (see the module docstring for the order and why the workflow is borrowed)."""
    for _attempt in range(ATTEMPTS):
        try:
            return _mutate_once(rt, batch_id, change, idempotency, allow_states, status)
        except _Stale:
            wait_for_writer(rt)
    raise Conflict(
        f"batch {batch_id} kept changing while this request was worked out; repeat the request",
        code="concurrent_change",
    )


def _mutate_once(
    rt: Runtime,
    batch_id: str,
    change: Change,
    idempotency: Idempotency | None,
    allow_states: tuple[BatchState, ...],
    status: int,
) -> Outcome:
    try:
        with rt.transaction(deferred=True) as s:
            batch = find_batch(s, batch_id)
            if idempotency is not None:
                stored = replay(s, idempotency.scope(batch_id), idempotency.key, idempotency.request)
                if stored is not None:
                    return stored
            if batch.state not in allow_states:
                raise Conflict(
                    f"batch {batch_id} is {batch.state}", code=f"batch_{batch.state}", details={"state": batch.state}
                )
            s.info[_GUARD] = (batch.revision, allow_states)
            with live_workflow(rt, s, batch, changing=True) as entry:
                body = change(s, batch, entry)
                persist(rt, s, batch, entry)
            if isinstance(body.get("batch"), dict):
                body["batch"]["state"] = batch.state  # the step may have completed the batch
            if idempotency is not None:
                s.add(
                    IdempotentRequest(
                        scope=idempotency.scope(batch_id),
                        key=idempotency.key,
                        request_hash=request_hash(idempotency.request),
                        status=status,
                        response=body,
                    )
                )
        return Outcome(status, body)
    except IntegrityError as exc:
        raise Conflict("the batch changed at the same time; repeat the request", code="concurrent_change") from exc
    except WorkflowException as exc:
        raise EngineFault(
            f"the recipe failed: {exc}", details={"task": getattr(getattr(exc, "task_spec", None), "bpmn_id", None)}
        ) from exc


def answered(rt: Runtime, batch_id: str, user: str, key: str | None) -> bool:
    """``user`` already has a stored answer under ``key`` for this batch (a repeat will be
    replayed, so there is nothing to sign again)."""
    if not key:
        return False
    with rt.transaction() as s:
        return s.get(IdempotentRequest, (Idempotency(user, key, {}).scope(batch_id), key)) is not None


def persist(rt: Runtime, s: Session, batch: Batch, entry: LiveWorkflow) -> None:
    """Everything that follows an advance of the workflow, in the same transaction."""
    lock_for_writing(s, batch)
    # (both bumped by the lock, or neither); a move to a new recipe version re-reads the rows
    index_current = batch.ready_revision == batch.revision and not moved_version(batch)
    wf = entry.workflow
    task_times.record(s, batch, entry)  # before pruning: a loop's finished unit procedure still ends
    equipment_use.release_ended(rt.settings, s, batch, wf)  # (before pruning too)
    prune(wf)
    _schedule(rt, s, batch, entry)
    if batch.state == BatchState.RUNNING and runner.is_finished(wf):
        batch.state = BatchState.COMPLETE
        batch.completed_at = utcnow()
        audit.record(
            s,
            user="system",
            action="batch.complete",
            object_type="batch",
            object_id=batch.batch_id,
            field="state",
            old=BatchState.RUNNING,
            new=BatchState.COMPLETE,
        )
        outbox.emit(s, rt.settings, "batch.completed", batch.batch_id, {"batch_id": batch.batch_id})
        equipment_use.release(rt.settings, s, batch, user="system")  # what it held is dirty now
        if batch.kind != "quality":  # QA's release flow starts off this transaction, by the job executor
            s.add(
                Job(
                    kind=JobKind.START_QUALITY_PROCESS,
                    batch_id=batch.id,
                    payload={"flow": "release", "batch": batch.batch_id},
                    max_attempts=rt.settings.job_max_attempts,
                )
            )
        order_confirmations.schedule(rt, s, batch)  # the ERP hears of it once committed
    rt.store.save(s, batch.id, entry)
    if not s.info.pop(_BUMPED, False):  # (``append_step``'s lock statement bumped it already)
        batch.revision += 1
    entry.revision = batch.revision
    ready_index.update_in(rt, s, batch, entry, current=index_current)  # the task lists, same transaction


def _schedule(rt: Runtime, s: Session, batch: Batch, entry: LiveWorkflow) -> None:
    """Create the jobs and message subscriptions the workflow now waits on."""
    wf = entry.workflow
    scheduled = entry.scheduled
    if scheduled is None:
        scheduled = entry.scheduled = {
            (row.kind, row.task_id)
            for row in s.execute(
                select(Job.kind, Job.task_id).where(
                    Job.batch_id == batch.id,
                    Job.state == JobState.PENDING,
                    Job.kind.in_((JobKind.TIMER, JobKind.SERVICE_TASK, JobKind.STEP_DUE)),
                )
            )
        }
    key: tuple[str, str | None]
    for timer in runner.waiting_timers(wf):
        key = (JobKind.TIMER, timer.task_id)
        if key not in scheduled:
            s.add(
                Job(
                    kind=JobKind.TIMER,
                    batch_id=batch.id,
                    task_id=timer.task_id,
                    due_at=timer.due_at,
                    max_attempts=rt.settings.job_max_attempts,
                )
            )
            scheduled.add(key)
    for task in runner.waiting_service_tasks(wf):
        key = (JobKind.SERVICE_TASK, str(task.id))
        if key not in scheduled and not task.internal_data.get("batchline_pending"):
            s.add(
                Job(
                    kind=JobKind.SERVICE_TASK,
                    batch_id=batch.id,
                    task_id=str(task.id),
                    max_attempts=rt.settings.job_max_attempts,
                    # an incident of a critical service task is a critical exception (engine.jobs)
                    payload={"critical": True} if lateness.spec_critical(task.task_spec) else {},
                )
            )
            scheduled.add(key)
    lateness.schedule(rt, s, batch, wf, scheduled)  # user tasks with a ``due`` time
    live_ids = {str(t.id) for t in runner.tasks(wf)}
    scheduled.difference_update([(kind, task_id) for kind, task_id in scheduled if task_id not in live_ids])

    wanted = {(m.task_id, m.message, canonical(m.correlation)) for m in runner.waiting_messages(wf)}
    have = entry.subscriptions
    if have is None:
        have = {
            (r.task_id, r.message, canonical(r.correlation))
            for r in s.scalars(select(MessageSubscription).where(MessageSubscription.batch_id == batch.id))
        }
    if wanted != have:
        for task_id, _, _ in have - wanted:
            s.execute(
                delete(MessageSubscription).where(
                    MessageSubscription.batch_id == batch.id, MessageSubscription.task_id == task_id
                )
            )
        for task_id, message, corr in wanted - have:
            s.add(
                MessageSubscription(batch_id=batch.id, task_id=task_id, message=message, correlation=json.loads(corr))
            )
    entry.subscriptions = wanted
