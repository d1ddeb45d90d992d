"""A backup that is not what it says is refused with a clear message, before anything
is written: a changed byte, a missing anchor file, another database kind, a newer
schema, a key that did not seal it, a hostile archive, an existing destination."""

from __future__ import annotations

import json
import tarfile

import pytest
from sqlalchemy import func, select

from engine import backup, restore
from engine.audit.keys import anchor_path, key_path
from engine.models import AuditEvent
from tests.support import make_runtime


@pytest.fixture
def taken(plant, tmp_path):
    backup.take(plant, tmp_path / "bk", user="os:test")
    return tmp_path / "bk"


@pytest.fixture
def target(fresh):
    rt = make_runtime(fresh())
    yield rt
    rt.close()


def _state(rt) -> tuple:
    """What a refused restore must leave as it was: the trail and the anchor file."""
    path = anchor_path(rt.settings)
    with rt.transaction() as s:
        count = s.scalar(select(func.count()).select_from(AuditEvent))
    return count, path.read_bytes() if path.exists() else None


def _refused(rt, source, code: str, words: str, **kw) -> None:
    before = _state(rt)
    with pytest.raises(backup.BackupRefused) as caught:
        restore.restore(rt, source, user="os:test", **kw)
    assert caught.value.code == code, caught.value.message
    assert words in caught.value.message
    assert _state(rt) == before  # nothing overwritten


def _manifest(folder, **changes) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _dump(folder):
    return next(p for p in folder.iterdir() if p.name.startswith("database."))


def test_a_changed_byte_in_the_dump_is_refused(taken, target):
    dump = _dump(taken)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    _refused(target, taken, "backup_damaged", "does not match its SHA-256")


def test_a_missing_anchor_file_is_refused(taken, target):
    (taken / "audit-anchors.jsonl").unlink()
    _refused(target, taken, "backup_damaged", "audit-anchors.jsonl is missing")


def test_anchors_struck_from_the_manifest_too_are_refused(taken, target):
    (taken / "audit-anchors.jsonl").unlink()
    parts = json.loads((taken / "manifest.json").read_text())["parts"]
    del parts["audit-anchors.jsonl"]
    _manifest(taken, parts=parts)
    _refused(target, taken, "backup_damaged", "no anchors")


def test_a_backup_of_another_database_kind_is_refused(taken, target):
    other = "postgresql" if target.db.dialect.name == "sqlite" else "sqlite"
    _manifest(taken, database=other)
    _refused(target, taken, "backup_wrong_database", f"backup of a {other} database")


def test_a_backup_of_a_newer_schema_is_refused(taken, target):
    _manifest(taken, revision="0099_future", batchline_version="9.9.9")
    _refused(target, taken, "backup_newer_schema", "newer than this Batchline knows")


def test_a_manifest_that_is_not_one_is_refused(taken, target):
    (taken / "manifest.json").write_text("{not json")
    _refused(target, taken, "backup_damaged", "not readable JSON")
    (taken / "manifest.json").write_text(json.dumps({"format": 1, "parts": ["x"]}))
    _refused(target, taken, "backup_damaged", "not a Batchline backup manifest")
    (taken / "manifest.json").unlink()
    _refused(target, taken, "backup_damaged", "not a Batchline backup")


def test_an_unlisted_part_name_is_refused(taken, target):
    parts = json.loads((taken / "manifest.json").read_text())["parts"]
    parts["../../etc/passwd"] = {"sha256": "0" * 64, "bytes": 1}
    _manifest(taken, parts=parts)
    _refused(target, taken, "backup_damaged", "unknown part")


def test_another_audit_key_is_refused(taken, target):
    path = key_path(target.settings)
    path.write_text("another key, long enough to be a valid audit key!\n")
    _refused(target, taken, "backup_key_mismatch", "did not seal this backup")


def test_no_audit_key_and_none_in_the_backup_is_refused(taken, target):
    key_path(target.settings).unlink()
    _refused(target, taken, "backup_key_missing", "put back the audit key")
    assert not key_path(target.settings).exists()  # no new key made up on the way


def test_a_hostile_archive_writes_nothing_outside(taken, target, tmp_path):
    archive = tmp_path / "evil.tar"
    (tmp_path / "payload").write_text("x")
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "payload", arcname="../../escaped")
        tar.add(taken / "manifest.json", arcname="manifest.json")
    _refused(target, archive, "backup_damaged", "is missing")
    assert not (tmp_path.parent.parent / "escaped").exists()
    (tmp_path / "junk.tar").write_bytes(b"not a tar file at all")
    _refused(target, tmp_path / "junk.tar", "backup_damaged", "not a readable backup archive")
    _refused(target, tmp_path / "nothing-here", "backup_not_found", "no backup there")


def test_a_backup_never_overwrites_another(plant, taken):
    with pytest.raises(backup.BackupRefused) as caught:
        backup.take(plant, taken, user="os:test")
    assert "never over another one" in caught.value.message
    assert json.loads((taken / "manifest.json").read_text())["format"] == 1


def test_a_keyed_trail_without_its_anchor_file_is_not_backed_up_silently(plant, tmp_path):
    anchors = anchor_path(plant.settings)
    anchors.rename(tmp_path / "elsewhere.jsonl")
    with pytest.raises(backup.BackupRefused) as caught:
        backup.take(plant, tmp_path / "bk.tar", user="os:test")
    assert caught.value.code == "backup_no_anchors" and "batchline audit anchor" in caught.value.message
    assert not (tmp_path / "bk.tar").exists() and not list(tmp_path.glob(".batchline-backup-*"))


def test_a_backup_path_that_cannot_be_written_is_said(plant, tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(backup.BackupRefused) as caught:
        backup.take(plant, tmp_path / "a-file" / "bk", user="os:test")
    assert caught.value.code == "backup_failed" and "could not be written" in caught.value.message
