"""``batchline incidents`` and ``batchline incident retry``: jobs whose retries ran out."""

from __future__ import annotations

import click

from .acting import acting, user_option
from .context import runtime
from .output import json_option, show
from .root import main

INCIDENT_FIELDS = ["id", "kind", "batch_id", "job_id", "message", "created_at", "resolved_at"]


@main.command("incidents")
@click.option("--all", "show_all", is_flag=True, help="Include resolved incidents.")
@json_option
def incidents_list(show_all):
    """Jobs whose retries ran out."""
    from engine import jobs

    show(jobs.incidents(runtime(), open_only=not show_all), INCIDENT_FIELDS)


@main.group()
def incident():
    """One incident."""


@incident.command("retry")
@click.argument("incident_id", type=click.IntRange(1, 2**31 - 1))
@user_option
@json_option
def incident_retry(incident_id, user):
    """Give INCIDENT_ID's job a fresh set of attempts (resolves the incident)."""
    from engine import jobs

    person = acting(user, "incident.retry")
    show(jobs.retry_incident(runtime(), incident_id, user=person.username))
