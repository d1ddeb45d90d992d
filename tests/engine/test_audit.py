"""The audit trail is append-only and hash-chained: tampering with the database
directly (edit, delete in the middle, delete at the end, reorder) is detected."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from engine import audit, batches

from .engine_helpers import complete, load


def _trail(rt) -> None:
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "AU-1", user="op.anna", parameters={"done": False})
    for i in range(4):
        complete(rt, "AU-1", "take_sample", {"reading": i, "done": False})
    batches.change_state(rt, "AU-1", "hold", user="sup.carl", reason="check")


def _verify(rt):
    with rt.transaction() as s:
        return audit.verify(s)


def test_untouched_trail_verifies_and_records_who_what_when(rt):
    _trail(rt)
    result = _verify(rt)
    assert result.ok and result.entries >= 8
    with rt.transaction() as s:
        rows = s.execute(
            text(
                'SELECT "user", action, object_id, field, old, new, reason FROM audit_event '
                "WHERE action = 'batch.hold'"
            )
        ).all()
    assert rows == [("sup.carl", "batch.hold", "AU-1", "state", "running", "held", "check")]


@pytest.mark.parametrize(
    "tamper, expected",
    [
        ("UPDATE audit_event SET new = '{\"reading\": 99}' WHERE id = 4", "entry 4: content does not match"),
        ("DELETE FROM audit_event WHERE id = 3", "entry 4: does not follow"),
        ("DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)", "entries removed at the end"),
        ("SWAP 2 3", "does not follow"),
    ],
)
def test_tampering_is_detected(rt, tamper, expected):
    _trail(rt)
    assert _verify(rt).ok
    with rt.transaction() as s:
        if tamper == "SWAP 2 3":  # reorder: entries 2 and 3 change places
            s.execute(text("UPDATE audit_event SET id = -id WHERE id IN (2, 3)"))
            s.execute(
                text("UPDATE audit_event SET id = CASE id WHEN -2 THEN 3 WHEN -3 THEN 2 END WHERE id IN (-2, -3)")
            )
        else:
            s.execute(text(tamper))
    result = _verify(rt)
    assert not result.ok
    assert any(expected in p for p in result.problems), result.problems


def test_step_values_are_in_the_trail(rt):
    _trail(rt)
    with rt.transaction() as s:
        news = [
            r[0] for r in s.execute(text("SELECT new FROM audit_event WHERE action = 'step.user_task' ORDER BY id"))
        ]
    assert news[0] == '{"done": false, "reading": 0}'
