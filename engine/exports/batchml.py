"""The batch record as BatchML: a ``BatchProductionRecord`` (B2MML/BatchML V0700,
ISA-88 Part 4), validated against the vendored schema before anyone gets it.

The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA
International. (schemas/b2mml-v0700: the MESA files and LICENSE.)

Why BatchML's record entries and not ControlRecipes: a Batchline step is an entry of
the record (who, when, what values), not a recipe element; ``ControlRecipeType`` would
have to restate the recipe's procedure to hold them. The mapping, entry by entry:

- header: ``ID`` = ``BPR-<batch id>``, ``EntryID`` = ``<batch id>``, ``ObjectType``
  "Batch Production Record", ``TimeStamp``/``PublishedDate`` = generated, ``CreationDate``
  = batch started, ``Description`` = recipe name, key, version and content hash and the
  record's content hash, ``BatchID``, ``MaterialDefinitionID`` = recipe key,
  ``RecordStatus`` = batch state, ``Version`` = recipe version.
- each correction -> ``ChangeHistory/Change`` (``RecordReference`` = the step's entry,
  ``PrechangeData`` = the original value with ``Key`` = field, ``Reason``; the new value
  and corrector in ``Description``).
- each exception disposition and the release comment -> ``Comments/Comment``
  (``RecordReference`` = the exception's or the record's entry, ``PersonID``).
- the batch start (parameters as ``Value``s), each step, each exception and each audit
  entry -> ``Events/Event``:
  step: ``EventType`` "Operator" (user task) or "Procedural Execution" (others),
  ``EventSubType`` "Prompt Response" / "Process Data", one ``Value`` per field
  (``ValueString``, ``UnitOfMeasure``, ``Key`` = field key; the value as it stands after
  corrections, the original in ``PreviousValue``), ``PersonID`` = who,
  ``ProceduralElementReference`` = BPMN id, limits as ``UserAttribute``
  (``AttributeID`` "limit.action.mass_g", text); exception: ``EventType`` "Alarm",
  ``Category`` = category/source, ``AlarmData`` (``AlarmEvent`` = status, ``AlarmType`` =
  severity), ``AssociatedEventID`` = its step; audit entry: ``EventType`` "Other"
  (OtherValue "Audit trail"), ``EventSubType`` "Other" (OtherValue = action), old/new as
  ``PreviousValue``/``Value``, reason as ``MessageText``.
- each signature and the release signature -> ``PersonnelIdentification/
  PersonnelIdentificationManifest`` (``RecordReference`` = the signed step, ``Name`` =
  printed name and user id, ``ChangeIndication`` = "signed" or "superseded by a
  correction", ``Reason`` = the meaning; role and content hash in ``Description``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from lxml import etree

from ..errors import BatchlineError

NS = "http://www.mesa.org/xml/B2MML"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "b2mml-v0700"
SCHEMA_FILE = SCHEMA_DIR / "BatchML-BatchProductionRecord.xsd"
ATTRIBUTION = "The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA International."

_schema: etree.XMLSchema | None = None
_lock = threading.Lock()


class RecordInvalid(BatchlineError):
    """The BatchML built from a record does not validate: never served."""

    code = "record_xml_invalid"
    status = 500


def schema() -> etree.XMLSchema:
    """The compiled BatchProductionRecord schema (compiled once per process)."""
    global _schema
    with _lock:
        if _schema is None:
            _schema = etree.XMLSchema(etree.parse(str(SCHEMA_FILE)))
        return _schema


def validate(document: bytes | etree._Element) -> list[str]:
    """The schema's complaints about ``document`` (empty when valid)."""
    root = etree.fromstring(document) if isinstance(document, bytes) else document
    checker = schema()
    if checker.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in checker.error_log]


def _el(parent: etree._Element, name: str, text: Any = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{NS}}}{name}", **attrs)
    if text is not None:
        node.text = _clean(text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, sort_keys=True))
    return node


def _clean(text: str) -> str:
    """XML 1.0 cannot hold most control characters: they are shown as \\uXXXX."""
    return "".join(
        c if c in "\t\n\r" or (ord(c) >= 32 and not 0xD800 <= ord(c) <= 0xDFFF) else f"\\u{ord(c):04x}" for c in text
    )


