"""Moving a recipe version between sites as BatchML: ``export_version`` (the validated
document) and ``import_document`` (a new draft version, or the identical one already
here — the content hash decides, so importing an export anywhere gives the same hash).

Why import checks the declared content hash: the document says which version it is;
if the embedded files do not hash to it, someone changed them after the export, and a
recipe must never arrive silently different from what was approved elsewhere.
Importing goes through ``engine.recipes.import_recipe`` (parsing, forms, audit) and adds
one audit entry saying where the version came from.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from .. import audit, recipes
from ..errors import InvalidInput
from ..idempotency import Outcome, remember, replay
from ..models import RecipeVersion
from ..runtime import Runtime
from . import recipe_batchml

MAX_KEY_CHARS = 200


def describe_for_export(rv: RecipeVersion) -> dict[str, Any]:
    out = recipes.describe(rv, full=True)
    effective = getattr(rv, "effective_from", None)  # the recipe lifecycle's effective date, when it has one
    if effective is not None:
        out["effective_from"] = effective.isoformat() if hasattr(effective, "isoformat") else str(effective)
    return out


def export_version(rt: Runtime, recipe_version_id: int) -> tuple[bytes, dict[str, Any]]:
    """(the validated BatchML document, the version as ``recipes.describe``)."""
    rv = describe_for_export(recipes.get_version(rt, recipe_version_id))
    generated = datetime.now(UTC).replace(microsecond=0).isoformat()
    return recipe_batchml.build(rv, generated), rv


def import_document(
    rt: Runtime,
    data: bytes,
    *,
    user: str,
    recipe: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """(the imported version as ``recipes.describe``, whether it is a version new here).

    ``recipe`` stores it under another key (another site's naming); by default the
    document's ``MasterRecipe/ID``."""
    doc = recipe_batchml.read(data)
    key = recipe or doc.key
    if not key or len(key) > MAX_KEY_CHARS:
        raise InvalidInput(f"the recipe key must be 1 to {MAX_KEY_CHARS} characters", code="recipe_key_invalid")
    digest = recipes.content_hash(doc.files, doc.forms)
    if doc.content_hash and doc.content_hash != digest:
        raise recipe_batchml.BatchmlInvalid(
            "the embedded files do not match the content hash the document declares (changed after export?): refused",
            code="content_hash_mismatch",
            details={"declared": doc.content_hash, "computed": digest},
        )
    document_hash = hashlib.sha256(data).hexdigest()
    scope = f"recipe-batchml|user:{user}"
    request = {"document": document_hash, "recipe": key}
    if idempotency_key:
        with rt.transaction() as s:
            stored = replay(s, scope, idempotency_key, request)
        if stored is not None:
            return stored.body, stored.status == 201  # the first answer, as it was
    with rt.transaction() as s:
        before = s.scalar(
            select(RecipeVersion.id).where(RecipeVersion.recipe == key, RecipeVersion.content_hash == digest)
        )
    rv = recipes.import_recipe(
        rt, dict(doc.files), forms=dict(doc.forms), user=user, recipe=key, process_id=doc.process_id
    )
    answer = recipes.describe(rv)
    created = before is None
    with rt.transaction() as s:
        if created:
            audit.record(
                s,
                user=user,
                action="recipe.imported_batchml",
                object_type="recipe_version",
                object_id=f"{rv.recipe}:{rv.version}",
                new={
                    "document_sha256": document_hash,
                    "exported_as": f"{doc.key} v{doc.version}",
                    "content_hash": rv.content_hash,
                },
            )
        if idempotency_key:
            remember(s, scope, idempotency_key, request, Outcome(201 if created else 200, answer))
    return answer, created
