"""``batchline batch disposition|release|reject`` and ``batchline rules``: QA's review by
exception from a shell, with the same e-signatures and rules as the API and the review
page (the acting person signs with their password: ``$BATCHLINE_PASSWORD`` for
``$BATCHLINE_USER``, else asked on the terminal)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from engine.errors import InvalidInput

from .acting import acting, user_option
from .batches import EXCEPTION_FIELDS, batch
from .context import runtime
from .output import json_option, show
from .root import main

RELEASE_FIELDS = ["batch_id", "state", "disposition"]


@batch.command("disposition")
@click.argument("batch_id")
@click.argument("exception_id", type=int)
@click.option("--decision", required=True, type=click.Choice(["accept", "escalate"]))
@click.option("--justification", required=True, help="Why (recorded with the signature).")
@click.option("--meaning", default="Reviewed", type=click.Choice(["Reviewed", "Approved"]), show_default=True)
@click.option("--idempotency-key", help="Repeat safely: the same key answers with the first result.")
@user_option
@json_option
def batch_disposition(batch_id, exception_id, decision, justification, meaning, idempotency_key, user):
    """Accept or escalate exception EXCEPTION_ID of BATCH_ID, e-signed (QA)."""
    from engine.quality import dispositions

    person = acting(user, "exception.disposition")
    outcome = dispositions.disposition(
        runtime(),
        batch_id,
        exception_id,
        decision,
        justification,
        signer=person,
        meaning=meaning,
        idempotency_key=idempotency_key,
    )
    show(outcome.body, EXCEPTION_FIELDS)


@batch.command("release-check")
@click.argument("batch_id")
@json_option
def batch_release_check(batch_id):
    """What still blocks the release of BATCH_ID (nothing: it may be released)."""
    from engine.quality import release

    show(release.blocking(runtime(), batch_id), ["batch_id", "state", "releasable", "blocking"])


@batch.command("release")
@click.argument("batch_id")
@click.option("--comment", default="", help="Recorded with the release signature.")
@user_option
@json_option
def batch_release(batch_id, comment, user):
    """Release BATCH_ID (*Released*, QA who performed or witnessed no step of it)."""
    from engine.quality import release

    person = acting(user, "batch.release")
    show(release.release_batch(runtime(), batch_id, signer=person, comment=comment).body, RELEASE_FIELDS)


@batch.command("reject")
@click.argument("batch_id")
@click.option("--comment", required=True, help="Why the batch is rejected.")
@user_option
@json_option
def batch_reject(batch_id, comment, user):
    """Reject BATCH_ID (*Rejected*)."""
    from engine.quality import release

    person = acting(user, "batch.release")
    show(release.reject_batch(runtime(), batch_id, signer=person, comment=comment).body, RELEASE_FIELDS)


@main.group()
def rules():
    """Exception rules: import a draft, list, approve (another QA person)."""


RULE_FIELDS = ["version", "status", "content_hash", "created_by", "approved_by", "approved_at", "comment"]


@rules.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@user_option
@json_option
def rules_import(file, user):
    """Import the rule file FILE (JSON) as a new draft version."""
    from engine.quality import rules as quality_rules

    person = acting(user, "rules.manage")
    path = Path(file)
    if path.stat().st_size > quality_rules.MAX_RULES_BYTES:
        raise InvalidInput(f"{file} is larger than a rule file can be", code="rules_invalid")
    try:
        content = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{file} is not JSON: {exc}", code="rules_invalid") from None
    show(quality_rules.import_rules(runtime(), content, user=person.username), RULE_FIELDS)


@rules.command("list")
@json_option
def rules_list():
    """Every rule set version, newest first (the newest approved one is in force)."""
    from engine.quality import rules as quality_rules

    show(quality_rules.list_rule_sets(runtime()), RULE_FIELDS)


@rules.command("approve")
@click.argument("version", type=int)
@user_option
@json_option
def rules_approve(version, user):
    """Approve draft rule set VERSION (*Approved*; not by its author)."""
    from engine.quality import rules as quality_rules

    person = acting(user, "rules.manage")
    show(quality_rules.approve(runtime(), version, signer=person), RULE_FIELDS)
