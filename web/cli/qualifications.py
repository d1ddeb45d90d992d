"""``batchline qual grant|revoke|list``: people's qualifications (training records) from a
shell, with the same e-signature and rules as the API and the page: QA or a trainer signs
with their password (``$BATCHLINE_PASSWORD`` for ``$BATCHLINE_USER``, else asked on the
terminal), never about themself."""

from __future__ import annotations

import click

from engine import qualifications

from .acting import acting, user_option
from .context import runtime
from .output import json_option, show
from .root import main

ENTRY_FIELDS = ["username", "qualification", "action", "valid_until", "granted_by", "meaning", "signed_at"]
CURRENT_FIELDS = ["qualification", "status", "valid_until", "granted_by", "signed_at"]


@main.group()
def qual():
    """People's qualifications: a task whose ``qual`` property names one is performed and
    witnessed only by people holding it, current on the day."""


@qual.command("grant")
@click.argument("username")
@click.argument("qualification")
@click.option("--valid-until", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Last day (YYYY-MM-DD).")
@click.option("--reason", default="", help="Recorded with the signature (e.g. the training record).")
@click.option("--idempotency-key", help="Repeat safely: the same key answers with the first result.")
@user_option
@json_option
def qual_grant(username, qualification, valid_until, reason, idempotency_key, user):
    """Grant (or renew) QUALIFICATION to USERNAME until --valid-until, signed *Qualified*."""
    person = acting(user, "qualification.record")
    outcome = qualifications.grant(
        runtime(),
        username,
        qualification,
        valid_until.date(),
        signer=person,
        reason=reason,
        idempotency_key=idempotency_key,
    )
    show(outcome.body, ENTRY_FIELDS)


@qual.command("revoke")
@click.argument("username")
@click.argument("qualification")
@click.option("--reason", required=True, help="Why (recorded with the signature).")
@user_option
@json_option
def qual_revoke(username, qualification, reason, user):
    """Revoke USERNAME's QUALIFICATION now, signed *Revoked*."""
    person = acting(user, "qualification.record")
    show(qualifications.revoke(runtime(), username, qualification, signer=person, reason=reason).body, ENTRY_FIELDS)


@qual.command("list")
@click.argument("username", required=False)
@click.option("--history", is_flag=True, help="Every signed grant and revocation, oldest first.")
@json_option
def qual_list(username, history):
    """USERNAME's qualifications today (current, expired, revoked); without USERNAME everyone's."""
    if username is None:
        rows = [
            {"username": p["username"], **q}
            for p in qualifications.people_holding(runtime())
            for q in p["qualifications"]
        ]
        show(rows, ["username", *CURRENT_FIELDS])
        return
    record = qualifications.list_for(runtime(), username)
    if history:
        show(record["history"], ENTRY_FIELDS)
    else:
        show(record["qualifications"], CURRENT_FIELDS)
