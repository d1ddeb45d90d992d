"""The ``batchline`` command: help everywhere, exit codes, the sampling loop end to end,
errors as ``error [code]: message`` (exit 2), and plug-in command groups."""

from __future__ import annotations

import errno
import json
import socket
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from engine.models import AuditEvent, User
from tests.engine.tamper import as_owner
from tests.support import PASSWORD
from web import cli
from web.cli import acting

TESTS = Path(__file__).resolve().parent.parent
LOOP = str(TESTS / "recipes" / "loop.bpmn")
SIGNED = str(TESTS / "recipes" / "signed.bpmn")
SIGNED_FORMS = str(TESTS / "recipes" / "signed_forms")


@pytest.fixture
def run(runtime):
    """Run ``batchline ARGS`` on the test database; returns click's Result. The one who
    acts (``--user``/``--by``) has exported their id and password, as the README says:
    ``export BATCHLINE_USER=... BATCHLINE_PASSWORD=...``; ``env`` overrides that."""
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None, input: str | None = None):
        actor = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--user", "--by")), None)
        env = {"BATCHLINE_USER": actor, "BATCHLINE_PASSWORD": PASSWORD, **(env or {})}
        return runner.invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env, input=input)

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
        env={"BATCHLINE_USER": "op"},  # --user defaults to $BATCHLINE_USER
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
    # the one job: the completed batch's release flow (none approved here: audited, no process)
    worker = run("worker", "--once")
    assert worker.exit_code == 0 and "ran 1 job(s)" in worker.stdout
    assert run("incidents").stdout.strip() == "(none)"
    verified = run("audit", "verify")
    assert verified.exit_code == 0 and "chain intact" in verified.stdout

    assert run("batch", "abort", "B-9", "--reason", "late", "--user", "sv").exit_code == 2
    assert run("recipe", "retire", "1", "--reason", "old", "--user", "qa").exit_code == 0
    back = run("recipe", "approve", "1", "--reason", "back", "--user", "qa2")
    assert back.exit_code == 2 and back.stderr.startswith("error [recipe_not_draft]")


def test_user_from_environment(run):
    assert run("recipe", "import", LOOP, env={"BATCHLINE_USER": "qa"}).exit_code == 0
    missing = run("recipe", "approve", "1", "--reason", "ok")
    assert missing.exit_code == 2 and "--user" in missing.stderr
    wrong = run("recipe", "approve", "1", "--reason", "ok", "--user", "qa2", env={"BATCHLINE_PASSWORD": "nope"})
    assert wrong.exit_code == 2 and wrong.stderr.startswith("error [auth_failed]")
    assert "the password came from BATCHLINE_PASSWORD" in wrong.stderr
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
    with as_owner(runtime) as s:  # the append-only triggers refuse the UPDATE otherwise
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
    monkeypatch.setattr(cli.root, "entry_points", lambda group: eps if group == cli.PLUGIN_GROUP else [])
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


# --- who acts and their password ------------------------------------------------------


def _failed_sign_ins(runtime, username: str) -> tuple[int, int]:
    with runtime.transaction() as s:
        user = s.scalars(select(User).where(User.username == username)).one()
        failures = s.scalars(
            select(AuditEvent).where(AuditEvent.object_id == username, AuditEvent.action.like("auth.%_failed"))
        ).all()
        return user.failed_logins, len(failures)


def test_batchline_password_is_only_for_batchline_user(run, runtime):
    """README exported admin's password and ran ``--user qa.quinn``: that tried admin's
    password for qa.quinn and counted toward her lockout. Now: refused at once, nothing counted."""
    assert run("recipe", "import", LOOP, "--user", "qa").exit_code == 0
    other = run("recipe", "approve", "1", "--reason", "ok", "--user", "qa2", env={"BATCHLINE_USER": "qa"})
    assert other.exit_code == 2
    assert other.stderr == (
        "error [password_required]: no password for qa2: BATCHLINE_PASSWORD is for BATCHLINE_USER=qa; "
        "export BATCHLINE_USER=qa2 BATCHLINE_PASSWORD=... or run on a terminal\n"
    )
    unset = run("recipe", "approve", "1", "--reason", "ok", "--user", "qa2", env={"BATCHLINE_USER": None})
    assert unset.exit_code == 2 and unset.stderr.startswith("error [password_required]: no password for qa2: ")
    assert "BATCHLINE_USER, which is not set" in unset.stderr
    none = run("batch", "hold", "B", "--reason", "x", "--user", "sv", env={"BATCHLINE_PASSWORD": None})
    assert none.exit_code == 2 and "BATCHLINE_PASSWORD is not set" in none.stderr
    trainer = run("analytics", "train", "--recipe", "sampling_loop", "--user", "qa2", env={"BATCHLINE_USER": "qa"})
    assert trainer.exit_code == 2 and "error [password_required]: no password for qa2: " in trainer.stderr
    assert _failed_sign_ins(runtime, "qa2") == (0, 0)
    assert run("recipe", "list", "--json").stdout.count('"draft"') == 1  # nothing approved

    # --user defaults to $BATCHLINE_USER, whose password BATCHLINE_PASSWORD is
    same = run("recipe", "approve", "1", "--reason", "ok", env={"BATCHLINE_USER": "qa2"})
    assert same.exit_code == 0, same.output


