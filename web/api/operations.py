"""Running Batchline: health, incidents of the job executor, the event feed for data
platforms, and the audit-trail check."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from flask_smorest import Blueprint
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from engine import audit, jobs, migrate
from engine.models import OutboxEvent
from engine.outbox import cloudevent

from ..auth import current_user, requires
from . import runtime
from .schemas import AuditCheck, AuditVerifyQuery, EventPage, Events, Health, Incident, IncidentFilter, IncidentRetried

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
@blp.alt_response(503, schema=Health, description="database unreachable or schema not upgraded")
def health():
    """Is the database reachable and its schema current? 503 otherwise (for load balancers)."""
    rt = runtime()
    out = {"database": "ok", "schema_revision": None, "schema_head": schema_head(), "version": batchline_version()}
    try:
        with rt.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        out["schema_revision"] = migrate.current(rt.db)
    except SQLAlchemyError:
        return {**out, "status": "database_unreachable", "database": "unreachable"}, 503
    if out["schema_revision"] != out["schema_head"]:
        return {**out, "status": "schema_outdated"}, 503
    return {**out, "status": "ok"}


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
