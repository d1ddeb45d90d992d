"""Recipes: importing BPMN (+ forms) as immutable, hashed recipe versions.

A recipe version is never edited: a changed file is a new version. Importing the same
content twice returns the existing version (same content hash), so imports can be
repeated safely. Only ``approved`` versions start batches (21 CFR 11.10(k)).
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit
from .bpmn import parse_recipe
from .errors import Conflict, InvalidInput, NotFound
from .models import RecipeVersion
from .permissions import Forbidden
from .runtime import Runtime
from .vocabulary import RecipeStatus
from .workflow_store import canonical, sha256

STATUSES = tuple(RecipeStatus)
MAX_FILE_BYTES = 5_000_000
#: the largest recipe version id (an INTEGER column, 32-bit on PostgreSQL): larger names nothing
MAX_ROW_ID = 2**31 - 1
_ID_TEXT = re.compile(r"[0-9]{1,10}")


def content_hash(files: dict[str, bytes], forms: dict[str, Any]) -> str:
    return sha256(
        canonical(
            {
                "bpmn": {name: sha256(data.decode("utf-8")) for name, data in sorted(files.items())},
                "forms": forms,
            }
        )
    )


def import_recipe(
    rt: Runtime,
    files: dict[str, bytes],
    *,
    forms: dict[str, Any] | None = None,
    user: str,
    recipe: str | None = None,
    approve: bool = False,
    process_id: str | None = None,
) -> RecipeVersion:
    """Parse, check and store a recipe version (or return the identical one)."""
    forms = forms or {}
    if not files:
        raise InvalidInput("no BPMN file given", code="bpmn_missing")
    for name, data in files.items():
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidInput(f"{name}: BPMN must be bytes", code="bpmn_invalid")
        if len(data) > MAX_FILE_BYTES:
            raise InvalidInput(f"{name}: larger than {MAX_FILE_BYTES} bytes", code="bpmn_too_large")
    if not isinstance(forms, dict) or not all(isinstance(v, dict) for v in forms.values()):
        raise InvalidInput("forms must map a form id to a form-js JSON object", code="forms_invalid")
    parsed = parse_recipe(dict(files), process_id=process_id)
    missing = sorted({t.form_key for t in parsed.user_tasks if t.form_key} - set(forms))
    if missing:
        raise InvalidInput(
            f"user tasks name forms that were not given: {', '.join(missing)}",
            code="form_missing",
            details={"forms": missing},
        )
    _check_forms(forms)
    key = recipe or parsed.process_id
    digest = content_hash(files, forms)
    with rt.transaction() as s:
        existing = s.scalars(
            select(RecipeVersion).where(RecipeVersion.recipe == key, RecipeVersion.content_hash == digest)
        ).first()
        if existing is not None:
            return existing
        spec_hash = rt.store.store_spec(s, parsed)
        version = (s.scalar(select(func.max(RecipeVersion.version)).where(RecipeVersion.recipe == key)) or 0) + 1
        rv = RecipeVersion(
            recipe=key,
            version=version,
            name=parsed.name or key,
            process_id=parsed.process_id,
            status=RecipeStatus.DRAFT,
            content_hash=digest,
            spec_hash=spec_hash,
            bpmn={n: d.decode("utf-8") for n, d in files.items()},
            forms=forms,
            tasks=task_summary(parsed),
            created_by=user,
        )
        s.add(rv)
        s.flush()
        audit.record(
            s,
            user=user,
            action="recipe.imported",
            object_type="recipe_version",
            object_id=f"{key}:{version}",
            new={"content_hash": digest},
        )
        if approve:  # the vendor-qualified library and tests; the API and CLI never do this
            audit.record(
                s,
                user=user,
                action="recipe.status",
                object_type="recipe_version",
                object_id=f"{key}:{version}",
                field="status",
                old=RecipeStatus.DRAFT,
                new=RecipeStatus.APPROVED,
                reason="approved at import",
            )
            rv.status = RecipeStatus.APPROVED
    return rv


def task_summary(parsed) -> list[dict[str, Any]]:
    out = [
        {
            "kind": "user",
            "bpmn_id": t.element_id,
            "name": t.name,
            "process": t.process_id,
            "form": t.form_key,
            "instructions": t.instructions,
        }
        for t in parsed.user_tasks
    ]
    out += [
        {"kind": "service", "bpmn_id": t.element_id, "name": t.name, "process": t.process_id, "operator": t.operator}
        for t in parsed.service_tasks
    ]
    return out


def _check_forms(forms: dict[str, Any]) -> None:
    try:
        from forms import load_form
    except ImportError:  # forms package not installed: accept as given
        return
    for form_id, definition in forms.items():
        try:
            load_form(definition)
        except Exception as exc:  # the forms package says what is wrong
            raise InvalidInput(f"form {form_id}: {exc}", code="form_invalid") from exc


def set_status(rt: Runtime, recipe_version_id: int, status: str, user: str, reason: str) -> RecipeVersion:
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", code="status_invalid")
    with rt.transaction() as s:
        rv = s.get(RecipeVersion, recipe_version_id) if 0 < recipe_version_id <= MAX_ROW_ID else None
        if rv is None:
            raise NotFound(f"recipe version {recipe_version_id} not found", code="recipe_not_found")
        _set_status(s, rv, status, user, reason)
    return rv


def _set_status(s: Session, rv: RecipeVersion, status: str, user: str, reason: str) -> None:
    if status == RecipeStatus.APPROVED and rv.status != RecipeStatus.DRAFT:
        # an approval that changes nothing must not look like one to the person giving it
        already = " already" if rv.status == RecipeStatus.APPROVED else ""
        raise Conflict(
            f"version {rv.version} of {rv.recipe} is {rv.status}{already}; only a draft can be approved",
            code="recipe_not_draft",
            details={"status": rv.status},
        )
    if rv.status == status:
        return
    if status == RecipeStatus.APPROVED and user == rv.created_by:
        raise Forbidden("the author of a recipe version cannot approve it", code="author_cannot_approve")
    if rv.status == RecipeStatus.RETIRED:
        raise Conflict("a retired recipe version cannot change status", code="recipe_retired")
    audit.record(
        s,
        user=user,
        action="recipe.status",
        object_type="recipe_version",
        object_id=f"{rv.recipe}:{rv.version}",
        field="status",
        old=rv.status,
        new=status,
        reason=reason,
    )
    rv.status = status


def find_version(s: Session, recipe: str | int, version: int | None = None, *, approved: bool = False) -> RecipeVersion:
    """A recipe by numeric id, or by key (newest version, or the given version)."""
    if isinstance(recipe, int) or (isinstance(recipe, str) and _ID_TEXT.fullmatch(recipe) and version is None):
        rv = s.get(RecipeVersion, int(recipe)) if 0 < int(recipe) <= MAX_ROW_ID else None
        if rv is not None:
            return rv
    stmt = select(RecipeVersion).where(RecipeVersion.recipe == str(recipe))
    if version is not None:
        stmt = stmt.where(RecipeVersion.version == version)
    elif approved:
        stmt = stmt.where(RecipeVersion.status == RecipeStatus.APPROVED)
    rv = s.scalars(stmt.order_by(RecipeVersion.version.desc())).first()
    if rv is None:
        what = "approved version of " if approved and version is None else ""
        raise NotFound(
            f"no {what}recipe {recipe!r}" + (f" version {version}" if version else ""), code="recipe_not_found"
        )
    return rv


def get_version(rt: Runtime, recipe_version_id: int) -> RecipeVersion:
    with rt.transaction() as s:
        rv = s.get(RecipeVersion, recipe_version_id) if 0 < recipe_version_id <= MAX_ROW_ID else None
        if rv is None:
            raise NotFound(f"recipe version {recipe_version_id} not found", code="recipe_not_found")
        return rv


def list_versions(rt: Runtime) -> list[RecipeVersion]:
    with rt.transaction() as s:
        return list(s.scalars(select(RecipeVersion).order_by(RecipeVersion.recipe, RecipeVersion.version)))


def describe(rv: RecipeVersion, *, full: bool = False) -> dict[str, Any]:
    out = {
        "id": rv.id,
        "recipe": rv.recipe,
        "version": rv.version,
        "name": rv.name,
        "process_id": rv.process_id,
        "status": rv.status,
        "content_hash": rv.content_hash,
        "created_at": rv.created_at.isoformat(),
        "created_by": rv.created_by,
        "tasks": rv.tasks,
    }
    if full:
        out["bpmn"] = rv.bpmn
        out["forms"] = rv.forms
    return out


def load_forms_dir(path) -> dict[str, Any]:
    """Forms from a directory of ``*.json`` form-js files, keyed by their ``id`` (or file stem)."""
    from pathlib import Path

    forms: dict[str, Any] = {}
    for f in sorted(Path(path).glob("*.json")):
        definition = json.loads(f.read_text(encoding="utf-8"))
        forms[str(definition.get("id") or f.stem)] = definition
    return forms
