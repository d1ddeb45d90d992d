"""The audit trail and the record cannot be rewritten unnoticed (issue 8, point 4).

The chain is keyed (HMAC-SHA256 under a key the database does not hold); every step,
signature and correction row is bound into the entry that recorded it; the database
refuses UPDATE/DELETE on the append-only tables. Tampering here is done as the database
owner would (``tamper.as_owner`` drops the triggers first); ``verify`` must still name
each change. Expected problems are literal strings."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from engine import audit, batches
from engine.audit.keys import AuditKeys
from engine.models import AuditEvent, AuditHead, Correction, Signature, Step
from engine.users import Person
from engine.workflow_store import canonical, sha256
from tests.support import RECIPES, approved_recipe

from .engine_helpers import complete, load
from .tamper import as_owner

EDITED = "content does not match its hash (edited, or sealed with another key)"


def _trail(rt) -> None:
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "AU-1", user="op.anna", parameters={"done": False})
    for i in range(4):
        complete(rt, "AU-1", "take_sample", {"reading": i, "done": False})
    batches.change_state(rt, "AU-1", "hold", user="sup.carl", reason="check")


def signed_trail(rt) -> None:
    """12 entries: 1-2 recipe, 3 start, 4 step 1 (weigh), 5 its signature, 6-7 the
    correction of step 1 (mass_kg recalculated, mass_g), 8 the correction's exception for
    QA (correction.after_signing), 9 step 2 (transfer), 10-11 its performer and witness
    signatures, 12 batch complete. Rows: steps 1-2, signatures 1-4
    (2 is the corrector's), corrections 1 (mass_g) and 2 (mass_kg)."""
    forms = {p.stem: json.loads(p.read_text()) for p in (RECIPES / "signed_forms").glob("*.json")}
    approved_recipe(rt, {"signed.bpmn": (RECIPES / "signed.bpmn").read_bytes()}, forms=forms, user="qa.lead")
    batches.start_batch(rt, "signed_steps", "SG-1", user="op.anna")
    alice = Person("alice", "Alice", ("operator", "supervisor", "qa"))
    sv = Person("sv", "Sam", ("supervisor",))
    complete(rt, "SG-1", "weigh", {"mass_g": 101, "comment": "first"}, user="alice", signer=alice)
    batches.correct_step(rt, "SG-1", 1, "mass_g", 100.5, reason="typo: read 101 for 100.5", signer=alice)
    complete(rt, "SG-1", "transfer", {"transferred": True}, user="alice", signer=alice, witness=sv)


def _verify(rt, **kw):
    with rt.transaction() as s:
        return audit.verify(s, settings=rt.settings, **kw)


def test_untouched_trail_verifies_and_records_who_what_when(rt):
    _trail(rt)
    result = _verify(rt, anchors=True, signatures=True)
    assert result.ok, result.problems
    assert (result.entries, result.legacy_entries, result.record_rows, result.legacy_rows) == (8, 0, 4, 0)
    with rt.transaction() as s:
        rows = s.execute(
            text(
                'SELECT "user", action, object_id, field, old, new, reason, scheme FROM audit_event '
                "WHERE action = 'batch.hold'"
            )
        ).all()
    assert rows == [("sup.carl", "batch.hold", "AU-1", "state", "running", "held", "check", "hmac-sha256")]


def test_signed_trail_binds_every_record_row(rt):
    signed_trail(rt)
    result = _verify(rt, anchors=True, signatures=True)
    assert result.ok, result.problems
    assert (result.entries, result.record_rows) == (12, 8)
    assert result.signatures == {"checked": 4, "mismatches": 0, "problems": []}
    with rt.transaction() as s:
        bound = dict(s.execute(select(AuditEvent.id, AuditEvent.bound).where(AuditEvent.bound.is_not(None))).all())
        step1 = s.get(Step, 1)
    assert sorted(bound) == [4, 5, 6, 7, 9, 10, 11]
    (entry,) = json.loads(bound[4])
    # the step's entry carries the step's values_hash and the hash of the whole row
    assert entry["table"] == "step" and entry["id"] == 1 and entry["values_hash"] == step1.values_hash
    assert step1.values_hash == sha256('{"comment":"first","mass_g":"101","mass_kg":"0.1010","printout":null}')
    assert [(b["table"], b["id"]) for b in json.loads(bound[7])] == [("correction", 1), ("signature", 2)]


@pytest.mark.parametrize(
    "tamper, expected",
    [
        ("UPDATE audit_event SET new = '{\"reading\": 99}' WHERE id = 4", "entry 4: " + EDITED),
        ("DELETE FROM audit_event WHERE id = 3", "entry 4: does not follow"),
        ("DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)", "entries removed at the end"),
        ("SWAP 2 3", "does not follow"),
    ],
)
def test_tampering_is_detected(rt, tamper, expected):
    _trail(rt)
    assert _verify(rt).ok
    with as_owner(rt) as s:
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


#: an edit of each column of entry 7 (the correction of step 1's mass_g)
COLUMN_EDITS = [
    ("user", "bob"),
    ("at", datetime(2026, 1, 1, 12, 0, tzinfo=UTC)),
    ("action", "step.view"),
    ("object_type", "recipe"),
    ("object_id", "SG-2"),
    ("field", "step 1.comment"),
    ("old", "100.5"),
    ("new", "101"),
    ("reason", "typo"),
    ("prev_hash", "0" * 64),
]


@pytest.mark.parametrize("column, value", COLUMN_EDITS, ids=[c for c, _ in COLUMN_EDITS])
def test_an_edit_of_every_audit_column_is_detected(rt, column, value):
    signed_trail(rt)
    with as_owner(rt) as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == 7).values({column: value}))
    problems = _verify(rt).problems
    if column == "prev_hash":
        assert problems == [
            "entry 7: does not follow the entry before it (deleted or reordered rows)",
            "entry 7: " + EDITED,
        ]
    else:
        assert problems == ["entry 7: " + EDITED]