def _entry(parent: etree._Element, name: str, entry_id: str, kind: str, at: Any, *descriptions: Any):
    node = _el(parent, name)
    _el(node, "EntryID", entry_id)
    _el(node, "ObjectType", kind)
    if at:
        _el(node, "TimeStamp", at)
    for text in descriptions:
        if text not in (None, ""):
            _el(node, "Description", text)
    return node


def _value(parent: etree._Element, name: str, value: Any, unit: str | None = None, key: str | None = None) -> None:
    node = _el(parent, name)
    if value is None:
        _el(node, "ValueString").set(f"{{{XSI}}}nil", "true")
    else:
        _el(node, "ValueString", value)
    if unit:
        _el(node, "UnitOfMeasure", unit)
    if key:
        _el(node, "Key", key)


def _step_id(seq: Any) -> str:
    return f"step-{seq}"


def _events(root: etree._Element, record: dict[str, Any]) -> None:
    b = record["batch"]
    events = _el(root, "Events")
    start = _entry(events, "Event", "batch-start", "Event", b.get("created_at"), "batch started")
    _el(start, "EventType", "Control Recipe")
    _el(start, "EventSubType", "State Change")
    for key, value in sorted((b.get("parameters") or {}).items()):
        _value(start, "Value", value, key=key)
    if b.get("created_by"):
        _el(start, "PersonID", b["created_by"])
    for st in record["steps"]:
        user_task = st.get("kind") == "user_task"
        ev = _entry(events, "Event", _step_id(st["seq"]), "Event", st.get("recorded_at"), st.get("name"))
        _el(ev, "EventType", "Operator" if user_task else "Procedural Execution")
        _el(ev, "EventSubType", "Prompt Response" if user_task else "Process Data")
        for f in st["fields"]:
            _value(ev, "Value", f["current"], f.get("unit"), f["key"])
        for f in st["fields"]:
            if f.get("corrected"):
                _value(ev, "PreviousValue", f["recorded"], f.get("unit"), f["key"])
        if st.get("user"):
            _el(ev, "PersonID", st["user"])
        if st.get("bpmn_id"):
            _el(ev, "ProceduralElementReference", st["bpmn_id"])
        _el(ev, "Category", st.get("kind") or "step")
        for f in st["fields"]:
            for family, text in sorted((f.get("limits") or {}).items()):
                attr = _el(ev, "UserAttribute")
                _el(attr, "AttributeID", f"limit.{family}.{f['key']}")
                _value(attr, "Value", text, key=f["key"])
    for exc in record["exceptions"]:
        ev = _entry(events, "Event", f"exception-{exc.get('id')}", "Event", exc.get("created_at"))
        _el(ev, "EventType", "Alarm")
        _el(ev, "EventSubType", "Process Data")
        if "value" in exc:
            _value(ev, "Value", exc.get("value"), key=exc.get("parameter"))
        _el(ev, "MessageText", exc.get("message") or "")
        if exc.get("raised_by"):
            _el(ev, "PersonID", exc["raised_by"])
        _el(ev, "Category", exc.get("category") or exc.get("source") or "exception")
        alarm = _el(ev, "AlarmData")
        _el(alarm, "AlarmEvent", exc.get("status") or "open")
        _el(alarm, "AlarmType", exc.get("severity") or "unknown")
        if exc.get("limits") not in (None, {}, []):
            _value(alarm, "AlarmLimit", exc["limits"])
        if exc.get("step_seq") is not None:
            _el(ev, "AssociatedEventID", _step_id(exc["step_seq"]))
        if exc.get("deviation"):
            attr = _el(ev, "UserAttribute")
            _el(attr, "AttributeID", "deviation")
            _value(attr, "Value", exc["deviation"])
    for a in record["audit"]["entries"]:
        ev = _entry(events, "Event", f"audit-{a['id']}", "Event", a["at"], a.get("field"))
        _el(ev, "EventType", "Other", OtherValue="Audit trail")
        _el(ev, "EventSubType", "Other", OtherValue=a["action"])
        if a.get("new") is not None:
            _value(ev, "Value", a["new"])
        if a.get("old") is not None:
            _value(ev, "PreviousValue", a["old"])
        if a.get("reason"):
            _el(ev, "MessageText", a["reason"])
        _el(ev, "PersonID", a["user"])


