"""The genealogy page in a real browser at 1024x768: a drug substance lot traced back
through its HCCF and upstream batch to the cell bank vial and the media, and forward
(nothing yet); batch links work; times are shown in the reader's local time."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_operator_ui import log_in
from tests.genealogy.chain import CELL_BANK_LOT, downstream, import_chain, upstream

pytestmark = pytest.mark.browser


def test_a_drug_substance_lot_page_shows_every_input(runtime, page: Page, artifacts):
    import_chain(runtime)
    hccf = upstream(runtime, "GEN-UP-1")
    ds = downstream(runtime, "GEN-DS-1", hccf, litres="1500")
    log_in(page, "op.anna")
    page.goto(f"/lots/{ds}/genealogy")
    expect(page.locator("h1")).to_have_text(f"Genealogy of lot {ds}")
    back = page.locator("#backward")
    expect(back.locator(f'[data-node="lot:{hccf}"]').first).to_contain_text("consumed 1500 L")
    expect(back.locator(f'[data-node="lot:{CELL_BANK_LOT}"]').first).to_contain_text("consumed 1 vial")
    expect(back.locator('[data-node="batch:GEN-UP-1"]').first).to_contain_text("mab_upstream")
    expect(page.locator("#forward")).to_contain_text("No batch has used this lot yet.")
    stamp = back.locator("time[datetime]").first
    expect(stamp).to_have_attribute("title", __import__("re").compile(r"UTC$"))  # converted: UTC kept in the title
    page.screenshot(path=str(artifacts / "genealogy-ds-lot.png"), full_page=False)
    page.locator("#forward").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "genealogy-ds-lot-end.png"), full_page=False)
    assert page.js_errors == []
    page.click('#backward a:has-text("Batch GEN-UP-1")')
    expect(page.locator("h1")).to_contain_text("GEN-UP-1")
