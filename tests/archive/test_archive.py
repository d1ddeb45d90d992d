"""Archiving released and rejected batches (SQLite and PostgreSQL): the live workflow rows
go, the record stays readable and exportable from the archive exactly as before, the
audit trail keeps verifying, and a changed or missing archive file is reported."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text

from engine import archive, audit, exports
from engine.errors import Conflict
from engine.exports import batchml
from engine.models import (
    ArchivedBatch,
    AuditEvent,
    Batch,
    Step,
    TaskData,
    WorkflowProcess,
    WorkflowState,
    WorkflowTask,
)
from engine.runtime import Runtime
from tests.engine.tamper import as_owner

TOMORROW = datetime.now(UTC) + timedelta(days=1)


def workflow_rows(rt, batch_id: str) -> int:
    with rt.transaction() as s:
        pk = s.scalar(select(Batch.id).where(Batch.batch_id == batch_id))
        return sum(
            s.scalar(select(func.count()).select_from(model).where(model.batch_id == pk))
            for model in (WorkflowTask, WorkflowProcess, WorkflowState)
        )


def record_json(client, batch_id: str) -> dict:
    r = client.get(f"/api/batches/{batch_id}/record.json")
    assert r.status_code == 200, r.json
    body = json.loads(r.data)
    assert r.headers["X-Record-Content-Hash"] == body["content_hash"]
    body.pop("generated_at")
    return body


def xml_without_time(data: bytes) -> bytes:
    """BatchML without its TimeStamp and PublishedDate (the generation time)."""
    import re

    return re.sub(rb"<(TimeStamp|PublishedDate)>[^<]*</", rb"<\1></", data)


def verify(rt):
    with rt.transaction() as s:
        return audit.verify(s, settings=rt.settings)


@pytest.fixture
def three(plant, runtime):
    """A-1 released (with a disposed alert exception), A-2 rejected, A-3 complete and
    waiting for QA, A-4 still running."""
    (exc,) = plant.start("A-1", mass=112)  # alert limit 90..110
    assert plant.dispose("A-1", exc["id"]).status_code == 200
    plant.decide("A-1")
    plant.start("A-2")
    plant.decide("A-2", "reject")
    plant.start("A-3")
    plant.start("A-4", finish=False)
    return plant


def test_archiving_moves_decided_batches_and_keeps_them_readable_and_identical(three, client, runtime):
    before = {b: record_json(client, b) for b in ("A-1", "A-2")}
    xml_before = {b: xml_without_time(client.get(f"/api/batches/{b}/record.xml").data) for b in ("A-1", "A-2")}
    shown_before = client.get("/api/batches/A-1").json
    rows_a1 = workflow_rows(runtime, "A-1")
    assert rows_a1 > 0 and shown_before["archive"] is None
    with runtime.transaction() as s:
        data_before = s.scalar(select(func.count()).select_from(TaskData))

    dry = archive.run(runtime, by="system", before=TOMORROW, dry_run=True)
    assert [d["batch_id"] for d in dry["due"]] == ["A-1", "A-2"] and dry["archived"] == []
    assert workflow_rows(runtime, "A-1") == rows_a1  # a dry run changes nothing

    out = archive.run(runtime, by="system", before=TOMORROW)
    assert [a["batch_id"] for a in out["archived"]] == ["A-1", "A-2"] and not out["failed"]
    assert out["archived"][0]["removed"]["workflow_task"] > 0
    for b in ("A-1", "A-2"):
        assert workflow_rows(runtime, b) == 0
    assert workflow_rows(runtime, "A-3") > 0 and workflow_rows(runtime, "A-4") > 0
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).select_from(TaskData)) < data_before
        assert s.scalar(select(func.count()).select_from(ArchivedBatch)) == 2
    # the not-yet-decided batches are untouched and still work: A-4 finishes
    three.complete("A-4", "transfer", {"transferred": True}, witness="sv")

    # the same record, byte for byte (but its generation time), from the archive
    for b in ("A-1", "A-2"):
        after = record_json(client, b)
        assert json.dumps(after, sort_keys=True) == json.dumps(before[b], sort_keys=True)
        assert xml_without_time(client.get(f"/api/batches/{b}/record.xml").data) == xml_before[b]
        pdf = client.get(f"/api/batches/{b}/record.pdf")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    # and a rebuild from what stayed live is still the same record
    rebuilt = exports.build(runtime, "A-1")
    assert rebuilt["content_hash"] == before["A-1"]["content_hash"]
    assert xml_without_time(batchml.build(archive.archived_record(runtime, "A-1"))) == xml_before["A-1"]

    shown = client.get("/api/batches/A-1").json
    assert shown["state"] == "released" and shown["archive"]["verified"] is True
    assert shown["archive"]["record_content_hash"] == before["A-1"]["content_hash"]
    assert len(client.get("/api/batches/A-1/steps").json) == 2
    assert client.get("/api/batches/A-1/tasks").json == []
    assert {b["batch_id"] for b in client.get("/api/batches").json} >= {"A-1", "A-2", "A-3", "A-4"}

    result = verify(runtime)
    assert result.ok, result.problems
    assert result.archives == 2
    with runtime.transaction() as s:  # the archive entry is in the chain, not in the batch's record
        ev = s.scalars(select(AuditEvent).where(AuditEvent.action == "batch.archived")).all()
        assert [e.object_type for e in ev] == ["batch_archive", "batch_archive"]


def test_the_batch_page_says_archived_and_verified(three, client, runtime):
    from tests.support import browser_login

    archive.archive_batch(runtime, "A-1", by="qa")
    page = runtime  # noqa: F841
    browser = client.application.test_client()
    browser_login(browser, "alice")
    html = browser.get("/batches/A-1").get_data(as_text=True)
    assert "Archived on" in html and "record verified against its hash" in html
    assert "weigh" in html.lower()
    assert browser.get("/batches/A-1/diagram").status_code == 200


def test_only_complete_batches_qa_decided_are_archived(three, runtime):
    for batch_id, code in (("A-3", "batch_not_archivable"), ("A-4", "batch_not_archivable")):
        with pytest.raises(Conflict) as err:
            archive.archive_batch(runtime, batch_id, by="system")
        assert err.value.code == code
    archive.archive_batch(runtime, "A-1", by="system")
    with pytest.raises(Conflict) as err:
        archive.archive_batch(runtime, "A-1", by="system")
    assert err.value.code == "batch_archived"
    assert workflow_rows(runtime, "A-3") > 0


def test_a_batch_with_an_exception_still_open_waits(plant, runtime):
    (exc,) = plant.start("W-1", mass=112)  # alert breach, left open
    plant.decide("W-1", "reject")  # a rejection needs no disposition first
    assert archive.due(runtime, TOMORROW) == []
    with pytest.raises(Conflict) as err:
        archive.archive_batch(runtime, "W-1", by="system")
    assert err.value.code == "batch_exceptions_open" and "open or escalated" in err.value.message
    assert plant.dispose("W-1", exc["id"]).status_code == 200
    assert [d["batch_id"] for d in archive.due(runtime, TOMORROW)] == ["W-1"]


def test_nothing_is_added_to_an_archived_batch(three, client, runtime):
    from engine import batches
    from engine.models import ExceptionDisposition, utcnow

    (exc,) = client.get("/api/batches/A-1/exceptions").json
    archive.archive_batch(runtime, "A-1", by="system")
    # a trend finding arriving late (the scoring job) is refused, saying why
    with pytest.raises(Conflict) as err:
        batches.raise_exception(runtime, "A-1", source="trend", severity="alert", message="late finding")
    assert err.value.code in ("batch_archived", "batch_released"), err.value.code
    # any path writing the record, even one added later, meets the same refusal
    with pytest.raises(Conflict) as err:
        with runtime.transaction() as s:
            s.add(
                ExceptionDisposition(
                    exception_id=exc["id"],
                    decision="accept",
                    justification="late",
                    username="qa",
                    printed_name="Qa",
                    meaning="Reviewed",
                    signed_at=utcnow(),
                    content_hash="0" * 64,
                )
            )
    assert err.value.code == "batch_archived" and "archived" in err.value.message
    with pytest.raises(Conflict) as err:
        with runtime.transaction() as s:
            pk = s.scalar(select(Batch.id).where(Batch.batch_id == "A-1"))
            s.add(Step(batch_id=pk, seq=3, kind="user_task", bpmn_id="x", task_id="x", values={}, values_hash="0" * 64))
    assert err.value.code == "batch_archived"
    r = client.post(
        "/api/batches/A-1/steps/1/corrections",
        json={
            "field": "comment",
            "value": "late",
            "reason": "typo",
            "signature": {"username": "alice", "password": "x"},
        },
    )
    assert r.status_code in (401, 403, 409), r.json
    with runtime.transaction() as s:
        pk = s.scalar(select(Batch.id).where(Batch.batch_id == "A-1"))
        assert s.scalar(select(func.count()).select_from(Step).where(Step.batch_id == pk)) == 2
    # other batches are not affected
    batches.raise_exception(runtime, "A-3", source="trend", severity="alert", message="a finding")
    assert verify(runtime).ok


def _file(runtime, batch_id):
    with runtime.transaction() as s:
        row = s.scalars(
            select(ArchivedBatch).join(Batch, Batch.id == ArchivedBatch.batch_id).where(Batch.batch_id == batch_id)
        ).one()
        return archive.archive_dir(runtime.settings) / row.location


def test_a_changed_archive_file_is_reported_everywhere(three, client, runtime):
    archive.run(runtime, by="system", before=TOMORROW)
    path = _file(runtime, "A-1")
    content = json.loads(gzip.decompress(path.read_bytes()))
    content["record"]["steps"][0]["fields"][0]["current"] = 99  # a value quietly improved
    path.write_bytes(gzip.compress(json.dumps(content).encode(), mtime=0))

    result = verify(runtime)
    assert not result.ok
    assert any("A-1" in p and "does not match its hash" in p for p in result.problems), result.problems
    assert not any("of A-2:" in p for p in result.problems), result.problems
    r = client.get("/api/batches/A-1/record.json")
    assert r.status_code == 500 and r.json["code"] == "archive_changed"
    shown = client.get("/api/batches/A-1").json
    assert shown["archive"]["verified"] is False and "changed" in shown["archive"]["problem"]
    assert client.get("/api/batches/A-2/record.json").status_code == 200


def test_a_missing_archive_file_is_reported(three, client, runtime):
    archive.run(runtime, by="system", before=TOMORROW)
    _file(runtime, "A-2").unlink()
    with runtime.transaction() as s:
        checked, problems = archive.problems(s, runtime.settings)
    assert checked == 2 and len(problems) == 1 and "A-2" in problems[0] and "missing" in problems[0]
    r = client.get("/api/batches/A-2/record.pdf")
    assert r.status_code == 500 and r.json["code"] == "archive_missing"


def test_an_edited_or_deleted_archive_row_is_reported(three, client, runtime):
    archive.run(runtime, by="system", before=TOMORROW)
    for statement in ("UPDATE archived_batch SET location = 'elsewhere'", "DELETE FROM archived_batch"):
        with pytest.raises(Exception, match="append_only|refused"):  # the rows are append-only
            with runtime.transaction() as s:
                s.execute(text(statement))
    with as_owner(runtime) as s:  # the database owner, triggers dropped
        s.execute(
            text(
                "UPDATE archived_batch SET content_hash = :h "
                "WHERE batch_id = (SELECT id FROM batch WHERE batch_id = 'A-1')"
            ),
            {"h": "0" * 64},
        )
        s.execute(text("DELETE FROM archived_batch WHERE batch_id = (SELECT id FROM batch WHERE batch_id = 'A-2')"))
    problems = verify(runtime).problems
    assert any("A-1" in p and "edited" in p for p in problems), problems
    # the row re-pointed is not believed when reading either
    r = client.get("/api/batches/A-1/record.json")
    assert r.status_code == 500 and r.json["code"] == "archive_changed", r.json
    shown = client.get("/api/batches/A-1").json["archive"]
    assert shown["verified"] is False and "does not match the audit entry" in shown["problem"]
    assert any("A-2" in p and "row is missing" in p for p in problems), problems


def test_concurrent_runs_archive_each_batch_once(three, runtime, db_url):
    from tests.support import make_runtime

    others = [make_runtime(db_url, archive_dir=runtime.settings.archive_dir) for _ in range(3)]
    results: list[dict] = []
    errors: list[BaseException] = []

    def go(rt):
        try:
            results.append(archive.run(rt, by="system", before=TOMORROW))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(rt,)) for rt in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for rt in others:
        rt.close()
    assert not errors, errors
    archived = sorted(a["batch_id"] for r in results for a in r["archived"])
    assert archived == ["A-1", "A-2"], results
    assert not [f for r in results for f in r["failed"]], results
    with runtime.transaction() as s:
        assert s.scalar(select(func.count()).where(AuditEvent.action == "batch.archived")) == 2
    assert verify(runtime).ok


def test_an_archive_is_readable_after_the_database_is_reopened(three, client, runtime, db_url):
    from tests.support import make_runtime

    before = record_json(client, "A-1")
    archive.archive_batch(runtime, "A-1", by="system")
    runtime.close()
    again = make_runtime(db_url, archive_dir=runtime.settings.archive_dir)  # a restart, or a restored copy
    try:
        record = archive.archived_record(again, "A-1")
        assert record is not None and record["content_hash"] == before["content_hash"]
        with again.transaction() as s:
            assert audit.verify(s, settings=again.settings).ok
    finally:
        again.close()


def test_deleting_a_step_row_behind_batchlines_back_is_still_caught(three, runtime):
    archive.archive_batch(runtime, "A-1", by="system")
    with runtime.transaction() as s:  # the triggers still refuse, archiving opened nothing
        with pytest.raises(Exception, match="append_only|refused"):
            with s.begin_nested():
                s.execute(delete(Step).where(Step.seq == 1))
    # the database owner drops the trigger and deletes: audit verify names the step
    with as_owner(runtime) as s:
        s.execute(text("DELETE FROM step WHERE seq = 1 AND batch_id = (SELECT id FROM batch WHERE batch_id = 'A-1')"))
    problems = verify(runtime).problems
    assert any("step" in p and "missing" in p for p in problems), problems


def test_retention_setting_decides_what_is_due(three, runtime):
    from dataclasses import replace

    assert archive.run(runtime, by="system")["enabled"] is False  # off by default
    runtime.settings = replace(runtime.settings, archive_after_days=30)
    assert archive.run(runtime, by="system", dry_run=True)["due"] == []  # decided today
    with as_owner(runtime) as s:  # QA's decisions, as if made 40 days ago
        s.execute(text("UPDATE batch_disposition SET signed_at = :t"), {"t": datetime.now(UTC) - timedelta(days=40)})
    assert [d["batch_id"] for d in archive.run_due(runtime)["archived"]] == ["A-1", "A-2"]


def test_the_worker_archives_daily(three, runtime):
    from dataclasses import replace

    from engine import jobs
    from engine.models import Job

    runtime.settings = replace(runtime.settings, archive_after_days=30)
    assert archive.schedule(runtime)["scheduled"] is True
    assert archive.schedule(runtime)["scheduled"] is False  # booked once
    with as_owner(runtime) as s:  # QA's decisions, as if made 40 days ago
        s.execute(text("UPDATE batch_disposition SET signed_at = :t"), {"t": datetime.now(UTC) - timedelta(days=40)})
    jobs.work(runtime, idle_exit=True)
    assert workflow_rows(runtime, "A-1") == 0 and workflow_rows(runtime, "A-2") == 0
    assert workflow_rows(runtime, "A-3") > 0
    with runtime.transaction() as s:
        runs = s.scalars(select(Job).where(Job.kind == "archive_run").order_by(Job.id)).all()
        assert [j.state for j in runs] == ["done", "pending"]
        assert runs[1].due_at > datetime.now(UTC) + timedelta(hours=23)


def test_run_refuses_a_bad_limit(runtime):
    for bad in (0, -1, 10_001, "5", True, 1.5):
        with pytest.raises(Exception) as err:
            archive.due(runtime, TOMORROW, bad)
        assert getattr(err.value, "code", None) == "limit_invalid"


def test_runtime_type_is_runtime(runtime):
    assert isinstance(runtime, Runtime)


def test_record_exports_of_hostile_ids_are_refused_as_before(three, client, runtime):
    archive.run(runtime, by="system", before=TOMORROW)
    for bad in ("%00", "A-1%0A", "x" * 300, "..%2F..%2Fetc", "A-1'--"):
        r = client.get(f"/api/batches/{bad}/record.json")
        assert r.status_code in (404, 422), (bad, r.status_code)
    assert client.get("/api/batches/A-1/record.json", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_guard_costs_a_running_batch_no_statement(plant, runtime):
    """The step path holds its batch: the guard asks about archives only for decided ones."""
    from sqlalchemy import event

    plant.start("G-1", finish=False)
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(runtime.db, "before_cursor_execute", record)
    try:
        plant.complete("G-1", "transfer", {"transferred": True}, witness="sv")
    finally:
        event.remove(runtime.db, "before_cursor_execute", record)
    assert seen and not [q for q in seen if "archived_batch" in q]


def test_every_page_about_an_archived_batch_still_opens(three, client, runtime):
    from tests.support import browser_login

    archive.run(runtime, by="system", before=TOMORROW)
    browser = client.application.test_client()
    browser_login(browser, "quentin")
    for url in ("/review/A-1", "/review/", "/batches", "/batches/A-1", "/batches/A-1/steps/1", "/batches/A-1/diagram"):
        assert browser.get(url).status_code == 200, url
    for url in ("/api/batches/A-1/release", "/api/batches/A-1/exceptions", "/api/batches/A-1/steps"):
        assert client.get(url).status_code == 200, url
