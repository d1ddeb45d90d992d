"""What changed between two recipe versions, in the words QA reviews a change in.

BPMN elements are compared by element id across all the version's processes: added,
removed, and changed (type, name, attributes such as ``calledElement``, Batchline's task
properties, scripts, conditions, and the sequence flows in and out). Diagram layout is
left out: moving a box is no change to what runs. Forms are compared by form id and
field key: label, type, unit, hard / action / alert limits, critical flag, required —
every attribute except layout, each with its old and new value, so a changed limit reads
``properties.hardMax: 10 -> 12``.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from ..bpmn.safe_xml import parse_xml
from ..errors import InvalidInput, NotFound
from ..models import RecipeVersion
from ..recipes import MAX_ROW_ID
from ..runtime import Runtime

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
#: form-js attributes that are layout, not content
_LAYOUT = {"layout", "id"}
#: form field attributes that are limits (grouped so a reader sees "limits changed")
LIMIT_KEYS = {"hardMin", "hardMax", "actionLow", "actionHigh", "alertLow", "alertHigh"}


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _text(el) -> str:
    return " ".join("".join(el.itertext()).split())


def _properties(el) -> dict[str, Any]:
    """Attributes (other than id and name) and the content of child elements that are not
    flow elements: extension properties, scripts, conditions, timer and loop definitions."""
    props: dict[str, Any] = {}
    for key, value in el.attrib.items():
        name = _local(key) if key.startswith("{") else key
        if name not in ("id", "name"):
            props[name] = value
    for child in el:
        tag = _local(child.tag)
        if not tag or tag in ("incoming", "outgoing") or tag in _FLOW_CONTAINERS:
            continue
        if tag == "extensionElements":
            for ext in child.iter():
                ename = _local(ext.tag)
                if ename == "property" and ext.get("name"):
                    props[f"property:{ext.get('name')}"] = ext.get("value")
                elif ename not in ("extensionElements", "properties", "property") and ename:
                    text = _text(ext)
                    if text or ext.attrib:
                        props[f"{ename}"] = text or dict(ext.attrib)
        elif _local(el.tag) in _CONTAINERS and _is_flow_element(child):
            continue  # an element inside a subprocess: compared on its own
        else:
            text = _text(child)
            props[tag] = text if text else {k: v for k, v in child.attrib.items() if k != "id"} or True
    return props


_FLOW_CONTAINERS = {"laneSet"}
_CONTAINERS = {"subProcess", "transaction", "adHocSubProcess"}
_NOT_ELEMENTS = {"documentation", "extensionElements", "laneSet", "incoming", "outgoing", "ioSpecification"}


def _is_flow_element(el) -> bool:
    tag = _local(el.tag)
    definition = tag.endswith(("EventDefinition", "LoopCharacteristics", "Expression"))
    return tag not in _NOT_ELEMENTS and el.get("id") is not None and not definition


def elements(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every flow element of a version's BPMN files by id: process, type, name, properties, flows."""
    out: dict[str, dict[str, Any]] = {}
    for filename, text in sorted(files.items()):
        root = parse_xml(filename, text)
        for process in root.iter(f"{{{BPMN}}}process"):
            _collect(process, process.get("id"), out)
    flows = {i: e for i, e in out.items() if e["type"] == "sequenceFlow"}
    for fid, flow in flows.items():
        src, dst = flow["properties"].get("sourceRef"), flow["properties"].get("targetRef")
        if src in out:
            out[src]["flows"]["outgoing"].append(f"{fid}->{dst}")
        if dst in out:
            out[dst]["flows"]["incoming"].append(f"{src}->{fid}")
    for e in out.values():
        e["flows"] = {k: sorted(v) for k, v in e["flows"].items()}
    return out


def _collect(container, process_id: str, out: dict[str, dict[str, Any]]) -> None:
    for el in container:
        if not isinstance(el.tag, str) or _local(el.tag) in _NOT_ELEMENTS or el.get("id") is None:
            continue
        out[el.get("id")] = {
            "process": process_id,
            "type": _local(el.tag),
            "name": el.get("name"),
            "properties": _properties(el),
            "flows": {"incoming": [], "outgoing": []},
        }
        if _local(el.tag) in _CONTAINERS:
            _collect(el, process_id, out)


