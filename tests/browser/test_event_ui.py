""" "Record an event" in Chromium, as an operator uses it on a 1024x768 tablet: open a
task, open the collapsed form, record a documentation event, read the confirmation
with the exception's number, and find the exception on the batch page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from engine import batches

from .test_operator_ui import log_in, open_task

pytestmark = pytest.mark.browser


def test_an_operator_records_a_documentation_event_from_a_task(page: Page, runtime, new_batch, artifacts):
    batch_id = new_batch()
    log_in(page, "op.anna")
    open_task(page, batch_id, "Adjust buffer pH")
    task_url = page.url
    form = page.locator("#record-event")
    expect(form).to_be_visible()
    expect(page.locator("#event-description")).to_be_hidden()  # collapsed until opened
    page.click("#record-event summary")
    page.select_option("#event-kind", "documentation")
    page.fill("#event-description", "Buffer label printed with yesterday's date; corrected by hand.")
    page.locator("#event-submit").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "record-event-form.png"))
    page.click("#event-submit")

    confirmation = page.locator(".flash-success")
    expect(confirmation).to_contain_text("Event recorded — it goes to QA's review (exception ")
    assert page.url == task_url  # back on the task, still to be done
    number = int(re.search(r"exception (\d+)\)", confirmation.inner_text()).group(1))
    (exc,) = [e for e in batches.exceptions(runtime, batch_id) if e["id"] == number]
    assert exc["category"] == "event.documentation" and exc["raised_by"] == "op.anna"
    expect(page.locator("#event-description")).to_be_hidden()  # a fresh, collapsed form
    page.screenshot(path=str(artifacts / "record-event-recorded.png"))

    page.click(f".crumbs a:has-text('Batch {batch_id}')")
    listed = page.locator("#exceptions li.exception", has_text="Buffer label printed with yesterday")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("reported by an operator")
    listed.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "record-event-batch-page.png"))
    assert page.js_errors == []
