"""Out-of-trend analytics over HTTP: the trained models and their limits, retraining
(QA), a parameter's values across batches with centre line, limits and the rules each
point broke, step durations, and the findings per recipe - a thin layer over
``analytics`` (``catalogue``, ``training``, ``charts``, ``findings``, ``equipment``).
The training runs, their evaluation reports and QA's e-signed decision on them (only
approved models score) are in ``web.api.model_reviews``."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from analytics import catalogue, charts, equipment, training
from analytics.findings import findings as trend_findings

from ..auth import current_user, requires
from . import runtime

blp = Blueprint(
    "analytics",
    __name__,
    url_prefix="/api/analytics",
    description="Out-of-trend models, trends and findings (review by exception)",
)
#: equipment time series of a batch (``/api/batches/{batch_id}/equipment-samples``)
equipment_blp = Blueprint(
    "equipment",
    __name__,
    url_prefix="/api",
    description="Equipment time series of a running batch, scored by the PCA monitor",
)


class ModelFilter(ma.Schema):
    recipe = ma.fields.String(metadata={"description": "only this recipe's models"})
    all = ma.fields.Boolean(load_default=False, metadata={"description": "include retired versions"})


class Limits(ma.Schema):
    centre = ma.fields.Float(allow_none=True)
    lower = ma.fields.Float(allow_none=True)
    upper = ma.fields.Float(allow_none=True)
    scale = ma.fields.Float(allow_none=True)
    rule1_z = ma.fields.Float(allow_none=True)
    rules = ma.fields.List(ma.fields.Integer(), allow_none=True)
    t2 = ma.fields.Float(allow_none=True, metadata={"description": "time-series models: T² limit"})
    spe = ma.fields.Float(allow_none=True, metadata={"description": "time-series models: SPE limit"})


class TrendModelOut(ma.Schema):
    id = ma.fields.Integer()
    recipe = ma.fields.String()
    recipe_version_id = ma.fields.Integer()
    recipe_version = ma.fields.String(allow_none=True)
    bpmn_id = ma.fields.String()
    parameter = ma.fields.String(allow_none=True, metadata={"description": "form field; null for a duration model"})
    kind = ma.fields.String(metadata={"description": "UnivariateMonitor, DurationMonitor or TimeSeriesModel"})
    version = ma.fields.Integer()
    unit = ma.fields.String(allow_none=True)
    critical = ma.fields.Boolean()
    active = ma.fields.Boolean()
    trained_at = ma.fields.String()
    trained_by = ma.fields.String()
    training_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "the training run (report, approval): /api/analytics/trainings/{id}"}
    )
    training_batches = ma.fields.Integer()
    limits = ma.fields.Nested(Limits)


class TrainIn(ma.Schema):
    recipe = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    released_only = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "train on reviewed complete batches only (there is no release workflow yet)"},
    )


class TrainOut(ma.Schema):
    recipe = ma.fields.String()
    recipe_version = ma.fields.Integer()
    batches = ma.fields.Integer()
    models = ma.fields.List(ma.fields.Dict())
    skipped = ma.fields.List(ma.fields.Dict())
    training_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "the training run QA approves (null: nothing was trained)"}
    )
    status = ma.fields.String(allow_none=True, metadata={"description": "pending: the new models score once approved"})


class ChartQuery(ma.Schema):
    batch = ma.fields.String(metadata={"description": "highlight this batch's points"})
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=1000))


class Point(ma.Schema):
    batch_id = ma.fields.String()
    seq = ma.fields.Integer()
    recorded_at = ma.fields.String()
    value = ma.fields.Float()
    batch_state = ma.fields.String()
    released = ma.fields.Boolean()
    training = ma.fields.Boolean(metadata={"description": "the model was trained on this batch"})
    current = ma.fields.Boolean(metadata={"description": "the batch asked for with ?batch="})
    rules = ma.fields.List(
        ma.fields.Raw(), metadata={"description": "Nelson rules the point broke (durations: too_long / too_short)"}
    )


class Chart(ma.Schema):
    recipe = ma.fields.String()
    bpmn_id = ma.fields.String()
    parameter = ma.fields.String(allow_none=True)
    kind = ma.fields.String()
    unit = ma.fields.String(allow_none=True)
    model = ma.fields.Nested(TrendModelOut, allow_none=True)
    points = ma.fields.List(ma.fields.Nested(Point))


class FindingsQuery(ma.Schema):
    recipe = ma.fields.String()
    limit = ma.fields.Integer(load_default=200, validate=ma.validate.Range(min=1, max=2000))


class RecipeFindings(ma.Schema):
    recipe = ma.fields.String()
    findings = ma.fields.Integer()
    open = ma.fields.Integer()
    action = ma.fields.Integer()
    batches = ma.fields.Integer()
    models = ma.fields.Integer()
    by_step = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())


class Finding(ma.Schema):
    id = ma.fields.Integer()
    batch_id = ma.fields.String()
    recipe = ma.fields.String()
    recipe_version = ma.fields.Integer()
    bpmn_id = ma.fields.String(allow_none=True)
    step_seq = ma.fields.Integer(allow_none=True)
    source = ma.fields.String()
    severity = ma.fields.String()
    parameter = ma.fields.String(allow_none=True)
    message = ma.fields.String()
    details = ma.fields.Dict()
    status = ma.fields.String()
    created_at = ma.fields.String()


class Findings(ma.Schema):
    recipes = ma.fields.List(ma.fields.Nested(RecipeFindings))
    findings = ma.fields.List(ma.fields.Nested(Finding))


@blp.route("/models", methods=["GET"])
@requires("analytics.read")
@blp.arguments(ModelFilter, location="query")
@blp.response(200, TrendModelOut(many=True))
def list_models(query):
    """The trained out-of-trend models (active versions unless ?all=true) and their limits."""
    return catalogue.list_models(runtime(), query.get("recipe"), active_only=not query.get("all"))


@blp.route("/train", methods=["POST"])
@requires("analytics.train")
@blp.arguments(TrainIn)
@blp.response(200, TrainOut)
def train(body):
    """Retrain a recipe's models from its earlier batches: a new *pending* version per
    step and parameter and one training run (`training_id`) with its evaluation report;
    the new versions score once QA approves the run
    (`POST /api/analytics/trainings/{id}/approve`), the versions in force until then.
    Audited as ``analytics.train``."""
    return training.train(runtime(), body["recipe"], user=current_user(), released_only=body["released_only"])


@blp.route("/trends/<recipe>/<bpmn_id>/<parameter>", methods=["GET"])
@requires("analytics.read")
@blp.arguments(ChartQuery, location="query")
@blp.response(200, Chart)
def trend(query, recipe: str, bpmn_id: str, parameter: str):
    """A step parameter across batches: values, centre line, limits, the rules each
    point broke, and the batch given with ?batch= marked ``current``."""
    return charts.trend(runtime(), recipe, bpmn_id, parameter, batch=query.get("batch"), limit=query["limit"])


@blp.route("/durations/<recipe>/<bpmn_id>", methods=["GET"])
@requires("analytics.read")
@blp.arguments(ChartQuery, location="query")
@blp.response(200, Chart)
def durations(query, recipe: str, bpmn_id: str):
    """How long a step took across batches (minutes since the previous step record),
    with the duration model's median and limits."""
    return charts.durations(runtime(), recipe, bpmn_id, batch=query.get("batch"), limit=query["limit"])


