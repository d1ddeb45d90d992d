"""Bulk export: batches, steps, parameters, exceptions and audit entries as rows, for a
data platform or an auditor, filtered and paged, read in chunks and never whole.

Why keyset pages: a page is "the rows after this cursor, in id order, up to ``limit``".
It costs the same on page 1 and page 1,000 (an index range, no ``OFFSET`` scan), and a
row added while someone pages through never shifts the pages (it lands after them). The
end of the page is found first with two index-only queries, so the next cursor is known
before the first row is sent (it goes in a ``Link`` header); then the rows are read with
``yield_per`` (a server-side cursor on PostgreSQL) and handed on one at a time: memory
stays flat however large the export.

``parameters`` are the values of the steps, one row per field of a step: their pages
and cursor count *steps* (a step's values are never split across pages).

A cursor is opaque to the caller (``base64url("kind:id")``): it is only valid for the
kind it came from. Rows committed late with a lower id (concurrent writers on
PostgreSQL) can be missed by a cursor already past them: export up to an ``until`` a
few seconds in the past for an exact incremental feed.

Each export request is audited (``records.exported``: who, what, which filters): a copy
of GMP records leaving the system is an event the trail keeps.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select

from .. import audit
from ..errors import BatchlineError
from ..models import AuditEvent, Batch, BatchException, RecipeVersion, Step

KINDS = ("batches", "steps", "parameters", "exceptions", "audit")
FORMATS = ("csv", "jsonl")
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000
CHUNK = 500
ARGUMENTS = ("format", "since", "until", "recipe", "batch", "state", "after", "limit")


class ExportQueryInvalid(BatchlineError):
    """A bulk export parameter is wrong (answered 400, naming the parameter)."""

    code = "export_query_invalid"
    status = 400


def _bad(message: str, parameter: str) -> ExportQueryInvalid:
    return ExportQueryInvalid(message, details={"parameter": parameter})


@dataclass(frozen=True)
class ExportQuery:
    kind: str
    format: str = "jsonl"
    since: datetime | None = None
    until: datetime | None = None
    recipe: str | None = None
    batch: str | None = None
    state: str | None = None
    after: int = 0
    limit: int = DEFAULT_LIMIT

    def filters(self) -> dict[str, Any]:
        """The filters as given, for the audit trail and the next page's link."""
        out = {k: v for k, v in asdict(self).items() if k not in ("kind", "after") and v is not None}
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in out.items()}


def _time(value: str, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"{name} is an ISO 8601 time, e.g. 2026-03-01T00:00:00Z (got {value[:40]!r})", name) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _text(value: str, name: str, longest: int) -> str:
    if not 1 <= len(value) <= longest or any(ord(c) < 32 for c in value):
        raise _bad(f"{name} is 1 to {longest} characters without control characters", name)
    return value


