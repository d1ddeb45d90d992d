"""``batchline archive``: move completed, QA-decided batches older than the retention to
the archive, and check every archive against the audit trail (docs/archive.md).

``archive run`` is an operations task like ``db upgrade``: it runs where the server's
settings are, and is recorded in the audit trail as ``system`` unless ``--user`` names a
QA person or administrator (who then signs in). ``archive verify`` exits 1 when any
archive file is missing or changed, as ``audit verify`` does."""

from __future__ import annotations

import sys
from datetime import date, datetime

import click

from .acting import USER_ENV, acting
from .context import as_json, runtime
from .output import json_option, show
from .root import main


@main.group()
def archive():
    """Archived batches."""


@archive.command("run")
@click.option("--dry-run", is_flag=True, help="Only list the batches that would be archived.")
@click.option(
    "--before",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Archive batches QA decided before this date (UTC); default: archive_after_days ago.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=1000, show_default=True, help="At most this many.")
@click.option("--user", default=None, help=f"Who archives (signs in; QA or admin). Default: system. Not ${USER_ENV}.")
@json_option
def archive_run(dry_run: bool, before: datetime | None, limit: int, user: str | None):
    """Archive every complete batch QA released or rejected before the cut-off."""
    from engine import archive as store

    by = acting(user, "records.export").username if user else "system"
    day: date | None = before.date() if before else None
    out = store.run(runtime(), by=by, before=day, dry_run=dry_run, limit=limit)
    if as_json():
        show(out)
    elif not out["enabled"]:
        click.echo("archiving is off: set archive_after_days (BATCHLINE_ARCHIVE_AFTER_DAYS) or give --before DATE")
    else:
        verb = "would archive" if dry_run else "due"
        click.echo(f"{verb}: {len(out['due'])} batch(es) decided before {out['before']}")
        for item in out["due"] if dry_run else []:
            click.echo(f"  {item['batch_id']}  {item['state']}  {item['decided_at']}")
        for item in out["archived"]:
            click.echo(f"archived {item['batch_id']} -> {item['location']} (SHA-256 {item['sha256'][:16]}…)")
        for item in out["skipped"]:
            click.echo(f"skipped {item['batch_id']}: {item['message']}")
        for item in out["failed"]:
            click.echo(f"FAILED {item['batch_id']} [{item['code']}]: {item['message']}")
    sys.exit(1 if out.get("failed") else 0)


@archive.command("verify")
@click.argument("batch_id", required=False)
@json_option
def archive_verify(batch_id: str | None):
    """Check each archived batch's file (or BATCH_ID's) against the hash the audit trail
    sealed; exit 1 and name each file missing or changed."""
    from engine.archive import problems

    rt = runtime()
    with rt.transaction(deferred=True) as s:
        checked, found = problems(s, rt.settings, batch_id)
    if batch_id is not None and not checked:
        from engine.errors import NotFound

        raise NotFound(f"batch {batch_id!r} is not archived", code="archive_not_found")
    out = {"ok": not found, "archives": checked, "problems": found}
    if as_json():
        show(out)
    elif found:
        click.echo(f"BROKEN: {len(found)} problem(s) in {checked} archive(s):")
        for problem in found:
            click.echo(f"  {problem}")
    else:
        click.echo(f"ok: {checked} archive(s) match the hashes sealed in the audit trail")
    sys.exit(0 if not found else 1)


@archive.command("schedule")
@json_option
def archive_schedule():
    """Book the daily archive run in the job worker (``batchline worker``): each run
    archives what archive_after_days makes due and books the next one a day later."""
    from engine import archive as store

    out = store.schedule(runtime())
    if as_json():
        show(out)
    elif out["scheduled"]:
        click.echo(f"the daily archive run is booked: first run {out['due_at']}")
    else:
        click.echo(f"the daily archive run is booked already: next run {out['due_at']}")
