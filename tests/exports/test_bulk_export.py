"""Bulk export (``GET /api/exports/...``) on both databases: filters, keyset pages that
add up to the whole, CSV that a spreadsheet cannot run, bad parameters refused with 400
naming the parameter, QA and administrators only, streamed with flat memory."""

from __future__ import annotations

import csv
import io
import json
import threading
import tracemalloc
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from engine import audit, batches
from engine.exports import bulk
from engine.exports.bulk_formats import csv_cell
from engine.models import AuditEvent
from tests.engine.engine_helpers import complete, load

QA = "quentin"


@pytest.fixture
def plant(runtime):
    """Three batches of one recipe: EX-1 complete (3 steps), EX-2 running (1 step), EX-3
    running (no step); an exception on EX-2 whose message looks like a formula."""
    load(runtime, "loop.bpmn")
    for batch_id in ("EX-1", "EX-2", "EX-3"):
        batches.start_batch(runtime, "sampling_loop", batch_id, user="sup.x", parameters={"done": False})
    complete(runtime, "EX-1", "take_sample", {"reading": 1.5, "note": "ok", "done": False})
    complete(runtime, "EX-1", "take_sample", {"reading": -2, "note": '=HYPERLINK("http://x")', "done": False})
    complete(runtime, "EX-1", "take_sample", {"reading": 3, "note": "+1", "done": True})
    complete(runtime, "EX-2", "take_sample", {"reading": 7, "note": "@SUM(A1)", "done": False})
    batches.raise_exception(runtime, "EX-2", source="limit", severity="action", message="=cmd|' /C calc'!A0")
    return runtime


def get(client, path, who=QA, **kw):
    return client.get(path, headers=client.auth[who], **kw)


def jsonl(r) -> list[dict]:
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert r.mimetype == "application/jsonl"
    return [json.loads(line) for line in r.get_data(as_text=True).splitlines()]


def test_every_kind_exports_and_filters(client, plant):
    got = jsonl(get(client, "/api/exports/batches"))
    assert [b["batch_id"] for b in got] == ["EX-1", "EX-2", "EX-3"]
    assert got[0]["state"] == "complete" and got[0]["recipe"] == "sampling_loop" and got[0]["created_at"].endswith("Z")
    assert [b["batch_id"] for b in jsonl(get(client, "/api/exports/batches?state=running"))] == ["EX-2", "EX-3"]
    assert jsonl(get(client, "/api/exports/batches?recipe=nothing")) == []
    steps = jsonl(get(client, "/api/exports/steps?batch=EX-1"))
    user_steps = [s for s in steps if s["kind"] == "user_task"] or steps
    assert all(s["batch_id"] == "EX-1" for s in steps) and len(user_steps) >= 3
    params = jsonl(get(client, "/api/exports/parameters?batch=EX-2"))
    assert {(p["parameter"], json.dumps(p["value"])) for p in params} >= {("reading", "7"), ("note", '"@SUM(A1)"')}
    exceptions = jsonl(get(client, "/api/exports/exceptions?state=open"))
    assert [e["batch_id"] for e in exceptions] == ["EX-2"] and exceptions[0]["message"].startswith("=cmd")
    assert jsonl(get(client, "/api/exports/exceptions?batch=EX-1")) == []
    trail = jsonl(get(client, "/api/exports/audit?batch=EX-1"))
    assert trail and all(a["object_id"] == "EX-1" for a in trail)
    later = jsonl(get(client, f"/api/exports/batches?since={got[1]['created_at']}"))
    assert [b["batch_id"] for b in later] == ["EX-2", "EX-3"]
    before = jsonl(get(client, f"/api/exports/batches?until={got[1]['created_at']}"))
    assert [b["batch_id"] for b in before] == ["EX-1"]


def test_csv_has_a_header_and_defuses_formulas(client, plant):
    r = get(client, "/api/exports/parameters?format=csv&batch=EX-1")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == bulk.HEADERS["parameters"]
    cells = [c for row in rows[1:] for c in row]
    assert '\'=HYPERLINK("http://x")' in cells and "'+1" in cells
    assert "-2" in cells and "1.5" in cells  # numbers stay numbers
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    exc = list(csv.DictReader(io.StringIO(get(client, "/api/exports/exceptions?format=csv").get_data(as_text=True))))
    assert exc[0]["message"] == "'=cmd|' /C calc'!A0"
    assert csv_cell("-x") == "'-x" and csv_cell("\tx") == "'\tx" and csv_cell(-3) == -3 and csv_cell(None) == ""
    assert csv_cell({"a": "=b"}) == '{"a":"=b"}' and csv_cell(True) == "true"


