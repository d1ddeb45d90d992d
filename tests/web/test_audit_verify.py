"""``batchline audit verify --anchors --signatures``, ``batchline audit anchor``,
``batchline db upgrade --grant-to`` and ``GET /api/audit/verify`` with the anchor result."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import text, update

from engine.models import Step
from tests.engine.tamper import as_owner
from tests.engine.test_audit import signed_trail
from web import cli


@pytest.fixture
def run(rt):
    """``batchline ARGS`` on a bare database (no test people: entry ids are the trail's own)."""

    def invoke(*args: str):
        return CliRunner().invoke(cli.main, list(args), obj=cli.CliContext(runtime=rt))

    return invoke


def test_verify_with_anchors_and_signatures_then_a_forged_step(run, rt):
    signed_trail(rt)
    ok = run("audit", "verify", "--anchors", "--signatures")
    assert ok.exit_code == 0, ok.output
    lines = ok.stdout.splitlines()
    assert lines[0].startswith("ok: 12 audit entries, chain intact (key ") and lines[0].endswith(
        "; 8 record rows match the trail"
    )
    assert lines[1].startswith("anchors: 1 in ") and lines[1].endswith(", newest entry 1")
    assert lines[2] == "signatures: 4 checked, 0 mismatches"
    anchored = run("audit", "anchor")
    assert anchored.exit_code == 0 and anchored.stdout.startswith("anchored entry 12 (")
    as_json = json.loads(run("audit", "verify", "--anchors", "--json").stdout)
    assert as_json["anchors"]["anchors"] == 2 and as_json["anchors"]["newest"] == 12 and as_json["ok"] is True
    with as_owner(rt) as s:
        s.execute(update(Step).where(Step.id == 2).values(values={"transferred": False}))
    broken = run("audit", "verify", "--signatures")
    assert broken.exit_code == 1
    assert broken.stdout.splitlines() == [
        "BROKEN: 4 problem(s) in 12 entries:",
        "  step 2 (batch SG-1, step 2): values_hash does not match its values (edited)",
        "  step 2 (batch SG-1, step 2): does not match audit entry 9 (edited after it was recorded)",
        "  signature 3 (Performed by alice, batch SG-1, step 2): the record no longer matches what was signed",
        "  signature 4 (Verified by sv, batch SG-1, step 2): the record no longer matches what was signed",
        "signatures: 4 checked, 2 mismatches",
    ]


def test_anchor_of_an_empty_trail_is_a_clear_error(run):
    result = run("audit", "anchor")
    assert result.exit_code == 2
    assert result.stderr == "error [audit_empty]: the audit trail is empty: nothing to anchor\n"


def test_api_verify_has_the_anchor_result(client, runtime):
    signed_trail(runtime)
    r = client.get("/api/audit/verify")
    assert r.status_code == 200 and r.json["ok"] is True
    assert r.json["anchors"]["newest"] >= 1 and r.json["anchors"]["problems"] == []
    assert "signatures" not in r.json
    r = client.get("/api/audit/verify?signatures=true&anchors=false")
    assert r.json["signatures"] == {"checked": 4, "mismatches": 0, "problems": []} and "anchors" not in r.json
    with as_owner(runtime) as s:
        s.execute(text("DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)"))
        s.execute(text("UPDATE audit_head SET last_id = last_id - 1"))
    r = client.get("/api/audit/verify")
    assert r.json["ok"] is False


def test_db_upgrade_grants_the_application_role(run, rt):
    runtime = rt
    if not runtime.settings.database_url.startswith("postgresql"):
        assert run("db", "upgrade").exit_code == 0  # SQLite: no roles, nothing to grant
        return
    role = f"batchline_app_{uuid.uuid4().hex[:8]}"
    try:
        result = run("db", "upgrade", "--grant-to", role, "--json")
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["app_role"] == {
            "role": role,
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
        with runtime.transaction() as s:
            rights = s.execute(
                text(
                    "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type) "
                    "FROM information_schema.role_table_grants WHERE grantee = :r "
                    "AND table_name IN ('step', 'batch', 'alembic_version') GROUP BY table_name ORDER BY table_name"
                ),
                {"r": role},
            ).all()
        assert rights == [
            ("alembic_version", "SELECT"),
            ("batch", "DELETE,INSERT,SELECT,UPDATE"),
            ("step", "INSERT,SELECT"),
        ]
        bad = run("db", "upgrade", "--grant-to", "Robert'); DROP TABLE step;--")
        assert bad.exit_code == 2 and bad.stderr.startswith("error [app_role_invalid]")
    finally:
        with runtime.db.begin() as conn:
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
                conn.execute(text(f'DROP OWNED BY "{role}"'))
                conn.execute(text(f'DROP ROLE "{role}"'))
