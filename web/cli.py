"""The ``batchline`` command: run the database, recipes, batches, the job worker and the
web server from a shell.

Output is a readable table by default and JSON with ``--json`` (for scripts). A user
error prints ``error [code]: message`` on stderr and exits 2, never a traceback; checks
that find something wrong (``recipe validate``, ``audit verify``) exit 1. Extra command
groups (analytics…) come from the ``batchline.cli`` entry point group, loaded only when
used, so a broken or missing optional module never breaks the rest.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError, ProgrammingError

from engine.config import load_settings
from engine.errors import BatchlineError, RecipeInvalid

PLUGIN_GROUP = "batchline.cli"


class CliContext:
    """What one command invocation shares: settings and, only when needed, the engine."""

    def __init__(self, config_file: str | None = None, as_json: bool = False, runtime=None):
        self.config_file = config_file
        self.as_json = as_json
        self._runtime = runtime  # given by a caller (tests) that also closes it
        self._owned = False

    @property
    def runtime(self):
        if self._runtime is None:
            from engine.runtime import Runtime

            self._runtime = Runtime(load_settings(self.config_file))
            self._owned = True
        return self._runtime

    def close(self) -> None:
        if self._owned:
            self._runtime.close()


def _fail(code: str, message: str, lines: list[str] = ()) -> None:
    click.echo(f"error [{code}]: {message}", err=True)
    for line in lines:
        click.echo(f"  {line}", err=True)
    sys.exit(2)


class BatchlineGroup(click.Group):
    """Turns user errors into ``error [code]: message`` and mounts plug-in groups lazily."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RecipeInvalid as exc:
            _fail(
                exc.code,
                f"the recipe cannot run ({len(exc.problems)} problem(s))",
                [_problem_line(p) for p in exc.problems],
            )
        except BatchlineError as exc:
            _fail(exc.code, exc.message)
        except (OperationalError, ProgrammingError) as exc:
            _fail("database_error", f"{exc.orig} (is the database reachable and upgraded? run `batchline db upgrade`)")

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        ep = self._plugins().get(name)
        if ep is None:
            return None
        try:
            command = ep.load()
        except Exception as exc:  # a broken optional module must not break the CLI
            click.echo(f"warning: command group {name!r} could not be loaded ({type(exc).__name__}: {exc})", err=True)
            return None
        return command if isinstance(command, click.Command) else None


def _problem_line(problem) -> str:
    where = ":".join(str(x) for x in (problem.file, problem.line) if x)
    element = f"element {problem.element_id}: " if problem.element_id else ""
    return f"{where + ': ' if where else ''}{element}{problem.message} [{problem.code}]"


# --- output --------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def show(data: Any, columns: list[str] | None = None) -> None:
    """JSON for ``--json``; else a table (lists) or ``key: value`` lines (one object)."""
    if click.get_current_context().find_object(CliContext).as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    if isinstance(data, dict):
        keys = columns or list(data)
        width = max((len(k) for k in keys), default=0)
        for key in keys:
            click.echo(f"{key:<{width}}  {_cell(data.get(key))}")
        return
    rows = list(data)
    if not rows:
        click.echo("(none)")
        return
    columns = columns or list(rows[0])
    table = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def json_option(f):
    """``--json`` on each command too, so it can go at the end of the line."""

    def remember(ctx, _param, value):
        if value:
            ctx.find_object(CliContext).as_json = True
        return value

    return click.option(
        "--json", "as_json", is_flag=True, expose_value=False, callback=remember, help="Print JSON instead of a table."
    )(f)


user_option = click.option(
    "--user",
    required=True,
    envvar="BATCHLINE_USER",
    help="Who is acting (recorded in the audit trail). Env: BATCHLINE_USER. "
    "The password is asked for, or read from BATCHLINE_PASSWORD.",
)


def _acting(user: str, action: str, *, env: str = "BATCHLINE_PASSWORD", prompt: str = "Password"):
    """Authenticate the acting user (id + password: both components, as at a first
    signing) and check the permission matrix, as the API does."""
    import os

    from engine import permissions, users

    password = os.environ.get(env)
    if password is None:
        password = click.prompt(f"{prompt} for {user}", hide_input=True, err=True)
    person = users.authenticate(_runtime(), user, password, purpose="signature")
    permissions.check(person, action)
    return person


reason_option = click.option("--reason", required=True, help="Why (recorded in the audit trail).")


