"""Running Batchline: health, incidents of the job executor, the event feed for data
platforms, and the audit-trail check."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from flask_smorest import Blueprint
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from engine import audit, heartbeat, jobs, migrate
from engine.models import OutboxEvent
from engine.outbox import cloudevent

from ..auth import current_user, requires
from . import runtime
from .schemas import (
    AuditCheck,
    AuditVerifyQuery,
    EventPage,
    Events,
    Health,
    Incident,
    IncidentFilter,
    IncidentRetried,
    Ready,
)

blp = Blueprint("operations", __name__, url_prefix="/api", description="Health, incidents, events, audit")


def batchline_version() -> str:
    try:
        return version("batchline")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def schema_head() -> str | None:
    return migrate.head()


@blp.route("/health", methods=["GET"])
@blp.response(200, Health)
def health():
    """Liveness: the process answers. The database is not asked, so a database outage
    does not make an orchestrator restart every app process (that is `/api/ready`)."""
    return {"status": "ok", "version": batchline_version()}


def readiness(rt) -> tuple[dict, bool]:
    """Database reachable, schema at the code's head, a worker beating recently: each a
    cheap query (``SELECT 1``, the alembic version row, one indexed max)."""
    checks = {"database": "ok", "schema": "unknown", "worker": "unknown"}
    out = {"schema_revision": None, "schema_head": schema_head(), "worker_heartbeat_age_seconds": None}
    try:
        with rt.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        out["schema_revision"] = migrate.current(rt.db)
    except SQLAlchemyError:
        checks["database"] = "unreachable"
    else:
        checks["schema"] = migrate.schema_state(out["schema_revision"])
    max_age = rt.settings.worker_heartbeat_max_age_seconds
    if max_age <= 0:
        checks["worker"] = "not_required"
    elif checks["schema"] in ("ok", "ahead"):
        try:
            age = heartbeat.age_seconds(rt)
        except SQLAlchemyError:
            age = None
            checks["worker"] = "unknown"
        else:
            checks["worker"] = "none" if age is None else "ok" if age <= max_age else "stale"
        out["worker_heartbeat_age_seconds"] = None if age is None else round(age, 3)
    not_ready = [name for name, state in checks.items() if state not in ("ok", "ahead", "not_required")]
    return {**out, "checks": checks, "not_ready": not_ready}, not not_ready


@blp.route("/ready", methods=["GET"])
@blp.response(200, Ready)
@blp.alt_response(503, schema=Ready, description="database unreachable, schema not upgraded or no worker beating")
def ready():
    """Readiness (for load balancers and orchestrators): the database answers, its schema
    is the code's newest migration and a job worker wrote its heartbeat within
    ``worker_heartbeat_max_age_seconds``. 503 names what is not ready."""
    body, ok = readiness(runtime())
    body = {"status": "ok" if ok else "not_ready", **body, "version": batchline_version()}
    if ok:
        return body
    return body, 503, {"Retry-After": "5"}


@blp.route("/incidents", methods=["GET"])
@requires("incident.read")
@blp.arguments(IncidentFilter, location="query")
@blp.response(200, Incident(many=True))
def list_incidents(query):
    """Jobs whose retries ran out (open ones; `all=true` includes resolved)."""
    return jobs.incidents(runtime(), open_only=not query["all"])


@blp.route("/incidents/<id:incident_id>/retry", methods=["POST"])
@requires("incident.retry")
@blp.response(200, IncidentRetried)
def retry_incident(incident_id: int):
    """Resolve an incident by giving its job a fresh set of attempts."""
    return jobs.retry_incident(runtime(), incident_id, user=current_user())


@blp.route("/events", methods=["GET"])
@requires("events.read")
@blp.arguments(EventPage, location="query")
@blp.response(200, Events)
def list_events(query):
    """Events in order as CloudEvents; poll with `after` = the last `next_after`."""
    rt = runtime()
    with rt.transaction() as s:
        rows = s.scalars(
            select(OutboxEvent).where(OutboxEvent.seq > query["after"]).order_by(OutboxEvent.seq).limit(query["limit"])
        ).all()
        events = [cloudevent(e, rt.settings) for e in rows]
    return {"events": events, "next_after": rows[-1].seq if rows else query["after"]}


@blp.route("/audit/verify", methods=["GET"])
@requires("audit.verify")
@blp.arguments(AuditVerifyQuery, location="query")
@blp.response(200, AuditCheck)
def verify_audit(query):
    """Recompute the audit trail's keyed chain, check the record against it and every
    anchored head; `ok: false` lists each problem."""
    rt = runtime()
    with rt.transaction() as s:
        return audit.verify(s, settings=rt.settings, anchors=query["anchors"], signatures=query["signatures"]).to_dict()
