"""The complete record of one batch as ONE dict: what the PDF prints, the BatchML
carries and ``record.json`` is (21 CFR 11.10(b): a complete copy, readable and machine
readable, with the audit trail kept and exported with it — Annex 11 §9).

Why one dict: three formats built from three reads could disagree; built from one dict
they say the same, and ``content_hash`` (SHA-256 of its canonical JSON, without the hash
itself and the generation time) lets a reader check that a PDF and an XML are copies of
the same record. Exporting is audited under object type ``batch_record``, not ``batch``,
so an export does not change the record it exports (the same record keeps its hash).

The record is read from the engine's own read paths (``engine.batches``) and is
consistent: if a step, exception or audit entry arrived while it was being read, it is
read again. The exception shape follows the issue-9 contract; keys the core does not
provide (yet) are simply absent or empty, never an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import batches
from ..errors import InvalidInput, NotFound
from ..models import AuditEvent, Batch, RecipeVersion
from ..runtime import Runtime
from ..workflow_store import canonical, sha256
from . import limits

#: the version of the record's shape (bumped when keys change meaning)
RECORD_FORMAT = 1
#: the audit object type of export entries (kept apart from the batch's own entries)
EXPORT_OBJECT = "batch_record"
#: how often a record changing under the reader is read again
_ATTEMPTS = 5
EXCEPTION_KEYS = (
    "id",
    "category",
    "title",
    "source",
    "severity",
    "status",
    "step_seq",
    "parameter",
    "message",
    "value",
    "limits",
    "details",
    "raised_by",
    "created_at",
    "closed_at",
    "rule_set_version",
    "signatures_required",
    "blocks_release",
    "opens_deviation",
)
DISPOSITION_KEYS = ("decision", "justification", "username", "printed_name", "meaning", "signed_at", "content_hash")


def export_batch_id(rt: Runtime, value: Any) -> str:
    """The id of a batch to export: a batch id within ``check_batch_id``; an id stored
    before that rule is exported only if that exact batch exists (its record must stay
    exportable). Anything else is refused with 422 ``batch_id_invalid``."""
    from ..batches.inputs import MAX_ID_LEN, check_batch_id

    try:
        return check_batch_id(value)
    except InvalidInput:
        storable = isinstance(value, str) and 0 < len(value) <= MAX_ID_LEN
        if storable and not any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF or ord(c) < 32 for c in value):
            with rt.transaction() as s:
                if s.scalar(select(Batch.id).where(Batch.batch_id == value)) is not None:
                    return value
        raise


def _stamp(s: Session, batch_id: str) -> tuple[Any, ...]:
    """What changes when the record changes: steps, audit entries of the batch."""
    batch = s.scalar(select(Batch).where(Batch.batch_id == batch_id))
    if batch is None:
        raise NotFound(f"batch {batch_id!r} not found", code="batch_not_found")
    last = s.scalar(
        select(func.max(AuditEvent.id)).where(AuditEvent.object_type == "batch", AuditEvent.object_id == batch_id)
    )
    return (batch.step_count, batch.state, batch.revision, last)


def _audit(rt: Runtime, batch_id: str) -> dict[str, Any]:
    """The audit entries of the batch, with a cheap check of each one's seal (its HMAC
    recomputed under the audit key; the whole chain is ``batchline audit verify``)."""
    from ..audit import expected_hash, session_keys

    with rt.transaction() as s:
        rows = list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.object_type == "batch", AuditEvent.object_id == batch_id)
                .order_by(AuditEvent.id)
            )
        )
        try:
            keys = session_keys(s)
            broken = [ev.id for ev in rows if expected_hash(keys, ev) != ev.hash]
            verification: dict[str, Any] = {
                "scope": "entries of this batch (seal of each entry; the full chain: batchline audit verify)",
                "checked": len(rows),
                "ok": not broken,
                "problems": [f"entry {i}: content does not match its hash" for i in broken],
            }
        except Exception as exc:  # noqa: BLE001 - no key here: say so, do not fail the export
            verification = {"scope": "not checked", "checked": 0, "ok": None, "problems": [str(exc)[:300]]}
        entries = [
            {
                "id": ev.id,
                "at": ev.at.astimezone(UTC).isoformat(),
                "user": ev.user,
                "action": ev.action,
                "field": ev.field,
                "old": ev.old,
                "new": ev.new,
                "reason": ev.reason,
                "hash": ev.hash,
            }
            for ev in rows
        ]
    return {
        "count": len(entries),
        "first_at": entries[0]["at"] if entries else None,
        "last_at": entries[-1]["at"] if entries else None,
        "verification": verification,
        "entries": entries,
    }


def _exception(exc: dict[str, Any]) -> dict[str, Any]:
    out = {k: exc[k] for k in EXCEPTION_KEYS if k in exc}
    out["dispositions"] = [
        {k: d.get(k) for k in DISPOSITION_KEYS} for d in exc.get("dispositions") or [] if isinstance(d, dict)
    ]
    deviation = exc.get("deviation")
    out["deviation"] = dict(deviation) if isinstance(deviation, dict) else None
    return out


def _recipe(rt: Runtime, version_id: int) -> dict[str, Any]:
    with rt.transaction() as s:
        rv = s.get(RecipeVersion, version_id)
        if rv is None:
            return {"id": version_id}
        return {
            "id": rv.id,
            "key": rv.recipe,
            "version": rv.version,
            "name": rv.name,
            "content_hash": rv.content_hash,
            "forms": dict(rv.forms or {}),
        }


def _step(step: dict[str, Any], fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    values = step.get("values") or {}
    current = step.get("current_values") or values
    units = step.get("units") or {}
    keys = [k for k in fields if k in values or k in current]
    keys += [k for k in list(values) + list(current) if k not in fields]
    rows = []
    for key in dict.fromkeys(keys):
        field = fields.get(key) or {}
        rows.append(
            {
                "key": key,
                "label": field.get("label") or key,
                "recorded": values.get(key),
                "current": current.get(key),
                "unit": units.get(key) or field.get("unit"),
                "limits": field.get("limits") or {},
                "limit_values": field.get("limit_values") or {},
                "corrected": any(c.get("field") == key for c in step.get("corrections") or []),
            }
        )
    return {
        "seq": step["seq"],
        "kind": step.get("kind"),
        "bpmn_id": step.get("bpmn_id"),
        "name": step.get("task_name"),
        "form": step.get("form"),
        "role": step.get("role"),
        "user": step.get("user"),
        "recorded_at": step.get("recorded_at"),
        "values_hash": step.get("values_hash"),
        "form_hash": step.get("form_hash"),
        "fields": rows,
        "signatures": list(step.get("signatures") or []),
        "corrections": list(step.get("corrections") or []),
    }


def _release(batch: dict[str, Any]) -> dict[str, Any] | None:
    release = batch.get("release")
    if isinstance(release, dict):
        return dict(release)
    return None


def _read(rt: Runtime, batch_id: str) -> dict[str, Any]:
    batch = batches.get_batch(rt, batch_id)
    steps = batches.steps(rt, batch_id)
    exceptions = batches.exceptions(rt, batch_id)
    recipe = _recipe(rt, batch["recipe_version_id"])
    forms = limits.fields_by_form(recipe.pop("forms", {}))
    audit = _audit(rt, batch_id)
    completed_by = next(
        (e["user"] for e in reversed(audit["entries"]) if e["action"] in ("batch.complete", "batch.completed")), None
    )
    if completed_by is None and batch.get("completed_at") and steps:
        completed_by = steps[-1].get("user")
    return {
        "format": RECORD_FORMAT,
        "batch": {
            "batch_id": batch["batch_id"],
            "state": batch["state"],
            "parameters": batch.get("parameters") or {},
            "recipe": {**recipe, "batch_recipe_hash": batch.get("recipe_hash")},
            "created_at": batch.get("created_at"),
            "created_by": batch.get("created_by"),
            "completed_at": batch.get("completed_at"),
            "completed_by": completed_by,
            "reviewed_at": batch.get("reviewed_at"),
            "release": _release(batch),
            "incidents": batch.get("incidents") or [],
        },
        "steps": [_step(st, forms.get(st.get("form") or "", {})) for st in steps],
        "exceptions": [_exception(e) for e in exceptions],
        "audit": audit,
    }


def content_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record's canonical JSON without ``content_hash`` and ``generated_at``."""
    body = {k: v for k, v in record.items() if k not in ("content_hash", "generated_at")}
    return sha256(canonical(body))


def build(rt: Runtime, batch_id: str) -> dict[str, Any]:
    """The complete record of ``batch_id`` (NotFound for an unknown batch)."""
    for _ in range(_ATTEMPTS):
        with rt.transaction() as s:
            before = _stamp(s, batch_id)
        record = _read(rt, batch_id)
        with rt.transaction() as s:
            if _stamp(s, batch_id) == before:
                break
    record["in_progress"] = record["batch"]["state"] not in ("complete", "aborted", "released", "rejected")
    record["content_hash"] = content_hash(record)
    record["generated_at"] = datetime.now(UTC).isoformat()
    return record


def audit_export(rt: Runtime, record: dict[str, Any], fmt: str, user: str) -> None:
    """Audit one export of the record: who, which format, which content."""
    from .. import audit

    with rt.transaction() as s:
        audit.record(
            s,
            user=user,
            action="record.exported",
            object_type=EXPORT_OBJECT,
            object_id=record["batch"]["batch_id"],
            field="format",
            new={"format": fmt, "content_hash": record["content_hash"], "state": record["batch"]["state"]},
        )