def _runtime():
    return click.get_current_context().find_object(CliContext).runtime


def _json_arg(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BatchlineError(f"{what} is not valid JSON: {exc}", code="json_invalid") from None
    if not isinstance(value, dict):
        raise BatchlineError(f"{what} must be a JSON object", code="json_invalid")
    return value


def parse_value(text: str) -> Any:
    """``--param`` values: int, float, true/false, else the text itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _read_files(paths: Iterable[str]) -> dict[str, bytes]:
    return {Path(p).name: Path(p).read_bytes() for p in paths}


# --- the command tree ----------------------------------------------------------------


@click.group(cls=BatchlineGroup)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    envvar="BATCHLINE_CONFIG",
    help="TOML config file (env: BATCHLINE_CONFIG).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, as_json: bool):
    """Batchline: BPMN recipes, electronic batch records, review by exception."""
    session = ctx.ensure_object(CliContext)
    session.config_file = config_file or session.config_file
    session.as_json = session.as_json or as_json
    ctx.call_on_close(session.close)


@main.group()
def db():
    """The database schema."""


@db.command("upgrade")
def db_upgrade():
    """Create or upgrade the database schema to the newest revision."""
    from engine import migrate

    rt = _runtime()
    rt.create_schema()
    click.echo(f"database at revision {migrate.current(rt.db)}")


# recipes ---------------------------------------------------------------------------


@main.group()
def recipe():
    """Recipe versions: import, check, list, approve, retire."""


@recipe.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--forms",
    "forms_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Directory of form-js *.json files the user tasks name.",
)
@click.option("--recipe", "key", help="Recipe key (default: the BPMN process id).")
@click.option("--process-id", help="The top process, when the files hold several.")
@user_option
@json_option
def recipe_import(files, forms_dir, key, process_id, user):
    """Import BPMN FILES (and forms) as a recipe version; the same content again is the same version."""
    from engine import recipes

    person = _acting(user, "recipe.import")
    forms = recipes.load_forms_dir(forms_dir) if forms_dir else None
    rv = recipes.import_recipe(
        _runtime(), _read_files(files), forms=forms, user=person.username, recipe=key, process_id=process_id
    )
    show(recipes.describe(rv), ["id", "recipe", "version", "name", "status", "content_hash"])


@recipe.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--process-id", help="The top process, when the files hold several.")
@json_option
def recipe_validate(files, process_id):
    """Check BPMN FILES without storing them; exit 1 and name each problem's element if any."""
    from engine.bpmn import validate_recipe

    problems = validate_recipe(_read_files(files), process_id)
    if click.get_current_context().find_object(CliContext).as_json:
        show({"ok": not problems, "problems": [p.to_dict() for p in problems]})
    elif problems:
        click.echo(f"{len(problems)} problem(s):")
        for p in problems:
            click.echo(f"  {_problem_line(p)}")
    else:
        click.echo(f"ok: {', '.join(Path(f).name for f in files)} can run")
    sys.exit(1 if problems else 0)


@recipe.command("list")
@json_option
def recipe_list():
    """Every recipe version."""
    from engine import recipes

    show(
        [recipes.describe(rv) for rv in recipes.list_versions(_runtime())],
        ["id", "recipe", "version", "name", "status", "created_by", "created_at"],
    )


def _set_status(version_id: int, status: str, user: str, reason: str) -> None:
    from engine import recipes

    person = _acting(user, "recipe.approve")
    rv = recipes.set_status(_runtime(), version_id, status, person.username, reason)
    show(recipes.describe(rv), ["id", "recipe", "version", "status"])


@recipe.command("approve")
@click.argument("version_id", type=int)
@user_option
@reason_option
@json_option
def recipe_approve(version_id, user, reason):
    """Approve recipe version VERSION_ID: only approved versions start batches."""
    _set_status(version_id, "approved", user, reason)


@recipe.command("retire")
@click.argument("version_id", type=int)
@user_option
@reason_option
@json_option
def recipe_retire(version_id, user, reason):
    """Retire recipe version VERSION_ID: no new batch starts on it."""
    _set_status(version_id, "retired", user, reason)


# batches ---------------------------------------------------------------------------

BATCH_FIELDS = [
    "batch_id",
    "state",
    "recipe",
    "steps",
    "parameters",
    "created_by",
    "created_at",
    "completed_at",
    "incidents",
]


@main.group()
def batch():
    """Batches: start, look at, complete tasks, hold, resume, abort."""


@batch.command("start")
@click.argument("recipe_ref", metavar="RECIPE")
@click.option("--batch-id", required=True, help="The new batch's id (e.g. the process order's batch number).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A batch parameter; repeatable. Numbers and true/false are typed.",
)
@click.option("--version", type=int, help="A specific version of the recipe (default: newest approved).")
@user_option
@json_option
def batch_start(recipe_ref, batch_id, params, version, user):
    """Start a batch on RECIPE (a recipe key, or a recipe version id)."""
    from engine import batches

    parameters = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BatchlineError(f"--param {item!r} is not NAME=VALUE", code="parameters_invalid")
        parameters[name] = parse_value(value)
    person = _acting(user, "batch.start")
    show(
        batches.start_batch(
            _runtime(), recipe_ref, batch_id, user=person.username, parameters=parameters, version=version
        ),
        BATCH_FIELDS[:5],
    )


@batch.command("list")
@click.option("--state", type=click.Choice(["idle", "running", "held", "complete", "aborted"]))
@json_option
def batch_list(state):
    """The newest batches."""
    from engine import batches

    show(batches.list_batches(_runtime(), state=state), ["batch_id", "state", "steps", "created_by", "created_at"])


@batch.command("show")
@click.argument("batch_id")
@json_option
def batch_show(batch_id):
    """One batch: state, recipe, parameters, open incidents."""
    from engine import batches

    show(batches.get_batch(_runtime(), batch_id), BATCH_FIELDS)


@batch.command("tasks")
@click.argument("batch_id")
@json_option
def batch_tasks(batch_id):
    """The operator tasks BATCH_ID waits for."""
    from engine import batches

    show(batches.ready_tasks(_runtime(), batch_id), ["id", "bpmn_id", "name", "form", "instructions"])


@batch.command("steps")
@click.argument("batch_id")
@json_option
def batch_steps(batch_id):
    """The batch record of BATCH_ID: every step in order."""
    from engine import batches

    show(batches.steps(_runtime(), batch_id), ["seq", "kind", "bpmn_id", "user", "recorded_at", "values"])


@batch.command("complete")
@click.argument("batch_id")
@click.argument("task_id")
@click.option("--data", required=True, help="The values as a JSON object, e.g. '{\"ph\": 7.1}'.")
@click.option("--idempotency-key", help="Repeat safely: the same key answers with the first result.")
@click.option(
    "--witness",
    help="The witness's user id, when the form requires one (password asked for, "
    "or read from BATCHLINE_WITNESS_PASSWORD).",
)
@user_option
@json_option
def batch_complete(batch_id, task_id, data, idempotency_key, witness, user):
    """Complete task TASK_ID of BATCH_ID with its values (records one step, signed by --user)."""
    from engine import batches, users

    values = _json_arg(data, "--data")
    person = _acting(user, "task.complete")
    witness_person = None
    if witness:
        import os

        password = os.environ.get("BATCHLINE_WITNESS_PASSWORD")
        if password is None:
            password = click.prompt(f"Witness password for {witness}", hide_input=True, err=True)
        witness_person = users.authenticate(_runtime(), witness, password, purpose="signature")
    outcome = batches.complete_task(
        _runtime(),
        batch_id,
        task_id,
        values,
        user=person.username,
        idempotency_key=idempotency_key,
        signer=person,
        witness=witness_person,
    )
    body = outcome.body
    if click.get_current_context().find_object(CliContext).as_json:
        show({**body, "replayed": outcome.replayed})
        return
    step = body["step"]
    note = " (replayed: recorded earlier with this idempotency key)" if outcome.replayed else ""
    click.echo(f"step {step['seq']} recorded: {step['bpmn_id']} by {step['user']}{note}")
    click.echo(f"batch {body['batch']['batch_id']} is {body['batch']['state']}")
    for task in body.get("next_tasks", []):
        click.echo(f"next task: {task['id']}  {task['name']}")


def _state_command(action: str, help_text: str):
    @batch.command(action, help=help_text)
    @click.argument("batch_id")
    @reason_option
    @user_option
    @json_option
    def command(batch_id, reason, user):
        from engine import batches

        person = _acting(user, "batch.hold")
        show(
            batches.change_state(_runtime(), batch_id, action, user=person.username, reason=reason),
            ["batch_id", "state"],
        )

    return command


_state_command("hold", "Hold running batch BATCH_ID: no step is accepted, timers and service tasks wait.")
_state_command("resume", "Resume held batch BATCH_ID.")
_state_command("abort", "Abort batch BATCH_ID for good; its pending jobs are cancelled.")


# operations ------------------------------------------------------------------------

INCIDENT_FIELDS = ["id", "kind", "batch_id", "job_id", "message", "created_at", "resolved_at"]


@main.command("incidents")
@click.option("--all", "show_all", is_flag=True, help="Include resolved incidents.")
@json_option
def incidents_list(show_all):
    """Jobs whose retries ran out."""
    from engine import jobs

    show(jobs.incidents(_runtime(), open_only=not show_all), INCIDENT_FIELDS)


@main.group()
def incident():
    """One incident."""


@incident.command("retry")
@click.argument("incident_id", type=int)
@user_option
@json_option
def incident_retry(incident_id, user):
    """Give INCIDENT_ID's job a fresh set of attempts (resolves the incident)."""
    from engine import jobs

    person = _acting(user, "incident.retry")
    show(jobs.retry_incident(_runtime(), incident_id, user=person.username))


def _install_analytics(rt) -> None:
    """Out-of-trend scoring runs in whichever process works the jobs (optional module)."""
    try:
        from analytics import mes
    except ImportError:  # analytics left out of this install
        return
    mes.install(rt)


@main.command("worker")
@click.option("--once", is_flag=True, help="Run the jobs due now, then exit.")
def worker(once):
    """Run the job executor: timers, service tasks, event delivery, out-of-trend scoring
    (Ctrl-C stops)."""
    from engine import jobs

    rt = _runtime()
    _install_analytics(rt)
    if once:
        click.echo(f"ran {jobs.work(rt, idle_exit=True)} job(s)")
        return
    stop = threading.Event()
    click.echo("worker running; Ctrl-C stops")
    try:
        jobs.work(rt, stop=stop)
    except KeyboardInterrupt:
        stop.set()


@main.command("serve")
@click.option("--host", help="Address to listen on (default: settings host).")
@click.option("--port", type=int, help="Port (default: settings port).")
@click.option("--with-worker", is_flag=True, help="Also run the job worker in a background thread.")
def serve(host, port, with_worker):
    """Serve the web app and API (waitress when installed, else Flask's threaded server)."""
    from engine import jobs
    from web.app import create_app

    rt = _runtime()
    host, port = host or rt.settings.host, port or rt.settings.port
    app = create_app(runtime=rt)
    stop = threading.Event()
    if with_worker:
        threading.Thread(
            target=jobs.work, args=(rt,), kwargs={"stop": stop}, name="batchline-worker", daemon=True
        ).start()
    try:
        try:
            import waitress
        except ImportError:
            click.echo("waitress is not installed: using Flask's development server", err=True)
            app.run(host=host, port=port, threaded=True)
        else:
            click.echo(f"serving on http://{host}:{port}")
            waitress.serve(app, host=host, port=port, threads=8)
    finally:
        stop.set()


@main.group()
def audit():
    """The audit trail."""


@audit.command("verify")
@json_option
def audit_verify():
    """Recompute the audit trail's hash chain; exit 1 and name each break if it is broken."""
    from engine import audit as trail

    with _runtime().transaction() as s:
        result = trail.verify(s)
    if click.get_current_context().find_object(CliContext).as_json:
        show(result.to_dict())
    elif result.ok:
        click.echo(f"ok: {result.entries} audit entries, chain intact")
    else:
        click.echo(f"BROKEN: {len(result.problems)} problem(s) in {result.entries} entries:")
        for problem in result.problems:
            click.echo(f"  {problem}")
    sys.exit(0 if result.ok else 1)


# people ----------------------------------------------------------------------------


@main.group()
def user():
    """People and service accounts (ids are never reused: deactivate, never delete)."""


def _admin(by: str | None):
    """The acting administrator; on an empty system the first account needs none."""
    from sqlalchemy import func, select

    from engine.models import User

    with _runtime().transaction() as s:
        empty = s.scalar(select(func.count()).select_from(User)) == 0
    if empty:
        return "bootstrap"
    if not by:
        raise BatchlineError("say which administrator is acting: --by USER", code="auth_required")
    return _acting(by, "user.manage").username


def _new_password(username: str) -> str:
    import os

    password = os.environ.get("BATCHLINE_NEW_PASSWORD")
    if password is None:
        password = click.prompt(f"New password for {username}", hide_input=True, confirmation_prompt=True, err=True)
    return password


by_option = click.option(
    "--by", envvar="BATCHLINE_USER", help="The administrator acting (password asked for, or BATCHLINE_PASSWORD)."
)


@user.command("add")
@click.argument("username")
@click.option("--name", "printed_name", required=True, help="Printed name, shown with every signature.")
@click.option("--roles", required=True, help="Comma-separated: operator, supervisor, qa, admin, service.")
@click.option("--service", is_flag=True, help="A service account (API token only, no password, signs nothing).")
@by_option
@json_option
def user_add(username, printed_name, roles, service, by):
    """Create USERNAME (a person's password is asked for, or BATCHLINE_NEW_PASSWORD)."""
    from engine import users

    actor = _admin(by)
    password = None if service else _new_password(username)
    show(
        users.create_user(
            _runtime(),
            username,
            printed_name,
            [r.strip() for r in roles.split(",") if r.strip()],
            by=actor,
            password=password,
            kind="service" if service else "person",
        )
    )


@user.command("list")
@json_option
def user_list():
    """Every account, active or not."""
    from engine import users

    show(users.list_users(_runtime()), ["username", "printed_name", "kind", "roles", "active", "locked"])


@user.command("token")
@click.argument("username")
@click.option("--name", "token_name", default="cli", help="What the token is for.")
@by_option
def user_token(username, token_name, by):
    """Create an API token for USERNAME; it is printed once, only its hash is kept."""
    from engine import users

    click.echo(users.create_token(_runtime(), username, token_name, by=_admin(by)))


@user.command("password")
@click.argument("username")
@by_option
def user_password(username, by):
    """Set USERNAME's password (also unlocks the account)."""
    from engine import users

    users.set_password(_runtime(), username, _new_password(username), by=_admin(by))
    click.echo(f"password of {username} set")


@user.command("deactivate")
@click.argument("username")
@reason_option
@by_option
def user_deactivate(username, reason, by):
    """Deactivate USERNAME (the id stays taken for ever)."""
    from engine import users

    users.set_active(_runtime(), username, False, by=_admin(by), reason=reason)
    click.echo(f"{username} deactivated")


@user.command("unlock")
@click.argument("username")
@reason_option
@by_option
def user_unlock(username, reason, by):
    """Unlock USERNAME after a lockout."""
    from engine import users

    users.unlock(_runtime(), username, by=_admin(by), reason=reason)
    click.echo(f"{username} unlocked")


@main.command("demo")
@click.option("--host", help="Address to listen on (default: settings host).")
@click.option("--port", type=int, help="Port (default: settings port).")
@click.option("--no-serve", is_flag=True, help="Set the demo plant up and exit.")
def demo(host, port, no_serve):
    """Set up the demo plant (people, lots, equipment, the workflow library, a running mAb
    batch) on the configured database, then serve the web app with a job worker."""
    from engine import jobs
    from web import demo as plant
    from web.app import create_app

    rt = _runtime()
    click.echo("applying database migrations ...")
    rt.create_schema()
    click.echo("loading the workflow library and the demo plant ...")
    info = plant.setup(rt)
    plant.connect_simulators(rt)
    click.echo(f"{len(info['recipes'])} library recipes approved; batch {info['batch']} is running")
    click.echo("demo people (user id / password — demo only):")
    for username, (name, roles, password) in plant.PEOPLE.items():
        click.echo(f"  {username:<10} {password:<18} {name} ({', '.join(roles)})")
    click.echo("scan these: " + ", ".join(list(info["lots"].values()) + list(info["equipment"].values())))
    if no_serve:
        return
    host, port = host or rt.settings.host, port or rt.settings.port
    stop = threading.Event()
    threading.Thread(target=jobs.work, args=(rt,), kwargs={"stop": stop}, name="batchline-worker", daemon=True).start()
    plant.start_equipment_feed(rt, stop)  # simulated bioreactor samples for the demo batch
    click.echo(
        f"equipment feed: {plant.DEMO_BATCH} gets a bioreactor sample every 3 s (a dissolved-O2 sensor drift from 40 h)"
    )
    click.echo(f"Batchline demo: http://{host}:{port}/  (API: http://{host}:{port}/api/docs)")
    try:
        import waitress

        waitress.serve(create_app(runtime=rt), host=host, port=port, threads=8)
    finally:
        stop.set()


if __name__ == "__main__":
    main()
