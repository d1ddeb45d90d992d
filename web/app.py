"""The Batchline web application: ``create_app`` builds a Flask app around one engine
``Runtime`` (kept in ``app.extensions["batchline"]``), with the REST API and its
OpenAPI document at /api/openapi.json and Swagger UI at /api/docs.

Why a factory: tests, the CLI's ``serve`` and a WSGI server each build their own app
with their own settings; nothing lives at module level.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import marshmallow as ma
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from engine.config import Settings, load_settings
from engine.errors import BatchlineError
from engine.runtime import Runtime
from engine.secret_key import resolve as resolve_secret_key

from . import headers
from .errors import (
    ErrorSchema,
    batchline_error_response,
    database_error_response,
    http_error_response,
    race_response,
    validation_error_response,
)
from .input_limits import IdConverter, check_request
from .runtime import install as install_runtime

log = logging.getLogger("batchline.web")

API_DESCRIPTION = """
Recipes, batches and their steps, messages, incidents, events and the audit trail.

Every endpoint but `/api/health` and `/api/ready` needs an authenticated user: an API token
(`Authorization: Bearer bl_…`, created with `batchline user token`) or the browser
session of the web UI. Each endpoint names the permission it needs; the roles holding
it are listed with it (401 `auth_required`, 403 `forbidden`). Signed steps carry the
signer's user id and password in the body (21 CFR 11.200). Errors are JSON
`{code, message, details}` with a stable `code`.
"""


log = logging.getLogger("batchline.web")


class BatchlineApi(Api):
    """flask-smorest's Api answering every HTTP error in Batchline's error format."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        return http_error_response(error)


def _finite(value: Any) -> Any:
    """Non-finite floats as text: only a record written before they were refused holds one."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """Every answer is standard JSON (RFC 8259): never the ``NaN`` or ``Infinity`` that
    Python's json writes by default and strict clients cannot parse."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        try:
            return json.dumps(obj, allow_nan=False, **kwargs)
        except ValueError:  # a non-finite number stored before input was checked
            log.warning("a non-finite number in an answer was sent as text")
            return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the app; pass a ``runtime`` to share one engine (tests, ``serve --with-worker``)."""
    if runtime is None:
        runtime = Runtime(settings or load_settings())
    settings = runtime.settings
    # no default key: the settings' key, or the key file made on first start; an unsafe
    # key file stops the app here (SecretKeyError, code secret_key_unsafe)
    key = resolve_secret_key(settings)
    log.info("secret key: %s", key.source)

    app = Flask(__name__)
    app.json = StrictJSONProvider(app)
    # ids in URLs are bounded integers (``<id:recipe_id>``): registered before any route
    app.url_map.converters["id"] = IdConverter
    app.before_request(check_request)
    app.config.from_mapping(
        SECRET_KEY=key.value,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        API_TITLE="Batchline",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION},
            "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        },
    )
    app.json.sort_keys = False
    app.extensions["batchline_secret_key_source"] = key.source
    headers.install(app, settings)
    install_runtime(app, runtime)

    api = BatchlineApi(app)
    from .api import attachments, batches, messages, operations, people, quality, recipes

    for module in (recipes, batches, quality, messages, operations, people, attachments):
        api.register_blueprint(module.blp)

    from .api import analytics as analytics_api

    api.register_blueprint(analytics_api.blp)
    api.register_blueprint(analytics_api.equipment_blp)

    from .api import model_reviews as model_reviews_api

    api.register_blueprint(model_reviews_api.blp)

    from .api import exports as exports_api
    from .api import qms as qms_api

    api.register_blueprint(exports_api.blp)
    from .api import bulk_exports

    api.register_blueprint(bulk_exports.blp)
    api.register_blueprint(qms_api.qms_blp)
    api.register_blueprint(qms_api.blp)

    from .api import batch_reports

    api.register_blueprint(batch_reports.blp)

    from .api import qualifications as qualifications_api

    api.register_blueprint(qualifications_api.blp)

    from .api import scans as scans_api

    api.register_blueprint(scans_api.blp)
    from .api import recipe_exchange

    api.register_blueprint(recipe_exchange.blp)

    from .api import recipe_versions as recipe_versions_api

    api.register_blueprint(recipe_versions_api.blp)

    from .api import equipment_logbook as equipment_logbook_api

    api.register_blueprint(equipment_logbook_api.blp)

    from .api import erp as erp_api

    api.register_blueprint(erp_api.blp)
    from .api import connectors as connectors_api

    api.register_blueprint(connectors_api.blp)
    from .api import genealogy as genealogy_api

    api.register_blueprint(genealogy_api.blp)
    from .api import master_data as master_data_api

    api.register_blueprint(master_data_api.blp)

    from .docs import bp as docs

    app.register_blueprint(docs)

    from .ui import bp as ui
    from .ui import oidc as _oidc_routes  # noqa: F401  (sign-in with OIDC, on the ui blueprint)

    app.register_blueprint(ui)

    from .trends import bp as trends

    app.register_blueprint(trends)

    from .trends.model_reviews import bp as model_reviews

    app.register_blueprint(model_reviews)

    # out-of-trend scoring of each operator step after commit (the score_step job)
    from analytics import jobs as analytics_jobs

    analytics_jobs.install(runtime)
    # event subscribers of kind mqtt (serve --with-worker delivers them in this process)
    from integrations import mqtt

    mqtt.install(runtime)

    # equipment over OPC UA: the phase watcher and monitoring jobs (``serve --with-worker``)
    try:
        from integrations import opcua
    except ImportError:  # OPC UA left out of this install
        pass
    else:
        opcua.install(runtime)

    # Prometheus metrics at /metrics: step counts and latency, jobs, incidents, outbox
    from . import metrics

    metrics.install(app)

    app.register_error_handler(BatchlineError, batchline_error_response)
    app.register_error_handler(ma.ValidationError, validation_error_response)
    app.register_error_handler(OperationalError, database_error_response)
    app.register_error_handler(IntegrityError, race_response)
    return app
