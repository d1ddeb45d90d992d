"""Prometheus metrics at ``/metrics``: what an operations team graphs and alerts on.

Two kinds of figures, kept apart on purpose:

* counted in the process — steps completed through the API and their latency (a
  histogram recorded around ``POST …/tasks/<id>/complete``). Under gunicorn every
  worker process counts its own; with ``PROMETHEUS_MULTIPROC_DIR`` set (``batchline
  serve --workers N`` sets it) each writes to a file there and a scrape of any worker
  adds them all up.
* asked of the database at scrape time — jobs due, jobs late, open incidents, the
  outbox backlog (event deliveries not yet done) and the age of the newest worker
  heartbeat. The database is the truth every node shares, so any node answers the same,
  and the counts are cheap (the job table's ``(state, due_at)`` index).

Access: open unless the ``metrics_token`` setting is set; then a scrape needs
``Authorization: Bearer <token>`` (compared in constant time). No secrets are exposed.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterator
from datetime import timedelta

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from engine import heartbeat
from engine.models import Incident, Job, utcnow
from engine.vocabulary import JobKind, JobState

#: step latency buckets (seconds): fine where the goals are (p95 ≤ 150 ms)
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)

STEPS = Counter("batchline_steps", "Operator steps answered by the step API, by outcome", ["outcome"])
STEP_SECONDS = Histogram(
    "batchline_step_seconds", "Time to answer POST /api/batches/<id>/tasks/<id>/complete", buckets=STEP_BUCKETS
)

STEP_ENDPOINT_SUFFIX = "/tasks/<task_id>/complete"


class DatabaseGauges(Collector):
    """Gauges read from the shared database when scraped."""

    def __init__(self, rt):
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        rt = self.rt
        up = GaugeMetricFamily("batchline_database_up", "1 when the database answered this scrape's queries")
        try:
            now = utcnow()
            late_before = now - timedelta(seconds=rt.settings.job_late_seconds)
            pending = select(func.count()).select_from(Job).where(Job.state == JobState.PENDING)
            with rt.transaction(deferred=True) as s:
                due = s.scalar(pending.where(Job.due_at <= now)) or 0
                late = s.scalar(pending.where(Job.due_at <= late_before)) or 0
                backlog = s.scalar(pending.where(Job.kind == JobKind.DELIVER)) or 0
                incidents = (
                    s.scalar(select(func.count()).select_from(Incident).where(Incident.resolved_at.is_(None))) or 0
                )
            age = heartbeat.age_seconds(rt)
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, value in (
            ("batchline_jobs_due", "Pending jobs whose due time has come", due),
            ("batchline_jobs_late", "Pending jobs more than job_late_seconds past their due time", late),
            ("batchline_incidents_open", "Incidents (jobs out of retries) not yet resolved", incidents),
            ("batchline_outbox_backlog", "Event deliveries waiting to be sent", backlog),
        ):
            yield GaugeMetricFamily(name, doc, value=value)
        if age is not None:  # no running worker: no sample (alert on absent())
            yield GaugeMetricFamily(
                "batchline_worker_heartbeat_age_seconds",
                "Seconds since the newest running worker's heartbeat",
                value=age,
            )


def process_registry() -> CollectorRegistry:
    """The step counters of this process, or of every gunicorn worker (multiprocess mode)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(STEPS)
        registry.register(STEP_SECONDS)
    return registry


def _is_step() -> bool:
    rule = request.url_rule
    return rule is not None and request.method == "POST" and rule.rule.endswith(STEP_ENDPOINT_SUFFIX)


def _start_timer() -> None:
    if _is_step():
        g.step_started = time.perf_counter()


def _record(response: Response) -> Response:
    started = g.pop("step_started", None)
    if started is not None:
        STEP_SECONDS.observe(time.perf_counter() - started)
        STEPS.labels(outcome="completed" if response.status_code < 400 else "refused").inc()
    return response


def authorised() -> bool:
    token = current_app.extensions["batchline"].settings.metrics_token
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def metrics() -> Response:
    if not authorised():
        return Response(
            '{"code": "auth_required", "message": "metrics need Authorization: Bearer <metrics_token>", "details": {}}',
            status=401,
            mimetype="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    registry = process_registry()
    registry.register(DatabaseGauges(current_app.extensions["batchline"]))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def install(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_record)
    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
