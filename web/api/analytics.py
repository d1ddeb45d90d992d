"""Out-of-trend analytics over HTTP: the trained models and their limits, retraining
(QA), a parameter's values across batches with centre line, limits and the rules each
point broke, step durations, and the findings per recipe - a thin layer over
``analytics.mes``."""
from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from analytics import mes

from ..auth import current_user, requires
from . import runtime

blp = Blueprint("analytics", __name__, url_prefix="/api/analytics",
                description="Out-of-trend models, trends and findings (review by exception)")


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


class TrendModelOut(ma.Schema):
    id = ma.fields.Integer()
    recipe = ma.fields.String()
    recipe_version_id = ma.fields.Integer()
    recipe_version = ma.fields.String(allow_none=True)
    bpmn_id = ma.fields.String()
    parameter = ma.fields.String(allow_none=True, metadata={"description": "form field; null for a duration model"})
    kind = ma.fields.String(metadata={"description": "UnivariateMonitor or DurationMonitor"})
    version = ma.fields.Integer()
    unit = ma.fields.String(allow_none=True)
    critical = ma.fields.Boolean()
    active = ma.fields.Boolean()
    trained_at = ma.fields.String()
    trained_by = ma.fields.String()
    training_batches = ma.fields.Integer()
    limits = ma.fields.Nested(Limits)


class TrainIn(ma.Schema):
    recipe = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    released_only = ma.fields.Boolean(load_default=True, metadata={
        "description": "train on reviewed complete batches only (there is no release workflow yet)"})


class TrainOut(ma.Schema):
    recipe = ma.fields.String()
    recipe_version = ma.fields.Integer()
    batches = ma.fields.Integer()
    models = ma.fields.List(ma.fields.Dict())
    skipped = ma.fields.List(ma.fields.Dict())


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
    rules = ma.fields.List(ma.fields.Raw(), metadata={
        "description": "Nelson rules the point broke (durations: too_long / too_short)"})


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
    return mes.list_models(runtime(), query.get("recipe"), active_only=not query.get("all"))


@blp.route("/train", methods=["POST"])
@requires("analytics.train")
@blp.arguments(TrainIn)
@blp.response(200, TrainOut)
def train(body):
    """Retrain a recipe's models from its earlier batches: a new version per step and
    parameter, the previous one deactivated; audited as ``analytics.train``."""
    return mes.train(runtime(), body["recipe"], user=current_user(), released_only=body["released_only"])


@blp.route("/trends/<recipe>/<bpmn_id>/<parameter>", methods=["GET"])
@requires("analytics.read")
@blp.arguments(ChartQuery, location="query")
@blp.response(200, Chart)
def trend(query, recipe: str, bpmn_id: str, parameter: str):
    """A step parameter across batches: values, centre line, limits, the rules each
    point broke, and the batch given with ?batch= marked ``current``."""
    return mes.trend(runtime(), recipe, bpmn_id, parameter, batch=query.get("batch"), limit=query["limit"])


@blp.route("/durations/<recipe>/<bpmn_id>", methods=["GET"])
@requires("analytics.read")
@blp.arguments(ChartQuery, location="query")
@blp.response(200, Chart)
def durations(query, recipe: str, bpmn_id: str):
    """How long a step took across batches (minutes since the previous step record),
    with the duration model's median and limits."""
    return mes.durations(runtime(), recipe, bpmn_id, batch=query.get("batch"), limit=query["limit"])


@blp.route("/findings", methods=["GET"])
@requires("analytics.read")
@blp.arguments(FindingsQuery, location="query")
@blp.response(200, Findings)
def findings(query):
    """Out-of-trend findings, newest first, and a summary per recipe."""
    return mes.findings(runtime(), query.get("recipe"), limit=query["limit"])
