"""``batchline recipe export`` and ``batchline recipe import-batchml``: a recipe version
as a BatchML file (B2MML V0700 ``BatchInformation`` with a ``MasterRecipe``, validated
against the MESA schema) and back, with the same content hash — how a recipe moves
between sites. Exporting reads (no password); importing creates a draft version and is
done by a QA person (``recipe.import``)."""

from __future__ import annotations

from pathlib import Path

import click

from engine.errors import BatchlineError

from .acting import acting, user_option
from .context import as_json, runtime
from .output import json_option, show
from .recipes import recipe


def _version_id(ref: str) -> int:
    """A version id, ``KEY@VERSION`` or ``KEY`` (its newest version)."""
    from engine import recipes

    key, at, number = ref.partition("@")
    if at and not number.isdigit():
        raise BatchlineError(
            f"{ref!r} is not a version id, RECIPE_KEY or RECIPE_KEY@VERSION", code="recipe_ref_invalid"
        )
    with runtime().transaction() as s:
        return recipes.find_version(s, key, int(number) if at else None).id


@recipe.command("export")
@click.argument("ref", metavar="REF")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False), help="The file to write.")
@json_option
def recipe_export(ref, output):
    """Write recipe REF (a version id, RECIPE_KEY for its newest version, or
    RECIPE_KEY@VERSION) as BatchML to FILE, validated against the B2MML schema."""
    from engine.exports import recipe_exchange

    body, rv = recipe_exchange.export_version(runtime(), _version_id(ref))
    Path(output).write_bytes(body)
    if not as_json():
        click.echo(f"wrote {output}: recipe {rv['recipe']} v{rv['version']} ({len(body)} bytes)")
    show(
        {**{k: rv[k] for k in ("id", "recipe", "version", "content_hash")}, "file": output},
        ["id", "recipe", "version", "content_hash", "file"],
    )


@recipe.command("import-batchml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--recipe", "key", help="Store under this recipe key (default: the document's MasterRecipe ID).")
@user_option
@json_option
def recipe_import_batchml(file, key, user):
    """Import a BatchML recipe FILE (from `batchline recipe export`) as a draft version;
    the identical content already here is that version (same content hash)."""
    from engine.exports import recipe_batchml, recipe_exchange

    data = Path(file).read_bytes()
    recipe_batchml.read(data, Path(file).name)  # a hostile or invalid file needs no password
    person = acting(user, "recipe.import")
    answer, created = recipe_exchange.import_document(runtime(), data, user=person.username, recipe=key)
    if not as_json():
        what = "imported" if created else "already here"
        click.echo(f"{what}: recipe {answer['recipe']} v{answer['version']} (version id {answer['id']})")
    show({**answer, "created": created}, ["id", "recipe", "version", "status", "content_hash"])
