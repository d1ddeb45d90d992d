"""Operation templates in the recipe editor: which ones QA may call, and bringing the
called template's files and forms into the recipe when it is saved.

The engine runs a call activity by process id *inside the recipe's own files*
(``engine.recipes.import_recipe`` parses exactly the files it is given; the library
composes its master recipes the same way, ``workflows._called_templates``). So a recipe
that calls ``tpl_protein_a_capture`` must carry that template's BPMN file and forms. The
editor only edits the recipe's own diagram; on save the server replaces any copy of a
called template with the files and forms of the template *version* the call activity
names in its ``templateVersion`` property (the effective version when it names none, and
then the property is written into the diagram), so a saved recipe says which version of
each template it runs and its content hash covers it.

A template here is a recipe whose effective version's process is a library operation
template (``workflows.library()``, kind ``template``) or is called by another recipe.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lxml import etree

from engine.bpmn.safe_xml import parse_xml
from engine.errors import Problem, XmlRefused

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
VERSION_PROPERTY = "templateVersion"
#: the statuses a template version may be pinned at (a superseded pin keeps working)
PINNABLE = ("approved", "effective", "superseded")


@lru_cache(maxsize=1)
def library_template_ids() -> frozenset[str]:
    import workflows

    return frozenset(e.key for e in workflows.library() if e.kind == "template")


def _processes(root) -> tuple[set[str], list[tuple[Any, str]]]:
    """(process ids defined, [(callActivity element, calledElement)]) in one parsed file."""
    defined = {p.get("id") for p in root.iter(f"{{{BPMN}}}process") if p.get("id")}
    calls = [(c, c.get("calledElement")) for c in root.iter(f"{{{BPMN}}}callActivity") if c.get("calledElement")]
    return defined, calls


def defined_processes(files: dict[str, bytes]) -> set[str]:
    """Every process id the files define (parsed safely)."""
    return {pid for name, data in files.items() for pid in _processes(parse_xml(name, data))[0]}


def template_choices(versions, used: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The templates QA may call: one entry per recipe whose effective version is a
    template, with the versions that may be pinned. ``used``: process id -> recipes
    calling it (``recipe_pages._where_used``)."""
    by_key: dict[str, list[Any]] = {}
    for rv in versions:
        by_key.setdefault(rv.recipe, []).append(rv)
    library = library_template_ids()
    out = []
    for key, rvs in sorted(by_key.items()):
        effective = max((rv for rv in rvs if rv.status == "effective"), key=lambda v: v.version, default=None)
        if effective is None:
            continue
        if effective.process_id not in library and not [k for k in used.get(effective.process_id, []) if k != key]:
            continue
        out.append(
            {
                "process_id": effective.process_id,
                "recipe": key,
                "name": effective.name,
                "version": effective.version,
                "id": effective.id,
                "versions": [
                    {"version": rv.version, "status": rv.status, "id": rv.id}
                    for rv in sorted(rvs, key=lambda v: -v.version)
                    if rv.status in PINNABLE
                ],
            }
        )
    return out


def _property(call, name: str) -> str | None:
    for prop in call.iter(f"{{{SPIFF}}}property"):
        if prop.get("name") == name:
            return prop.get("value")
    return None


def _set_property(call, name: str, value: str) -> None:
    for prop in call.iter(f"{{{SPIFF}}}property"):
        if prop.get("name") == name:
            prop.set("value", value)
            return
    ext = call.find(f"{{{BPMN}}}extensionElements")
    if ext is None:
        ext = etree.Element(f"{{{BPMN}}}extensionElements")
        doc = call.find(f"{{{BPMN}}}documentation")
        call.insert(call.index(doc) + 1 if doc is not None else 0, ext)
    props = ext.find(f"{{{SPIFF}}}properties")
    if props is None:
        props = etree.SubElement(ext, f"{{{SPIFF}}}properties", nsmap={"spiffworkflow": SPIFF})
    etree.SubElement(props, f"{{{SPIFF}}}property", name=name, value=value)


