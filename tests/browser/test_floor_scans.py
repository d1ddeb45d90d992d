"""A scanned lot or vessel is checked as the operator leaves the field, before the
password, and the answer is read out under the field; the step still checks again when it
is signed (a lot quarantined in between is refused). Chromium at 1024x768."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from engine import batches
from engine.models import MaterialLot
from tests.web.scan_recipe import RECIPE, install
from web.api import scans

from .test_operator_ui import log_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def scan_ids(runtime):
    return install(runtime, "FS")


def test_scans_are_checked_as_the_field_is_left_and_again_when_signing(page, runtime, scan_ids, artifacts):
    scans._recent.clear()
    ids = scan_ids
    batches.start_batch(runtime, RECIPE, "FS-1", user="sup.carl")
    (task,) = batches.ready_tasks(runtime, "FS-1")
    log_in(page, "op.anna")
    page.goto(f"/batches/FS-1/tasks/{task['id']}")
    expect(page.locator("h1")).to_contain_text("Charge the buffer")
    lot, lot_answer = page.locator("#f-buffer_lot"), page.locator("#f-buffer_lot-scan")
    expect(lot_answer).to_have_attribute("aria-live", "polite")

    lot.fill(ids["lot_quarantine"])
    page.locator("#f-vessel").focus()  # leaving the field asks
    expect(lot_answer).to_contain_text(f"Lot {ids['lot_quarantine']} is in quarantine, not released: awaiting CoA.")
    expect(lot_answer).to_have_class("scan-check scan-refused")
    expect(lot).to_have_attribute("aria-invalid", "true")

    page.locator("#f-vessel").fill(ids["vessel_busy"])
    page.locator("#f-vessel").press("Enter")  # a scanner's Enter checks, it does not submit
    expect(page.locator("#f-vessel-scan")).to_contain_text("is in use by batch OTHER-1")
    expect(page.locator("#sign-dialog")).to_be_hidden()

    page.locator("#f-vessel").fill("FS-NOPE")
    page.locator("#f-order_no").focus()
    expect(page.locator("#f-vessel-scan")).to_have_text("Equipment FS-NOPE was not found.")
    page.screenshot(path=str(artifacts / "floor-scan-refused.png"))

    lot.fill(ids["lot_ok"])
    page.locator("#f-order_no").focus()
    expect(lot_answer).to_contain_text("Can be used here.")
    expect(lot_answer).to_have_class("scan-check scan-ok")
    page.locator("#f-vessel").fill(ids["vessel_ok"])
    page.locator("#f-order_no").focus()
    expect(page.locator("#f-vessel-scan")).to_contain_text("Can be used here.")
    page.fill("#f-order_no", "0123456789")
    page.fill("#f-volume", "10")
    page.screenshot(path=str(artifacts / "floor-scan-ok.png"))

    # QA quarantines the lot while the operator signs: the step refuses it
    with runtime.transaction() as s:
        s.execute(update(MaterialLot).where(MaterialLot.lot_id == ids["lot_ok"]).values(status="quarantine"))
    page.click("#open-sign")
    if page.locator("#signer_id").count():
        page.fill("#signer_id", "op.anna")
    from .conftest import password

    page.fill("#password", password("op.anna"))
    page.click("#sign-submit")
    expect(page.locator(".field[data-key=buffer_lot] .field-error")).to_contain_text("quarantine, not released")
    assert batches.steps(runtime, "FS-1") == []
    # the refused submission itself is a 422 page: Chromium logs it, no script failed
    assert [e for e in page.js_errors if "status of 422" not in e] == []
    page.screenshot(path=str(artifacts / "floor-scan-refused-at-signing.png"))
    batches.change_state(runtime, "FS-1", "abort", user="sup.carl", reason="test over")