def _changes(root: etree._Element, record: dict[str, Any]) -> None:
    corrections = [(st, c) for st in record["steps"] for c in st["corrections"]]
    if not corrections:
        return
    history = _el(root, "ChangeHistory")
    for st, c in corrections:
        new = f"{c.get('field')} corrected to {json.dumps(c.get('new'), ensure_ascii=False)} by {c.get('username')}"
        change = _entry(history, "Change", f"correction-{c.get('id')}", "Change", c.get("corrected_at"), new)
        _el(change, "RecordReference", _step_id(st["seq"]))
        _value(change, "PrechangeData", c.get("old"), key=c.get("field"))
        _el(change, "Reason", c.get("reason") or "")


def _comments(root: etree._Element, record: dict[str, Any]) -> None:
    items = []
    for exc in record["exceptions"]:
        for n, d in enumerate(exc.get("dispositions") or [], 1):
            items.append((f"disposition-{exc.get('id')}-{n}", f"exception-{exc.get('id')}", d))
    release = record["batch"].get("release")
    if release:
        items.append(("release", f"BPR-{record['batch']['batch_id']}", release))
    if not items:
        return
    comments = _el(root, "Comments")
    for entry_id, ref, d in items:
        what = d.get("decision") or ""
        node = _entry(comments, "Comment", entry_id, "Comment", d.get("signed_at"), what)
        _el(node, "RecordReference", ref)
        _el(node, "CommentText", d.get("justification") or d.get("comment") or what or "-")
        if d.get("printed_name") or d.get("username"):
            _el(node, "PersonID", d.get("printed_name") or d.get("username"))


def _signatures(root: etree._Element, record: dict[str, Any]) -> None:
    signed = [(_step_id(st["seq"]), sig) for st in record["steps"] for sig in st["signatures"]]
    for exc in record["exceptions"]:
        signed += [(f"exception-{exc.get('id')}", d) for d in exc.get("dispositions") or []]
    release = record["batch"].get("release")
    if release:
        signed.append((f"BPR-{record['batch']['batch_id']}", {**release, "role": "releaser"}))
    if not signed:
        return
    manifest = _el(root, "PersonnelIdentification")
    for n, (ref, sig) in enumerate(signed, 1):
        node = _entry(
            manifest,
            "PersonnelIdentificationManifest",
            f"signature-{n}",
            "Personnel Identification Manifest",
            sig.get("signed_at"),
            f"{sig.get('role') or sig.get('decision') or 'signer'}; signed content SHA-256 {sig.get('content_hash')}",
        )
        _el(node, "RecordReference", ref)
        _el(node, "Name", sig.get("printed_name") or sig.get("username") or "")
        if sig.get("username"):
            _el(node, "Name", sig["username"])
        _el(node, "ChangeIndication", "superseded by a correction" if sig.get("superseded") else "signed")
        _el(node, "Reason", sig.get("meaning") or "")


def build(record: dict[str, Any]) -> bytes:
    """The validated BatchML document of ``record`` (RecordInvalid if the schema refuses it)."""
    b = record["batch"]
    recipe = b.get("recipe") or {}
    root = etree.Element(f"{{{NS}}}BatchProductionRecord", nsmap={None: NS})
    root.append(etree.Comment(" " + ATTRIBUTION + " "))
    _el(root, "ID", f"BPR-{b['batch_id']}")
    _el(root, "EntryID", b["batch_id"])
    _el(root, "ObjectType", "Batch Production Record")
    _el(root, "TimeStamp", record["generated_at"])
    _el(root, "Description", f"{recipe.get('name') or recipe.get('key')}")
    _el(
        root,
        "Description",
        f"recipe {recipe.get('key')} v{recipe.get('version')} content SHA-256 {recipe.get('content_hash')}",
    )
    _el(root, "Description", f"record content SHA-256 {record['content_hash']}")
    if record.get("in_progress"):
        _el(root, "Description", "IN PROGRESS - not a released record")
    _el(root, "PublishedDate", record["generated_at"])
    if b.get("created_at"):
        _el(root, "CreationDate", b["created_at"])
    _el(root, "BatchID", b["batch_id"])
    if recipe.get("key"):
        _el(root, "MaterialDefinitionID", recipe["key"])
    _el(root, "RecordStatus", b["state"])
    if recipe.get("version") is not None:
        _el(root, "Version", str(recipe["version"]))
    _changes(root, record)
    _comments(root, record)
    _events(root, record)
    _signatures(root, record)
    problems = validate(root)
    if problems:
        raise RecordInvalid(
            "the BatchML record does not validate against BatchML-BatchProductionRecord.xsd",
            details={"problems": problems[:20]},
        )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
