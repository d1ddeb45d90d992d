"""``batchline audit verify``: recompute the audit trail's chain (exit 1 when broken)."""

from __future__ import annotations

import sys

import click

from .context import as_json, runtime
from .output import json_option, show
from .root import main


@main.group()
def audit():
    """The audit trail."""


@audit.command("verify")
@json_option
def audit_verify():
    """Recompute the audit trail's hash chain; exit 1 and name each break if it is broken."""
    from engine import audit as trail

    with runtime().transaction() as s:
        result = trail.verify(s)
    if as_json():
        show(result.to_dict())
    elif result.ok:
        click.echo(f"ok: {result.entries} audit entries, chain intact")
    else:
        click.echo(f"BROKEN: {len(result.problems)} problem(s) in {result.entries} entries:")
        for problem in result.problems:
            click.echo(f"  {problem}")
    sys.exit(0 if result.ok else 1)
