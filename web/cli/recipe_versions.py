"""``batchline recipe diff|where-used|replace-template`` and ``batchline batch migrate|
migrations|migration-approve``: the diff of two recipe versions, where an operation template
is used and putting one of its versions into the recipes that call it (new drafts), and
moving a running batch to a newer version (a supervisor requests, QA approves with their
password as the e-signature: ``$BATCHLINE_PASSWORD`` for ``$BATCHLINE_USER``, else asked)."""

from __future__ import annotations

import click

from .acting import acting, user_option
from .batches import batch
from .context import as_json, runtime
from .output import json_option, show
from .recipes import recipe

MIGRATION_FIELDS = ["id", "batch_id", "recipe", "from_version", "to_version", "status", "requested_by", "decided_by"]


def _version_id(ref: str) -> int:
    """A version by id, or ``KEY@VERSION`` (or ``KEY``: its newest version)."""
    from engine import recipes

    key, _, version = ref.partition("@")
    with runtime().transaction() as s:
        return recipes.find_version(s, key, int(version) if version.isdigit() else None).id


def _lines(diff: dict) -> list[str]:
    out = []
    for e in diff["elements"]["added"]:
        out.append(f"+ {e['type']} {e['id']} {e['name'] or ''} ({e['process']})")
    for e in diff["elements"]["removed"]:
        out.append(f"- {e['type']} {e['id']} {e['name'] or ''} ({e['process']})")
    for e in diff["elements"]["changed"]:
        for what, change in e["changes"].items():
            out.append(f"~ {e['type']} {e['id']} {what}: {change['old']!r} -> {change['new']!r}")
    forms = diff["forms"]
    out += [f"+ form {f}" for f in forms["added"]] + [f"- form {f}" for f in forms["removed"]]
    for form in forms["changed"]:
        for field in form["fields"]:
            if field["change"] != "changed":
                sign = "+" if field["change"] == "added" else "-"
                out.append(f"{sign} field {form['form']}.{field['key']}")
                continue
            for attr, change in field["attributes"].items():
                out.append(f"~ field {form['form']}.{field['key']} {attr}: {change['old']!r} -> {change['new']!r}")
    return out or ["identical"]


@recipe.command("diff")
@click.argument("base")
@click.argument("other")
@json_option
def recipe_diff(base, other):
    """What changed from BASE to OTHER (ids or KEY@VERSION): BPMN elements and form fields."""
    from engine import recipe_versions

    diff = recipe_versions.diff_versions(runtime(), _version_id(other), _version_id(base))
    if as_json():
        show(diff)
        return
    click.echo(
        f"{diff['against']['recipe']} v{diff['against']['version']} -> {diff['recipe']['recipe']} "
        f"v{diff['recipe']['version']}"
    )
    for line in _lines(diff):
        click.echo(line)


@recipe.command("where-used")
@click.argument("template")
@json_option
def recipe_where_used(template):
    """The recipes that call the operation template TEMPLATE (its process id)."""
    from engine import recipe_versions

    result = recipe_versions.where_used(runtime(), template)
    if as_json():
        show(result)
        return
    show(result["used_by"], ["id", "recipe", "version", "status", "template_version"])


@recipe.command("replace-template")
@click.argument("template")
@click.option("--with-version", type=int, required=True, help="The approved template version to put in.")
@click.option("--recipe", "keys", multiple=True, help="Only this recipe key (repeatable; default: every caller).")
@user_option
@json_option
def recipe_replace_template(template, with_version, keys, user):
    """Put TEMPLATE version --with-version into the recipes that call it: a new draft each."""
    from engine import recipe_versions

    person = acting(user, "template.replace")
    outcome = recipe_versions.replace_template(
        runtime(), template, with_version=with_version, recipes=list(keys) or None, actor=person
    )
    if as_json():
        show(outcome.body)
        return
    show(
        [
            {
                "recipe": r["recipe"],
                "from": r["from"]["version"],
                "draft": (r["draft"] or {}).get("version"),
                "draft_id": (r["draft"] or {}).get("id"),
                "outcome": r["outcome"],
            }
            for r in outcome.body["recipes"]
        ],
        ["recipe", "from", "draft", "draft_id", "outcome"],
    )


@batch.command("migrate")
@click.argument("batch_id")
@click.option("--to-version", type=int, required=True, help="The newer version of the batch's recipe.")
@click.option("--reason", required=True, help="Why the batch moves (recorded in the audit trail).")
@user_option
@json_option
def batch_migrate(batch_id, to_version, reason, user):
    """Ask to move BATCH_ID to a newer version of its recipe (a supervisor; QA approves)."""
    from engine import recipe_versions

    person = acting(user, "batch.migrate")
    outcome = recipe_versions.request_migration(
        runtime(), batch_id, to_version=to_version, reason=reason, requester=person
    )
    show(outcome.body, MIGRATION_FIELDS + ["position"])


@batch.command("migrations")
@click.argument("batch_id")
@json_option
def batch_migrations(batch_id):
    """BATCH_ID's migration requests and what became of them."""
    from engine import recipe_versions

    show(recipe_versions.list_migrations(runtime(), batch_id), MIGRATION_FIELDS)


@batch.command("migration-approve")
@click.argument("batch_id")
@click.argument("migration_id", type=int)
@user_option
@json_option
def batch_migration_approve(batch_id, migration_id, user):
    """Approve migration MIGRATION_ID of BATCH_ID (*Approved*, QA, not the requester): the batch moves."""
    from engine import recipe_versions
    from engine.users import Person

    rt = runtime()
    recipe_versions.migration.check_approver(rt, batch_id, migration_id, Person(user, user, ("qa",)))
    person = acting(user, "batch.migration.approve")
    outcome = recipe_versions.approve_migration(rt, batch_id, migration_id, signer=person)
    show(outcome.body["migration"], MIGRATION_FIELDS + ["signature"])
