"""The ``batchline`` command: help everywhere, exit codes, the sampling loop end to end,
errors as ``error [code]: message`` (exit 2), and plug-in command groups."""

from __future__ import annotations

import json
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from engine.models import AuditEvent
from tests.support import PASSWORD
from web import cli

TESTS = Path(__file__).resolve().parent.parent
LOOP = str(TESTS / "recipes" / "loop.bpmn")


@pytest.fixture
def run(runtime):
    """Run ``batchline ARGS`` on the test database; returns click's Result."""
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        env = {"BATCHLINE_PASSWORD": PASSWORD, **(env or {})}
        return runner.invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env)

    return invoke


def command_paths(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield prefix + (name,)
        if isinstance(command, click.Group):
            yield from command_paths(command, prefix + (name,))


def test_every_command_has_help():
    paths = list(command_paths(cli.main))
    expected = {
        ("db", "upgrade"),
        ("recipe", "import"),
        ("recipe", "validate"),
        ("recipe", "list"),
        ("recipe", "approve"),
        ("batch", "start"),
        ("batch", "show"),
        ("batch", "tasks"),
        ("batch", "complete"),
        ("batch", "hold"),
        ("batch", "resume"),
        ("batch", "abort"),
        ("batch", "steps"),
        ("incidents",),
        ("incident", "retry"),
        ("worker",),
        ("serve",),
        ("audit", "verify"),
    }
    assert expected <= set(paths)
    runner = CliRunner()
    for path in [()] + paths:
        result = runner.invoke(cli.main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output


def test_recipe_validate_exit_codes(run, tmp_path):
    ok = run("recipe", "validate", LOOP)
    assert ok.exit_code == 0 and "ok: loop.bpmn can run" in ok.stdout

    broken = tmp_path / "broken.bpmn"
    broken.write_text(Path(LOOP).read_text().replace('targetRef="end"', 'targetRef="nowhere"'))
    bad = run("recipe", "validate", str(broken))
    assert bad.exit_code == 1
    assert "broken.bpmn" in bad.stdout and "element " in bad.stdout

    as_json = run("recipe", "validate", str(broken), "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["ok"] is False
    assert run("recipe", "validate", str(tmp_path / "missing.bpmn")).exit_code == 2


def test_sampling_loop_through_the_cli(run):
    assert run("db", "upgrade").exit_code == 0
    imported = run("recipe", "import", LOOP, "--user", "qa")
    assert imported.exit_code == 0, imported.output
    assert "sampling_loop" in imported.stdout and "draft" in imported.stdout
    own = run("recipe", "approve", "1", "--reason", "mine", "--user", "qa")
    assert own.exit_code == 2 and own.stderr.startswith("error [author_cannot_approve]")
    approved = run("recipe", "approve", "1", "--reason", "reviewed", "--user", "qa2")
    assert approved.exit_code == 0 and "approved" in approved.stdout
    assert "sampling_loop" in run("recipe", "list").stdout

    started = run(
        "batch",
        "start",
        "sampling_loop",
        "--batch-id",
        "B-9",
        "--param",
        "temp=37.5",
        "--param",
        "count=3",
        "--param",
        "sterile=true",
        "--param",
        "line=A-1",
        "--user",
        "sv",
        "--json",
    )
    assert started.exit_code == 0, started.output
    assert json.loads(started.stdout)["parameters"] == {"temp": 37.5, "count": 3, "sterile": True, "line": "A-1"}

    tasks = json.loads(run("--json", "batch", "tasks", "B-9").stdout)
    assert [t["bpmn_id"] for t in tasks] == ["take_sample"]
    assert "take_sample" in run("batch", "tasks", "B-9").stdout

    done = run(
        "batch",
        "complete",
        "B-9",
        tasks[0]["id"],
        "--data",
        '{"done": false, "ph": 7.0}',
        "--idempotency-key",
        "k-1",
        "--user",
        "op",
    )
    assert done.exit_code == 0 and "step 1 recorded" in done.stdout
    replay = run(
        "batch",
        "complete",
        "B-9",
        tasks[0]["id"],
        "--data",
        '{"done": false, "ph": 7.0}',
        "--idempotency-key",
        "k-1",
        "--user",
        "op",
    )
    assert replay.exit_code == 0 and "replayed" in replay.stdout

    assert run("batch", "hold", "B-9", "--reason", "probe", "--user", "sv").exit_code == 0
    refused = run("batch", "complete", "B-9", tasks[0]["id"], "--data", "{}", "--user", "op")
    assert refused.exit_code == 2 and refused.stderr.startswith("error [batch_held]: ")
    assert run("batch", "resume", "B-9", "--reason", "ok", "--user", "sv").exit_code == 0

    next_task = json.loads(run("batch", "tasks", "B-9", "--json").stdout)[0]["id"]
    last = run(
        "batch",
        "complete",
        "B-9",
        next_task,
        "--data",
        '{"done": true}',
        "--user",
        "op",
        env={"BATCHLINE_USER": "ignored"},
    )
    assert last.exit_code == 0 and "batch B-9 is complete" in last.stdout

    steps = run("batch", "steps", "B-9", "--json")
    assert [s["seq"] for s in json.loads(steps.stdout)] == [1, 2]
    assert "take_sample" in run("batch", "steps", "B-9").stdout
    shown = run("batch", "show", "B-9")
    assert shown.exit_code == 0 and "complete" in shown.stdout
    assert "B-9" in run("batch", "list").stdout
    assert run("incidents").stdout.strip() == "(none)"
    assert run("incidents", "--all", "--json").stdout.strip() == "[]"
    worker = run("worker", "--once")
    assert worker.exit_code == 0 and "ran 0 job(s)" in worker.stdout
    verified = run("audit", "verify")
    assert verified.exit_code == 0 and "chain intact" in verified.stdout

    assert run("batch", "abort", "B-9", "--reason", "late", "--user", "sv").exit_code == 2
    assert run("recipe", "retire", "1", "--reason", "old", "--user", "qa").exit_code == 0
    assert run("recipe", "approve", "1", "--reason", "back", "--user", "qa2").stderr.startswith(
        "error [recipe_retired]"
    )


def test_user_from_environment(run):
    assert run("recipe", "import", LOOP, env={"BATCHLINE_USER": "qa"}).exit_code == 0
    missing = run("recipe", "approve", "1", "--reason", "ok")
    assert missing.exit_code == 2 and "--user" in missing.stderr
    wrong = run("recipe", "approve", "1", "--reason", "ok", "--user", "qa2", env={"BATCHLINE_PASSWORD": "nope"})
    assert wrong.exit_code == 2 and wrong.stderr.startswith("error [auth_failed]")
    forbidden = run("batch", "hold", "B-1", "--reason", "x", "--user", "op")
    assert forbidden.exit_code == 2 and forbidden.stderr.startswith("error [forbidden]")


def test_user_errors_are_one_line_exit_2(run, tmp_path):
    for args, code in [
        (("batch", "show", "NOPE"), "batch_not_found"),
        (("batch", "complete", "B", "T", "--data", "{oops", "--user", "uu"), "json_invalid"),
        (("batch", "complete", "B", "T", "--data", "[1]", "--user", "uu"), "json_invalid"),
        (("batch", "start", "r", "--batch-id", "B", "--param", "novalue", "--user", "uu"), "parameters_invalid"),
        (("incident", "retry", "42", "--user", "uu"), "incident_not_found"),
    ]:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith(f"error [{code}]: "), result.stderr
        assert "Traceback" not in result.output

    broken = tmp_path / "broken.bpmn"
    broken.write_text(Path(LOOP).read_text().replace('targetRef="end"', 'targetRef="nowhere"'))
    invalid = run("recipe", "import", str(broken), "--user", "uu")
    assert invalid.exit_code == 2 and invalid.stderr.startswith("error [recipe_invalid]:")
    assert "broken.bpmn" in invalid.stderr


def test_config_file_and_a_database_without_schema(tmp_path):
    config = tmp_path / "batchline.toml"
    config.write_text(f'[batchline]\ndatabase_url = "sqlite:///{tmp_path}/other.db"\n')
    result = CliRunner().invoke(cli.main, ["--config", str(config), "batch", "list"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error [database_error]:") and "db upgrade" in result.stderr


def test_audit_verify_exits_1_when_the_trail_was_edited(run, runtime):
    run("recipe", "import", LOOP, "--user", "qa")
    with runtime.transaction() as s:
        first = s.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).first()
        s.execute(update(AuditEvent).where(AuditEvent.id == first).values(user="someone else"))
    result = run("audit", "verify")
    assert result.exit_code == 1 and "BROKEN" in result.stdout and f"entry {first}" in result.stdout


def test_param_values_are_typed():
    assert [cli.parse_value(v) for v in ("3", "-2", "2.5", "1e3", "true", "False", "x", "")] == [
        3,
        -2,
        2.5,
        1000.0,
        True,
        False,
        "x",
        "",
    ]


@click.group()
def extra():
    """A plug-in command group."""


@extra.command()
def hello():
    click.echo("hello from a plug-in")


def test_plugin_groups_are_mounted_lazily_and_broken_ones_skipped(monkeypatch):
    eps = [
        EntryPoint("extra", f"{__name__}:extra", cli.PLUGIN_GROUP),
        EntryPoint("broken", "tests.web.no_such_module:group", cli.PLUGIN_GROUP),
    ]
    monkeypatch.setattr(cli, "entry_points", lambda group: eps if group == cli.PLUGIN_GROUP else [])
    runner = CliRunner()
    assert runner.invoke(cli.main, ["extra", "hello"]).stdout == "hello from a plug-in\n"
    helped = runner.invoke(cli.main, ["--help"])
    assert helped.exit_code == 0 and "extra" in helped.stdout and "could not be loaded" in helped.stderr
    broken = runner.invoke(cli.main, ["broken"])
    assert broken.exit_code == 2 and "No such command" in broken.stderr


def test_serve_uses_waitress_and_starts_a_worker(run, monkeypatch):
    served = {}
    fake = types.ModuleType("waitress")
    fake.serve = lambda app, **kw: served.update(app=app, **kw)
    monkeypatch.setitem(sys.modules, "waitress", fake)
    result = run("serve", "--host", "127.0.0.1", "--port", "8123", "--with-worker")
    assert result.exit_code == 0, result.output
    assert served["host"] == "127.0.0.1" and served["port"] == 8123
    assert served["app"].extensions["batchline"] is not None