def _compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    changes: dict[str, dict[str, Any]] = {}
    for key in ("process", "type", "name"):
        if old[key] != new[key]:
            changes[key] = {"old": old[key], "new": new[key]}
    for key in sorted(set(old["properties"]) | set(new["properties"])):
        a, b = old["properties"].get(key), new["properties"].get(key)
        if a != b:
            changes[f"properties.{key}"] = {"old": a, "new": b}
    for key in ("incoming", "outgoing"):
        if old["flows"][key] != new["flows"][key]:
            changes[f"flows.{key}"] = {"old": old["flows"][key], "new": new["flows"][key]}
    return changes


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def form_fields(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A form's fields by key (nested groups included), each flattened to dotted attributes."""
    out: dict[str, dict[str, Any]] = {}
    stack = list(definition.get("components") or [])
    while stack:
        comp = stack.pop(0)
        if not isinstance(comp, dict):
            continue
        stack.extend(comp.get("components") or [])
        key = comp.get("key")
        if isinstance(key, str):
            out[key] = _flatten({k: v for k, v in comp.items() if k not in _LAYOUT and k != "components"})
    return out


def _what(attribute: str) -> str:
    name = attribute.rsplit(".", 1)[-1]
    if name in LIMIT_KEYS:
        return "limit"
    if name in ("unit", "critical", "label", "type", "required"):
        return name
    return "other"


def diff_forms(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = []
    for form_id in sorted(set(old) & set(new)):
        a, b = form_fields(old[form_id] or {}), form_fields(new[form_id] or {})
        fields: list[dict[str, Any]] = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                fields.append({"key": key, "change": "added" if key in b else "removed"})
                continue
            attrs = {
                attr: {"old": a[key].get(attr), "new": b[key].get(attr), "what": _what(attr)}
                for attr in sorted(set(a[key]) | set(b[key]))
                if a[key].get(attr) != b[key].get(attr)
            }
            if attrs:
                fields.append({"key": key, "change": "changed", "attributes": attrs})
        if fields:
            changed.append({"form": form_id, "fields": fields})
    return {"added": added, "removed": removed, "changed": changed}


def diff_content(old_bpmn: dict[str, str], old_forms: dict, new_bpmn: dict[str, str], new_forms: dict) -> dict:
    a, b = elements(old_bpmn), elements(new_bpmn)
    added = [{"id": i, **_head(b[i])} for i in sorted(set(b) - set(a))]
    removed = [{"id": i, **_head(a[i])} for i in sorted(set(a) - set(b))]
    changed = []
    for i in sorted(set(a) & set(b)):
        changes = _compare(a[i], b[i])
        if changes:
            changed.append({"id": i, **_head(b[i]), "changes": changes})
    forms = diff_forms(old_forms or {}, new_forms or {})
    same = not (added or removed or changed or forms["added"] or forms["removed"] or forms["changed"])
    return {"elements": {"added": added, "removed": removed, "changed": changed}, "forms": forms, "identical": same}


def _head(e: dict[str, Any]) -> dict[str, Any]:
    return {"type": e["type"], "name": e["name"], "process": e["process"]}


def _version(s, version_id: Any, what: str) -> RecipeVersion:
    if isinstance(version_id, bool) or not isinstance(version_id, int) or not 0 < version_id <= MAX_ROW_ID:
        raise InvalidInput(f"{what} must be a recipe version id (a positive integer)", code="recipe_id_invalid")
    rv = s.get(RecipeVersion, version_id)
    if rv is None:
        raise NotFound(f"recipe version {version_id} not found", code="recipe_not_found")
    return rv


def diff_versions(rt: Runtime, version_id: int, against_id: int) -> dict[str, Any]:
    """The changes from ``against_id`` (the older, the base) to ``version_id``."""
    with rt.transaction() as s:
        new = _version(s, version_id, "the recipe id")
        old = _version(s, against_id, "against")
        result = diff_content(old.bpmn, old.forms, new.bpmn, new.forms)
        return {
            "recipe": {"id": new.id, "recipe": new.recipe, "version": new.version, "content_hash": new.content_hash},
            "against": {"id": old.id, "recipe": old.recipe, "version": old.version, "content_hash": old.content_hash},
            **result,
        }