@pytest.mark.parametrize("kind", ["steps", "parameters", "audit"])
def test_pages_follow_the_cursor_and_add_up_to_the_whole(client, plant, kind):
    whole = jsonl(get(client, f"/api/exports/{kind}"))
    pages, url = [], f"/api/exports/{kind}?limit=2"
    while url:
        r = get(client, url)
        pages.append(jsonl(r))
        link = r.headers.get("Link")
        if link is None:
            assert "X-Next-Cursor" not in r.headers
            break
        assert link.endswith('>; rel="next"') and r.headers["X-Next-Cursor"] in link
        target = urlsplit(link[1 : link.index(">")])
        url = target.path + "?" + target.query
    flat = [row for page in pages for row in page]
    if kind == "audit":  # each export request adds an entry of its own, after the first page's end
        whole = [a for a in whole if a["action"] != "records.exported"]
        flat = [a for a in flat if a["action"] != "records.exported" or a["id"] <= whole[-1]["id"]]
        flat = [a for a in flat if a["action"] != "records.exported"]
    assert flat == whole and len(pages) >= 2


BAD = [
    ("format=xml", "format"),
    ("since=yesterday", "since"),
    ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
    ("limit=0", "limit"),
    ("limit=-5", "limit"),
    ("limit=abc", "limit"),
    ("limit=100001", "limit"),
    ("after=%%%", "after"),
    ("after=bm90LWEtY3Vyc29y", "after"),
    ("recipie=x", "recipie"),
    ("limit=1&limit=2", "limit"),
    ("batch=" + "x" * 101, "batch"),
    ("state=%01", "state"),
]


@pytest.mark.parametrize(("query", "parameter"), BAD, ids=[p for _, p in BAD])
def test_bad_parameters_are_400_naming_the_parameter(client, runtime, query, parameter):
    r = get(client, "/api/exports/steps?" + query)
    assert r.status_code == 400, r.get_data(as_text=True)
    body = r.get_json()
    assert body["code"] == "export_query_invalid" and body["details"]["parameter"] == parameter and body["message"]


def test_a_cursor_of_another_export_and_audit_filters_are_refused(client, plant):
    cursor = get(client, "/api/exports/steps?limit=1").headers["X-Next-Cursor"]
    r = get(client, f"/api/exports/batches?after={cursor}")
    assert r.status_code == 400 and "steps" in r.get_json()["message"]
    r = get(client, "/api/exports/audit?recipe=sampling_loop")
    assert r.status_code == 400 and r.get_json()["details"]["parameter"] == "recipe"
    r = get(client, "/api/exports/recipes")
    assert r.status_code == 400 and r.get_json()["details"]["parameter"] == "kind"


def test_qa_and_administrators_only_and_each_export_audited(client, anon, runtime):
    assert anon.get("/api/exports/batches").status_code == 401
    assert get(client, "/api/exports/batches", who="op").status_code == 403
    assert get(client, "/api/exports/audit", who="sv").status_code == 403
    assert get(client, "/api/exports/audit", who="uu").status_code == 200  # an administrator
    assert get(client, "/api/exports/batches?format=csv&state=held").status_code == 200
    with runtime.transaction() as s:
        entries = s.scalars(select(AuditEvent).where(AuditEvent.action == "records.exported")).all()
    assert [(e.user, e.object_id) for e in entries] == [("uu", "audit"), (QA, "batches")]
    assert '"state": "held"' in entries[1].new.replace('":"', '": "') or "held" in entries[1].new


def test_concurrent_exports_while_steps_are_recorded(client, plant, app):
    """Exports read in deferred transactions: the plant keeps recording steps meanwhile."""
    answers: list[int] = []

    def export():
        with app.test_client() as c:
            answers.append(c.get("/api/exports/steps?format=csv", headers=client.auth[QA]).status_code)

    threads = [threading.Thread(target=export) for _ in range(3)]
    for t in threads:
        t.start()
    complete(plant, "EX-3", "take_sample", {"reading": 9, "done": True})
    for t in threads:
        t.join()
    assert answers == [200, 200, 200]


def _add_audit(runtime, start: int, n: int) -> None:
    with runtime.transaction() as s:
        for i in range(start, start + n):
            audit.record(s, user="bulk.test", action="test.entry", object_type="test", object_id=f"T-{i}",
                         new={"i": i, "text": "x" * 200})  # fmt: skip


def _stream(client) -> tuple[int, int, int]:
    """(bytes, lines, peak traced memory) of the whole audit export, read chunk by chunk."""
    r = get(client, "/api/exports/audit?format=jsonl&limit=100000", buffered=False)
    assert r.status_code == 200 and r.is_streamed
    tracemalloc.start()
    size = lines = 0
    try:
        for chunk in r.response:
            size += len(chunk)
            lines += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        r.close()
    return size, lines, peak


def test_a_large_export_is_streamed_not_built(client, runtime):
    """Memory stays flat: three times the rows, about the same peak (one chunk of rows)."""
    _add_audit(runtime, 0, 3000)
    small, lines, small_peak = _stream(client)
    assert lines >= 3000
    _add_audit(runtime, 3000, 6000)
    large, lines, large_peak = _stream(client)
    assert lines >= 9000 and large > 2.5 * small
    assert large_peak < 1.5 * small_peak and large_peak < large / 3, (small, small_peak, large, large_peak)
