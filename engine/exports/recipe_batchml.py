"""A recipe version as BatchML: a ``BatchInformation`` document with one ``MasterRecipe``
(B2MML/BatchML V0700, ISA-88 Part 2), validated against the vendored MESA schema
(``BatchML-BatchInformation.xsd``) before anyone gets it, and read back so that another
site (or this one) recreates the very same version: same BPMN bytes, same forms, same
content hash.

The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA
International. (schemas/b2mml-v0700: the MESA files and LICENSE.)

Why the files travel inside ``OtherInformation``: BatchML has no element for a BPMN
diagram or a form definition, and rebuilding BPMN from ISA-88 procedure logic would lose
scripts, forms, limits and the layout. ``OtherInformationType`` is BatchML's place for
what a master recipe carries beyond its formula, and its ``Value/ValueString`` has the
``encodingCode``/``format``/``characterSetCode`` attributes to say exactly what it holds.
The readable ISA-88 view (``RecipeElement``/``ProcedureLogic``) is written for people
and other systems; import never reads it. The mapping:

- ``BatchInformation/ListHeader``: ``ID`` "batchline-recipe-export", ``Version`` = the
  format version (``FORMAT``), ``CreateDate``; ``Description``: the MESA attribution.
- ``MasterRecipe``: ``ID`` = recipe key, ``Version`` = version number, ``VersionDate`` =
  created, ``Description`` = name and "content SHA-256 <hash>"; ``Header``:
  ``ModificationLog`` (created, author), ``EffectiveDate`` (when the version has one),
  ``Status`` "Other" with ``OtherValue`` = the Batchline status.
- one ``RecipeElement`` per BPMN process (``Procedure`` for the top process,
  ``UnitProcedure`` for the processes it calls), holding ``ProcedureLogic`` (a ``Step``
  per flow node, a ``Link`` per sequence flow, its condition as ``Description``) and a
  ``RecipeElement`` per flow node: ``Begin``/``End`` for start/end events, ``Phase`` for
  tasks (user task form fields as ``Parameter``s of type ``ProcessOutput``),
  ``Operation`` for call activities (``BuildingBlockElementID`` = the called process),
  ``Other`` (``OtherValue`` = the BPMN element type) for the rest.
- ``OtherInformation`` (what import reads):
  ``batchline.process_id``, ``batchline.content_hash`` (Text values);
  ``bpmn:<file name>``: the file's exact bytes, ``ValueString`` base64
  (``encodingCode="base64"``, ``format="application/bpmn+xml"``, ``DataType``
  BinaryObject), its SHA-256 in ``Description``;
  ``form:<form id>``: the form-js JSON (ASCII, keys sorted), base64,
  ``format="application/json"``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from ..bpmn.safe_xml import parse_xml
from ..errors import BatchlineError, InvalidInput
from .batchml import ATTRIBUTION, NS, SCHEMA_DIR, _clean

SCHEMA_FILE: Path = SCHEMA_DIR / "BatchML-BatchInformation.xsd"
FORMAT = "batchline-recipe/1"
BPMN_PREFIX = "bpmn:"
FORM_PREFIX = "form:"
#: a document embedding several BPMN files (each at most 5 MB, base64 grows it by 4/3)
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
_Q = f"{{{NS}}}"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

_schema: etree.XMLSchema | None = None
_lock = threading.Lock()


class RecipeExportInvalid(BatchlineError):
    """The BatchML built from a recipe version does not validate: never served."""

    code = "recipe_xml_invalid"
    status = 500


class BatchmlInvalid(InvalidInput):
    """An uploaded BatchML document that the schema or the mapping refuses (422, with why)."""

    code = "batchml_invalid"


@dataclass(frozen=True)
class RecipeDocument:
    """What a BatchML recipe document holds: enough to recreate the version exactly."""

    key: str
    version: str | None
    name: str | None
    process_id: str | None
    content_hash: str | None
    files: dict[str, bytes]
    forms: dict[str, Any]


def schema() -> etree.XMLSchema:
    """The compiled BatchInformation schema (compiled once per process)."""
    global _schema
    with _lock:
        if _schema is None:
            _schema = etree.XMLSchema(etree.parse(str(SCHEMA_FILE)))
        return _schema


def validate(root: etree._Element) -> list[str]:
    """The schema's complaints about ``root`` (empty when valid)."""
    checker = schema()
    if checker.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in checker.error_log]


