"""Two changes of one lot or equipment at the same moment: each is applied in turn (a row
lock on PostgreSQL, the write transaction on SQLite), each is audited, and the final state
is what the two together say — no lost update. Two QA decisions that exclude each other:
one wins, the other is refused with the state it found."""

from __future__ import annotations

import threading

from sqlalchemy import select

from engine.errors import Conflict
from engine.master_data import equipment, lots, materials
from engine.models import AuditEvent
from engine.users import Person

QA1 = Person("qa.quinn", "Quinn QA", ("qa",))
QA2 = Person("qa.rita", "Rita QA", ("qa",))
MIA = Person("mia", "Mia Maintenance", ("maintenance",))


def together(*calls):
    """Run the calls at the same moment; each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    out: list = [None] * len(calls)

    def one(i, call):
        barrier.wait()
        try:
            out[i] = call()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def setup_lot(rt):
    materials.create(rt, {"material_id": "BUF-PBS", "name": "PBS", "unit": "L"}, by="sv")
    lots.create(rt, {"lot_id": "PBS-1", "material": "BUF-PBS", "quantity": 100, "expires_at": "2099-01-01"}, by="sv")


def actions(rt, object_id):
    with rt.transaction() as s:
        return [
            (a.action, a.field, a.user)
            for a in s.scalars(select(AuditEvent).where(AuditEvent.object_id == object_id).order_by(AuditEvent.id))
        ]


def test_two_patches_at_once_are_both_applied_and_audited(rt):
    setup_lot(rt)
    a, b = together(
        lambda: lots.update(rt, "PBS-1", {"quantity": 60, "reason": "used 40 L"}, by="sv.a"),
        lambda: lots.update(rt, "PBS-1", {"expires_at": "2098-06-30", "reason": "retest"}, by="sv.b"),
    )
    assert isinstance(a, dict) and isinstance(b, dict), (a, b)
    final = lots.get(rt, "PBS-1")
    assert final["quantity"] == 60 and final["expires_at"].startswith("2098-06-30") and final["version"] == 2
    assert ("lot.update", "quantity", "sv.a") in actions(rt, "PBS-1")
    assert ("lot.update", "expires_at", "sv.b") in actions(rt, "PBS-1")


def test_two_patches_on_one_version_lose_nothing_silently(rt):
    setup_lot(rt)
    results = together(
        lambda: lots.update(rt, "PBS-1", {"quantity": 60, "version": 0, "reason": "used 40 L"}, by="sv.a"),
        lambda: lots.update(rt, "PBS-1", {"quantity": 70, "version": 0, "reason": "used 30 L"}, by="sv.b"),
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 1 and lost[0].code == "stale_version", results
    assert lots.get(rt, "PBS-1")["quantity"] == won[0]["quantity"]
    (change,) = [x for x in actions(rt, "PBS-1") if x[0] == "lot.update"]  # the refused one changed nothing
    assert change[1] == "quantity"


def test_release_and_reject_at_once_one_wins(rt):
    setup_lot(rt)
    results = together(
        lambda: lots.change_status(rt, "PBS-1", "released", by=QA1, reason="CoA ok"),
        lambda: lots.change_status(rt, "PBS-1", "rejected", by=QA2, reason="damaged drum"),
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 1, results
    final = lots.get(rt, "PBS-1")["status"]
    assert final == won[0]["status"]
    (decision,) = [x for x in actions(rt, "PBS-1") if x[0] == "lot.status"]
    assert decision[2] == ("qa.quinn" if final == "released" else "qa.rita")


def test_two_maintenance_changes_at_once_end_consistent(rt):
    equipment.create(rt, {"equipment_id": "TFF-1", "equipment_class": "tff_skid"}, by="sv")
    results = together(
        lambda: equipment.change_status(rt, "TFF-1", "maintenance", by=MIA, reason="pump service"),
        lambda: equipment.change_status(rt, "TFF-1", "out_of_service", by=MIA, reason="retired"),
    )
    assert all(isinstance(r, dict) for r in results), results  # each allowed from the other
    final = equipment.get(rt, "TFF-1")
    assert final["status"] in ("maintenance", "out_of_service") and final["version"] == 2
    trail = [x for x in actions(rt, "TFF-1") if x[0] == "equipment.status"]
    assert len(trail) == 2
