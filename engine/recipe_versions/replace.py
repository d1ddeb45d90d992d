"""Putting one version of an operation template into every recipe that calls it.

Versions are never edited, so each calling recipe gets a **new draft** (through
``recipes.import_recipe``, which parses, validates and hashes it like any import) with the
template's process replaced by the chosen template version's process (and its diagram),
and the template version's forms added or replaced. The drafts then go through review and
approval like any other change. Each new draft is audited (``recipe.template_replaced``:
which template, from which version to which); a recipe that already embeds that version is
left alone and said so. Identical content is the identical draft (content hash), so a
repeated request makes no second draft; with an ``Idempotency-Key`` it also gets the first
answer back.

Only an approved (or effective) template version is put into recipes: a draft template
has not been reviewed.
"""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree
from sqlalchemy import select

from .. import audit
from ..bpmn import parse_recipe
from ..errors import Conflict, InvalidInput, NotFound
from ..idempotency import Outcome, remember, replay
from ..models import RecipeVersion
from ..permissions import Forbidden
from ..recipes import content_hash, import_recipe
from ..runtime import Runtime
from ..users import Person
from .migration import RUNNABLE
from .where_used import callers, check_name, find_process, version_fingerprints

BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
MAX_RECIPES = 200


def _diagram_of(root, process_id: str):
    for diagram in root.iter(f"{{{BPMNDI}}}BPMNDiagram"):
        for plane in diagram.iter(f"{{{BPMNDI}}}BPMNPlane"):
            if plane.get("bpmnElement") == process_id:
                return diagram
    return None


def spliced(files: dict[str, str], name: str, template_files: dict[str, str]) -> dict[str, bytes]:
    """The recipe's files with process ``name`` (and its diagram) taken from the template."""
    found = find_process(template_files, name)
    target = find_process(files, name)
    if found is None or target is None:
        raise Conflict(f"process {name!r} is missing", code="template_process_missing")
    t_file, t_process = found
    r_file = target[0]
    out = {n: t.encode("utf-8") for n, t in files.items()}
    root = etree.fromstring(out[r_file])
    process = next(p for p in root.iter(f"{{{etree.QName(t_process).namespace}}}process") if p.get("id") == name)
    new_process = copy.deepcopy(t_process)
    new_process.tail = process.tail
    process.getparent().replace(process, new_process)
    t_root = t_process.getroottree().getroot()
    old_diagram, new_diagram = _diagram_of(root, name), _diagram_of(t_root, name)
    if old_diagram is not None and new_diagram is not None:
        replacement = copy.deepcopy(new_diagram)
        replacement.tail = old_diagram.tail
        old_diagram.getparent().replace(old_diagram, replacement)
    out[r_file] = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out


def _keys(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(k, str) and 0 < len(k) <= 200 for k in value):
        raise InvalidInput("recipes is a list of recipe keys", code="recipes_invalid")
    if len(value) > MAX_RECIPES:
        raise InvalidInput(f"at most {MAX_RECIPES} recipes at once", code="recipes_invalid")
    return sorted(set(value))


def replace_template(
    rt: Runtime,
    name: Any,
    *,
    with_version: Any,
    recipes: Any = None,
    actor: Person,
    idempotency_key: str | None = None,
) -> Outcome:
    name = check_name(name)
    if isinstance(with_version, bool) or not isinstance(with_version, int) or not 0 < with_version < 2**31:
        raise InvalidInput(
            "with_version must be a positive integer (the template's version)", code="with_version_invalid"
        )
    keys = _keys(recipes)
    if "qa" not in actor.roles:
        raise Forbidden("only QA replaces templates in recipes", code="forbidden", details={"roles": ["qa"]})
    request = {"template": name, "with_version": with_version, "recipes": keys}
    scope = f"template:{name}|user:{actor.username}"
    if idempotency_key:
        with rt.transaction() as s:
            stored = replay(s, scope, idempotency_key, request)
            if stored is not None:
                return stored
    plans: list[dict[str, Any]] = []
    with rt.transaction() as s:
        tv = s.scalars(
            select(RecipeVersion).where(RecipeVersion.recipe == name, RecipeVersion.version == with_version)
        ).first()
        if tv is None:
            raise NotFound(f"template {name} has no version {with_version}", code="template_not_found")
        if tv.status not in RUNNABLE:
            raise Conflict(
                f"version {with_version} of {name} is {tv.status}; "
                "only an approved template version is put into recipes",
                code="template_not_approved",
            )
        known = version_fingerprints([tv], name)
        newest: dict[str, tuple[RecipeVersion, str | None]] = {}
        for rv, _calls, fp in callers(s, name):
            if rv.status != "retired":
                newest[rv.recipe] = (rv, fp)  # ordered by version: the last is the newest
        if keys is not None:
            unknown = [k for k in keys if k not in newest]
            if unknown:
                raise InvalidInput(
                    f"these recipes do not call {name}: {', '.join(unknown)}",
                    code="recipe_not_caller",
                    details={"recipes": unknown},
                )
            newest = {k: v for k, v in newest.items() if k in keys}
        for key, (rv, fp) in sorted(newest.items()):
            if fp in known:
                plans.append({"recipe": key, "from": rv, "files": None, "forms": None})
                continue
            files = spliced(rv.bpmn, name, tv.bpmn)
            forms = {**rv.forms, **tv.forms}
            parse_recipe(dict(files), process_id=rv.process_id)  # every draft parses before any is made
            plans.append({"recipe": key, "from": rv, "files": files, "forms": forms})
        template = {"id": tv.id, "version": tv.version}
    results = []
    for plan in plans:
        rv = plan["from"]
        if plan["files"] is None:
            results.append(_row(rv, None, "already uses this version"))
            continue
        digest = content_hash(plan["files"], plan["forms"])
        with rt.transaction() as s:
            existed = s.scalars(
                select(RecipeVersion.id).where(RecipeVersion.recipe == rv.recipe, RecipeVersion.content_hash == digest)
            ).first()
        draft = import_recipe(
            rt, plan["files"], forms=plan["forms"], user=actor.username, recipe=rv.recipe, process_id=rv.process_id
        )
        if existed is None:
            with rt.transaction() as s:
                audit.record(
                    s,
                    user=actor.username,
                    action="recipe.template_replaced",
                    object_type="recipe_version",
                    object_id=f"{draft.recipe}:{draft.version}",
                    field=f"template:{name}",
                    old=f"{rv.recipe}:{rv.version}",
                    new=f"{name}:{with_version}",
                    reason=f"template {name} version {with_version} put into {rv.recipe} (new draft)",
                )
        results.append(_row(rv, draft, "new draft" if existed is None else "draft exists already"))
    body = {"template": name, "with_version": template["version"], "recipes": results}
    outcome = Outcome(200, body)
    if idempotency_key:
        with rt.transaction() as s:
            if replay(s, scope, idempotency_key, request) is None:
                remember(s, scope, idempotency_key, request, outcome)
    return outcome


def _row(rv: RecipeVersion, draft: RecipeVersion | None, outcome: str) -> dict[str, Any]:
    return {
        "recipe": rv.recipe,
        "from": {"id": rv.id, "version": rv.version},
        "draft": {"id": draft.id, "version": draft.version, "status": draft.status} if draft is not None else None,
        "outcome": outcome,
    }
