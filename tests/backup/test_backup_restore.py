"""Backup and restore on SQLite and PostgreSQL: a backup taken while steps are being
completed restores into a fresh database whose audit trail verifies (anchors included)
and whose batch records are identical to the source's at backup time."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import func, select

from engine import audit, backup, batches, restore
from engine.models import AuditEvent, Step
from tests.engine.engine_helpers import complete, load
from tests.support import make_runtime

from .conftest import records

PLANT = ("BK-1", "BK-2", "BK-3")


def _steps(rt) -> dict[int, tuple]:
    with rt.transaction() as s:
        return {r.id: (r.batch_id, r.seq, r.values_hash) for r in s.scalars(select(Step))}


def _busy(url: str, stop: threading.Event, done: list[str], errors: list[BaseException]) -> None:
    """An operator completing steps of ten-step batches until told to stop."""
    rt = make_runtime(url)
    n = 0
    try:
        while not stop.is_set():
            n += 1
            batch = f"RUN-{n}"
            batches.start_batch(rt, "ten_steps", batch, user="sup.sam")
            for i in range(1, 11):
                complete(rt, batch, f"step_{i}", {"note": f"{batch}/{i}"})
                if stop.is_set():
                    break
            done.append(batch)
    except BaseException as exc:  # noqa: BLE001 - the test says what the writer met
        errors.append(exc)
    finally:
        rt.close()


def test_backup_while_writing_restores_identical_and_verified(plant, fresh, tmp_path):
    rt = plant
    load(rt, "ten_steps.bpmn")
    before = records(rt, PLANT)
    stop, done, errors = threading.Event(), [], []
    url = rt.db.url.render_as_string(hide_password=False)
    worker = threading.Thread(target=_busy, args=(url, stop, done, errors))
    worker.start()
    try:
        while not done and worker.is_alive():  # at least one batch fully written, another under way
            worker.join(0.05)
        taken = backup.take(rt, tmp_path / "bk", user="os:test")
        writing = worker.is_alive()
    finally:
        stop.set()
        worker.join(60)
    assert not errors, errors
    assert writing and not worker.is_alive()  # the writer ran through the whole backup
    assert records(rt, PLANT) == before  # the plant's batches did not move meanwhile
    source_steps = _steps(rt)
    assert taken["audit_head"]["id"] > 0 and taken["parts"]["audit-anchors.jsonl"]["bytes"] > 0
    assert not taken["includes_key"] and not (tmp_path / "bk" / "audit.key").exists()

    target = make_runtime(fresh())
    try:
        out = restore.restore(target, tmp_path / "bk", user="os:test")
        assert out["verify"]["ok"], out["verify"]["problems"]
        assert out["verify"]["anchors"]["anchors"] >= 1
        assert records(target, PLANT) == before
        restored = _steps(target)
        assert restored and set(restored) <= set(source_steps)
        assert all(source_steps[i] == restored[i] for i in restored)  # every step whole, as written
        with target.transaction() as s:
            last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
            assert last.action == "backup.restored" and '"verify_ok": true' in last.new
            assert last.id == taken["audit_head"]["id"] + 1  # the restored trail, then the restore
            assert audit.verify(s, settings=target.settings, anchors=True).ok
    finally:
        target.close()


def test_tar_backup_with_key_restores_where_no_key_is(plant, fresh, tmp_path):
    from engine.qms import secrets as subscriber_secrets  # makes subscribers.key, as a subscriber does

    sealed = subscriber_secrets.SecretBox(plant.settings).seal("whsec-test-secret-value")
    before = records(plant, PLANT)
    taken = backup.take(plant, tmp_path / "plant.tar", user="os:test", include_keys=True)
    assert (tmp_path / "plant.tar").stat().st_mode & 0o077 == 0
    with plant.transaction() as s:  # the backup itself is in the source's trail
        assert s.scalars(select(AuditEvent.action).order_by(AuditEvent.id.desc())).first() == "backup.taken"
    target = make_runtime(fresh(with_key=False))
    try:
        out = restore.restore(target, tmp_path / "plant.tar", user="os:test")
        assert out["key_installed"] and out["verify"]["ok"], out["verify"]["problems"]
        assert records(target, PLANT) == before
        assert audit.load_keys(target.settings).fingerprint == taken["audit_key"]
        assert out["secret_keys"]["subscribers.key"] == "installed"
        assert subscriber_secrets.SecretBox(target.settings).open(sealed) == "whsec-test-secret-value"
    finally:
        target.close()


def test_restore_onto_a_record_needs_force_and_keeps_old_anchors(plant, fresh, tmp_path):
    head = backup.take(plant, tmp_path / "bk", user="os:test")["audit_head"]["id"]
    other = make_runtime(fresh())
    try:
        restore.restore(other, tmp_path / "bk", user="os:test")  # now holds a record
        try:
            restore.restore(other, tmp_path / "bk", user="os:test")
            raise AssertionError("restored over a record without --force")
        except backup.BackupRefused as exc:
            assert exc.code == "restore_not_empty" and "--force" in exc.message
        out = restore.restore(other, tmp_path / "bk", user="os:test", force=True)
        assert out["verify"]["ok"], out["verify"]["problems"]
        assert out["anchors_kept_aside"]
        with other.transaction() as s:  # the second restore replaced the first: one restore entry
            assert s.scalar(select(func.max(AuditEvent.id))) == head + 1
    finally:
        other.close()


def test_a_backup_of_an_older_schema_is_restored_and_upgraded(db_url, fresh, tmp_path):
    """A backup taken before an upgrade restores into this release: the schema is
    brought to the head, and the trail still verifies."""
    from engine import migrate

    source = make_runtime(db_url)
    audit.load_keys(source.settings)  # the key the databases below share
    source.close()
    old_url = fresh()  # a database of its own, then taken back to an older revision
    rt = make_runtime(old_url)
    try:
        if rt.db.dialect.name == "sqlite":
            rt.db.dispose()
            Path(rt.db.url.database).unlink()
        else:
            from sqlalchemy import text

            with rt.db.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        migrate.upgrade(rt.db, "0013_model_approval")
        taken = backup.take(rt, tmp_path / "old", user="os:test")
        assert taken["revision"] == "0013_model_approval"
    finally:
        rt.close()
    target = make_runtime(fresh())
    try:
        out = restore.restore(target, tmp_path / "old", user="os:test")
        assert out["upgraded"] == {"from": "0013_model_approval", "to": migrate.head()}
        assert migrate.current(target.db) == migrate.head()
        assert out["verify"]["ok"], out["verify"]["problems"]
    finally:
        target.close()
