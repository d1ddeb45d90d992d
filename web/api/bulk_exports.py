"""Bulk export over HTTP: ``GET /api/exports/{batches|steps|parameters|exceptions|audit}``
as CSV or JSON Lines, filtered, in keyset pages, streamed as it is read.

The response starts before the rows are read (``stream_with_context`` over a generator
that reads ``engine.exports.bulk.CHUNK`` rows at a time): a million-row export never sits
in the server's memory. The next page is announced before the body, in ``Link: <...>;
rel="next"`` and ``X-Next-Cursor``; no such header means this was the last page. Each
request is audited (``records.exported``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, request, stream_with_context
from flask_smorest import Blueprint

from engine.exports import bulk
from engine.exports.bulk_formats import MEDIA_TYPES, render

from ..auth import current_user, requires
from . import runtime

blp = Blueprint(
    "bulk_exports", __name__, url_prefix="/api/exports", description="Bulk export of records (CSV, JSON Lines)"
)

NEXT_HEADER = "X-Next-Cursor"


def _param(name: str, description: str, **schema) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


PARAMETERS = [
    {"name": "kind", "in": "path", "required": True, "description": "what to export",
     "schema": {"type": "string", "enum": list(bulk.KINDS)}},
    _param("format", "csv (header row; formula-like text cells prefixed with ') or jsonl", type="string",
           enum=list(bulk.FORMATS), default="jsonl"),
    _param("since", "from this time (ISO 8601, inclusive): created, recorded or audited at", type="string",
           format="date-time"),
    _param("until", "before this time (ISO 8601, exclusive)", type="string", format="date-time"),
    _param("recipe", "one recipe (its id); not for audit", type="string", minLength=1, maxLength=200),
    _param("batch", "one batch id (audit: entries about that object id)", type="string", minLength=1, maxLength=100),
    _param("state", "a batch state (exceptions: the exception's status); not for audit", type="string",
           minLength=1, maxLength=20),
    _param("after", "the cursor of the previous page (Link rel=next, X-Next-Cursor)", type="string",
           minLength=1, maxLength=60),
    _param("limit", f"rows per page (parameters: steps per page), 1 to {bulk.MAX_LIMIT}", type="integer",
           minimum=1, maximum=bulk.MAX_LIMIT, default=bulk.DEFAULT_LIMIT),
]  # fmt: skip

RESPONSES = {
    "200": {
        "description": "the rows of this page, streamed",
        "headers": {
            "Link": {"description": 'the next page: `<url>; rel="next"` (absent on the last page)',
                     "schema": {"type": "string"}},
            NEXT_HEADER: {"description": "the next page's cursor (absent on the last page)",
                          "schema": {"type": "string"}},
        },
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/jsonl": {"schema": {"type": "string"}},
        },
    },
    "400": {"description": "a parameter (or the kind) is wrong; `details.parameter` names it (`export_query_invalid`)"},
}  # fmt: skip


@blp.route("/<kind>", methods=["GET"])
@requires("records.export")
@blp.doc(parameters=PARAMETERS, responses=RESPONSES)
def export(kind: str):
    """Batches, steps, step parameters (one row per recorded value), exceptions or audit
    entries, oldest first, as CSV or JSON Lines. Pages are keyset pages: follow the
    `Link` header (or pass `X-Next-Cursor` as `after`) until there is none."""
    repeated = next((k for k in request.args if len(request.args.getlist(k)) > 1), None)
    if repeated is not None:
        raise bulk.ExportQueryInvalid(f"{repeated[:40]} is given more than once", details={"parameter": repeated[:40]})
    query = bulk.parse(kind, request.args.to_dict())
    rt = runtime()
    page = bulk.begin(rt, query, by=current_user())
    headers = {"Content-Disposition": f'attachment; filename="batchline-{kind}.{query.format}"'}
    if page.next_cursor is not None:
        link = request.base_url + "?" + urlencode({**request.args.to_dict(), "after": page.next_cursor})
        headers["Link"] = f'<{link}>; rel="next"'
        headers[NEXT_HEADER] = page.next_cursor
    body = render(query.format, bulk.HEADERS[kind], bulk.rows(rt, query, page.last))
    return Response(stream_with_context(body), mimetype=MEDIA_TYPES[query.format], headers=headers)
