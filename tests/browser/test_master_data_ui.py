"""Master data in the browser (issue 12): QA releases a quarantined lot from its page with
a reason; maintenance takes a mixing vessel out for maintenance and the operator's scan
of it is then refused with maintenance's reason. Screenshots at 1024x768 land in
test-artifacts/browser/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from engine import batches, users
from engine.errors import Conflict
from engine.master_data import lots, materials
from tests.engine.test_library_runs import imported
from web import demo

from .test_operator_ui import log_in, sign

pytestmark = pytest.mark.browser

MAINTENANCE = ("mnt.mia", "Mia Moreau", "Mia-secret-2025")
VESSEL = demo.equipment_for("mixing_vessel")


@pytest.fixture(scope="module")
def plant(runtime):
    """A maintenance person, a quarantined lot and the library's buffer preparation (its
    first task scans a mixing vessel)."""
    try:
        users.create_user(runtime, MAINTENANCE[0], MAINTENANCE[1], ["maintenance"], by="test", password=MAINTENANCE[2])
    except Conflict:
        pass
    materials.create(
        runtime, {"material_id": "BUF-PBS", "name": "PBS buffer", "unit": "L", "kind": "buffer"}, by="qa.dora"
    )
    lots.create(
        runtime,
        {"lot_id": "PBS-0042", "material": "BUF-PBS", "quantity": 250, "expires_at": "2099-03-31"},
        by="sup.carl",
    )
    imported(runtime, "tpl_buffer_prep")
    return runtime


def test_qa_releases_a_quarantined_lot(page: Page, plant, artifacts):
    log_in(page, "qa.dora")
    page.click("nav.mainnav a:has-text('Materials')")
    expect(page.locator("h1")).to_have_text("Lots")
    expect(page.locator("#lots tr.lot-quarantine", has_text="PBS-0042")).to_have_count(1)
    page.screenshot(path=str(artifacts / "lots.png"), full_page=True)
    page.click("#lots a:has-text('PBS-0042')")
    expect(page.locator("#lot-status")).to_have_text("Quarantine")
    expect(page.locator("#genealogy-link")).to_have_attribute("href", "/lots/PBS-0042/genealogy")
    page.select_option("#status", "released")
    page.fill("#reason", "Certificate of analysis reviewed; identity by Raman passed")
    page.once("dialog", lambda d: d.accept())
    page.click("#lot-status-form button")
    expect(page.locator("#lot-status")).to_have_text("Released")
    expect(page.locator("#lot-reason")).to_contain_text("identity by Raman passed")
    expect(page.locator("#history")).to_contain_text("qa.dora")
    page.screenshot(path=str(artifacts / "lot-released.png"), full_page=True)
    assert lots.get(plant, "PBS-0042")["status"] == "released"
    assert page.js_errors == []


def test_maintenance_takes_a_vessel_out_and_the_operators_scan_is_refused(page: Page, plant, context, artifacts):
    page.goto("/login")
    page.fill("#username", MAINTENANCE[0])
    page.fill("#password", MAINTENANCE[2])
    page.click("button:has-text('Log in')")
    expect(page.locator(".who-name")).to_be_visible()
    page.click("nav.mainnav a:has-text('Equipment')")
    expect(page.locator("#equipment")).to_contain_text(VESSEL)
    page.click(f"#equipment a:has-text('{VESSEL}')")
    page.select_option("#status", "maintenance")
    page.fill("#reason", "gearbox oil leak, work order WO-7781")
    page.click("#equipment-status-form button")
    expect(page.locator("#equipment-status")).to_have_text("In maintenance")
    page.screenshot(path=str(artifacts / "equipment-maintenance.png"), full_page=True)
    page.goto("/equipment/")
    page.screenshot(path=str(artifacts / "equipment-list.png"), full_page=True)

    batches.start_batch(plant, "tpl_buffer_prep", "BUF-MNT-1", user="sup.carl", parameters={})
    context.clear_cookies()
    log_in(page, "op.anna")
    page.goto("/batches/BUF-MNT-1")
    page.click("#tasks a")
    page.fill("#f-bpr_vessel_id", VESSEL)
    page.fill("#f-bpr_buffer_name", "PBS 1x")
    page.fill("#f-bpr_wfi_l", "400.0")
    sign(page, "op.anna", user_id=True)
    expect(page.locator("body")).to_contain_text("gearbox oil leak, work order WO-7781")
    page.screenshot(path=str(artifacts / "scan-refused-maintenance.png"), full_page=True)
    assert batches.steps(plant, "BUF-MNT-1") == []
