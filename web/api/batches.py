"""Batches over HTTP: start, read, complete operator tasks (the step path), receive
asynchronous connector results, and the supervisor's hold / resume / abort.

Completing a task is the request a flaky shop-floor network repeats: with an
``Idempotency-Key`` header a repeat answers with the first result (and
``Idempotent-Replayed: true``) instead of recording a second step.
"""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from flask import request
from flask_smorest import Blueprint

from engine import batches, permissions
from engine.errors import InvalidInput, NotFound

from ..auth import current_person, current_user, own_signature, requires, signer_from
from . import runtime
from .schemas import (
    Batch,
    BatchFilter,
    BatchStart,
    CorrectionIn,
    CorrectionResult,
    Diagram,
    IdempotencyKey,
    MyTask,
    OpenedTask,
    Reason,
    Reassign,
    Reassigned,
    ServiceResult,
    ServiceResultOutcome,
    Step,
    StepResult,
    Task,
    TaskCompletion,
    TaskQuery,
)

blp = Blueprint("batches", __name__, url_prefix="/api", description="Batches, their tasks and steps")

REPLAYED = "Idempotent-Replayed"


def _answer(outcome: batches.Outcome):
    headers = {REPLAYED: "true"} if outcome.replayed else {}
    return outcome.body, outcome.status, headers


@blp.route("/batches", methods=["GET"])
@requires("batch.read")
@blp.arguments(BatchFilter, location="query")
@blp.response(200, Batch(many=True))
def list_batches(query):
    """The newest batches, optionally only those in one state."""
    return batches.list_batches(runtime(), state=query.get("state"))


@blp.route("/batches", methods=["POST"])
@requires("batch.start")
@blp.arguments(BatchStart)
@blp.response(201, Batch)
def start_batch(body):
    """Start a batch on the newest approved version of a recipe (or the given version)."""
    return batches.start_batch(
        runtime(),
        body["recipe"],
        body["batch_id"],
        user=current_user(),
        parameters=body["parameters"],
        version=body.get("version"),
    )


@blp.route("/batches/<batch_id>", methods=["GET"])
@requires("batch.read")
@blp.response(200, Batch)
def show_batch(batch_id: str):
    """A batch: state, recipe version, parameters, open incidents."""
    return batches.get_batch(runtime(), batch_id)


@blp.route("/batches/<batch_id>/tasks", methods=["GET"])
@requires("batch.read")
@blp.response(200, Task(many=True))
def batch_tasks(batch_id: str):
    """The operator tasks the batch waits for, with their forms and instructions."""
    return batches.ready_tasks(runtime(), batch_id)


@blp.route("/batches/<batch_id>/tasks/<task_id>", methods=["GET"])
@requires("batch.read")
@blp.response(200, OpenedTask)
@blp.alt_response(404, description="no such batch or task")
@blp.alt_response(409, description="the task is not waiting for completion")
def open_task(batch_id: str, task_id: str):
    """One waiting task. Opened by someone who may complete tasks, its first opening is
    recorded (``opened_at``): a step's duration runs from it to completion."""
    person = current_person()
    user = person.username if permissions.allowed(person.roles, "task.complete") else None
    return batches.open_task(runtime(), batch_id, task_id, user=user)


@blp.route("/batches/<batch_id>/steps", methods=["GET"])
@requires("batch.read")
@blp.response(200, Step(many=True))
def batch_steps(batch_id: str):
    """The batch record: every step in order, with who, when and the values."""
    return batches.steps(runtime(), batch_id)


@blp.route("/batches/<batch_id>/tasks/<task_id>/complete", methods=["POST"])
@requires("task.complete")
@blp.arguments(TaskCompletion)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(
    200,
    StepResult,
    headers={
        REPLAYED: {
            "description": "`true` when this is the stored answer to an earlier request with the same key",
            "schema": {"type": "string"},
        }
    },
)
def complete_task(body, headers, batch_id: str, task_id: str):
    """Complete an operator task with its values: records one step and advances the batch."""
    signature, witness_part = body.get("signature"), body.get("witness")
    key = headers.get("idempotency_key")
    signer = witness = None
    if (signature or witness_part) and not batches.answered(runtime(), batch_id, current_user(), key):
        # the batch, the ready task and the caller's permission first, then what the
        # signatures claim, and only then anyone's password (it counts toward a lockout)
        person = current_person()
        plan = batches.may_complete(runtime(), batch_id, task_id, person)
        if signature:
            batches.check_own_signature(signature.get("username"), person)
        wanted = bool(witness_part) and batches.witness_wanted(runtime(), plan, witness_part.get("username"), person)
        signer = own_signature(signature)
        witness = signer_from(witness_part) if wanted else None
    override, override_signer = body.get("override"), None
    if override is not None and not batches.answered(runtime(), batch_id, current_user(), key):
        if not body.get("override_signature"):
            raise InvalidInput("an override needs the supervisor's signature", code="signature_required")
        batches.may_complete(runtime(), batch_id, task_id, current_person())
        override_signer = signer_from(body["override_signature"], purpose="signature")
    return _answer(
        batches.complete_task(
            runtime(),
            batch_id,
            task_id,
            body["data"],
            user=current_user(),
            idempotency_key=key,
            signer=signer,
            witness=witness,
            actor=current_person(),
            override=override,
            override_signer=override_signer,
        )
    )


