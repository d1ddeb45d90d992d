"""The workflow library: the recipes, ISA-88 operation templates and QA flows that the
demo and new sites start from, as BPMN files with their form-js forms.

Everything is read as package data (``importlib.resources``), so the library works from
an installed wheel as well as from a source tree. Layout, as declared in setup.cfg's
``package_data``::

    recipes/<key>/*.bpmn        one recipe: the parent process and the processes it calls
    recipes/<key>/forms/*.json  that recipe's forms
    templates/*.bpmn            one operation template per file
    templates/forms/*.json      forms of all templates
    qa/*.bpmn                   one QA flow per file
    qa/forms/*.json             forms of all QA flows

An entry's key is its parent process id (the executable process no other process calls),
so ``recipes.import_recipe(rt, entry.files, forms=entry.forms, ...)`` stores it under the
same key.

A master recipe is composed from operation templates: a call activity whose
``calledElement`` is a template's process id (``tpl_protein_a_capture``) brings that
template's file and forms into the recipe entry, so the recipe is one self-contained set
of files to import (the engine parses exactly the files it is given) while the template
stays the single source to edit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

import defusedxml.ElementTree as DefusedET

__all__ = ["LibraryRecipe", "library", "get"]

Kind = Literal["recipe", "template", "qa"]

_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
_SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"


@dataclass(frozen=True)
class LibraryRecipe:
    """One importable library entry: BPMN files (name -> bytes) and the forms they name."""

    key: str
    title: str
    files: dict[str, bytes]
    forms: dict[str, dict[str, Any]]
    kind: Kind
    description: str | None = None
    form_keys: tuple[str, ...] = field(default=())  # formKeys named by the user tasks, in file order


def library() -> list[LibraryRecipe]:
    """Every library entry: recipes first, then templates, then QA flows; each sorted by key."""
    root = resources.files(__name__)
    entries: list[LibraryRecipe] = []
    templates = root / "templates"
    template_files = _bpmn_files(templates) if templates.is_dir() else {}
    template_forms = _forms(templates / "forms") if templates.is_dir() else {}
    recipes_dir = root / "recipes"
    if recipes_dir.is_dir():
        for folder in sorted(recipes_dir.iterdir(), key=lambda t: t.name):
            if folder.is_dir() and not folder.name.startswith(("_", ".")):
                files = _bpmn_files(folder)
                if files:
                    forms = _forms(folder / "forms")
                    for name, data in _called_templates(files, template_files).items():
                        files[name] = data
                        forms.update({k: template_forms[k] for k in _form_keys(data) if k in template_forms})
                    entries.append(_entry(files, forms, "recipe", limit_forms=False))
    for kind, folder_name in (("template", "templates"), ("qa", "qa")):
        folder = root / folder_name
        if not folder.is_dir():
            continue
        shared_forms = _forms(folder / "forms")
        for name, data in sorted(_bpmn_files(folder).items()):
            entries.append(_entry({name: data}, shared_forms, kind, limit_forms=True))
    return entries


def get(key: str) -> LibraryRecipe:
    """The library entry with this key; KeyError naming the keys there are otherwise."""
    for entry in library():
        if entry.key == key:
            return entry
    raise KeyError(f"no library entry {key!r}; there are: {', '.join(e.key for e in library())}")


def _process_ids(data: bytes) -> tuple[set[str], set[str]]:
    """(process ids defined, process ids called) in one BPMN file."""
    root = DefusedET.fromstring(data)
    defined = {p.get("id") for p in root.iter(f"{_BPMN}process")}
    called = {c.get("calledElement") for c in root.iter(f"{_BPMN}callActivity") if c.get("calledElement")}
    return defined, called


def _form_keys(data: bytes) -> list[str]:
    root = DefusedET.fromstring(data)
    return [p.get("value") for p in root.iter(f"{_SPIFF}property") if p.get("name") == "formKey" and p.get("value")]


def _called_templates(files: dict[str, bytes], template_files: dict[str, bytes]) -> dict[str, bytes]:
    """Template files (name -> bytes) that the recipe's call activities reach, transitively,
    for processes the recipe's own files do not define."""
    by_process = {pid: (name, data) for name, data in template_files.items() for pid in _process_ids(data)[0]}
    defined: set[str] = set()
    wanted: list[str] = []
    for data in files.values():
        own, called = _process_ids(data)
        defined |= own
        wanted.extend(sorted(called))
    found: dict[str, bytes] = {}
    while wanted:
        pid = wanted.pop()
        if pid in defined or pid not in by_process:
            continue  # the recipe's own process, or missing (validation names it)
        name, data = by_process[pid]
        if name in files:
            raise ValueError(f"recipe file {name} has the name of the template it calls; rename it")
        found[name] = data
        own, called = _process_ids(data)
        defined |= own
        wanted.extend(sorted(called))
    return found


def _bpmn_files(folder: Traversable) -> dict[str, bytes]:
    return {
        f.name: f.read_bytes()
        for f in sorted(folder.iterdir(), key=lambda t: t.name)
        if f.is_file() and f.name.endswith(".bpmn")
    }


def _forms(folder: Traversable) -> dict[str, dict[str, Any]]:
    if not folder.is_dir():
        return {}
    forms: dict[str, dict[str, Any]] = {}
    for f in sorted(folder.iterdir(), key=lambda t: t.name):
        if f.is_file() and f.name.endswith(".json"):
            definition = json.loads(f.read_text(encoding="utf-8"))
            forms[str(definition.get("id") or f.name[:-5])] = definition
    return forms


def _entry(
    files: dict[str, bytes], forms: dict[str, dict[str, Any]], kind: Kind, *, limit_forms: bool
) -> LibraryRecipe:
    processes: dict[str, tuple[str, str | None, bool]] = {}  # id -> (name, documentation, executable)
    called: set[str] = set()
    form_keys: list[str] = []
    for data in files.values():
        root = DefusedET.fromstring(data)
        for proc in root.iter(f"{_BPMN}process"):
            doc = proc.find(f"{_BPMN}documentation")
            processes[proc.get("id")] = (
                proc.get("name") or proc.get("id"),
                doc.text.strip() if doc is not None and doc.text else None,
                proc.get("isExecutable", "true") == "true",
            )
            called.update(c.get("calledElement") for c in proc.iter(f"{_BPMN}callActivity"))
            for prop in proc.iter(f"{_SPIFF}property"):
                if prop.get("name") == "formKey" and prop.get("value") and prop.get("value") not in form_keys:
                    form_keys.append(prop.get("value"))
    tops = [pid for pid, (_, _, executable) in processes.items() if executable and pid not in called]
    if len(tops) != 1:
        raise ValueError(f"library files {sorted(files)} must have exactly one parent process, found {tops}")
    key = tops[0]
    title, description, _ = processes[key]
    if limit_forms:
        forms = {k: forms[k] for k in form_keys if k in forms}
    return LibraryRecipe(
        key=key,
        title=title,
        files=dict(files),
        forms=dict(forms),
        kind=kind,
        description=description,
        form_keys=tuple(form_keys),
    )
