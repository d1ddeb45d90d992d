"""The audit head is locked at commit, not at the first ``audit.record`` (issue 13).

``record`` queues an entry in its transaction; the commit locks the single ``audit_head``
row once, chains the queued entries in the order they were recorded and inserts them.
So a transaction that has recorded entries but not committed does not stop another one
from recording and committing; the chain follows commit order, stays gap-free, and a
rolled-back transaction leaves neither an entry nor a hole in the sequence."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from engine import audit, batches
from engine.models import AuditEvent, AuditHead

from .engine_helpers import complete, load


def _head(rt) -> tuple[int, str]:
    with rt.transaction() as s:
        head = s.get(AuditHead, 1)
        return (head.last_id, head.last_hash) if head else (0, audit.GENESIS)


def _entries(rt) -> list[AuditEvent]:
    with rt.transaction() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _verify(rt):
    with rt.transaction() as s:
        return audit.verify(s, settings=rt.settings)


def _note(s, name: str) -> AuditEvent:
    return audit.record(s, user="op.anna", action="test.note", object_type="note", object_id=name)


def test_head_is_not_locked_until_commit(rt, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers with BEGIN IMMEDIATE: there is no row lock to see")
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "CO-1", user="op.anna", parameters={"done": False})
    with rt.transaction() as a:
        first = _note(a, "a-1")
        second = _note(a, "a-2")
        a.flush()
        assert first.id is None  # queued, not chained: A holds no lock on the head
        with rt.transaction() as b:
            # would wait for A (and fail after 3 s) if A held the head's row lock
            b.execute(text("SET LOCAL lock_timeout = '3s'"))
            other = _note(b, "b-1")
        # and a whole step of the batch commits meanwhile
        complete(rt, "CO-1", "take_sample", {"reading": 1, "done": False})
        assert other.id is not None
    # A committed last: its entries come after B's and the step's, in the order recorded
    assert first.id == second.id - 1
    assert other.id < first.id
    rows = _entries(rt)
    assert [r.id for r in rows] == list(range(1, len(rows) + 1))
    assert [r.object_id for r in rows[-2:]] == ["a-1", "a-2"]
    assert _head(rt) == (second.id, second.hash)
    result = _verify(rt)
    assert result.ok, result.problems


def test_flush_pending_takes_the_head_lock_then(rt, db_url):
    """A transaction that needs its entry's id (an archive) chains early: from then on
    it holds the head, and another writer waits for its commit."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers with BEGIN IMMEDIATE: there is no row lock to see")
    from sqlalchemy.exc import OperationalError

    with rt.transaction() as a:
        entry = _note(a, "a-1")
        audit.flush_pending(a)
        assert entry.id is not None and entry.hash
        with pytest.raises(OperationalError, match="lock timeout"):
            with rt.transaction() as b:
                b.execute(text("SET LOCAL lock_timeout = '500ms'"))
                _note(b, "b-1")
        later = _note(a, "a-2")  # recorded after the early chaining: chained at commit
    assert later.id == entry.id + 1
    assert [r.object_id for r in _entries(rt)] == ["a-1", "a-2"]
    assert _verify(rt).ok


def test_entries_keep_the_order_they_were_recorded_in(rt):
    with rt.transaction() as s:
        made = [_note(s, f"n-{i}") for i in range(5)]
    rows = _entries(rt)
    assert [r.object_id for r in rows] == [f"n-{i}" for i in range(5)]
    assert [e.id for e in made] == [r.id for r in rows]
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert _verify(rt).ok


def test_rolled_back_transaction_leaves_no_entry_and_no_gap(rt):
    with rt.transaction() as s:
        _note(s, "before")
    before = _head(rt)
    with pytest.raises(RuntimeError):
        with rt.transaction() as s:
            _note(s, "lost-1")
            audit.flush_pending(s)  # chained and inserted, then rolled back with the rest
            _note(s, "lost-2")
            raise RuntimeError("the operation failed")
    with pytest.raises(RuntimeError):
        with rt.transaction() as s:
            _note(s, "lost-3")  # queued only
            raise RuntimeError("the operation failed")
    assert _head(rt) == before
    with rt.transaction() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.object_id.like("lost%"))) == 0
        after = _note(s, "after")
    assert after.id == before[0] + 1
    assert after.prev_hash == before[1]
    assert _verify(rt).ok


def test_a_refused_entry_leaves_no_entry(rt):
    """An entry binding a row of a table that is not bound is refused when recorded, and
    the transaction's other entries go with it."""
    with pytest.raises(ValueError):
        with rt.transaction() as s:
            _note(s, "x")
            audit.record(
                s,
                user="u",
                action="a",
                object_type="t",
                object_id="1",
                binds=[AuditHead(id=9, last_id=0, last_hash="")],
            )
    assert not [r for r in _entries(rt) if r.object_id == "x"]


def test_archive_lock_order_does_not_deadlock_with_a_step(rt, db_url):
    """A step writes task data, then (at commit) takes the audit head; the archive locks
    the task_data table, then chains its entry (``flush_pending``). Both take the head
    last, so neither waits for the other while holding it: no deadlock, both commit."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers with BEGIN IMMEDIATE: there is no row lock to see")
    import threading
    import time

    from engine.models import TaskData

    errors: list[BaseException] = []
    waiting = threading.Event()

    def archive_like() -> None:
        try:
            with rt.transaction() as b:
                b.execute(text("SET LOCAL lock_timeout = '20s'"))
                _note(b, "archive")  # recorded first, as engine.archive.moving does
                waiting.set()
                b.execute(text("LOCK TABLE task_data IN SHARE ROW EXCLUSIVE MODE"))  # waits for the step
                audit.flush_pending(b)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with rt.transaction() as a:
        a.add(TaskData(hash="f" * 64, body="{}"))
        a.flush()  # the step holds task_data ROW EXCLUSIVE
        other = threading.Thread(target=archive_like)
        other.start()
        waiting.wait(10)
        time.sleep(0.5)  # the archive now waits for the table lock
        _note(a, "step")  # had the archive taken the head at its record: a deadlock here
    other.join(30)
    assert not other.is_alive()
    assert not errors, errors
    assert [r.object_id for r in _entries(rt)] == ["step", "archive"]
    assert _verify(rt).ok
