"""``batchline recipe``: import BPMN files (and forms) as recipe versions, check them,
list them, approve and retire them. A version is named by its id, by ``RECIPE_KEY``
(approve: its newest draft; retire: its newest approved version) or by
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
    """Recipe versions: import, check, list, approve, retire."""


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


def find_version(ref: str, status: RecipeStatus):
    """The version ``ref`` names for a change to ``status``: a version id, ``KEY@VERSION``,
    or ``KEY`` — its newest draft to approve, its newest approved version to retire."""
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
    wanted = RecipeStatus.DRAFT if status == RecipeStatus.APPROVED else RecipeStatus.APPROVED
    candidates = [rv for rv in versions if rv.status == wanted]
    if not candidates:
        have = ", ".join(f"v{rv.version} {rv.status}" for rv in versions)
        raise NotFound(
            f"recipe {key!r} has no {wanted} version to {'approve' if wanted == RecipeStatus.DRAFT else 'retire'} "
            f"({have}); name one as {key}@VERSION",
            code="recipe_not_found",
        )
    return max(candidates, key=lambda rv: rv.version)


def _set_status(ref: str, status: RecipeStatus, user: str, reason: str) -> None:
    from engine import recipes

    version_id = find_version(ref, status).id  # a typo needs no password
    person = acting(user, "recipe.approve")
    rv = recipes.set_status(runtime(), version_id, status, person.username, reason)
    if not as_json():
        click.echo(f"{status}: recipe {rv.recipe} v{rv.version} (version id {rv.id})")
    show(recipes.describe(rv), ["id", "recipe", "version", "status"])


@recipe.command("approve")
@click.argument("version_ref", metavar="VERSION")
@user_option
@reason_option
@json_option
def recipe_approve(version_ref, user, reason):
    """Approve recipe VERSION (a version id, RECIPE_KEY for its newest draft, or
    RECIPE_KEY@VERSION): only approved versions start batches."""
    _set_status(version_ref, RecipeStatus.APPROVED, user, reason)


@recipe.command("retire")
@click.argument("version_ref", metavar="VERSION")
@user_option
@reason_option
@json_option
def recipe_retire(version_ref, user, reason):
    """Retire recipe VERSION (a version id, RECIPE_KEY for its newest approved version,
    or RECIPE_KEY@VERSION): no new batch starts on it."""
    _set_status(version_ref, RecipeStatus.RETIRED, user, reason)
