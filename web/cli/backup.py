"""``batchline backup`` and ``batchline restore``: one self-describing copy of the
database and the audit anchors, and putting it back with ``audit verify`` run on the
result (engine.backup, engine.restore; docs/operations.md, "Back up and restore").

They are server administration, like ``db upgrade``: whoever runs them already holds the
database and the files, so they are recorded under the operating-system account
(``os:login@host``) unless ``--user`` (or ``$BATCHLINE_USER``) names someone.
"""

from __future__ import annotations

import sys

import click

from .context import as_json, runtime
from .output import json_option, show
from .root import main

_user = click.option(
    "--user",
    envvar="BATCHLINE_USER",
    help="Who is recorded in the audit trail (default: $BATCHLINE_USER, else the OS account as os:login@host).",
)


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@main.command("backup")
@click.option("--to", "to", required=True, type=click.Path(), help="A new directory, or a file ending in .tar.")
@click.option(
    "--include-keys",
    is_flag=True,
    help="Also copy the audit key (a secret: whoever holds such a backup can re-seal a forged trail). "
    "Default: the key is backed up separately, with your other secrets.",
)
@_user
@json_option
def backup_command(to: str, include_keys: bool, user: str | None):
    """Back up the database and the audit anchors to one directory or .tar file,
    with a manifest (version, schema revision, audit head, SHA-256 of each part)."""
    from engine import backup

    out = backup.take(runtime(), to, user=user or backup.who(), include_keys=include_keys)
    if as_json():
        show(out)
        return
    parts = ", ".join(f"{name} ({_size(p['bytes'])})" for name, p in out["parts"].items())
    click.echo(f"backed up the {out['database']} database (schema {out['revision']}) to {out['path']}: {parts}")
    entries = out["audit_head"]["id"]
    click.echo(f"audit trail: {entries} {'entry' if entries == 1 else 'entries'}, sealed with key {out['audit_key']}")
    if not out["includes_key"]:
        click.echo(f"the audit key is NOT in the backup: keep it (fingerprint {out['audit_key']}) with your secrets")


@main.command("restore")
@click.option("--from", "source", required=True, type=click.Path(), help="The backup directory or .tar file.")
@click.option("--force", is_flag=True, help="Replace a database that already holds a record.")
@_user
@json_option
def restore_command(source: str, force: bool, user: str | None):
    """Restore a backup into the configured database and run `audit verify --anchors`
    on it; exit 1 if the restored record does not verify."""
    from engine import backup, restore

    out = restore.restore(runtime(), source, user=user or backup.who(), force=force)
    ok = out["verify"]["ok"]
    if as_json():
        show(out)
        sys.exit(0 if ok else 1)
    b = out["backup"]
    click.echo(
        f"restored the {out['database']} database from {out['from']} "
        f"(taken {b['created_at']} by {b['created_by']}, Batchline {b['batchline_version']}, schema {b['revision']})"
    )
    if out["upgraded"]:
        click.echo(f"schema upgraded from {out['upgraded']['from']} to {out['upgraded']['to']}")
    if out["key_installed"]:
        click.echo("the audit key from the backup was installed")
    for name, what in out["secret_keys"].items():
        click.echo(f"{name}: {what}")
    if out["anchors_kept_aside"]:
        click.echo(f"the anchors that were here are kept in {out['anchors_kept_aside']}")
    v = out["verify"]
    if ok:
        click.echo(
            f"audit verify: ok, {v['entries']} entries, chain and anchors intact; {v['record_rows']} record rows match"
        )
    else:
        click.echo(f"audit verify: BROKEN, {len(v['problems'])} problem(s):")
        for problem in v["problems"]:
            click.echo(f"  {problem}")
    sys.exit(0 if ok else 1)