@blp.route("/batches/<batch_id>/tasks/<task_id>/callback", methods=["POST"])
@requires("task.callback")
@blp.arguments(ServiceResult)
@blp.arguments(IdempotencyKey, location="headers")
@blp.response(200, ServiceResultOutcome)
def service_task_result(body, headers, batch_id: str, task_id: str):
    """An asynchronous connector's answer (ERP, LIMS, QMS) for a waiting service task."""
    try:
        UUID(task_id)
    except ValueError:
        raise NotFound(f"task {task_id!r} not found", code="task_not_found") from None
    return _answer(
        batches.complete_service_task(
            runtime(),
            batch_id,
            task_id,
            body["result"],
            user=current_user(),
            idempotency_key=headers.get("idempotency_key"),
        )
    )


def _change_state(action: str, batch_id: str, reason: str):
    return batches.change_state(runtime(), batch_id, action, user=current_user(), reason=reason)


@blp.route("/batches/<batch_id>/hold", methods=["POST"])
@requires("batch.hold")
@blp.arguments(Reason)
@blp.response(200, Batch)
def hold_batch(body, batch_id: str):
    """Hold a running batch: no step is accepted and its timers and service tasks wait."""
    return _change_state("hold", batch_id, body["reason"])


@blp.route("/batches/<batch_id>/resume", methods=["POST"])
@requires("batch.hold")
@blp.arguments(Reason)
@blp.response(200, Batch)
def resume_batch(body, batch_id: str):
    """Resume a held batch."""
    return _change_state("resume", batch_id, body["reason"])


@blp.route("/batches/<batch_id>/abort", methods=["POST"])
@requires("batch.hold")
@blp.arguments(Reason)
@blp.response(200, Batch)
def abort_batch(body, batch_id: str):
    """Abort a running or held batch for good; its pending jobs are cancelled."""
    return _change_state("abort", batch_id, body["reason"])


NEXT_AFTER = "X-Next-After"
PAGE_HEADERS = {
    "Link": {
        "description": 'the next page: `<url>; rel="next"` (absent on the last page)',
        "schema": {"type": "string"},
    },
    NEXT_AFTER: {"description": "the next page's `after` (absent on the last page)", "schema": {"type": "string"}},
}


@blp.route("/tasks", methods=["GET"])
@requires("task.complete")
@blp.arguments(TaskQuery, location="query")
@blp.response(200, MyTask(many=True), headers=PAGE_HEADERS)
def my_tasks(query):
    """My tasks: ready operator tasks across running and held batches, for my roles or
    assigned to me, oldest first, one page at a time: follow `Link: rel="next"` (or pass
    `X-Next-After` as `after`) until there is none. A held batch's tasks carry `hold`."""
    for name in ("limit", "after"):
        if len(request.args.getlist(name)) > 1:  # which one would count is anybody's guess
            message = f"the request has invalid fields: {name}"
            raise InvalidInput(message, code="validation_error", details={"fields": {name: ["given more than once"]}})
    page = batches.task_page(runtime(), current_person(), limit=query["limit"], after=query.get("after"))
    headers = {}
    if page.next_after is not None:
        args = {**request.args.to_dict(), "after": str(page.next_after)}
        headers["Link"] = f'<{request.base_url}?{urlencode(args)}>; rel="next"'
        headers[NEXT_AFTER] = str(page.next_after)
    return page.items, 200, headers


@blp.route("/batches/<batch_id>/tasks/<task_id>/assign", methods=["POST"])
@requires("task.reassign")
@blp.arguments(Reassign)
@blp.response(200, Reassigned)
def reassign_task(body, batch_id: str, task_id: str):
    """Assign a ready task to one person (supervisor); only they may complete it then."""
    return batches.reassign(runtime(), batch_id, task_id, body["username"], by=current_user(), reason=body["reason"])


@blp.route("/batches/<batch_id>/steps/<id:seq>/corrections", methods=["POST"])
@requires("step.correct")
@blp.arguments(CorrectionIn)
@blp.response(201, CorrectionResult)
def correct_step(body, batch_id: str, seq: int):
    """Correct a recorded value (until the batch is reviewed): the original stays, the
    reason is mandatory, the corrector signs, earlier signatures show as superseded."""
    batches.check_own_signature(body["signature"].get("username"), current_person())
    batches.may_correct(runtime(), batch_id, seq)
    signer = own_signature(body["signature"])
    return batches.correct_step(
        runtime(), batch_id, seq, body["field"], body["value"], reason=body["reason"], signer=signer
    )


@blp.route("/batches/<batch_id>/diagram", methods=["GET"])
@requires("batch.read")
@blp.response(200, Diagram)
def batch_diagram(batch_id: str):
    """The recipe's BPMN with the elements done and current, for a diagram view."""
    return batches.diagram(runtime(), batch_id)