def test_password_for_another_user_is_asked_on_a_terminal(run, runtime, monkeypatch):
    run("recipe", "import", LOOP, "--user", "qa")
    monkeypatch.setattr(acting, "on_terminal", lambda: True)
    typed_wrong = run(
        "recipe", "approve", "1", "--reason", "ok", "--user", "qa2", env={"BATCHLINE_USER": "qa"}, input="nope\n"
    )
    assert typed_wrong.exit_code == 2
    assert typed_wrong.stderr.splitlines()[-1] == "error [auth_failed]: user id or password is wrong"  # typed
    assert _failed_sign_ins(runtime, "qa2")[0] == 1
    typed = run(
        "recipe", "approve", "1", "--reason", "ok", "--user", "qa2", env={"BATCHLINE_USER": "qa"}, input=PASSWORD + "\n"
    )
    assert typed.exit_code == 0, typed.output
    assert "Password for qa2" in typed.stderr and "approved" in typed.stdout


# --- --json on every command -----------------------------------------------------------


def test_every_command_takes_json():
    runner = CliRunner()
    leaves = [p for p in command_paths(cli.main) if not isinstance(_command(p), click.Group)]
    assert ("analytics", "report") in leaves and ("db", "upgrade") in leaves and ("batch", "exceptions") in leaves
    for path in leaves:
        result = runner.invoke(cli.main, [*path, "--help"])
        assert result.exit_code == 0 and "--json" in result.stdout, path


def _command(path):
    command = cli.main
    for name in path:
        command = command.get_command(click.Context(command), name)
    return command


def test_json_where_it_was_refused(run):
    for args in (("--json", "db", "upgrade"), ("db", "upgrade", "--json")):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["revision"]
    assert run("db", "upgrade").stdout.startswith("database at revision ")
    for args in (("--json", "analytics", "report"), ("analytics", "report", "--json")):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == []
    assert run("analytics", "report").stdout.strip() == "no models"
    assert json.loads(run("worker", "--once", "--json").stdout) == {"jobs": 0}
    listed = json.loads(run("--json", "user", "list").stdout)
    assert {u["username"] for u in listed} >= {"qa", "op"}


def test_analytics_evaluate_prints_and_writes_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    quick = ["analytics", "evaluate", "--process", "pensim", "--seeds", "1", "--quick"]
    printed = CliRunner().invoke(cli.main, quick)
    assert printed.exit_code == 0, printed.output
    assert "| Duration monitor" in printed.stdout and "wrote" not in printed.stdout
    assert "Baseline: plain PCA-SPE" in printed.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written
    out = tmp_path / "docs" / "analytics.md"
    written = CliRunner().invoke(cli.main, [*quick, "--output", str(out), "--json"])
    assert written.exit_code == 0, written.output
    answer = json.loads(written.stdout)
    assert str(out) in answer["wrote"] and out.exists()
    assert "Duration monitor (step durations)" in {m["method"] for m in answer["processes"]["pensim"]}


# --- exceptions are said, and listed -----------------------------------------------------


def _signed_batch(run) -> str:
    assert run("recipe", "import", SIGNED, "--forms", SIGNED_FORMS, "--user", "qa").exit_code == 0
    assert run("recipe", "approve", "signed_steps", "--reason", "ok", "--user", "qa2").exit_code == 0
    assert run("batch", "start", "signed_steps", "--batch-id", "S-1", "--user", "sv").exit_code == 0
    return json.loads(run("batch", "tasks", "S-1", "--json").stdout)[0]["id"]


