"""Moving a running batch to a newer version: inside a unit procedure (a call activity
subprocess), refused when its position does not map (at the request, and at QA's approval
when the batch moved on meanwhile), segregation of duties, the record pinning each step's
version, reloads from the stored rows — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from engine import batches, recipe_versions
from engine.errors import BatchlineError, Conflict, InvalidInput
from engine.models import AuditEvent, BatchMigration, BatchMigrationSignature
from engine.permissions import Forbidden
from tests.engine.engine_helpers import complete, ready
from tests.recipe_versions.helpers import call_activity_versions
from tests.support import person

SUP, QA = person("sup.sam"), person("qa.quinn")


def _waiting_inside_seed_expansion(rt, batch_id="MIG-1", upto=2):
    versions = call_activity_versions(rt, start=(batch_id, "sup.sam"), upto=upto)
    complete(rt, batch_id, "line_clearance")
    assert set(ready(rt, batch_id)) == {"thaw_vial"}  # inside the call activity up_seed
    return versions


def test_batch_waiting_inside_a_unit_procedure_moves_to_the_new_version(rt):
    v1, v2, _ = _waiting_inside_seed_expansion(rt)
    asked = recipe_versions.request_migration(
        rt, "MIG-1", to_version=2, reason="viability check added (CC-42)", requester=SUP
    )
    assert asked.status == 201 and asked.body["status"] == "requested"
    assert {(p["element"], p["state"]) for p in asked.body["position"]} == {
        ("up_seed", "STARTED"),
        ("thaw_vial", "READY"),
    }
    # nothing moved yet: the batch still runs version 1
    assert batches.get_batch(rt, "MIG-1")["recipe_version_id"] == v1.id
    done = recipe_versions.approve_migration(rt, "MIG-1", asked.body["id"], signer=QA).body["migration"]
    assert done["status"] == "approved" and done["decided_by"] == "qa.quinn"
    assert done["signature"]["meaning"] == "Approved" and len(done["signature"]["content_hash"]) == 64
    assert batches.get_batch(rt, "MIG-1")["recipe_version_id"] == v2.id
    for _ in range(2):  # from the stored rows, not the cached workflow
        rt.cache.clear()
        assert set(ready(rt, "MIG-1")) == {"thaw_vial"}
    complete(rt, "MIG-1", "thaw_vial")
    assert set(ready(rt, "MIG-1")) == {"check_viability"}  # new in version 2, same subprocess
    complete(rt, "MIG-1", "check_viability")
    complete(rt, "MIG-1", "count_cells")
    complete(rt, "MIG-1", "harvest_volume")
    rt.cache.clear()
    assert set(ready(rt, "MIG-1")) == {"harvest_sample"}  # new in version 2, a later unit procedure
    complete(rt, "MIG-1", "harvest_sample")
    assert batches.get_batch(rt, "MIG-1")["state"] == "complete"
    pins = {s["bpmn_id"]: s["recipe_version_id"] for s in batches.steps(rt, "MIG-1")}
    assert pins == {
        "line_clearance": v1.id,
        "thaw_vial": v2.id,
        "check_viability": v2.id,
        "count_cells": v2.id,
        "harvest_volume": v2.id,
        "harvest_sample": v2.id,
    }
    with rt.transaction() as s:
        actions = [
            (e.action, e.user, e.old, e.new)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.object_id == "MIG-1").order_by(AuditEvent.id))
            if e.action.startswith("batch.migrat")
        ]
        assert actions == [
            ("batch.migration_requested", "sup.sam", "mab_mini:1", "mab_mini:2"),
            ("batch.migrated", "qa.quinn", "mab_mini:1", "mab_mini:2"),
        ]
    (listed,) = recipe_versions.list_migrations(rt, "MIG-1")
    assert listed["status"] == "approved" and listed["signature"]["username"] == "qa.quinn"


def test_refused_at_the_request_naming_the_element_that_does_not_map(rt):
    _waiting_inside_seed_expansion(rt, upto=3)
    with pytest.raises(Conflict) as err:
        recipe_versions.request_migration(rt, "MIG-1", to_version=3, reason="new thaw SOP", requester=SUP)
    assert err.value.code == "migration_unmapped"
    assert err.value.details["unmapped"] == ["thaw_vial"]
    assert "thaw_vial" in err.value.message
    assert err.value.details["problems"][0]["process"] == "seed_expansion"
    with rt.transaction() as s:
        assert s.scalars(select(BatchMigration)).all() == []


def test_refused_at_approval_when_the_batch_moved_on_to_an_unmapped_element(rt):
    call_activity_versions(rt, start=("MIG-2", "sup.sam"), upto=3)
    asked = recipe_versions.request_migration(rt, "MIG-2", to_version=3, reason="new thaw SOP", requester=SUP)
    complete(rt, "MIG-2", "line_clearance")  # now at thaw_vial, which version 3 has not
    with pytest.raises(Conflict) as err:
        recipe_versions.approve_migration(rt, "MIG-2", asked.body["id"], signer=QA)
    assert err.value.code == "migration_unmapped" and err.value.details["unmapped"] == ["thaw_vial"]
    (row,) = recipe_versions.list_migrations(rt, "MIG-2")
    assert row["status"] == "refused" and row["problems"][0]["element"] == "thaw_vial"
    assert row["signature"] is None
    rt.cache.clear()
    assert batches.get_batch(rt, "MIG-2")["recipe_version_id"] == asked.body["from_version_id"]
    assert set(ready(rt, "MIG-2")) == {"thaw_vial"}  # the batch goes on where it was
    with rt.transaction() as s:
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.action == "batch.migration_refused")).all()
        assert s.scalars(select(BatchMigrationSignature)).all() == []


def test_who_may_request_and_approve(rt):
    _waiting_inside_seed_expansion(rt)
    for who in (person("op.anna"), QA):
        with pytest.raises(Forbidden):
            recipe_versions.request_migration(rt, "MIG-1", to_version=2, reason="r", requester=who)
    both = type(SUP)("sup.both", "Both", ("supervisor", "qa"))
    asked = recipe_versions.request_migration(rt, "MIG-1", to_version=2, reason="r", requester=both)
    with pytest.raises(Conflict) as err:  # one open request per batch
        recipe_versions.request_migration(rt, "MIG-1", to_version=2, reason="r", requester=SUP)
    assert err.value.code == "migration_pending"
    for who in (SUP, person("op.anna")):
        with pytest.raises(Forbidden):
            recipe_versions.approve_migration(rt, "MIG-1", asked.body["id"], signer=who)
    with pytest.raises(Forbidden) as err:  # requester ≠ approver, whatever their roles
        recipe_versions.approve_migration(rt, "MIG-1", asked.body["id"], signer=both)
    assert err.value.code == "segregation_of_duties"
    recipe_versions.approve_migration(rt, "MIG-1", asked.body["id"], signer=QA)
    with pytest.raises(Conflict) as err:
        recipe_versions.approve_migration(rt, "MIG-1", asked.body["id"], signer=person("qa.other"))
    assert err.value.code == "migration_approved"


def test_only_newer_approved_versions_of_a_running_batch(rt):
    _waiting_inside_seed_expansion(rt)
    for version, code in ((1, "migration_not_newer"), (9, "recipe_not_found")):
        with pytest.raises(BatchlineError) as err:
            recipe_versions.request_migration(rt, "MIG-1", to_version=version, reason="r", requester=SUP)
        assert err.value.code == code
    for bad in ({"to_version": "2"}, {"to_version": 0}, {"to_version": True}, {"to_version": 2**40}):
        with pytest.raises(InvalidInput):
            recipe_versions.request_migration(rt, "MIG-1", reason="r", requester=SUP, **bad)
    for reason in ("", "   ", None, 7, "x" * 2001, "bad\x00reason"):
        with pytest.raises(InvalidInput):
            recipe_versions.request_migration(rt, "MIG-1", to_version=2, reason=reason, requester=SUP)
    batches.change_state(rt, "MIG-1", "abort", user="sup.sam", reason="test")
    with pytest.raises(Conflict):
        recipe_versions.request_migration(rt, "MIG-1", to_version=2, reason="r", requester=SUP)


def test_two_qa_people_approving_at_once_move_the_batch_once(rt):
    _waiting_inside_seed_expansion(rt)
    asked = recipe_versions.request_migration(rt, "MIG-1", to_version=2, reason="r", requester=SUP)
    outcomes: list[str] = []

    def approve(who: str) -> None:
        try:
            recipe_versions.approve_migration(rt, "MIG-1", asked.body["id"], signer=person(who))
            outcomes.append("approved")
        except BatchlineError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=approve, args=(f"qa.{n}",)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["approved", "migration_approved"]
    with rt.transaction() as s:
        assert len(s.scalars(select(BatchMigrationSignature)).all()) == 1
    rt.cache.clear()
    complete(rt, "MIG-1", "thaw_vial")
    assert set(ready(rt, "MIG-1")) == {"check_viability"}


def test_the_approving_signature_is_never_changed(rt):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    _waiting_inside_seed_expansion(rt)
    asked = recipe_versions.request_migration(rt, "MIG-1", to_version=2, reason="r", requester=SUP)
    recipe_versions.approve_migration(rt, "MIG-1", asked.body["id"], signer=QA)
    for sql in ("UPDATE batch_migration_signature SET username = 'x'", "DELETE FROM batch_migration_signature"):
        with pytest.raises(DBAPIError, match="append_only"):
            with rt.db.begin() as conn:
                conn.execute(text(sql))
