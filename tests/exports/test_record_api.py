"""The batch record leaving the system over the API (SQLite and PostgreSQL): the PDF read
back by text extraction, the BatchML validated against the vendored MESA schema (and a
mutilated copy refused), the JSON equal to the engine's record, exports audited,
permissions and unknown or hostile batch ids."""

from __future__ import annotations

import io
import json
import re

import pytest
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import select

from engine import exports
from engine.exports import batchml
from engine.models import AuditEvent
from tests.exports.conftest import BATCH
from tests.support import PASSWORD

pytestmark = pytest.mark.timeout(120)


def pages_of(body: bytes) -> list[str]:
    return [p.extract_text() for p in PdfReader(io.BytesIO(body)).pages]


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_pdf_carries_the_whole_record_on_numbered_hashed_pages(done_batch, runtime):
    r = done_batch.get(f"/api/batches/{BATCH}/record.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    digest = r.headers["X-Record-Content-Hash"]
    pages = pages_of(r.data)
    text = squash(" ".join(pages))
    assert BATCH in text and "IN PROGRESS" not in text
    record = exports.build(runtime, BATCH)
    assert record["content_hash"] == digest  # exporting did not change the record
    for step in record["steps"]:
        for sig in step["signatures"]:
            assert sig["printed_name"] in text and sig["meaning"] in text
            # the time as the record prints it: UTC, to the second
            assert sig["signed_at"][:19].replace("T", " ") + " UTC" in text
    assert {s["printed_name"] for st in record["steps"] for s in st["signatures"]} == {"Alice", "Sv"}
    assert "Witnessed" in text or "witness" in text
    # the correction: original, new value and reason
    assert "original scale drift" in text and "balance B-12 drifted" in text and "typo in comment" in text
    # the exception raised by the limit breach, and the limits from the form definition
    exc = record["exceptions"][0]
    assert exc["message"][:30] in text and "alert: 90.0 to 110.0 g" in text
    for n, page in enumerate(pages, 1):
        flat = squash(page)
        assert f"Page {n} of {len(pages)}" in flat
        assert digest in flat.replace(" ", "")
    assert "audit entries for this batch" in text


def test_dispositions_print_when_the_core_provides_them(done_batch, runtime):
    """Dispositions (engine.quality) land with the core; until then the exception prints
    without them, and a record that has them prints them (the template reads the contract shape)."""
    from web.exports import pdf

    record = exports.build(runtime, BATCH)
    record["exceptions"][0]["dispositions"] = [
        {
            "decision": "accept",
            "justification": "drift within tolerance",
            "username": "qa",
            "printed_name": "Quinn QA",
            "meaning": "Reviewed",
            "signed_at": "2026-01-02T03:04:05+00:00",
        }
    ]
    text = squash(" ".join(pages_of(pdf.render(record))))
    assert "accept" in text and "Quinn QA" in text and "drift within tolerance" in text
    assert "2026-01-02 03:04:05 UTC" in text


def test_running_batch_exports_marked_in_progress(running_batch):
    r = running_batch.get(f"/api/batches/{BATCH}/record.pdf")
    assert r.status_code == 200
    pages = pages_of(r.data)
    assert "IN PROGRESS" in squash(pages[0]) and "not a released record" in squash(pages[0])
    assert running_batch.get(f"/api/batches/{BATCH}/record.xml").status_code == 200
    assert running_batch.get(f"/api/batches/{BATCH}/record.json").json["in_progress"] is True


def test_xml_is_valid_batchml_and_a_mutilated_copy_is_not(done_batch):
    r = done_batch.get(f"/api/batches/{BATCH}/record.xml")
    assert r.status_code == 200 and r.mimetype == "application/xml"
    schema = etree.XMLSchema(etree.parse(str(batchml.SCHEMA_FILE)))
    doc = etree.fromstring(r.data)
    assert schema.validate(doc), schema.error_log
    ns = {"b": batchml.NS}
    assert doc.findtext("b:BatchID", namespaces=ns) == BATCH
    names = doc.xpath("//b:PersonnelIdentificationManifest/b:Name/text()", namespaces=ns)
    assert "Alice" in names and "Sv" in names
    assert doc.xpath("//b:Change/b:Reason/text()", namespaces=ns) == ["typo in comment"]
    assert doc.xpath("//b:Event[b:EventType='Alarm']", namespaces=ns)
    assert "courtesy of MESA International" in r.data.decode()
    # a required element removed: the schema refuses it (so the check above can fail)
    entry = doc.find("b:EntryID", ns)
    doc.remove(entry)
    assert not schema.validate(doc)
    assert batchml.validate(etree.tostring(doc))


def test_json_is_the_record_and_exports_are_audited(done_batch, runtime):
    r = done_batch.get(f"/api/batches/{BATCH}/record.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    record = exports.build(runtime, BATCH)
    got = r.json
    assert got.pop("generated_at") and record.pop("generated_at")
    assert got == json.loads(json.dumps(record))
    assert exports.content_hash(got) == got["content_hash"]
    done_batch.get(f"/api/batches/{BATCH}/record.xml")
    with runtime.transaction() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == "record.exported")).all()
    assert [(e.user, e.object_id, json.loads(e.new)["format"]) for e in rows] == [
        ("alice", BATCH, "json"),
        ("alice", BATCH, "xml"),
    ]
    assert json.loads(rows[0].new)["content_hash"] == record["content_hash"]