def test_an_edit_of_the_binding_or_the_scheme_is_detected(rt):
    signed_trail(rt)
    with as_owner(rt) as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == 4).values(bound="[]"))
        s.execute(update(AuditEvent).where(AuditEvent.id == 9).values(scheme="sha256"))
    assert _verify(rt).problems == [
        "entry 4: " + EDITED,
        "entry 9: not sealed with the audit key (scheme 'sha256' after keyed entries)",
        "entry 9: " + EDITED,
        "step 1 (batch SG-1, step 1): recorded by no audit entry (inserted outside Batchline)",
        "step 2 (batch SG-1, step 2): recorded by no audit entry (inserted outside Batchline)",
    ]


def test_an_edited_step_with_a_recomputed_values_hash_is_detected(rt):
    signed_trail(rt)
    forged = {"comment": "first", "mass_g": "99.0", "mass_kg": "0.0990", "printout": None}
    with as_owner(rt) as s:
        s.execute(update(Step).where(Step.id == 1).values(values=forged, values_hash=sha256(canonical(forged))))
    result = _verify(rt, signatures=True)
    assert result.problems == [
        "step 1 (batch SG-1, step 1): does not match audit entry 4 (edited after it was recorded)",
        "signature 1 (Performed by alice, batch SG-1, step 1): the record no longer matches what was signed",
    ]
    with as_owner(rt) as s:  # the values alone, values_hash left as it was
        s.execute(update(Step).where(Step.id == 2).values(values={"transferred": False}))
    assert _verify(rt).problems == [
        "step 1 (batch SG-1, step 1): does not match audit entry 4 (edited after it was recorded)",
        "step 2 (batch SG-1, step 2): values_hash does not match its values (edited)",
        "step 2 (batch SG-1, step 2): does not match audit entry 9 (edited after it was recorded)",
    ]


def test_record_rows_deleted_or_inserted_behind_batchline_are_named(rt):
    signed_trail(rt)
    with as_owner(rt) as s:
        s.execute(delete(Signature).where(Signature.id == 3))
        row = {
            c: v for c, v in s.execute(select(Correction.__table__).where(Correction.id == 1)).mappings().one().items()
        }
        s.execute(insert(Correction).values({**row, "id": 3, "reason": "added later"}))
        s.execute(update(Signature).where(Signature.id == 2).values(meaning="Approved"))
    assert _verify(rt, signatures=True).problems == [
        "signature 2 (batch SG-1, step 1): does not match audit entry 7 (edited after it was recorded)",
        "correction 3 (batch SG-1, step 1): recorded by no audit entry (inserted outside Batchline)",
        "audit entry 10: its signature row 3 is missing (deleted)",
    ]


def _rechain(rt, seal) -> None:
    """Change step 2 (recomputing its values_hash), then recompute every binding, entry
    hash and the head with ``seal`` — what an attacker with the database would do."""
    forged = {"transferred": False}
    with as_owner(rt) as s:
        s.execute(update(Step).where(Step.id == 2).values(values=forged, values_hash=sha256(canonical(forged))))
        s.flush()
        prev = audit.GENESIS
        for ev in s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all():
            if ev.bound:
                items = json.loads(ev.bound)
                for item in items:
                    model = {"step": Step, "signature": Signature, "correction": Correction}[item["table"]]
                    row = s.get(model, item["id"])
                    item["row_hash"] = audit.binding.row_hash(row)
                    if item["table"] == "step":
                        item["values_hash"] = row.values_hash
                ev.bound = canonical(items)
            ev.prev_hash = prev
            seal(ev)
            prev = ev.hash
        s.execute(update(AuditHead).values(last_hash=prev))
        s.flush()  # before the triggers come back