def encode_cursor(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        cursor_kind, _, number = raw.partition(":")
        last_id = int(number)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _bad("after is a cursor from a previous page's Link header or X-Next-Cursor", "after") from None
    if cursor_kind != kind or not 0 <= last_id < 2**63:
        raise _bad(f"this cursor belongs to an export of {cursor_kind or 'something else'}, not {kind}", "after")
    return last_id


def parse(kind: str, args: Mapping[str, str]) -> ExportQuery:
    """The query of ``GET /api/exports/{kind}``, every parameter checked; an unknown
    parameter is refused (a misspelt filter must not silently export everything)."""
    if kind not in KINDS:
        raise ExportQueryInvalid(f"exports are {', '.join(KINDS)}; not {kind[:40]!r}", details={"parameter": "kind"})
    unknown = sorted(set(args) - set(ARGUMENTS))
    if unknown:
        raise _bad(f"unknown parameter {unknown[0][:40]!r}; known: {', '.join(ARGUMENTS)}", unknown[0][:40])
    fields: dict[str, Any] = {"kind": kind}
    fmt = args.get("format", "jsonl")
    if fmt not in FORMATS:
        raise _bad("format is csv or jsonl", "format")
    fields["format"] = fmt
    for name in ("since", "until"):
        if args.get(name) is not None:
            fields[name] = _time(args[name], name)
    if fields.get("since") and fields.get("until") and fields["since"] >= fields["until"]:
        raise _bad("since must be before until", "since")
    for name, longest in (("recipe", 200), ("batch", 100), ("state", 20)):
        if args.get(name) is not None:
            fields[name] = _text(args[name], name, longest)
    if kind == "audit" and ("recipe" in fields or "state" in fields):
        raise _bad(
            "the audit export filters by since, until and batch only", "recipe" if "recipe" in fields else "state"
        )
    if args.get("after") is not None:
        fields["after"] = decode_cursor(kind, args["after"])
    if args.get("limit") is not None:
        text = args["limit"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise _bad(f"limit is a whole number from 1 to {MAX_LIMIT}", "limit")
        fields["limit"] = int(text)
    return ExportQuery(**fields)


# --- what each export reads -------------------------------------------------------------


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat().replace("+00:00", "Z")
    return value


def _base(q: ExportQuery) -> tuple[Select, Any]:
    """The filtered statement of one export (no columns chosen yet) and its key column."""
    if q.kind == "audit":
        key, when = AuditEvent.id, AuditEvent.at
        stmt = select(AuditEvent)
        if q.batch:
            stmt = stmt.where(AuditEvent.object_id == q.batch)
    else:
        model: Any
        model, when = {
            "batches": (Batch, Batch.created_at),
            "steps": (Step, Step.recorded_at),
            "parameters": (Step, Step.recorded_at),
            "exceptions": (BatchException, BatchException.created_at),
        }[q.kind]
        key = model.id
        stmt = select(model)
        if model is not Batch:
            stmt = stmt.join(Batch, Batch.id == model.batch_id)
        stmt = stmt.join(RecipeVersion, RecipeVersion.id == Batch.recipe_version_id)
        if q.recipe:
            stmt = stmt.where(RecipeVersion.recipe == q.recipe)
        if q.batch:
            stmt = stmt.where(Batch.batch_id == q.batch)
        if q.state:
            # an exception's own status (open, closed, ...); else the batch's state
            stmt = stmt.where(BatchException.status == q.state if q.kind == "exceptions" else Batch.state == q.state)
    if q.since:
        stmt = stmt.where(when >= q.since)
    if q.until:
        stmt = stmt.where(when < q.until)
    return stmt, key


def page_end(s, q: ExportQuery) -> tuple[int | None, bool]:
    """The id of the last row of this page (None: the page runs to the end) and whether
    another page follows."""
    stmt, key = _base(q)
    last = s.scalar(stmt.with_only_columns(key).where(key > q.after).order_by(key).offset(q.limit - 1).limit(1))
    if last is None:
        return None, False
    more = s.scalar(stmt.with_only_columns(key).where(key > last).order_by(key).limit(1)) is not None
    return last, more


def _columns(q: ExportQuery) -> list:
    """Plain columns, not ORM objects: nothing read is kept in a session's identity map."""
    name = Batch.batch_id.label("batch_name")
    if q.kind == "audit":
        return list(AuditEvent.__table__.c)
    if q.kind == "batches":
        return [*Batch.__table__.c, RecipeVersion.recipe, RecipeVersion.version]
    if q.kind == "exceptions":
        return [*BatchException.__table__.c, name]
    return [*Step.__table__.c, name, RecipeVersion.recipe]


HEADERS = {
    "batches": ["batch_id", "recipe", "recipe_version", "kind", "state", "created_at", "created_by", "completed_at",
                "reviewed_at", "step_count", "parameters"],
    "steps": ["batch_id", "recipe", "seq", "kind", "task_id", "bpmn_id", "task_name", "form_id", "user", "recorded_at",
              "values", "units", "values_hash"],
    "parameters": ["batch_id", "recipe", "step_seq", "bpmn_id", "task_name", "parameter", "value", "unit", "user",
                   "recorded_at"],
    "exceptions": ["id", "batch_id", "step_seq", "source", "category", "severity", "parameter", "message", "value",
                   "limits", "status", "raised_by", "created_at", "closed_at"],
    "audit": ["id", "at", "user", "action", "object_type", "object_id", "field", "old", "new", "reason", "hash"],
}  # fmt: skip


def _rows(kind: str, row: Any) -> Iterator[dict[str, Any]]:
    r = row._mapping
    if kind == "batches":
        yield {"recipe_version": r["version"], **{k: r[k] for k in HEADERS[kind] if k != "recipe_version"}}
    elif kind == "parameters":
        units = r["units"] or {}
        for name, value in (r["values"] or {}).items():
            yield {"batch_id": r["batch_name"], "recipe": r["recipe"], "step_seq": r["seq"], "bpmn_id": r["bpmn_id"],
                   "task_name": r["task_name"], "parameter": name, "value": value, "unit": units.get(name),
                   "user": r["user"], "recorded_at": r["recorded_at"]}  # fmt: skip
    elif kind in ("steps", "exceptions"):
        yield {k: r["batch_name"] if k == "batch_id" else r[k] for k in HEADERS[kind]}
    else:
        yield {k: r[k] for k in HEADERS[kind]}


def rows(rt, q: ExportQuery, last: int | None) -> Iterator[dict[str, Any]]:
    """The page's rows, read ``CHUNK`` at a time in one read transaction (deferred: on
    SQLite a long export must not hold the write lock while the plant records steps)."""
    stmt, key = _base(q)
    stmt = stmt.with_only_columns(*_columns(q)).where(key > q.after).order_by(key)
    if last is not None:
        stmt = stmt.where(key <= last)
    with rt.transaction(deferred=True) as s:
        for row in s.execute(stmt.execution_options(yield_per=CHUNK)):
            for out in _rows(q.kind, row):
                yield {k: _iso(v) for k, v in out.items()}


@dataclass(frozen=True)
class Page:
    query: ExportQuery
    last: int | None
    next_cursor: str | None


def begin(rt, q: ExportQuery, *, by: str) -> Page:
    """Find where the page ends and audit the export (before any row is sent)."""
    with rt.transaction() as s:
        last, more = page_end(s, q)
        audit.record(
            s,
            user=by,
            action="records.exported",
            object_type="export",
            object_id=q.kind,
            new={**q.filters(), "after": q.after, "last": last},
        )
    return Page(q, last, encode_cursor(q.kind, last) if more and last is not None else None)
