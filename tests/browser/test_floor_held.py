"""A held batch stays on the operator's list (greyed, with who held it, when and why) and
a reassigned task says to whom, by whom, when and why — on the task list, the task page
and the batch page (issue 13). Flask's test client for the words, Chromium for the look."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from engine import batches

from .conftest import password
from .test_ui_pages import log_in as client_log_in

HOLD_REASON = "pH probe drift under investigation (DEV-0413)"
REASSIGN_REASON = "Anna is on the filling line today"


@pytest.fixture
def app(runtime):
    from web.app import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


def logged_in(app, username: str):
    """A fresh browser (test client) with ``username`` logged in."""
    other = app.test_client()
    client_log_in(other, username)
    return other


def _held_batch(runtime, new_batch) -> tuple[str, dict]:
    batch_id = new_batch()
    (task,) = batches.ready_tasks(runtime, batch_id)
    batches.change_state(runtime, batch_id, "hold", user="sup.carl", reason=HOLD_REASON)
    return batch_id, task


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_a_held_batch_stays_on_the_operators_list_with_who_when_why(app, client, runtime, new_batch):
    batch_id, task = _held_batch(runtime, new_batch)
    try:
        client_log_in(client, "op.anna")
        home = client.get("/")
        assert home.status_code == 200
        item = re.search(rf'<li class="task-held" data-batch="{batch_id}">(.*?)</li>', home.text, re.S)
        assert item, "the held batch's task is still listed, marked held"
        words = _text(item.group(1))
        assert task["name"] in words
        assert f"Batch {batch_id} held by Carl Svensson at " in words
        assert HOLD_REASON in words and "until a supervisor resumes it" in words
        assert re.search(r"held by Carl Svensson at \d{1,2} \w{3} \d{4}, \d{2}:\d{2} \w+", words), words
        # the task page and the batch page say the same
        for url in (f"/batches/{batch_id}/tasks/{task['id']}", f"/batches/{batch_id}"):
            page = _text(client.get(url).text)
            assert f"Batch {batch_id} held by Carl Svensson at " in page, url
            assert HOLD_REASON in page, url
        # an operator who could not do the task does not see it (supervisors do not get operator tasks)
        assert batch_id not in logged_in(app, "qa.dora").get("/").text
    finally:
        batches.change_state(runtime, batch_id, "resume", user="sup.carl", reason="probe replaced")
    home = client.get("/").text
    assert f'<li class="" data-batch="{batch_id}">' in home and f"Batch {batch_id} held" not in home


def test_a_reassigned_task_says_to_whom_by_whom_when_and_why(app, runtime, new_batch):
    batch_id = new_batch()
    (task,) = batches.ready_tasks(runtime, batch_id)
    batches.reassign(runtime, batch_id, task["id"], "op.ben", by="sup.carl", reason=REASSIGN_REASON)
    client = logged_in(app, "op.ben")
    expected = re.compile(
        r"Assigned to Ben Okafor by Carl Svensson at \d{1,2} \w{3} \d{4}, \d{2}:\d{2} \w+: "
        + re.escape(REASSIGN_REASON)
    )
    for url in ("/", f"/batches/{batch_id}/tasks/{task['id']}", f"/batches/{batch_id}"):
        assert expected.search(_text(client.get(url).text)), url
    # Anna no longer has it on her list
    assert f'data-batch="{batch_id}"' not in logged_in(app, "op.anna").get("/").text


@pytest.mark.browser
def test_held_task_is_greyed_on_the_tablet(page, runtime, new_batch, artifacts):
    batch_id, task = _held_batch(runtime, new_batch)
    try:
        page.goto("/login")
        page.fill("#username", "op.anna")
        page.fill("#password", password("op.anna"))
        page.click("button:has-text('Log in')")
        item = page.locator(f'li.task-held[data-batch="{batch_id}"]')
        expect(item).to_be_visible()
        expect(item.locator(".held-banner")).to_contain_text(f"Batch {batch_id} held by Carl Svensson")
        expect(item.locator(".held-banner")).to_contain_text(HOLD_REASON)
        opacity = item.locator(".task-link").evaluate("el => getComputedStyle(el).opacity")
        assert float(opacity) < 1
        item.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts / "floor-held-home.png"))
        item.locator(".task-link").click()
        expect(page.locator("#held-banner")).to_contain_text(HOLD_REASON)
        page.screenshot(path=str(artifacts / "floor-held-task.png"))
        assert page.js_errors == []
    finally:
        batches.change_state(runtime, batch_id, "resume", user="sup.carl", reason="probe replaced")