def _plain_sha256(ev) -> None:  # the keyed payload, hashed without the key
    payload = json.dumps(
        ["hmac-sha256", ev.id, ev.prev_hash, audit.binding.utc_text(ev.at), ev.user, ev.action, ev.object_type]
        + [ev.object_id, ev.field, ev.old, ev.new, ev.reason, ev.bound],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    ev.hash = hashlib.sha256(payload.encode()).hexdigest()


def _wrong_key(ev) -> None:
    ev.hash = audit.keyed_hash(AuditKeys.from_secret("an attacker's guess at the audit key, 0123"), ev)


def _downgrade(ev) -> None:  # pretend the whole trail predates the key
    ev.scheme = "sha256"
    ev.hash = audit.legacy_hash(
        ev.prev_hash, ev.at, ev.user, ev.action, ev.object_type, ev.object_id, ev.field, ev.old, ev.new, ev.reason
    )


SIGNATURES_OF_STEP_2 = [
    "signature 3 (Performed by alice, batch SG-1, step 2): the record no longer matches what was signed",
    "signature 4 (Verified by sv, batch SG-1, step 2): the record no longer matches what was signed",
]


@pytest.mark.parametrize("seal", [_plain_sha256, _wrong_key], ids=["plain-sha256", "wrong-key"])
def test_a_full_rechain_with_a_new_head_is_detected(rt, seal):
    signed_trail(rt)
    _rechain(rt, seal)
    result = _verify(rt, signatures=True)
    assert result.problems == [f"entry {i}: {EDITED}" for i in range(1, 13)] + SIGNATURES_OF_STEP_2


def test_a_rechain_downgraded_to_unkeyed_entries_is_detected(rt):
    signed_trail(rt)
    with as_owner(rt) as s:
        s.execute(update(AuditHead).values(scheme="sha256"))
    _rechain(rt, _downgrade)
    result = _verify(rt, anchors=True, signatures=True)
    assert result.legacy_entries == 12
    assert result.problems == [
        "step 1 (batch SG-1, step 1): recorded by no audit entry (inserted outside Batchline)",
        "step 2 (batch SG-1, step 2): recorded by no audit entry (inserted outside Batchline)",
        "signature 1 (batch SG-1, step 1): recorded by no audit entry (inserted outside Batchline)",
        "signature 2 (batch SG-1, step 1): recorded by no audit entry (inserted outside Batchline)",
        "signature 3 (batch SG-1, step 2): recorded by no audit entry (inserted outside Batchline)",
        "signature 4 (batch SG-1, step 2): recorded by no audit entry (inserted outside Batchline)",
        "correction 1 (batch SG-1, step 1): recorded by no audit entry (inserted outside Batchline)",
        "correction 2 (batch SG-1, step 1): recorded by no audit entry (inserted outside Batchline)",
        "anchor line 1: entry 1 has another hash than when it was anchored (re-chained)",
        *SIGNATURES_OF_STEP_2,
    ]


@pytest.mark.parametrize("table", ["audit_event", "step", "signature", "correction"])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET batch_id = batch_id", "DELETE FROM {t}"])
def test_direct_sql_updates_and_deletes_are_refused(rt, table, statement):
    signed_trail(rt)
    sql = statement.format(t=table).replace(
        "batch_id = batch_id", "id = id" if table == "audit_event" else "batch_id = batch_id"
    )
    with pytest.raises(DBAPIError) as refused:
        with rt.transaction() as s:
            s.execute(text(sql))
    what = "UPDATE" if sql.startswith("UPDATE") else "DELETE"
    assert f"append_only: {what} on {table} is refused" in str(refused.value)
    assert _verify(rt, anchors=True, signatures=True).ok
    with rt.transaction() as s:
        counts = [
            s.scalar(text(f"SELECT count(*) FROM {t}")) for t in ("audit_event", "step", "signature", "correction")
        ]
    assert counts == [12, 2, 4, 2]


def test_truncate_is_refused_on_postgresql(rt):
    if not rt.settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite has no TRUNCATE (DELETE is refused instead)")
    signed_trail(rt)
    for table in ("audit_event", "step", "signature", "correction"):
        with pytest.raises(DBAPIError) as refused:
            with rt.transaction() as s:
                s.execute(text(f"TRUNCATE {table} CASCADE"))
        assert "append_only: TRUNCATE on" in str(refused.value)
    assert _verify(rt).ok


def test_a_runtime_with_another_key_cannot_vouch_for_the_trail(rt):
    from tests.support import make_runtime

    signed_trail(rt)
    other = make_runtime(rt.settings.database_url, audit_key="another installation's audit key, 0123456789")
    try:
        with other.transaction() as s:
            result = audit.verify(s)
    finally:
        other.close()
    assert result.problems == [f"entry {i}: {EDITED}" for i in range(1, 13)]


def test_step_values_are_in_the_trail(rt):
    _trail(rt)
    with rt.transaction() as s:
        news = [
            r[0] for r in s.execute(text("SELECT new FROM audit_event WHERE action = 'step.user_task' ORDER BY id"))
        ]
    assert news[0] == '{"done": false, "reading": 0}'
