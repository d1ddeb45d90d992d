"""``batchline backup`` and ``batchline restore`` say what they did in users' words, and
in JSON with --json; a refusal is ``error [code]: message`` with exit 2, a restore that
does not verify exits 1."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.support import make_runtime
from web import cli


def _invoke(rt, *args: str):
    return CliRunner().invoke(cli.main, list(args), obj=cli.CliContext(runtime=rt))


def test_backup_and_restore_from_the_command_line(plant, fresh, tmp_path):
    r = _invoke(plant, "backup", "--to", str(tmp_path / "bk"), "--user", "admin.ada")
    assert r.exit_code == 0, r.output
    assert "backed up the" in r.output and ("database.sqlite3" in r.output or "database.pgdump" in r.output)
    assert "the audit key is NOT in the backup" in r.output
    r = _invoke(plant, "backup", "--to", str(tmp_path / "bk.tar"), "--json")
    assert r.exit_code == 0, r.output
    made = json.loads(r.output)
    assert made["created_by"].startswith("os:") and made["revision"] and len(made["sha256"]) == 64

    target = make_runtime(fresh())
    try:
        r = _invoke(target, "restore", "--from", str(tmp_path / "bk"))
        assert r.exit_code == 0, r.output
        assert "restored the" in r.output and "by admin.ada" in r.output
        assert "audit verify: ok" in r.output
        r = _invoke(target, "restore", "--from", str(tmp_path / "bk.tar"))
        assert r.exit_code == 2
        assert "error [restore_not_empty]" in r.output and "--force" in r.output
        r = _invoke(target, "restore", "--from", str(tmp_path / "bk.tar"), "--force", "--json")
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert out["verify"]["ok"] and out["anchors_kept_aside"]
    finally:
        target.close()


def test_a_forged_backup_with_a_recomputed_manifest_restores_but_says_broken(plant, fresh, tmp_path):
    """Someone who edits a step in the backup and recomputes the manifest's SHA-256 gets
    past the hash check, not past the audit key: the restore says BROKEN and exits 1."""
    import hashlib
    import sqlite3

    import pytest

    if plant.db.dialect.name != "sqlite":
        pytest.skip("the forged dump is edited with sqlite3; the check after restore is the same on PostgreSQL")
    assert _invoke(plant, "backup", "--to", str(tmp_path / "bk")).exit_code == 0
    dump = tmp_path / "bk" / "database.sqlite3"
    con = sqlite3.connect(dump)
    con.execute("DROP TRIGGER step_append_only_update")
    con.execute("UPDATE step SET user = 'mallory' WHERE id = 1")
    con.commit()
    con.close()
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    manifest["parts"]["database.sqlite3"]["sha256"] = hashlib.sha256(dump.read_bytes()).hexdigest()
    (tmp_path / "bk" / "manifest.json").write_text(json.dumps(manifest))
    target = make_runtime(fresh())
    try:
        r = _invoke(target, "restore", "--from", str(tmp_path / "bk"))
        assert r.exit_code == 1, r.output
        assert "audit verify: BROKEN" in r.output and "step 1" in r.output
    finally:
        target.close()
