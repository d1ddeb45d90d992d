"""``batchline archive run`` and ``archive verify`` (SQLite and PostgreSQL), and
``audit verify`` naming a changed archive: what an operator runs and reads."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

import web.cli as cli
from engine.models import ArchivedBatch
from tests.support import PASSWORD


def invoke(runtime, *args: str, user: str | None = None):
    env = {"BATCHLINE_USER": user or "", "BATCHLINE_PASSWORD": PASSWORD}
    return CliRunner().invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env)


def test_archive_run_dry_run_verify_and_a_changed_file(plant, runtime, archive_dir):
    plant.start("C-1")
    plant.decide("C-1")
    plant.start("C-2")  # complete, not decided: stays

    off = invoke(runtime, "archive", "run")
    assert off.exit_code == 0 and "archiving is off" in off.output

    dry = invoke(runtime, "--json", "archive", "run", "--dry-run", "--before", "2999-01-01")
    assert dry.exit_code == 0, dry.output
    assert [d["batch_id"] for d in json.loads(dry.output)["due"]] == ["C-1"]
    with runtime.transaction() as s:
        assert s.scalars(select(ArchivedBatch)).all() == []

    done = invoke(runtime, "archive", "run", "--before", "2999-01-01", "--user", "qa", user="qa")
    assert done.exit_code == 0, done.output
    assert "archived C-1 ->" in done.output and "C-2" not in done.output
    again = invoke(runtime, "archive", "run", "--before", "2999-01-01")
    assert again.exit_code == 0 and "due: 0 batch(es)" in again.output  # archived once

    ok = invoke(runtime, "archive", "verify")
    assert ok.exit_code == 0 and "ok: 1 archive(s)" in ok.output, ok.output
    one = invoke(runtime, "--json", "archive", "verify", "C-1")
    assert one.exit_code == 0 and json.loads(one.output) == {"ok": True, "archives": 1, "problems": []}
    assert "ok:" in invoke(runtime, "audit", "verify").output

    with runtime.transaction() as s:
        row = s.scalars(select(ArchivedBatch)).one()
        assert row.archived_by == "qa"
        path = archive_dir / row.location
    path.write_bytes(path.read_bytes()[:-8] + b"\x00" * 8)  # bit rot on cheap storage
    bad = invoke(runtime, "archive", "verify")
    assert bad.exit_code == 1 and "C-1" in bad.output and "does not match its hash" in bad.output
    audit = invoke(runtime, "audit", "verify")
    assert audit.exit_code == 1 and "does not match its hash" in audit.output
    path.unlink()
    gone = invoke(runtime, "archive", "verify", "C-1")
    assert gone.exit_code == 1 and "missing" in gone.output


def test_archive_run_refuses_bad_input(runtime):
    for args in (
        ("archive", "run", "--before", "yesterday"),
        ("archive", "run", "--before", "2026-13-40"),
        ("archive", "run", "--limit", "0"),
        ("archive", "run", "--limit", "100000"),
        ("archive", "run", "--limit", "many"),
    ):
        result = invoke(runtime, *args)
        assert result.exit_code == 2, (args, result.output)
    nobody = invoke(runtime, "archive", "run", "--before", "2999-01-01", "--user", "op", user="op")
    assert nobody.exit_code == 2 and "may not" in nobody.output + str(nobody.stderr_bytes or b"")
    unknown = invoke(runtime, "archive", "verify", "NO-SUCH")
    assert unknown.exit_code == 2 and "archive_not_found" in unknown.output + str(unknown.stderr_bytes or b"")
