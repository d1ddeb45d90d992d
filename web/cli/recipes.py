"""``batchline recipe``: import BPMN files (and forms) as recipe versions, check them,
list them, submit them for review, approve (e-signed, a fresh installation) and retire
them. A version is named by its id, by ``RECIPE_KEY`` (submit: its newest draft; approve:
its newest version in review or draft; retire: its effective version) or by
``RECIPE_KEY@VERSION``; the answer says which version was acted on."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from engine.errors import BatchlineError, NotFound
from engine.vocabulary import RecipeStatus

from .acting import acting, reason_option, user_option
from .context import as_json, runtime
from .output import json_option, problem_line, show
from .root import main


def read_files(paths: Iterable[str]) -> dict[str, bytes]:
    return {Path(p).name: Path(p).read_bytes() for p in paths}


@main.group()
def recipe():
    """Recipe versions: import, check, list, submit, approve, retire."""


@recipe.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--forms",
    "forms_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Directory of form-js *.json files the user tasks name.",
)
@click.option("--recipe", "key", help="Recipe key (default: the BPMN process id).")
@click.option("--process-id", help="The top process, when the files hold several.")
@user_option
@json_option
def recipe_import(files, forms_dir, key, process_id, user):
    """Import BPMN FILES (and forms) as a recipe version; the same content again is the same version."""
    from engine import recipes

    person = acting(user, "recipe.import")
    forms = recipes.load_forms_dir(forms_dir) if forms_dir else None
    rv = recipes.import_recipe(
        runtime(), read_files(files), forms=forms, user=person.username, recipe=key, process_id=process_id
    )
    show(recipes.describe(rv), ["id", "recipe", "version", "name", "status", "content_hash"])


@recipe.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--process-id", help="The top process, when the files hold several.")
@json_option
def recipe_validate(files, process_id):
    """Check BPMN FILES without storing them; exit 1 and name each problem's element if any."""
    from engine.bpmn import validate_recipe

    problems = validate_recipe(read_files(files), process_id)
    if as_json():
        show({"ok": not problems, "problems": [p.to_dict() for p in problems]})
    elif problems:
        click.echo(f"{len(problems)} problem(s):")
        for p in problems:
            click.echo(f"  {problem_line(p)}")
    else:
        click.echo(f"ok: {', '.join(Path(f).name for f in files)} can run")
    sys.exit(1 if problems else 0)


@recipe.command("list")
@json_option
def recipe_list():
    """Every recipe version."""
    from engine import recipes

    show(
        [recipes.describe(rv) for rv in recipes.list_versions(runtime())],
        ["id", "recipe", "version", "name", "status", "created_by", "created_at"],
    )


#: what a bare RECIPE_KEY names for each action: its newest version in one of these statuses
WANTED = {
    "submit": (RecipeStatus.DRAFT,),
    "approve": (RecipeStatus.IN_REVIEW, RecipeStatus.DRAFT),
    "retire": (RecipeStatus.EFFECTIVE, RecipeStatus.APPROVED),
}


def find_version(ref: str, action: str):
    """The version ``ref`` names for ``action``: a version id, ``KEY@VERSION``, or ``KEY``
    — its newest draft to submit, its newest version in review (or draft) to approve, its
    effective (or approved) version to retire."""
    from engine import recipes

    if re.fullmatch(r"[0-9]{1,10}", ref):
        return recipes.get_version(runtime(), int(ref))
    key, at, number = ref.partition("@")
    if not key or (at and not re.fullmatch(r"[0-9]{1,10}", number)):
        raise BatchlineError(
            f"{ref!r} is not a version id, RECIPE_KEY or RECIPE_KEY@VERSION", code="recipe_ref_invalid"
        )
    versions = [rv for rv in recipes.list_versions(runtime()) if rv.recipe == key]
    if not versions:
        raise NotFound(f"no recipe {key!r}", code="recipe_not_found")
    if at:
        for rv in versions:
            if rv.version == int(number):
                return rv
        raise NotFound(f"no recipe {key!r} version {number}", code="recipe_not_found")
    for wanted in WANTED[action]:
        candidates = [rv for rv in versions if rv.status == wanted]
        if candidates:
            return max(candidates, key=lambda rv: rv.version)
    have = ", ".join(f"v{rv.version} {rv.status}" for rv in versions)
    raise NotFound(
        f"recipe {key!r} has no {' or '.join(WANTED[action])} version to {action} ({have}); name one as {key}@VERSION",
        code="recipe_not_found",
    )


def _said(rv, what: str) -> None:
    from engine import recipes

    if not as_json():
        click.echo(f"{what}: recipe {rv.recipe} v{rv.version} (version id {rv.id}), now {rv.status}")
    show(recipes.describe(rv), ["id", "recipe", "version", "status", "effective_from"])


@recipe.command("submit")
@click.argument("version_ref", metavar="VERSION")
@click.option("--comment", default="", help="What changed and why (change control reference).")
@user_option
@json_option
def recipe_submit(version_ref, comment, user):
    """Submit recipe VERSION (a version id, RECIPE_KEY for its newest draft, or
    RECIPE_KEY@VERSION) for review: QA's effective approval flow starts about it."""
    from engine import recipe_lifecycle

    version_id = find_version(version_ref, "submit").id  # a typo needs no password
    person = acting(user, "recipe.import")
    answer = recipe_lifecycle.submit(runtime(), version_id, user=person.username, comment=comment)
    if not as_json():
        process = answer["approval_process"]
        click.echo(
            f"in review: recipe {answer['recipe']} v{answer['version']} (version id {answer['id']}); "
            + (
                f"approval process {process}: QA's tasks are in their task list"
                if process
                else "no approval flow is effective: a QA person approves it with `batchline recipe approve`"
            )
        )
    show(answer, ["id", "recipe", "version", "status", "approval_process"])


@recipe.command("approve")
@click.argument("version_ref", metavar="VERSION")
@click.option("--effective-from", help="ISO date (UTC) from when new batches take it; default: now.")
@user_option
@reason_option
@json_option
def recipe_approve(version_ref, effective_from, user, reason):
    """Approve recipe VERSION with your e-signature (Approved; a version id, RECIPE_KEY for
    its newest version in review or draft, or RECIPE_KEY@VERSION). Only while no approval
    flow is effective (a fresh installation); then QA approves in the flow."""
    from engine import recipe_lifecycle

    version_id = find_version(version_ref, "approve").id
    person = acting(user, "recipe.approve")
    rv = recipe_lifecycle.approve(runtime(), version_id, signer=person, reason=reason, effective_from=effective_from)
    _said(rv, "approved")


@recipe.command("retire")
@click.argument("version_ref", metavar="VERSION")
@user_option
@reason_option
@json_option
def recipe_retire(version_ref, user, reason):
    """Retire recipe VERSION with your e-signature (a version id, RECIPE_KEY for its
    effective version, or RECIPE_KEY@VERSION): no new batch starts on it."""
    from engine import recipe_lifecycle

    version_id = find_version(version_ref, "retire").id
    person = acting(user, "recipe.approve")
    _said(recipe_lifecycle.retire(runtime(), version_id, signer=person, reason=reason), "retired")
