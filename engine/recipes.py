"""Recipes: importing BPMN (+ forms) as immutable, hashed recipe versions.

A recipe version is never edited: a changed file is a new version. Importing the same
content twice returns the existing version (same content hash), so imports can be
repeated safely. Only approved and effective versions start batches (21 CFR 11.10(k));
new batches take the *effective* one (``effective_version``). How a version gets there —
submit, QA's approval flow, e-signed approval, retirement — is ``engine.recipe_lifecycle``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import audit
from .bpmn import parse_recipe
from .errors import InvalidInput, NotFound
from .models import RecipeVersion, utcnow
from .runtime import Runtime
from .vocabulary import RecipeStatus
from .workflow_store import canonical, sha256

STATUSES = tuple(RecipeStatus)
#: the statuses a batch may start on (an explicit version: approved ahead of its date too)
RUNNABLE = (RecipeStatus.APPROVED, RecipeStatus.EFFECTIVE)
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
        if approve:  # installation of the vendor-qualified library; the API and CLI never do this
            now = utcnow()
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
            rv.status, rv.approved_by, rv.approved_at, rv.effective_from = RecipeStatus.APPROVED, [user], now, now
            s.flush()
            promote(s, key, now)
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


def effective_version(s: Session, key: str, now: datetime | None = None) -> RecipeVersion | None:
    """The version of recipe ``key`` new batches take: the newest approved or effective
    version whose effective date has come. Reading it makes the statuses say so
    (``promote``): approved → effective, the one before → superseded, audited."""
    promote(s, key, now)
    return s.scalars(
        select(RecipeVersion)
        .where(RecipeVersion.recipe == key, RecipeVersion.status == RecipeStatus.EFFECTIVE)
        .order_by(RecipeVersion.version.desc())
    ).first()


def promote(s: Session, key: str, now: datetime | None = None) -> None:
    """Bring recipe ``key``'s statuses up to date with the clock. Conditional updates: two
    readers promoting at once change (and audit) each version once."""
    now = now or utcnow()
    due = s.scalars(
        select(RecipeVersion)
        .where(
            RecipeVersion.recipe == key,
            RecipeVersion.status.in_([str(x) for x in RUNNABLE]),
            RecipeVersion.effective_from.is_not(None),
            RecipeVersion.effective_from <= now,
        )
        .order_by(RecipeVersion.version.desc())
    ).first()
    if due is None:
        return
    if due.status == RecipeStatus.APPROVED:
        _change(s, due, RecipeStatus.APPROVED, RecipeStatus.EFFECTIVE, "its effective date has come")
    older = s.scalars(
        select(RecipeVersion).where(
            RecipeVersion.recipe == key,
            RecipeVersion.version < due.version,
            RecipeVersion.status.in_([str(x) for x in RUNNABLE]),
        )
    )
    for rv in list(older):
        _change(s, rv, rv.status, RecipeStatus.SUPERSEDED, f"version {due.version} is effective")


def promote_all(s: Session, now: datetime | None = None) -> None:
    """``promote`` every recipe with an approved version whose date has come."""
    now = now or utcnow()
    keys = s.scalars(
        select(RecipeVersion.recipe)
        .where(RecipeVersion.status == RecipeStatus.APPROVED, RecipeVersion.effective_from <= now)
        .distinct()
    )
    for key in list(keys):
        promote(s, key, now)


def _change(s: Session, rv: RecipeVersion, old: str, new: str, reason: str) -> None:
    done = s.execute(
        update(RecipeVersion)
        .where(RecipeVersion.id == rv.id, RecipeVersion.status == old)
        .values(status=new)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        s.refresh(rv)
        return
    s.refresh(rv)
    audit.record(
        s,
        user="system",
        action="recipe.status",
        object_type="recipe_version",
        object_id=f"{rv.recipe}:{rv.version}",
        field="status",
        old=old,
        new=new,
        reason=reason,
    )


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
        effective = effective_version(s, str(recipe))
        if effective is not None:
            return effective
        stmt = stmt.where(RecipeVersion.id.is_(None))
    rv = s.scalars(stmt.order_by(RecipeVersion.version.desc())).first()
    if rv is None:
        what = "effective version of " if approved and version is None else ""
        raise NotFound(
            f"no {what}recipe {recipe!r}" + (f" version {version}" if version else ""), code="recipe_not_found"
        )
    return rv


def get_version(rt: Runtime, recipe_version_id: int) -> RecipeVersion:
    with rt.transaction() as s:
        promote_all(s)
        rv = s.get(RecipeVersion, recipe_version_id) if 0 < recipe_version_id <= MAX_ROW_ID else None
        if rv is None:
            raise NotFound(f"recipe version {recipe_version_id} not found", code="recipe_not_found")
        return rv


def list_versions(rt: Runtime) -> list[RecipeVersion]:
    with rt.transaction() as s:
        promote_all(s)
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
        "effective_from": _iso(rv.effective_from),
        "approved_by": list(rv.approved_by or []),
        "approved_at": _iso(rv.approved_at),
        "tasks": rv.tasks,
    }
    if full:
        out["bpmn"] = rv.bpmn
        out["forms"] = rv.forms
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def load_forms_dir(path) -> dict[str, Any]:
    """Forms from a directory of ``*.json`` form-js files, keyed by their ``id`` (or file stem)."""
    from pathlib import Path

    forms: dict[str, Any] = {}
    for f in sorted(Path(path).glob("*.json")):
        definition = json.loads(f.read_text(encoding="utf-8"))
        forms[str(definition.get("id") or f.stem)] = definition
    return forms
