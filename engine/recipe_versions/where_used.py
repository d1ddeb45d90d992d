"""Which recipes call an operation template, and with which version of it.

An operation template is a recipe key whose process other recipes call: a recipe carries
the processes it calls in its own BPMN files (so a version is complete and hashable on its
own), and a call activity names the template by process id (``calledElement``). Which
*version* of the template a recipe embeds is found by content: the canonical XML (C14N)
of the called process in the recipe is compared with each template version's process. A
recipe whose copy matches no version has a locally changed copy (``template_version``
is None) — worth knowing before replacing it.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from sqlalchemy import select

from ..bpmn.safe_xml import parse_xml
from ..errors import InvalidInput, NotFound
from ..models import RecipeVersion
from ..runtime import Runtime
from ..workflow_store import sha256
from .diff import BPMN

#: a process id as BPMN allows it (an XML NCName), bounded
TEMPLATE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,199}")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name):
        raise InvalidInput(
            "a template is named by its process id: a letter or _, then letters, digits, _ . - (at most 200)",
            code="template_name_invalid",
        )
    return name


def find_process(files: dict[str, str], process_id: str) -> tuple[str, Any] | None:
    """(file name, parsed process element) of ``process_id`` in a version's files."""
    for filename, text in sorted(files.items()):
        if f'"{process_id}"' not in text and f"'{process_id}'" not in text:
            continue
        root = parse_xml(filename, text)
        for process in root.iter(f"{{{BPMN}}}process"):
            if process.get("id") == process_id:
                return filename, process
    return None


def fingerprint(process) -> str:
    """SHA-256 of the process element's canonical XML (whitespace between tags ignored)."""
    copy = etree.fromstring(etree.tostring(process))
    for el in copy.iter():
        if el.text is not None and not el.text.strip():
            el.text = None
        if el.tail is not None and not el.tail.strip():
            el.tail = None
    return sha256(etree.tostring(copy, method="c14n").decode("utf-8"))


def calls(files: dict[str, str], process_id: str) -> list[dict[str, Any]]:
    """The call activities in a version's files that call ``process_id``."""
    out = []
    for filename, text in sorted(files.items()):
        if process_id not in text:
            continue
        root = parse_xml(filename, text)
        for process in root.iter(f"{{{BPMN}}}process"):
            for ca in process.iter(f"{{{BPMN}}}callActivity"):
                if ca.get("calledElement") == process_id:
                    out.append({"id": ca.get("id"), "name": ca.get("name"), "process": process.get("id")})
    return out


def template_versions(s, name: str) -> list[RecipeVersion]:
    return list(s.scalars(select(RecipeVersion).where(RecipeVersion.recipe == name).order_by(RecipeVersion.version)))


def version_fingerprints(versions: list[RecipeVersion], name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for tv in versions:
        found = find_process(tv.bpmn, name)
        if found is not None:
            out.setdefault(fingerprint(found[1]), tv.version)
    return out


def callers(s, name: str) -> list[tuple[RecipeVersion, list[dict[str, Any]], str | None]]:
    """Every recipe version (of other recipe keys) that calls ``name``: (version, call
    activities, fingerprint of its copy of the template)."""
    out = []
    for rv in s.scalars(
        select(RecipeVersion).where(RecipeVersion.recipe != name).order_by(RecipeVersion.recipe, RecipeVersion.version)
    ):
        found_calls = calls(rv.bpmn, name)
        if not found_calls:
            continue
        copy = find_process(rv.bpmn, name)
        out.append((rv, found_calls, fingerprint(copy[1]) if copy else None))
    return out


def where_used(rt: Runtime, name: Any) -> dict[str, Any]:
    name = check_name(name)
    with rt.transaction() as s:
        versions = template_versions(s, name)
        known = version_fingerprints(versions, name)
        used = callers(s, name)
        if not versions and not used:
            raise NotFound(f"no template {name!r} and no recipe calls it", code="template_not_found")
        return {
            "template": name,
            "versions": [{"id": v.id, "version": v.version, "status": v.status} for v in versions],
            "used_by": [
                {
                    "id": rv.id,
                    "recipe": rv.recipe,
                    "version": rv.version,
                    "status": rv.status,
                    "call_activities": found_calls,
                    "template_version": known.get(fp) if fp else None,
                }
                for rv, found_calls, fp in used
            ],
        }
