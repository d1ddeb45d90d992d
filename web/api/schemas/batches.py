"""Batches and their record over HTTP: starting, tasks, steps with signatures and
corrections, completing a task, service-task results, exceptions, the diagram."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from engine.batches.queries import PAGE_DEFAULT, PAGE_MAX
from engine.vocabulary import BatchState

from ...input_limits import MAX_ID
from ..fields import BoundedInt, RecipeRef, Scalar

#: a batch's states, in the order of its life
STATES = tuple(state.value for state in BatchState)


class BatchStart(ma.Schema):
    recipe = RecipeRef(
        required=True,
        metadata={
            "description": "recipe key (string) or recipe version id (integer)",
            "oneOf": [
                {"type": "string", "minLength": 1, "maxLength": 200},
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            ],
        },
    )
    batch_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    parameters = fields.Dict(
        keys=fields.String(),
        values=Scalar(),
        load_default=dict,
        metadata={"description": "name -> scalar value (string, finite number, boolean, null), visible to the recipe"},
    )
    version = BoundedInt(minimum=1, allow_none=True, metadata={"description": "a version of the recipe key"})


class BatchFilter(ma.Schema):
    state = fields.String(validate=validate.OneOf(STATES))


class Batch(ma.Schema):
    batch_id = fields.String()
    state = fields.String(metadata={"description": ", ".join(STATES)})
    recipe_version_id = fields.Integer()
    recipe_hash = fields.String()
    parameters = fields.Dict()
    steps = fields.Integer(metadata={"description": "steps recorded so far"})
    created_at = fields.String()
    created_by = fields.String()
    completed_at = fields.String(allow_none=True)
    reviewed_at = fields.String(
        allow_none=True, metadata={"description": "when QA reviewed the record; corrections end then"}
    )
    hold = fields.Dict(
        allow_none=True,
        metadata={"description": "while the batch is held: who held it (by), when (at) and why (reason)"},
    )
    recipe = fields.Dict()
    incidents = fields.List(fields.Dict())
    release = fields.Dict(
        allow_none=True, metadata={"description": "QA's e-signed release or rejection: decision, who, meaning, when"}
    )
    archive = fields.Dict(
        allow_none=True,
        metadata={
            "description": "an archived batch's archive (docs/archive.md): archived_at, archived_by, location, "
            "sha256, record_content_hash, verified (the file matches the hash the audit trail sealed), problem"
        },
    )


class Task(ma.Schema):
    id = fields.String(metadata={"description": "task id to complete"})
    bpmn_id = fields.String()
    name = fields.String()
    process = fields.String(metadata={"description": "the BPMN process id of the unit procedure"})
    process_name = fields.String(metadata={"description": "the unit procedure's name as people read it"})
    form = fields.String(allow_none=True)
    form_definition = fields.Dict(allow_none=True)
    instructions = fields.String(allow_none=True)
    iteration = fields.Integer(allow_none=True)
    role = fields.String(metadata={"description": "the role the task needs"})
    assigned_to = fields.String(allow_none=True, metadata={"description": "set when a supervisor reassigned it"})
    qual = fields.List(fields.String(), metadata={"description": "qualifications its performer and witness need"})


class OpenedTask(Task):
    opened_at = fields.String(allow_none=True, metadata={"description": "when it was first opened (UTC, ISO 8601)"})
    opened_by = fields.String(allow_none=True, metadata={"description": "who opened it first"})
    first_open = fields.Boolean(metadata={"description": "this request recorded the first opening"})


class MyTask(Task):
    batch_id = fields.String()
    batch_kind = fields.String(metadata={"description": "production, or quality (a QA flow about a subject)"})
    subject = fields.Dict(
        allow_none=True, metadata={"description": "what a quality process is about: {type: batch|exception, id}"}
    )
    blocked = fields.String(
        allow_none=True,
        metadata={"description": "why you cannot do it yet: `needs aseptic-gowning (expired 2026-11-30)`"},
    )
    batch_state = fields.String(metadata={"description": "running, or held (the task waits until the batch resumes)"})
    hold = fields.Dict(
        allow_none=True,
        metadata={"description": "while the batch is held: who held it (by), when (at) and why (reason)"},
    )
    assignment_reason = fields.String(
        allow_none=True, metadata={"description": "the supervisor's reason when the task was reassigned"}
    )
    ready_at = fields.String(metadata={"description": "when the task started waiting (UTC, ISO 8601)"})


class TaskQuery(ma.Schema):
    """A page of my tasks: ``limit`` tasks after the cursor ``after`` of the previous page."""

    limit = BoundedInt(
        minimum=1,
        maximum=PAGE_MAX,
        strict=False,
        load_default=PAGE_DEFAULT,
        metadata={"description": f"tasks per page, 1 to {PAGE_MAX} (default {PAGE_DEFAULT})"},
    )
    after = BoundedInt(
        minimum=0,
        maximum=2**63 - 1,
        strict=False,
        metadata={"description": "the cursor of the previous page (`X-Next-After`, or follow `Link: rel=next`)"},
    )


class SignatureOut(ma.Schema):
    """§11.50: printed name, UTC time and meaning; bound to the hash of what was signed."""

    role = fields.String(metadata={"description": "performer, witness or corrector"})
    username = fields.String()
    printed_name = fields.String()
    meaning = fields.String()
    signed_at = fields.String()
    content_hash = fields.String(metadata={"description": "SHA-256 of exactly what was signed"})
    superseded = fields.Boolean(metadata={"description": "a later correction replaced what this signed"})


class CorrectionOut(ma.Schema):
    id = fields.Integer()
    field = fields.String()
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)
    reason = fields.String()
    username = fields.String()
    corrected_at = fields.String()


class ExceptionOut(ma.Schema):
    """An exception as the step raised it (``GET /batches/{id}/exceptions`` adds dispositions)."""

    id = fields.Integer()
    step_seq = fields.Integer(allow_none=True)
    category = fields.String(metadata={"description": "e.g. limit.alert, limit.action, oot.value"})
    source = fields.String(metadata={"description": "what raised it: limit, trend, incident, operator, ..."})
    severity = fields.String(metadata={"description": "minor, major or critical (the rule set decides)"})
    parameter = fields.String(allow_none=True)
    message = fields.String()
    value = fields.Raw(allow_none=True)
    limits = fields.Dict(allow_none=True)
    details = fields.Dict()
    status = fields.String()
    signatures_required = fields.Integer()
    blocks_release = fields.Boolean()
    created_at = fields.String()


class Step(ma.Schema):
    seq = fields.Integer()
    kind = fields.String()
    task_id = fields.String()
    bpmn_id = fields.String()
    task_name = fields.String()
    form = fields.String(allow_none=True)
    user = fields.String()
    recorded_at = fields.String()
    values = fields.Dict()
    units = fields.Dict(metadata={"description": "field -> unit of the recorded value"})
    form_hash = fields.String(allow_none=True, metadata={"description": "hash of the form definition used"})
    values_hash = fields.String()
    recipe_version_id = fields.Integer()
    current_values = fields.Dict(metadata={"description": "the values after corrections"})
    signatures = fields.List(fields.Nested(SignatureOut))
    corrections = fields.List(fields.Nested(CorrectionOut))
    role = fields.String(
        metadata={"description": "an operator entry's task role: with its signatures' meanings, who may correct it"}
    )


class Credentials(ma.Schema):
    """A signer's two components (21 CFR 11.200): user id and password, checked now."""

    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)


