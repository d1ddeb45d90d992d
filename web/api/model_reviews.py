"""QA's decision on the out-of-trend models over HTTP: the training runs and their
evaluation reports, the e-signed approval or rejection (only approved models score), and
one model version with the run and decision behind it (where a finding's ``model_id``
leads) - a thin layer over ``analytics.model_review``. Same URL prefix as
``web.api.analytics``."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from analytics import model_review
from engine.errors import InvalidInput, NotFound

from ..auth import own_signature, requires
from . import runtime
from .analytics import TrendModelOut
from .schemas.quality import SignedCredentials

blp = Blueprint(
    "analytics_trainings",
    __name__,
    url_prefix="/api/analytics",
    description="Training runs of the out-of-trend models: evaluation report and QA's e-signed approval",
)


class TrendModelDetail(TrendModelOut):
    card = ma.fields.Dict(metadata={"description": "the model card (JSON; never a pickle)"})
    training = ma.fields.Dict(
        allow_none=True, metadata={"description": "the training run and QA's decision (null: trained before approvals)"}
    )


@blp.route("/models/<id:model_id>", methods=["GET"])
@requires("analytics.read")
@blp.response(200, TrendModelDetail)
def get_model(model_id: int):
    """One model version (a finding's `details.model_id`): its card, limits, and the
    training run with QA's e-signed approval that put it in force."""
    return model_review.get_model(runtime(), model_id)


class TrainingQuery(ma.Schema):
    recipe = ma.fields.String(validate=ma.validate.Length(min=1, max=200), metadata={"description": "only this recipe"})
    limit = ma.fields.Integer(load_default=200, validate=ma.validate.Range(min=1, max=1000))


class TrainingDecisionOut(ma.Schema):
    decision = ma.fields.String(metadata={"description": "approved or rejected"})
    username = ma.fields.String()
    printed_name = ma.fields.String()
    meaning = ma.fields.String(metadata={"description": "Approved or Rejected"})
    reason = ma.fields.String()
    signed_at = ma.fields.String()
    report_hash = ma.fields.String(metadata={"description": "SHA-256 of the report the signature names"})


class TrainingOut(ma.Schema):
    id = ma.fields.Integer()
    recipe = ma.fields.String()
    recipe_version = ma.fields.Integer(allow_none=True)
    trained_by = ma.fields.String()
    trained_at = ma.fields.String()
    released_only = ma.fields.Boolean()
    batches = ma.fields.Integer()
    models = ma.fields.Integer()
    not_enough_history = ma.fields.Integer(metadata={"description": "parameters without a model, each with why"})
    worst_false_alarm_rate = ma.fields.Float(
        allow_none=True, metadata={"description": "highest false-alarm rate on held-out newest batches"}
    )
    report_hash = ma.fields.String()
    status = ma.fields.String(metadata={"description": "pending, approved or rejected"})
    decision = ma.fields.Nested(TrainingDecisionOut, allow_none=True)


class TrainingReportOut(TrainingOut):
    report = ma.fields.Dict(
        metadata={
            "description": "per model: features, limits, training batch ids, held-out false alarms; "
            "not_enough_history; summary"
        }
    )
    active_models = ma.fields.Integer(metadata={"description": "models of this run scoring now"})


class TrainingDecisionIn(ma.Schema):
    """QA's e-signature on a training run: both components, and why."""

    signature = ma.fields.Nested(SignedCredentials, required=True)
    reason = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=model_review.MAX_REASON),
        metadata={"description": "why (e.g. what in the report was checked); in the audit trail"},
    )


def _training_id(value: int) -> int:
    if not 0 < value <= model_review.MAX_ID:
        raise NotFound(f"training run {value} not found", code="training_not_found")
    return value


def _signer(body, meaning: str):
    signature = body["signature"]
    if signature.get("meaning", meaning) != meaning:
        raise InvalidInput(f"this signature means {meaning!r}", code="meaning_invalid")
    return own_signature(signature)


@blp.route("/trainings", methods=["GET"])
@requires("analytics.read")
@blp.arguments(TrainingQuery, location="query")
@blp.response(200, TrainingOut(many=True))
def list_trainings(query):
    """Training runs, newest first: pending (waiting for QA), approved or rejected."""
    return model_review.list_trainings(runtime(), query.get("recipe"), limit=query["limit"])


@blp.route("/trainings/<id:training_id>", methods=["GET"])
@requires("analytics.read")
@blp.response(200, TrainingReportOut)
def get_training(training_id: int):
    """A training run's evaluation report: per model the features, limits, training
    batches and false alarms on held-out released batches; what had not enough history."""
    return model_review.get_training(runtime(), _training_id(training_id))


@blp.route("/trainings/<id:training_id>/approve", methods=["POST"])
@requires("analytics.approve")
@blp.arguments(TrainingDecisionIn)
@blp.response(200, TrainingOut)
def approve_training(body, training_id: int):
    """Approve a training run with an e-signature (*Approved*, re-authenticated; not by
    who trained it: 403 `trainer_cannot_approve`): its models score from now on and the
    versions they replace retire. A second decision on the run is 409 `training_decided`;
    an older run than the newest is 409 `training_superseded`."""
    signer = _signer(body, model_review.APPROVED_MEANING)
    return model_review.approve(runtime(), _training_id(training_id), signer=signer, reason=body["reason"])


@blp.route("/trainings/<id:training_id>/reject", methods=["POST"])
@requires("analytics.approve")
@blp.arguments(TrainingDecisionIn)
@blp.response(200, TrainingOut)
def reject_training(body, training_id: int):
    """Reject a training run with an e-signature (*Rejected*, the reason says why): its
    models never score; the versions in force go on."""
    signer = _signer(body, model_review.REJECTED_MEANING)
    return model_review.reject(runtime(), _training_id(training_id), signer=signer, reason=body["reason"])
