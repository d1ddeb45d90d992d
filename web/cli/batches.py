"""``batchline batch``: start batches, look at them (state, waiting tasks, the record,
exceptions), complete tasks, hold, resume and abort.

Completing a task says at once when a value was recorded outside its alert or action
limits (one ``exception [category severity] parameter: message`` line each on stderr, and in
the JSON answer): the step is stored, and the exception waits for review.
"""

from __future__ import annotations

import json
from typing import Any

import click

from engine.errors import BatchlineError
from engine.vocabulary import BatchState

from .acting import WITNESS_PASSWORD_ENV, acting, reason_option, user_option, witness, witness_password
from .context import as_json, runtime
from .output import fail, json_option, show, warn
from .root import main

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
EXCEPTION_FIELDS = [
    "id",
    "step_seq",
    "category",
    "severity",
    "status",
    "parameter",
    "message",
    "signatures_given",
    "created_at",
]


def _not_finite(text: str) -> Any:
    raise BatchlineError(f"{text} is not a finite number: NaN and Infinity are refused", code="number_not_finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        _not_finite(text)
    return value


def json_arg(text: str, what: str) -> dict[str, Any]:
    """A JSON object given on the command line; NaN, Infinity and 1e400 are refused."""
    try:
        value = json.loads(text, parse_constant=_not_finite, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
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


def exception_line(exc: dict[str, Any]) -> str:
    """``exception [limit.action major] ph: Buffer pH 8.40 pH is above the action limit ...``"""
    parameter = f" {exc['parameter']}" if exc.get("parameter") else ""
    return f"exception [{exc['category']} {exc['severity']}]{parameter}: {exc['message']}"


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
@click.option(
    "--version", type=click.IntRange(1, 2**31 - 1), help="A specific version of the recipe (default: newest approved)."
)
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
    person = acting(user, "batch.start")
    show(
        batches.start_batch(
            runtime(), recipe_ref, batch_id, user=person.username, parameters=parameters, version=version
        ),
        BATCH_FIELDS[:5],
    )


@batch.command("list")
@click.option("--state", type=click.Choice([s.value for s in BatchState]))
@json_option
def batch_list(state):
    """The newest batches."""
    from engine import batches

    show(batches.list_batches(runtime(), state=state), ["batch_id", "state", "steps", "created_by", "created_at"])


@batch.command("show")
@click.argument("batch_id")
@json_option
def batch_show(batch_id):
    """One batch: state, recipe, parameters, open incidents."""
    from engine import batches

    show(batches.get_batch(runtime(), batch_id), BATCH_FIELDS)


@batch.command("tasks")
@click.argument("batch_id")
@json_option
def batch_tasks(batch_id):
    """The operator tasks BATCH_ID waits for."""
    from engine import batches

    show(batches.ready_tasks(runtime(), batch_id), ["id", "bpmn_id", "name", "form", "instructions"])


@batch.command("steps")
@click.argument("batch_id")
@json_option
def batch_steps(batch_id):
    """The batch record of BATCH_ID: every step in order."""
    from engine import batches

    show(batches.steps(runtime(), batch_id), ["seq", "kind", "bpmn_id", "user", "recorded_at", "values"])


@batch.command("exceptions")
@click.argument("batch_id")
@json_option
def batch_exceptions(batch_id):
    """The exceptions of BATCH_ID (limit, trend, incident): the review-by-exception list."""
    from engine import batches

    show(batches.exceptions(runtime(), batch_id), EXCEPTION_FIELDS)


def task_of(batch_id: str, ref: str) -> str:
    """A task id, or the BPMN id of the one waiting task that has it (``take_sample``):
    people know the step they are at, not the task's UUID. A BPMN id that several
    waiting tasks share (parallel branches, multi-instance) is refused, never guessed."""
    from uuid import UUID

    from engine import batches

    try:
        UUID(ref)
        return ref
    except ValueError:
        pass
    waiting = batches.ready_tasks(runtime(), batch_id)
    matches = [t for t in waiting if t["bpmn_id"] == ref]
    if len(matches) == 1:
        return matches[0]["id"]
    listed = [f"{t['id']}  {t['bpmn_id']}  {t['name']}" for t in waiting] or ["(no task is waiting)"]
    if not matches:
        fail("task_not_found", f"batch {batch_id} waits for no task {ref!r}; waiting:", listed)
    fail("task_ambiguous", f"{len(matches)} waiting tasks of batch {batch_id} are {ref!r}; give the task id:", listed)


@batch.command("complete")
@click.argument("batch_id")
@click.argument("task_id", metavar="TASK")
@click.option("--data", required=True, help="The values as a JSON object, e.g. '{\"ph\": 7.1}'.")
@click.option("--idempotency-key", help="Repeat safely: the same key answers with the first result.")
@click.option(
    "--witness",
    "witness_user",
    help="The witness's user id, when the form requires one (password from "
    f"${WITNESS_PASSWORD_ENV}, else asked on the terminal).",
)
@user_option
@json_option
def batch_complete(batch_id, task_id, data, idempotency_key, witness_user, user):
    """Complete TASK of BATCH_ID with its values (records one step, signed by --user).
    TASK is a task id or the BPMN id of a waiting task (see `batch tasks`). A value
    outside its alert or action limits is recorded and raises an exception, printed as a
    warning on stderr."""
    from engine import batches

    values = json_arg(data, "--data")
    task_id = task_of(batch_id, task_id)
    person = acting(user, "task.complete")
    witness_person = None
    if witness_user and not batches.answered(runtime(), batch_id, person.username, idempotency_key):
        secret = witness_password(witness_user)
        # the task waits, this person may do it and the form wants this witness: checked
        # before the witness's password (it counts toward the witness's lockout)
        plan = batches.may_complete(runtime(), batch_id, task_id, person)
        if batches.witness_wanted(runtime(), plan, witness_user, person):
            witness_person = witness(witness_user, secret)
        else:
            warn(f"this step needs no witness: --witness {witness_user} ignored (no password checked)")
    outcome = batches.complete_task(
        runtime(),
        batch_id,
        task_id,
        values,
        user=person.username,
        idempotency_key=idempotency_key,
        signer=person,
        witness=witness_person,
        actor=person,
    )
    body = outcome.body
    for exc in body.get("exceptions") or []:
        warn(exception_line(exc))
    if as_json():
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

        person = acting(user, "batch.hold")
        show(
            batches.change_state(runtime(), batch_id, action, user=person.username, reason=reason),
            ["batch_id", "state"],
        )

    return command


_state_command("hold", "Hold running batch BATCH_ID: no step is accepted, timers and service tasks wait.")
_state_command("resume", "Resume held batch BATCH_ID.")
_state_command("abort", "Abort batch BATCH_ID for good; its pending jobs are cancelled.")


@batch.command("export")
@click.argument("batch_id")
@click.option("--format", "fmt", type=click.Choice(["pdf", "xml", "json"]), required=True, help="PDF, BatchML or JSON.")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The file to write ('-' for standard output).",
)
@user_option
@json_option
def batch_export(batch_id, fmt, output, user):
    """Export the batch record of BATCH_ID (at any time: a running batch's PDF says IN
    PROGRESS). The XML is BatchML validated against the schema; the export is audited."""
    from engine import exports

    person = acting(user, "batch.read")
    rt = runtime()
    record = exports.build(rt, exports.export_batch_id(rt, batch_id))
    if fmt == "pdf":
        from ..exports import pdf

        body = pdf.render(record, printed_by=person.username)
    elif fmt == "xml":
        from engine.exports import batchml

        body = batchml.build(record)
    else:
        body = json.dumps(record, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8")
    exports.audit_export(rt, record, fmt, person.username)
    with click.open_file(output, "wb") as out:
        out.write(body)
    if output != "-":
        show(
            {
                "file": output,
                "format": fmt,
                "batch_id": record["batch"]["batch_id"],
                "bytes": len(body),
                "content_hash": record["content_hash"],
            }
        )
