"""Post/redirect/get in a real browser (issue 13): a refused form is shown again with
what was typed; after a later successful submission the back button opens the pages
with a GET — no "Confirm Form Resubmission", no form sent a second time."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from engine import batches

from .conftest import password
from .test_operator_ui import log_in, open_task

pytestmark = pytest.mark.browser


def watch_posts(page: Page) -> list[str]:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    return posts


def back_without_resubmission(page: Page, posts: list[str]) -> None:
    sent = len(posts)
    answer = page.go_back()
    assert answer is not None and answer.request.method == "GET" and answer.ok, answer
    assert len(posts) == sent, posts[sent:]  # nothing was sent again


def test_refused_then_accepted_task_then_back(page: Page, runtime, new_batch, artifacts):
    batch_id = new_batch()
    log_in(page, "op.anna")
    open_task(page, batch_id, "Adjust buffer pH")
    task_url = page.url
    posts = watch_posts(page)
    page.fill("#f-ph", "7.05")
    page.click("#open-sign")
    page.fill("#signer_id", "op.anna")
    page.fill("#password", "not my password")  # refused: nothing recorded
    page.click("#sign-submit")
    expect(page.locator("#sign-error")).to_be_visible()
    expect(page.locator("#f-ph")).to_have_value("7.05")  # what was typed is shown again
    expect(page).to_have_url(task_url)  # the history entry is the task page's GET address
    page.fill("#signer_id", "op.anna")
    page.fill("#password", password("op.anna"))
    page.click("#sign-submit")
    page.wait_for_url(re.compile(r"/steps/1$"))
    back_without_resubmission(page, posts)
    # the task page again, now saying who completed it and linking the step
    expect(page.locator("h1")).to_have_text("Already completed")
    expect(page.locator(".flash-info")).to_contain_text("completed by Anna Keller (op.anna)")
    page.screenshot(path=str(artifacts / "floor-back-after-completion.png"))
    page.click("a:has-text('Step 1')")
    expect(page).to_have_url(re.compile(r"/steps/1$"))
    assert len(batches.steps(runtime, batch_id)) == 1


def test_refused_then_accepted_login_then_back(page: Page):
    posts = watch_posts(page)
    page.goto("/login")
    page.fill("#username", "op.ben")
    page.fill("#password", "wrong password")
    page.click("button:has-text('Log in')")
    expect(page.locator(".flash-error")).to_be_visible()
    page.fill("#password", password("op.ben"))
    page.click("button:has-text('Log in')")
    expect(page.locator(".who-name")).to_have_text("Ben Okafor")
    back_without_resubmission(page, posts)


def test_refused_then_accepted_event_then_back(page: Page, new_batch):
    batch_id = new_batch()
    log_in(page, "op.anna")
    open_task(page, batch_id, "Adjust buffer pH")
    task_url = page.url
    posts = watch_posts(page)
    page.click("#record-event summary")
    page.fill("#event-description", "   ")  # only spaces: refused on the server
    page.click("#event-submit")
    expect(page.locator("#event-error")).to_be_visible()
    expect(page).to_have_url(task_url)  # not /events: back there later is a GET of the task page
    page.fill("#event-description", "Buffer spilled on the bench")
    page.click("#event-submit")
    expect(page.locator(".flash-success")).to_contain_text("Event recorded")
    back_without_resubmission(page, posts)


def test_refused_then_accepted_start_batch_then_back(page: Page):
    log_in(page, "sup.carl")
    posts = watch_posts(page)
    page.goto("/batches/new")
    page.select_option("#recipe", "buffer_prep")
    page.fill("input[name=batch_id]", "BAD ID WITH SPACES")
    page.click("#start-form button[type=submit]")
    expect(page.locator(".flash-error")).to_be_visible()
    page.fill("input[name=batch_id]", "PRG-0001")
    page.click("#start-form button[type=submit]")
    expect(page.locator(".flash-success")).to_contain_text("PRG-0001")
    back_without_resubmission(page, posts)


def test_refused_then_accepted_correction_then_back(page: Page, runtime, new_batch):
    from .test_operator_ui import complete_first_step

    batch_id = new_batch()
    complete_first_step(runtime, batch_id, ph="7.30")
    log_in(page, "op.anna")
    page.goto(f"/batches/{batch_id}")
    page.click("#step-1 .value-row[data-key=ph] .correct-link")
    correct_url = page.url
    posts = watch_posts(page)
    page.fill("#f-value", "7.03")
    page.fill("#reason", "Typing error")
    page.click("#open-sign")
    page.fill("#signer_id", "op.anna")
    page.fill("#password", "not my password")
    page.click("#sign-submit")
    expect(page.locator("#sign-error")).to_be_visible()
    expect(page.locator("#reason")).to_have_value("Typing error")
    expect(page).to_have_url(correct_url)
    page.fill("#signer_id", "op.anna")
    page.fill("#password", password("op.anna"))
    page.click("#sign-submit")
    expect(page.locator(".flash-success")).to_contain_text("corrected and signed")
    back_without_resubmission(page, posts)
    assert len(batches.steps(runtime, batch_id)[0]["corrections"]) == 1


def test_refused_then_accepted_disposition_then_back(page: Page, runtime, new_batch):
    """QA's review dialog posts to an address without a page (…/exceptions/N): the refused
    answer's history entry becomes the review page, so back opens it with a GET."""
    from .test_operator_ui import complete_first_step

    batch_id = new_batch()
    complete_first_step(runtime, batch_id, ph="7.30")  # above the alert limit: an exception to decide
    log_in(page, "qa.dora")
    page.goto(f"/review/{batch_id}")
    review_url = page.url
    posts = watch_posts(page)
    (exception,) = batches.exceptions(runtime, batch_id)
    action = f"/review/{batch_id}/exceptions/{exception['id']}"
    page.evaluate(  # the dialog's form, sent without a justification: refused, nothing signed
        "a => { const f = document.getElementById('dispose-form'); f.action = a; f.submit(); }", action
    )
    expect(page.locator("#dispose-error")).to_contain_text("justification")
    expect(page).to_have_url(review_url)
    page.goto(f"/batches/{batch_id}")
    back_without_resubmission(page, posts)  # back onto the refused answer's entry: a GET of the review page
    expect(page).to_have_url(review_url)
