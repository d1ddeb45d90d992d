"""Bulk export rows as text: CSV (a header row, then one line per row) or JSON Lines (one
JSON object per line), produced a chunk at a time from a row iterator.

Why the CSV cells are defused: a spreadsheet opening the file runs a cell that starts
with ``=``, ``+``, ``-`` or ``@`` (and tab or carriage return) as a formula (CSV
injection: an operator's comment ``=HYPERLINK(...)`` would run on QA's machine). Such a
text cell is written with a leading ``'`` (OWASP's advice), which spreadsheets show and
do not evaluate. Numbers are written as numbers (``-1.5`` stays ``-1.5``): they are
values, not formulas. JSON Lines carries the values as they are.

Nested values (a step's values, limits, a batch's parameters) are JSON text in a CSV cell.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
#: rows per chunk handed to the web server (a write per row would be slow, a whole page big)
ROWS_PER_CHUNK = 200


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return "'" + text if text.startswith(FORMULA_START) else text


def as_csv(header: list[str], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(row.get(name)) for name in header])
        count += 1
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def as_jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps(row, separators=(",", ":"), ensure_ascii=False, default=str))
        if len(lines) == ROWS_PER_CHUNK:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def render(fmt: str, header: list[str], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    return as_csv(header, rows) if fmt == "csv" else as_jsonl(rows)
