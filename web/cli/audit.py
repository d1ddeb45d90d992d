"""``batchline audit``: verify the audit trail and the record against it (exit 1 when
anything does not match), and anchor the head outside the database."""

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
@click.option("--anchors", is_flag=True, help="Also check every anchored head is still in the trail, unchanged.")
@click.option("--signatures", is_flag=True, help="Also recompute every signature's content hash from the record.")
@json_option
def audit_verify(anchors: bool, signatures: bool):
    """Recompute the audit trail's keyed chain and check every step, signature and
    correction against the entry that recorded it; exit 1 and name each problem found."""
    from engine import audit as trail

    rt = runtime()
    with rt.transaction() as s:
        result = trail.verify(s, settings=rt.settings, anchors=anchors, signatures=signatures)
    if as_json():
        show(result.to_dict())
        sys.exit(0 if result.ok else 1)
    if result.ok:
        click.echo(
            f"ok: {result.entries} audit entries, chain intact (key {result.key}); "
            f"{result.record_rows} record rows match the trail"
        )
    else:
        click.echo(f"BROKEN: {len(result.problems)} problem(s) in {result.entries} entries:")
        for problem in result.problems:
            click.echo(f"  {problem}")
    if result.legacy_entries:
        click.echo(
            f"note: {result.legacy_entries} legacy entries (plain SHA-256, written before the audit key) "
            f"and {result.legacy_rows} record rows they cover are not sealed by the key"
        )
    if result.anchors is not None:
        newest = result.anchors["newest"]
        click.echo(f"anchors: {result.anchors['anchors']} in {result.anchors['file']}, newest entry {newest}")
    if result.signatures is not None:
        click.echo(f"signatures: {result.signatures['checked']} checked, {result.signatures['mismatches']} mismatches")
    sys.exit(0 if result.ok else 1)


@audit.command("anchor")
@json_option
def audit_anchor():
    """Anchor the audit head now: append it (HMAC'd) to the anchor file and POST it to
    the sink when BATCHLINE_AUDIT_ANCHOR_URL is set."""
    from engine import audit as trail

    out = trail.anchor(runtime())
    if as_json():
        show(out)
    else:
        sink = f" and sent to {out['sink']}" if out.get("sink") else ""
        click.echo(f"anchored entry {out['id']} ({out['hash'][:16]}…) in {out['file']}{sink}")