def test_complete_says_each_exception_and_batch_exceptions_lists_them(run):
    task = _signed_batch(run)
    assert run("batch", "exceptions", "S-1").stdout.strip() == "(none)"
    done = run("batch", "complete", "S-1", task, "--data", '{"mass_g": 125}', "--user", "op", "--json")
    assert done.exit_code == 0, done.output
    warnings = [line for line in done.stderr.splitlines() if line.startswith("exception [")]
    assert len(warnings) == 1 and warnings[0].startswith("exception [limit.action critical] mass_g: "), done.stderr
    raised = json.loads(done.stdout)["exceptions"]
    assert [(e["category"], e["severity"], e["parameter"]) for e in raised] == [("limit.action", "critical", "mass_g")]

    listed = json.loads(run("batch", "exceptions", "S-1", "--json").stdout)
    assert [(e["category"], e["parameter"], e["step_seq"]) for e in listed] == [("limit.action", "mass_g", 1)]
    table = run("batch", "exceptions", "S-1").stdout
    assert table.startswith("ID") and "mass_g" in table and "limit.action" in table
    missing = run("batch", "exceptions", "NOPE")
    assert missing.exit_code == 2 and missing.stderr.startswith("error [batch_not_found]")


def test_witness_password_without_terminal_is_refused_at_once(run):
    task = _signed_batch(run)
    result = run("batch", "complete", "S-1", task, "--data", '{"mass_g": 100}', "--user", "op", "--witness", "alice")
    assert result.exit_code == 2
    assert result.stderr.startswith("error [password_required]: no password for witness alice: ")


# --- recipe versions by name -------------------------------------------------------------


def test_approve_and_retire_by_recipe_key_or_key_at_version(run, tmp_path):
    run("recipe", "import", LOOP, "--user", "qa")
    approved = run("recipe", "approve", "sampling_loop", "--reason", "ok", "--user", "qa2")
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.startswith("approved: recipe sampling_loop v1 (version id 1), now effective\n")
    second = tmp_path / "loop.bpmn"
    second.write_text(Path(LOOP).read_text().replace('name="', 'name="v2 ', 1))
    assert json.loads(run("recipe", "import", str(second), "--user", "qa", "--json").stdout)["version"] == 2
    by_version = run("recipe", "approve", "sampling_loop@2", "--reason", "ok", "--user", "qa2", "--json")
    assert by_version.exit_code == 0, by_version.output
    assert {k: json.loads(by_version.stdout)[k] for k in ("version", "status")} == {"version": 2, "status": "effective"}
    nothing = run("recipe", "approve", "sampling_loop", "--reason", "ok", "--user", "qa2")
    assert nothing.exit_code == 2 and nothing.stderr.startswith("error [recipe_not_found]: ")
    assert "v1 superseded, v2 effective" in nothing.stderr and "sampling_loop@VERSION" in nothing.stderr

    newest = run("recipe", "retire", "sampling_loop", "--reason", "old", "--user", "qa")
    assert newest.exit_code == 0 and newest.stdout.startswith("retired: recipe sampling_loop v2 (version id ")
    first = run("recipe", "retire", "sampling_loop@1", "--reason", "old", "--user", "qa")
    assert first.exit_code == 0 and first.stdout.startswith("retired: recipe sampling_loop v1 (version id 1)")
    for ref, code in [
        ("sampling_loop@x", "recipe_ref_invalid"),
        ("nope", "recipe_not_found"),
        ("99", "recipe_not_found"),
    ]:
        result = run("recipe", "retire", ref, "--reason", "x", "--user", "qa")
        assert result.exit_code == 2 and result.stderr.startswith(f"error [{code}]: "), (ref, result.stderr)


# --- serve: a port in use, a server that cannot start -------------------------------------


@pytest.fixture
def fake_waitress(monkeypatch):
    served = {}
    fake = types.ModuleType("waitress")
    fake.serve = lambda app, **kw: served.update(app=app, **kw)
    monkeypatch.setitem(sys.modules, "waitress", fake)
    return fake, served


def test_serve_on_a_port_in_use_fails_before_serving(run, fake_waitress):
    _fake, served = fake_waitress
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in ("serve", "demo"):
            result = run(command, "--host", "127.0.0.1", "--port", str(port))
            assert result.exit_code == 2, result.output
            assert result.stderr == (f"error [port_in_use]: 127.0.0.1:{port} is in use (is the demo still running?)\n")
            assert result.stdout == "" and not served  # nothing said, nothing served, no demo set up