def _el(parent: etree._Element, name: str, text: Any = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, _Q + name, **attrs)
    if text is not None:
        node.text = _clean(str(text))
    return node


def _value(parent: etree._Element, text: str, data_type: str, **attrs: str) -> None:
    value = _el(parent, "Value")
    _el(value, "ValueString", text, **attrs)
    _el(value, "DataInterpretation", "Constant")
    _el(value, "DataType", data_type)
    _el(value, "UnitOfMeasure", "")


def _other(parent: etree._Element, ident: str, text: str, description: str | None = None, **attrs: str) -> None:
    node = _el(parent, "OtherInformation")
    _el(node, "ID", ident)
    _value(node, text, "BinaryObject" if attrs else "Text", **attrs)
    if description:
        _el(node, "Description", description)


def form_bytes(form: Any) -> bytes:
    """A form as the bytes that travel: ASCII JSON with sorted keys (any string survives)."""
    return json.dumps(form, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode("ascii")


# -- the readable ISA-88 view ------------------------------------------------------------

_KINDS = {"startEvent": "Begin", "endEvent": "End", "callActivity": "Operation"}
_TASKS = {"task", "userTask", "serviceTask", "scriptTask", "manualTask", "businessRuleTask", "sendTask", "receiveTask"}


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _form_key(node: etree._Element) -> str | None:
    for prop in node.iter(f"{SPIFF}property"):
        if prop.get("name") == "formKey":
            return prop.get("value")
    return None


def _procedures(rv: dict[str, Any]) -> list[etree._Element]:
    processes = []
    for name, text in sorted(rv["bpmn"].items()):
        root = parse_xml(name, text)
        processes += list(root.iter(f"{BPMN}process"))
    return processes


def _recipe_elements(master: etree._Element, rv: dict[str, Any]) -> None:
    version = str(rv["version"])
    for proc in _procedures(rv):
        top = proc.get("id") == rv.get("process_id")
        el = _el(master, "RecipeElement")
        _el(el, "ID", proc.get("id") or "process")
        _el(el, "Version", version)
        if proc.get("name"):
            _el(el, "Description", proc.get("name"))
        _el(el, "RecipeElementType", "Procedure" if top else "UnitProcedure")
        nodes = [n for n in proc if _local(n.tag) not in ("sequenceFlow", "documentation", "extensionElements")]
        nodes = [n for n in nodes if n.get("id") and not _local(n.tag).endswith(("Association", "annotation"))]
        logic = _el(el, "ProcedureLogic")
        for flow in proc.iter(f"{BPMN}sequenceFlow"):
            link = _el(logic, "Link")
            _el(link, "ID", flow.get("id") or "flow")
            for end, ref in (("From", flow.get("sourceRef")), ("To", flow.get("targetRef"))):
                side = _el(link, f"{end}ID")
                _el(side, f"{end}IDValue", ref or "")
                _el(side, f"{end}Type", "Step")
                _el(side, "IDScope", "Internal")
            _el(link, "LinkType", "ControlLink")
            _el(link, "Depiction", "LineAndArrow")
            condition = flow.find(f"{BPMN}conditionExpression")
            if condition is not None and (condition.text or "").strip():
                _el(link, "Description", condition.text.strip())
        for node in nodes:
            step = _el(logic, "Step")
            _el(step, "ID", node.get("id"))
            _el(step, "RecipeElementID", node.get("id"))
            _el(step, "RecipeElementVersion", version)
            if node.get("name"):
                _el(step, "Description", node.get("name"))
        for node in nodes:
            _node_element(el, node, rv, version)


def _node_element(parent: etree._Element, node: etree._Element, rv: dict[str, Any], version: str) -> None:
    kind = _local(node.tag)
    child = _el(parent, "RecipeElement")
    _el(child, "ID", node.get("id"))
    _el(child, "Version", version)
    if node.get("name"):
        _el(child, "Description", node.get("name"))
    if kind in _KINDS:
        _el(child, "RecipeElementType", _KINDS[kind])
    elif kind in _TASKS:
        _el(child, "RecipeElementType", "Phase")
    else:
        _el(child, "RecipeElementType", "Other", OtherValue=kind)
    if kind == "callActivity" and node.get("calledElement"):
        _el(child, "BuildingBlockElementID", node.get("calledElement"))
    form = (rv.get("forms") or {}).get(_form_key(node) or "") if kind == "userTask" else None
    for field in (form or {}).get("components") or []:
        if isinstance(field, dict) and field.get("key"):
            param = _el(child, "Parameter")
            _el(param, "ID", field["key"])
            if field.get("label"):
                _el(param, "Description", field["label"])
            _el(param, "ParameterType", "ProcessOutput")


# -- writing and reading -----------------------------------------------------------------


def build(rv: dict[str, Any], generated_at: str) -> bytes:
    """The validated BatchML of a recipe version (``engine.recipes.describe(rv, full=True)``
    plus ``effective_from`` when it has one); RecipeExportInvalid if the schema refuses it."""
    root = etree.Element(_Q + "BatchInformation", nsmap={None: NS})
    root.append(etree.Comment(" " + ATTRIBUTION + " "))
    header = _el(root, "ListHeader")
    _el(header, "ID", "batchline-recipe-export")
    _el(header, "Version", FORMAT)
    _el(header, "Description", "A Batchline recipe version: BPMN files and form-js forms in OtherInformation")
    _el(header, "CreateDate", generated_at)
    _el(root, "Description", ATTRIBUTION)
    master = _el(root, "MasterRecipe")
    _el(master, "ID", rv["recipe"])
    _el(master, "Version", str(rv["version"]))
    _el(master, "VersionDate", rv["created_at"])
    _el(master, "Description", rv.get("name") or rv["recipe"])
    _el(master, "Description", f"content SHA-256 {rv['content_hash']}")
    head = _el(master, "Header")
    log = _el(head, "ModificationLog")
    _el(log, "ModifiedDate", rv["created_at"])
    _el(log, "Description", "version created")
    _el(log, "Author", rv["created_by"])
    if rv.get("effective_from"):
        _el(head, "EffectiveDate", rv["effective_from"])
    _el(head, "Status", "Other", OtherValue=str(rv["status"]))
    _recipe_elements(master, rv)
    _other(master, "batchline.process_id", rv["process_id"])
    _other(master, "batchline.content_hash", rv["content_hash"])
    for name, text in sorted(rv["bpmn"].items()):
        data = text.encode("utf-8")
        _other(
            master,
            BPMN_PREFIX + name,
            base64.b64encode(data).decode("ascii"),
            f"BPMN 2.0 file {name}, SHA-256 {hashlib.sha256(data).hexdigest()}",
            encodingCode="base64",
            format="application/bpmn+xml",
            characterSetCode="UTF-8",
        )
    for form_id, form in sorted((rv.get("forms") or {}).items()):
        _other(
            master,
            FORM_PREFIX + form_id,
            base64.b64encode(form_bytes(form)).decode("ascii"),
            f"form-js form {form_id}",
            encodingCode="base64",
            format="application/json",
            characterSetCode="US-ASCII",
        )
    problems = validate(root)
    if problems:
        raise RecipeExportInvalid(
            "the BatchML recipe does not validate against BatchML-BatchInformation.xsd",
            details={"problems": problems[:20]},
        )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _text(node: etree._Element | None) -> str | None:
    return None if node is None or node.text is None else node.text


def _utf8(ident: str, raw: bytes) -> bytes:
    try:
        _storable(ident, raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BatchmlInvalid(f"{ident}: the file is not UTF-8 text", details={"element": ident}) from None
    return raw


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a finite number")


def _form(ident: str, raw: bytes) -> Any:
    try:
        form = json.loads(raw.decode("ascii"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BatchmlInvalid(f"{ident}: not a JSON form ({exc})", details={"element": ident}) from None
    if not isinstance(form, dict):
        raise BatchmlInvalid(f"{ident}: a form is one JSON object", details={"element": ident})
    _storable(ident, form)
    return form


def _storable(ident: str, value: Any) -> None:
    """Text every database stores: no NUL, no lone surrogate (PostgreSQL refuses both)."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise BatchmlInvalid(f"{ident}: holds a NUL or a lone surrogate", details={"element": ident})
    elif isinstance(value, dict):
        for k, v in value.items():
            _storable(ident, k)
            _storable(ident, v)
    elif isinstance(value, list):
        for v in value:
            _storable(ident, v)
    elif isinstance(value, float) and not math.isfinite(value):
        raise BatchmlInvalid(f"{ident}: holds a number that is not finite", details={"element": ident})


def read(data: bytes, filename: str = "recipe.xml") -> RecipeDocument:
    """The recipe in an uploaded BatchML document: refused (XmlRefused) if it is hostile or
    too large, BatchmlInvalid (with the schema's reasons) if it does not validate or does
    not hold exactly one Batchline master recipe."""
    if not isinstance(data, (bytes, bytearray)):
        raise BatchmlInvalid("a BatchML document is bytes", code="batchml_invalid")
    root = parse_xml(filename, bytes(data), max_bytes=MAX_DOCUMENT_BYTES)
    if root.tag != _Q + "BatchInformation":
        raise BatchmlInvalid(
            f"the document is {_local(root.tag) or 'not XML'}, not a B2MML BatchInformation",
            details={"root": str(root.tag)},
        )
    problems = validate(root)
    if problems:
        raise BatchmlInvalid(
            "the document does not validate against BatchML-BatchInformation.xsd: " + problems[0],
            details={"problems": problems[:20]},
        )
    masters = root.findall(_Q + "MasterRecipe")
    if len(masters) != 1:
        raise BatchmlInvalid(f"the document must hold one MasterRecipe, it holds {len(masters)}")
    master = masters[0]
    files: dict[str, bytes] = {}
    forms: dict[str, Any] = {}
    facts: dict[str, str] = {}
    for info in master.findall(_Q + "OtherInformation"):
        ident = _text(info.find(_Q + "ID")) or ""
        values = info.findall(f"{_Q}Value/{_Q}ValueString")
        text = "".join(v.text or "" for v in values)
        if ident.startswith((BPMN_PREFIX, FORM_PREFIX)):
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise BatchmlInvalid(f"{ident}: the value is not base64", details={"element": ident}) from None
            if ident.startswith(BPMN_PREFIX):
                files[ident[len(BPMN_PREFIX) :]] = _utf8(ident, raw)
            else:
                forms[ident[len(FORM_PREFIX) :]] = _form(ident, raw)
        elif ident.startswith("batchline."):
            facts[ident] = text
    if not files:
        raise BatchmlInvalid("the MasterRecipe holds no BPMN file (OtherInformation bpmn:<name>)")
    descriptions = [d.text or "" for d in master.findall(_Q + "Description")]
    return RecipeDocument(
        key=_text(master.find(_Q + "ID")) or "",
        version=_text(master.find(_Q + "Version")),
        name=descriptions[0] if descriptions else None,
        process_id=facts.get("batchline.process_id") or None,
        content_hash=facts.get("batchline.content_hash") or None,
        files=files,
        forms=forms,
    )