def test_unknown_hostile_and_unauthorised(done_batch, anon, runtime):
    for fmt in ("pdf", "xml", "json"):
        r = done_batch.get(f"/api/batches/NOPE-1/record.{fmt}")
        assert r.status_code == 404 and r.json["code"] == "batch_not_found"
        assert set(r.json) >= {"code", "message", "details"}
        assert anon.get(f"/api/batches/{BATCH}/record.{fmt}").status_code == 401
    for hostile in ("%E2%80%AEevil", "M%D0%90B-1", "a..b", "x" * 101, "%3Cscript%3E"):
        r = done_batch.get(f"/api/batches/{hostile}/record.json")
        assert r.status_code in (404, 422), (hostile, r.status_code)
        assert r.json["code"] in ("batch_id_invalid", "not_found", "batch_not_found")
    r = done_batch.get("/api/batches/%E2%80%AEevil/record.pdf")
    assert r.status_code == 422 and r.json["code"] == "batch_id_invalid"


def test_operator_may_read_the_record(done_batch, runtime):
    from engine import users

    token = users.create_token(runtime, "op", "tests", by="test")
    r = done_batch.get(f"/api/batches/{BATCH}/record.json", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json["batch"]["batch_id"] == BATCH


def test_cli_export_writes_each_format(done_batch, runtime, tmp_path):
    from click.testing import CliRunner

    from web import cli

    runner = CliRunner()
    env = {"BATCHLINE_USER": "op", "BATCHLINE_PASSWORD": PASSWORD}
    for fmt in ("pdf", "xml", "json"):
        out = tmp_path / f"r.{fmt}"
        result = runner.invoke(
            cli.main,
            ["batch", "export", BATCH, "--format", fmt, "-o", str(out), "--user", "op"],
            obj=cli.CliContext(runtime=runtime),
            env=env,
        )
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 100
    assert BATCH in squash(" ".join(pages_of((tmp_path / "r.pdf").read_bytes())))
    assert not batchml.validate((tmp_path / "r.xml").read_bytes())
    assert json.loads((tmp_path / "r.json").read_text())["batch"]["batch_id"] == BATCH
    with runtime.transaction() as s:
        users_formats = [
            (e.user, json.loads(e.new)["format"])
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "record.exported"))
        ]
    assert users_formats == [("op", "pdf"), ("op", "xml"), ("op", "json")]
    bad = runner.invoke(
        cli.main,
        ["batch", "export", BATCH, "--format", "pdf", "-o", str(tmp_path / "x.pdf"), "--user", "op"],
        obj=cli.CliContext(runtime=runtime),
        env={"BATCHLINE_USER": "op", "BATCHLINE_PASSWORD": "wrong password!!"},
    )
    assert bad.exit_code != 0 and not (tmp_path / "x.pdf").exists()
