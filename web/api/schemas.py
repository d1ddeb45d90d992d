"""The API's request and response bodies as marshmallow schemas (they also write the
OpenAPI document). Request schemas refuse unknown fields (marshmallow's default), so a
misspelt field is an error instead of silently ignored data.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from engine.users import ROLES
from engine.vocabulary import BatchState

from ..input_limits import MAX_ID, MAX_INT
from .fields import BoundedInt, RecipeRef, Scalar

#: a batch's states, in the order of its life
STATES = tuple(state.value for state in BatchState)


# --- recipes -------------------------------------------------------------------------


class RecipeImport(ma.Schema):
    bpmn = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "file name -> BPMN XML text"},
    )
    forms = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(),
        load_default=dict,
        metadata={"description": "form id -> form-js JSON"},
    )
    recipe = fields.String(
        validate=validate.Length(min=1, max=200), metadata={"description": "recipe key; default: the BPMN process id"}
    )
    process_id = fields.String(metadata={"description": "the top process, when the files hold several"})


class RecipeUploadOptions(ma.Schema):
    """The plain form fields of a multipart recipe upload (the files come separately)."""

    recipe = fields.String(validate=validate.Length(min=1, max=200))
    process_id = fields.String()


class RecipeUpload(RecipeUploadOptions):
    """Documentation only: the multipart form of a recipe upload."""

    bpmn = fields.List(
        fields.Raw(metadata={"type": "string", "format": "binary"}),
        required=True,
        metadata={"description": "one or more .bpmn files"},
    )
    forms = fields.List(
        fields.Raw(metadata={"type": "string", "format": "binary"}),
        metadata={"description": "form-js .json files, keyed by their `id` (or file name)"},
    )


class RecipeCheck(ma.Schema):
    bpmn = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "file name -> BPMN XML text"},
    )
    process_id = fields.String()


class RecipeUploadCheck(ma.Schema):
    """Documentation only: the multipart form of a recipe check."""

    bpmn = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}), required=True)
    process_id = fields.String()


class Problem(ma.Schema):
    code = fields.String()
    message = fields.String()
    element_id = fields.String(allow_none=True)
    file = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)


class RecipeCheckResult(ma.Schema):
    ok = fields.Boolean()
    problems = fields.List(fields.Nested(Problem))


class Recipe(ma.Schema):
    id = fields.Integer(metadata={"description": "recipe version id"})
    recipe = fields.String()
    version = fields.Integer()
    name = fields.String()
    process_id = fields.String()
    status = fields.String(metadata={"description": "draft, approved or retired"})
    content_hash = fields.String()
    created_at = fields.String()
    created_by = fields.String()
    tasks = fields.List(fields.Dict())


class RecipeDetail(Recipe):
    bpmn = fields.Dict(keys=fields.String(), values=fields.String())
    forms = fields.Dict()


class Reason(ma.Schema):
    """Approving, retiring, holding, resuming and aborting each need a reason."""

    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "why; recorded in the audit trail"},
    )


# --- batches -------------------------------------------------------------------------


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
    recipe = fields.Dict()
    incidents = fields.List(fields.Dict())


class Task(ma.Schema):
    id = fields.String(metadata={"description": "task id to complete"})
    bpmn_id = fields.String()
    name = fields.String()
    process = fields.String()
    form = fields.String(allow_none=True)
    form_definition = fields.Dict(allow_none=True)
    instructions = fields.String(allow_none=True)
    iteration = fields.Integer(allow_none=True)
    role = fields.String(metadata={"description": "the role the task needs"})
    assigned_to = fields.String(allow_none=True, metadata={"description": "set when a supervisor reassigned it"})


class MyTask(Task):
    batch_id = fields.String()


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
    id = fields.Integer()
    step_seq = fields.Integer(allow_none=True)
    source = fields.String(metadata={"description": "limit, trend or incident"})
    severity = fields.String(metadata={"description": "alert or action"})
    parameter = fields.String(allow_none=True)
    message = fields.String()
    details = fields.Dict()
    status = fields.String()
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


class UserIn(ma.Schema):
    username = fields.String(required=True, validate=validate.Length(min=2, max=64))
    printed_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True, validate=validate.Length(min=1))
    kind = fields.String(load_default="person", validate=validate.OneOf(["person", "service"]))
    password = fields.String(load_only=True, validate=validate.Length(max=200))


class UserOut(ma.Schema):
    username = fields.String()
    printed_name = fields.String()
    kind = fields.String()
    roles = fields.List(fields.String())
    active = fields.Boolean()
    locked = fields.Boolean()
    locked_until = fields.String(allow_none=True, metadata={"description": "when the lock ends by itself"})
    created_at = fields.String()
    password_changed_at = fields.String(allow_none=True)


class TokenIn(ma.Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))


class TokenOut(ma.Schema):
    token = fields.String(metadata={"description": "shown once; only its hash is stored"})


class ServiceResult(ma.Schema):
    result = fields.Dict(
        keys=fields.String(), required=True, metadata={"description": "what the other system answered"}
    )


class ServiceResultOutcome(ma.Schema):
    step = fields.Nested(Step)


# --- operations ----------------------------------------------------------------------


class IncidentFilter(ma.Schema):
    all = fields.Boolean(load_default=False, metadata={"description": "include resolved incidents"})


class Incident(ma.Schema):
    id = fields.Integer()
    job_id = fields.Integer()
    batch_id = fields.String(
        allow_none=True, metadata={"description": "the batch's id, if the job belonged to a batch"}
    )
    kind = fields.String()
    message = fields.String()
    created_at = fields.String()
    resolved_at = fields.String(allow_none=True)


class IncidentRetried(ma.Schema):
    id = fields.Integer()
    job_id = fields.Integer()
    state = fields.String()


class EventPage(ma.Schema):
    after = BoundedInt(
        strict=False,
        maximum=MAX_INT,
        load_default=0,
        metadata={"description": "return events with a sequence number above this"},
    )
    limit = BoundedInt(strict=False, minimum=1, maximum=1000, load_default=100)


class Events(ma.Schema):
    events = fields.List(fields.Dict(), metadata={"description": "CloudEvents 1.0 envelopes, oldest first"})
    next_after = fields.Integer(metadata={"description": "pass as `after` to get the next page"})


class AuditAnchors(ma.Schema):
    file = fields.String(metadata={"description": "the anchor file outside the database"})
    anchors = fields.Integer(metadata={"description": "anchor lines read"})
    newest = fields.Integer(allow_none=True, metadata={"description": "the newest anchored entry id"})
    problems = fields.List(fields.String())


class AuditSignatures(ma.Schema):
    checked = fields.Integer()
    mismatches = fields.Integer()
    problems = fields.List(fields.String())


class AuditVerifyQuery(ma.Schema):
    anchors = fields.Boolean(
        load_default=True, metadata={"description": "check every anchored head is still in the trail"}
    )
    signatures = fields.Boolean(
        load_default=False, metadata={"description": "recompute every signature's content hash from the record"}
    )


class AuditCheck(ma.Schema):
    ok = fields.Boolean()
    entries = fields.Integer()
    problems = fields.List(fields.String())
    legacy_entries = fields.Integer(metadata={"description": "entries from before the audit key (plain SHA-256)"})
    record_rows = fields.Integer(metadata={"description": "step, signature and correction rows checked"})
    legacy_rows = fields.Integer(metadata={"description": "record rows older than the audit key"})
    key = fields.String(metadata={"description": "fingerprint of the audit key (not the key)"})
    anchors = fields.Nested(AuditAnchors)
    signatures = fields.Nested(AuditSignatures)


class Health(ma.Schema):
    status = fields.String(metadata={"description": "ok, schema_outdated or database_unreachable"})
    database = fields.String()
    schema_revision = fields.String(allow_none=True)
    schema_head = fields.String(allow_none=True)
    version = fields.String()
