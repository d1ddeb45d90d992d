"""The database side: a trail written before the audit key (migration 0001) keeps its
plain hashes and is sealed by the first keyed append; on PostgreSQL the application role
``db upgrade`` sets up may not UPDATE, DELETE or TRUNCATE the record (privileges), and
the owner is stopped by the triggers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from engine import audit, migrate
from engine.append_only import RoleSetupFailed, grant_app_role
from tests.support import IN_CI, PG_ADMIN_URL, make_runtime

from .engine_helpers import complete, load


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """A database with no schema at all (not the migrated test template)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/legacy.db"
        return
    name = f"batchline_legacy_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        admin.dispose()
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield PG_ADMIN_URL.rsplit("/", 1)[-2] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_a_trail_from_before_the_key_is_sealed_and_kept(empty_url):
    rt = make_runtime(empty_url)
    try:
        migrate.upgrade(rt.db, "0001")  # an installation from before the audit key
        prev = audit.GENESIS
        at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
        with rt.db.begin() as conn:
            for i, action in enumerate(("user.create", "recipe.imported", "recipe.status"), start=1):
                digest = audit.legacy_hash(prev, at, "admin", action, "x", str(i), None, None, None, None)
                conn.execute(
                    text(
                        'INSERT INTO audit_event (id, at, "user", action, object_type, object_id, prev_hash, hash) '
                        "VALUES (:id, :at, 'admin', :action, 'x', :oid, :prev, :hash)"
                    ),
                    {"id": i, "at": at, "action": action, "oid": str(i), "prev": prev, "hash": digest},
                )
                prev = digest
            conn.execute(text("UPDATE audit_head SET last_id = 3, last_hash = :h WHERE id = 1"), {"h": prev})
        rt.create_schema()  # the upgrade cannot re-key: the legacy entries stay as they are
        with rt.transaction() as s:
            before = audit.verify(s)
        assert (before.ok, before.entries, before.legacy_entries) == (True, 3, 3)
        load(rt, "loop.bpmn", approve=False)  # the first keyed append seals the legacy part first
        with rt.transaction() as s:
            seal = s.execute(text("SELECT id, action, new, scheme FROM audit_event WHERE id = 4")).one()
            after = audit.verify(s, settings=rt.settings, anchors=True)
        assert seal[:2] == (4, "audit.keyed") and seal[3] == "hmac-sha256"
        assert json.loads(seal[2]) == {
            "legacy_entries": 3,
            "legacy_rows": {
                "batch_disposition": 0,
                "correction": 0,
                "equipment_log_entry": 0,
                "exception_disposition": 0,
                "lot_movement": 0,
                "qualification": 0,
                "signature": 0,
                "step": 0,
            },
        }
        assert (after.ok, after.entries, after.legacy_entries) == (True, 5, 3), after.problems
        assert after.anchors["newest"] == 5  # the trail became keyed: anchored at once
        # an unkeyed entry after the keyed ones is refused even with a correct plain hash
        with rt.transaction() as s:
            head = s.execute(text("SELECT last_id, last_hash FROM audit_head")).one()
        digest = audit.legacy_hash(head[1], at, "intruder", "step.user_task", "batch", "B", None, None, None, None)
        with rt.db.begin() as conn:
            conn.execute(
                text(
                    'INSERT INTO audit_event (id, at, "user", action, object_type, object_id, prev_hash, hash, scheme) '
                    "VALUES (6, :at, 'intruder', 'step.user_task', 'batch', 'B', :prev, :hash, 'sha256')"
                ),
                {"at": at, "prev": head[1], "hash": digest},
            )
            conn.execute(text("UPDATE audit_head SET last_id = 6, last_hash = :h"), {"h": digest})
        with rt.transaction() as s:
            assert audit.verify(s).problems == [
                "entry 6: not sealed with the audit key (scheme 'sha256' after keyed entries)"
            ]
    finally:
        rt.close()


@pytest.fixture
def app_role(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("roles and privileges are PostgreSQL's")
    role = f"batchline_app_{uuid.uuid4().hex[:8]}"
    yield role
    eng = create_engine(db_url)
    with eng.begin() as conn:
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
    eng.dispose()


def test_the_application_role_cannot_change_the_record_and_the_owner_is_stopped_by_triggers(rt, db_url, app_role):
    granted = grant_app_role(rt.db, app_role)
    assert granted == {
        "role": app_role,
        "created": True,
        "append_only": [
            "audit_event",
            "step",
            "signature",
            "correction",
            "exception_disposition",
            "batch_disposition",
            "qualification",
            "batch_migration_signature",
            "equipment_log_entry",
            "task_time",
            "trend_training",
            "trend_training_decision",
            "lot_movement",
            "archived_batch",
        ],
    }
    with rt.db.begin() as conn:
        conn.execute(text(f'ALTER ROLE "{app_role}" LOGIN'))  # what the DBA does (with a password)
    app_url = make_url(db_url).set(username=app_role).render_as_string(hide_password=False)
    app = make_runtime(app_url, audit_key_file=rt.settings.audit_key_file)
    try:
        load(app, "loop.bpmn")  # the application works as the role: steps, audit, workflow rows
        from engine import batches

        batches.start_batch(app, "sampling_loop", "AR-1", user="op.anna", parameters={"done": False})
        complete(app, "AR-1", "take_sample", {"reading": 1, "done": False})
        batches.change_state(app, "AR-1", "hold", user="sup.carl", reason="check")
        for sql in (
            "UPDATE step SET user = 'x'",
            "DELETE FROM audit_event",
            "TRUNCATE signature",
            "UPDATE correction SET reason = 'x'",
            "DELETE FROM task_time",
            "DROP TRIGGER step_append_only ON step",
        ):
            with pytest.raises(DBAPIError) as refused:
                with app.transaction() as s:
                    s.execute(text(sql.replace("user = ", '"user" = ')))
            assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value), sql
        with pytest.raises(DBAPIError) as by_trigger:  # the owner has the privilege; the trigger refuses
            with rt.transaction() as s:
                s.execute(text("UPDATE step SET \"user\" = 'x'"))
        assert "append_only: UPDATE on step is refused" in str(by_trigger.value)
        with app.transaction() as s:
            assert audit.verify(s, settings=app.settings, anchors=True, signatures=True).ok
    finally:
        app.close()
    assert grant_app_role(rt.db, app_role)["created"] is False  # idempotent: run after every upgrade
    with pytest.raises(RoleSetupFailed) as bad:
        grant_app_role(rt.db, 'x"; DROP TABLE step; --')
    assert bad.value.code == "app_role_invalid"
