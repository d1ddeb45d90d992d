"""Error pages in a real browser (issue 13): an unknown address, a made-up task, a GET
of a form's address — a page in users' words with a way back, never raw JSON; the API
keeps its JSON. And a person whose duty a task is not sees it read-only, Sign disabled,
with the reason, before typing any password."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .test_operator_ui import log_in

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", ["/nothing-here", "/batches/NOPE/whatever", "/recipes/999/xyz"])
def test_an_unknown_address_is_a_page_with_a_way_back(page: Page, path: str, artifacts):
    log_in(page, "op.anna")
    answer = page.goto(path)
    assert answer.status == 404 and answer.headers["content-type"].startswith("text/html")
    expect(page.locator("h1")).to_have_text("Page not found")
    expect(page.locator("#error-home")).to_have_attribute("href", "/")
    expect(page.locator(".who-name")).to_have_text("Anna Keller")  # still the menu of a logged-in person
    if path == "/nothing-here":
        page.screenshot(path=str(artifacts / "floor-404.png"))
    page.click("#error-home")
    expect(page.locator("h1")).to_have_text("My tasks")


def test_a_made_up_task_says_so(page: Page, new_batch, artifacts):
    batch_id = new_batch()
    log_in(page, "op.anna")
    answer = page.goto(f"/batches/{batch_id}/tasks/00000000-0000-4000-8000-000000000000")
    assert answer.status == 404
    expect(page.locator(".flash-error")).to_contain_text(f"No such task in batch {batch_id}")
    expect(page.locator(".flash-error")).not_to_contain_text("completed")
    page.screenshot(path=str(artifacts / "floor-no-such-task.png"))


def test_a_forms_address_opened_is_a_page_and_the_api_stays_json(page: Page, new_batch):
    batch_id = new_batch()
    log_in(page, "op.anna")
    answer = page.goto(f"/batches/{batch_id}/events")
    assert answer.status == 405 and "POST" in answer.headers["allow"]
    expect(page.locator("h1")).to_have_text("Not a page to open")
    answer = page.goto("/api/nothing-here")
    assert answer.status == 404 and answer.headers["content-type"].startswith("application/json")


def test_qa_on_an_operator_task_reads_it_with_sign_disabled(page: Page, new_batch, artifacts):
    batch_id = new_batch()
    log_in(page, "qa.dora")
    page.goto(f"/batches/{batch_id}")
    page.click("#tasks a:has-text('Adjust buffer pH')")
    expect(page.locator("#not-mine")).to_have_text(
        "This step is for operators; you are signed in as QA. You can read it, but only operators or supervisors "
        "can sign it."
    )
    expect(page.locator("#open-sign")).to_be_disabled()
    expect(page.locator("#f-ph")).to_be_disabled()
    expect(page.locator("#sign-submit")).to_be_disabled()
    page.screenshot(path=str(artifacts / "floor-qa-on-operator-task.png"), full_page=True)


def test_a_witness_who_may_not_witness_is_said_before_any_password(page: Page, runtime, new_batch):
    from .test_operator_ui import complete_first_step

    batch_id = new_batch()
    complete_first_step(runtime, batch_id)
    log_in(page, "op.anna")
    page.goto(f"/batches/{batch_id}")
    page.click("#tasks a:has-text('Transfer to the hold tank')")
    page.click("#open-sign")
    page.fill("#witness_id", "op.anna")
    page.press("#witness_id", "Tab")
    expect(page.locator("#witness-why")).to_contain_text("another person")
    expect(page.locator("#sign-submit")).to_be_disabled()
    page.fill("#witness_id", "op.ben")
    page.press("#witness_id", "Tab")
    expect(page.locator("#witness-why")).to_be_hidden()
    expect(page.locator("#sign-submit")).to_be_enabled()
