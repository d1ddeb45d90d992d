"""An archived batch in the browser: the batch page says when it was archived and that its
record was verified against its hash, shows the record as before, offers no task, and its
exports still download (the JSON with the same content hash as before archiving)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from engine import archive, batches, exports, users
from engine.quality.release import release_batch

from .conftest import PEOPLE, password
from .test_operator_ui import log_in

pytestmark = pytest.mark.browser

RELEASER = "qa.arne"
PEOPLE.setdefault(RELEASER, ("Arne Holm", ["qa"], "Arne-secret-2025"))


def test_an_archived_batch_reads_as_before_with_its_archive_banner(page: Page, runtime, new_batch, artifacts):
    batch_id = new_batch()
    anna = users.authenticate(runtime, "op.anna", password("op.anna"), purpose="signature")
    dora = users.authenticate(runtime, "qa.dora", password("qa.dora"), purpose="signature")
    (task,) = batches.ready_tasks(runtime, batch_id)
    batches.complete_task(runtime, batch_id, task["id"], {"ph": "7.05", "remarks": None}, user="op.anna", signer=anna)
    (task,) = batches.ready_tasks(runtime, batch_id)
    batches.complete_task(
        runtime,
        batch_id,
        task["id"],
        {"volume": "200.0", "filter_intact": True},
        user="op.anna",
        signer=anna,
        witness=dora,
    )
    arne = users.authenticate(runtime, RELEASER, password(RELEASER), purpose="signature")
    release_batch(runtime, batch_id, signer=arne, comment="reviewed")
    before = exports.build(runtime, batch_id)["content_hash"]
    archive.archive_batch(runtime, batch_id, by=RELEASER)

    log_in(page, "op.anna")
    page.goto(f"/batches/{batch_id}")
    banner = page.locator("#archive-banner")
    expect(banner).to_contain_text("Archived on")
    expect(banner).to_contain_text("record verified against its hash")
    expect(banner).to_contain_text(RELEASER)
    expect(page.locator("#batch-state")).to_have_text("released")
    expect(page.locator("#tasks a")).to_have_count(0)
    page.screenshot(path=str(artifacts / "archived-batch.png"), full_page=True)
    answer = page.request.get(f"/api/batches/{batch_id}/record.json")
    assert answer.status == 200 and json.loads(answer.body())["content_hash"] == before
    assert answer.headers["x-record-content-hash"] == before
    pdf = page.request.get(f"/api/batches/{batch_id}/record.pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    assert not page.js_errors, page.js_errors