@blp.route("/findings", methods=["GET"])
@requires("analytics.read")
@blp.arguments(FindingsQuery, location="query")
@blp.response(200, Findings)
def findings(query):
    """Out-of-trend findings, newest first, and a summary per recipe."""
    return trend_findings(runtime(), query.get("recipe"), limit=query["limit"])


# --- equipment time series ---------------------------------------------------------------


class StrictNumber(ma.fields.Float):
    """A JSON number: finite, not a string, not a boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ma.ValidationError("must be a number")
        return super()._deserialize(value, attr, data, **kwargs)


class SampleIn(ma.Schema):
    t_hours = StrictNumber(
        required=True,
        allow_nan=False,
        validate=ma.validate.Range(min=0),
        metadata={"description": "hours since the unit procedure started, or batch maturity"},
    )
    values = ma.fields.Dict(
        required=True,
        validate=ma.validate.Length(min=1, max=equipment.MAX_VARIABLES),
        keys=ma.fields.String(validate=ma.validate.Regexp(equipment.VARIABLE_NAME, error="not a variable name")),
        values=StrictNumber(allow_nan=False),
        metadata={"description": "variable name -> number"},
    )


class EquipmentSamplesIn(ma.Schema):
    unit_procedure = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(equipment.UNIT_PROCEDURE, error="must be a BPMN id"),
        metadata={"description": "the call activity / called process id (e.g. up_production)"},
    )
    source = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=100), metadata={"description": "equipment id"}
    )
    samples = ma.fields.List(
        ma.fields.Nested(SampleIn), required=True, validate=ma.validate.Length(min=1, max=equipment.MAX_SAMPLES)
    )


class EquipmentSamplesAccepted(ma.Schema):
    batch_id = ma.fields.String()
    unit_procedure = ma.fields.String()
    received = ma.fields.Integer()
    job_id = ma.fields.Integer(metadata={"description": "the score_samples job scheduled"})


class EquipmentQuery(ma.Schema):
    unit_procedure = ma.fields.String(metadata={"description": "only this unit procedure"})


class SampleOut(ma.Schema):
    t_hours = ma.fields.Float()
    values = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float())
    source = ma.fields.String()
    recorded_at = ma.fields.String()


class ScoreOut(ma.Schema):
    t_hours = ma.fields.Float(metadata={"description": "grid point of the model"})
    t2 = ma.fields.Float()
    spe = ma.fields.Float()
    t2_over = ma.fields.Boolean()
    spe_over = ma.fields.Boolean()


class UnitProcedureSamples(ma.Schema):
    unit_procedure = ma.fields.String()
    model = ma.fields.Nested(TrendModelOut, allow_none=True)
    limits = ma.fields.Dict(allow_none=True, metadata={"description": "t2 and spe limits"})
    samples = ma.fields.List(ma.fields.Nested(SampleOut))
    scores = ma.fields.List(ma.fields.Nested(ScoreOut))


class EquipmentSamplesOut(ma.Schema):
    batch_id = ma.fields.String()
    unit_procedures = ma.fields.List(ma.fields.Nested(UnitProcedureSamples))


@equipment_blp.route("/batches/<batch_id>/equipment-samples", methods=["POST"])
@requires("equipment.write")
@equipment_blp.arguments(EquipmentSamplesIn)
@equipment_blp.response(202, EquipmentSamplesAccepted)
def post_equipment_samples(body, batch_id: str):
    """Equipment samples of a running batch (at most 1000 per request): stored, and one
    ``score_samples`` job scheduled in the same transaction to score them against the
    unit procedure's time-series model."""
    return equipment.record_samples(runtime(), batch_id, body["unit_procedure"], body["source"], body["samples"])


@equipment_blp.route("/batches/<batch_id>/equipment-samples", methods=["GET"])
@requires("analytics.read")
@equipment_blp.arguments(EquipmentQuery, location="query")
@equipment_blp.response(200, EquipmentSamplesOut)
def get_equipment_samples(query, batch_id: str):
    """A batch's equipment samples per unit procedure, with T², SPE and their limits on
    the model's grid when a time-series model is active."""
    return equipment.equipment_samples(runtime(), batch_id, query.get("unit_procedure"))