class TaskCompletion(ma.Schema):
    data = fields.Dict(keys=fields.String(), required=True, metadata={"description": "the form's values"})
    signature = fields.Nested(
        Credentials, metadata={"description": "the performer's signature; required when the task has a form"}
    )
    witness = fields.Nested(
        Credentials, metadata={"description": "a second person's signature, when the form requires a witness"}
    )
    override = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        values=fields.String(validate=validate.Length(min=1, max=2000)),
        validate=validate.Length(min=1, max=20),
        metadata={
            "description": "a supervisor overrides failed lot/equipment scan checks: field -> reason "
            "(never hard limits); raised as `override` exceptions"
        },
    )
    override_signature = fields.Nested(
        Credentials, metadata={"description": "the overriding supervisor's signature (meaning Approved)"}
    )


class IdempotencyKey(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(min=1, max=100),
        metadata={"description": "repeat a request safely: the same key answers with the first result"},
    )


class StepResult(ma.Schema):
    step = fields.Nested(Step)
    batch = fields.Dict()
    exceptions = fields.List(
        fields.Nested(ExceptionOut),
        metadata={"description": "alert/action limit breaches this step raised for review by exception"},
    )
    next_tasks = fields.List(fields.Nested(Task))


class Reassign(ma.Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class Reassigned(ma.Schema):
    batch_id = fields.String()
    task_id = fields.String()
    assigned_to = fields.String(metadata={"description": "the one person who may complete the task now"})


class CorrectionResult(ma.Schema):
    seq = fields.Integer()
    field = fields.String()
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)
    reason = fields.String()
    signature = fields.Nested(SignatureOut)


class CorrectionIn(ma.Schema):
    field = fields.String(required=True, validate=validate.Length(min=1, max=200))
    value = fields.Raw(required=True, allow_none=True, metadata={"description": "the corrected value"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    signature = fields.Nested(Credentials, required=True)


class Diagram(ma.Schema):
    bpmn = fields.Dict(metadata={"description": "file name -> BPMN XML of the recipe version"})
    process_id = fields.String()
    done = fields.List(fields.String())
    current = fields.List(fields.String())


class ServiceResult(ma.Schema):
    result = fields.Dict(
        keys=fields.String(), required=True, metadata={"description": "what the other system answered"}
    )


class ServiceResultOutcome(ma.Schema):
    step = fields.Nested(Step)