def compose(
    files: dict[str, bytes], forms: dict[str, Any], versions, choices: list[dict[str, Any]]
) -> tuple[dict[str, bytes], dict[str, Any], list[dict[str, Any]], list[Problem]]:
    """The recipe with its called templates' files and forms, from the pinned (or
    effective) template versions: (files, forms, templates used, problems)."""
    by_process = {c["process_id"]: c for c in choices}
    by_version = {(rv.recipe, rv.version): rv for rv in versions}
    parsed: dict[str, Any] = {}
    for name, data in files.items():
        try:
            parsed[name] = parse_xml(name, data)
        except XmlRefused as exc:
            return files, forms, [], list(exc.problems)
    defined = {name: _processes(root)[0] for name, root in parsed.items()}
    # a file holding a called template's process is a copy of that template: replaced below
    called = {pid for root in parsed.values() for _, pid in _processes(root)[1]}
    copies = {n for n, ids in defined.items() if ids and ids <= (called & set(by_process))}
    own = [n for n in parsed if n not in copies]
    own_ids = set().union(*(defined[n] for n in own)) if own else set()
    picked: dict[str, Any] = {}  # process id -> template version
    used, problems, changed = [], [], set()
    for name in own:
        for call, pid in _processes(parsed[name])[1]:
            choice = by_process.get(pid)
            if choice is None or pid in own_ids:
                continue  # the recipe's own sub-process, or not a template (validation names a missing one)
            element = call.get("id")
            pinned = (_property(call, VERSION_PROPERTY) or "").strip()
            if not pinned:
                pinned = str(choice["version"])
                _set_property(call, VERSION_PROPERTY, pinned)
                changed.add(name)
            rv = by_version.get((choice["recipe"], int(pinned))) if pinned.isdigit() and len(pinned) < 10 else None
            if rv is None or rv.status not in PINNABLE:
                problems.append(
                    Problem(
                        "template_version_unknown",
                        f"call activity {call.get('name') or element!r} pins version {pinned[:20]!r} of template "
                        f"{choice['recipe']!r}, which is not an approved, effective or superseded version "
                        f"(effective: v{choice['version']})",
                        element,
                        name,
                    )
                )
                continue
            if pid in picked and picked[pid].version != rv.version:
                problems.append(
                    Problem(
                        "template_version_conflict",
                        f"template {choice['recipe']!r} is called at v{picked[pid].version} and v{rv.version}: "
                        "a recipe carries one version of each template, pin the same one",
                        element,
                        name,
                    )
                )
                continue
            picked[pid] = rv
            used.append({"element_id": element, "process_id": pid, "recipe": rv.recipe, "version": rv.version})
    if problems:
        return files, forms, used, problems
    out_files = {n: files[n] for n in own}
    for n in changed:
        out_files[n] = etree.tostring(parsed[n], xml_declaration=True, encoding="UTF-8")
    own_form_keys = {
        p.get("value")
        for n in own
        for p in parsed[n].iter(f"{{{SPIFF}}}property")
        if p.get("name") == "formKey" and p.get("value")
    }
    copy_form_keys = {
        p.get("value")
        for n in copies
        for p in parsed[n].iter(f"{{{SPIFF}}}property")
        if p.get("name") == "formKey" and p.get("value")
    }
    out_forms = {k: v for k, v in forms.items() if k in own_form_keys or k not in copy_form_keys}
    for rv in picked.values():
        for fname, xml in (rv.bpmn or {}).items():
            if fname in out_files and out_files[fname] != xml.encode("utf-8"):
                problems.append(
                    Problem(
                        "template_file_conflict",
                        f"the recipe has a file {fname!r} of its own; template {rv.recipe!r} brings one of that name",
                        None,
                        fname,
                    )
                )
            out_files[fname] = xml.encode("utf-8")
        for key, form in (rv.forms or {}).items():
            if key in own_form_keys and key in forms and forms[key] != form:
                problems.append(
                    Problem(
                        "template_form_conflict",
                        f"form {key!r} of the recipe differs from the form of that id in template {rv.recipe!r} "
                        f"v{rv.version}: rename the recipe's form",
                    )
                )
            out_forms[key] = form
    return out_files, out_forms, used, problems