def test_serve_start_up_failures_are_one_line(run, fake_waitress):
    fake, _served = fake_waitress

    def refuse(app, **kw):
        raise PermissionError(errno.EACCES, "Permission denied")

    fake.serve = refuse
    result = run("serve", "--host", "127.0.0.1", "--port", "8124")
    assert result.exit_code == 2 and "Traceback" not in result.output
    # the start-up notes (where the secret key and the audit key came from, the cookie), then the error
    *notes, error = result.stderr.splitlines()
    assert [n.split(":")[0] for n in notes] == ["secret key", "audit key", "session cookie"]
    assert error.startswith("error [serve_failed]: ") and "Permission denied" in error
    nowhere = run("serve", "--host", "no-such-host.invalid", "--port", "8124")
    assert nowhere.exit_code == 2 and nowhere.stderr.startswith("error [serve_failed]: cannot listen on ")


PARALLEL_CHECKS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="defs_par" targetNamespace="https://batchline.example/tests">
  <bpmn:process id="parallel_checks" name="Parallel checks" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="check_vessel" name="Check a vessel">
      <bpmn:multiInstanceLoopCharacteristics isSequential="false">
        <bpmn:loopCardinality>2</bpmn:loopCardinality>
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check_vessel"/>
    <bpmn:sequenceFlow id="f2" sourceRef="check_vessel" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_complete_by_the_bpmn_id_of_the_one_waiting_task(run, tmp_path):
    assert run("recipe", "import", LOOP, "--user", "qa").exit_code == 0
    assert run("recipe", "approve", "sampling_loop", "--reason", "ok", "--user", "qa2").exit_code == 0
    assert run("batch", "start", "sampling_loop", "--batch-id", "B-1", "--user", "sv").exit_code == 0
    done = run("batch", "complete", "B-1", "take_sample", "--data", '{"done": false}', "--user", "op")
    assert done.exit_code == 0 and "step 1 recorded: take_sample" in done.stdout
    unknown = run("batch", "complete", "B-1", "weigh", "--data", "{}", "--user", "op")
    assert unknown.exit_code == 2 and unknown.stderr.startswith("error [task_not_found]: batch B-1 waits for no task")
    assert "take_sample" in unknown.stderr  # what it does wait for
    assert len(json.loads(run("batch", "steps", "B-1", "--json").stdout)) == 1

    parallel = tmp_path / "parallel.bpmn"
    parallel.write_text(PARALLEL_CHECKS)
    assert run("recipe", "import", str(parallel), "--user", "qa").exit_code == 0
    assert run("recipe", "approve", "parallel_checks", "--reason", "ok", "--user", "qa2").exit_code == 0
    assert run("batch", "start", "parallel_checks", "--batch-id", "P-1", "--user", "sv").exit_code == 0
    ambiguous = run("batch", "complete", "P-1", "check_vessel", "--data", "{}", "--user", "op")
    assert ambiguous.exit_code == 2 and ambiguous.stderr.startswith("error [task_ambiguous]: 2 waiting tasks")
    assert json.loads(run("batch", "steps", "P-1", "--json").stdout) == []  # nothing guessed, nothing recorded


def test_the_task_role_decides_on_the_command_line(run):
    """The CLI admits QA to `batch complete`; the engine decides per task (engine.duties)."""
    duties = str(TESTS / "recipes" / "duties.bpmn")
    assert (
        run("recipe", "import", duties, "--forms", str(TESTS / "recipes" / "duties_forms"), "--user", "qa").exit_code
        == 0
    )
    assert run("recipe", "approve", "duties", "--reason", "ok", "--user", "qa2").exit_code == 0
    assert run("batch", "start", "duties", "--batch-id", "DL-1", "--user", "sv").exit_code == 0
    for user, task, data, code in [
        ("sv", "qa_released", '{"reading": 1}', "task_role"),  # a supervisor never signs for QA
        ("op", "qa_noform", "{}", "task_role"),
        ("op", "operator_released", '{"reading": 1}', "meaning_role"),
    ]:
        refused = run("batch", "complete", "DL-1", task, "--data", data, "--user", user)
        assert refused.exit_code == 2 and refused.stderr.startswith(f"error [{code}]: "), refused.stderr
    done = run("batch", "complete", "DL-1", "qa_released", "--data", '{"reading": 1}', "--user", "qa", "--json")
    assert done.exit_code == 0, done.stderr
    assert [(s["username"], s["meaning"]) for s in json.loads(done.stdout)["step"]["signatures"]] == [
        ("qa", "Released")
    ]
